package layout

import (
	"context"
	"errors"
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regmirror/regmirror/internal/registry"
)

// Delete removes repo's index.json entries for the digest. Blobs stay, as
// they do on a registry until its garbage collection runs.
func (s *layoutStore) Delete(_ context.Context, repo, digest string) error {
	h, err := v1.NewHash(digest)
	if err != nil {
		return fmt.Errorf("deleting %q: %w", digest, err)
	}
	return s.editIndex(func(d v1.Descriptor) bool { return d.Digest != h || entryRef(d, repo) == "" })
}

func (s *layoutStore) HasBlob(_ context.Context, _ string, digest string) (bool, error) {
	h, err := v1.NewHash(digest)
	if err != nil {
		return false, fmt.Errorf("blob %q: %w", digest, err)
	}
	_, err = os.Stat(s.blobPath(h))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	}
	return false, err
}

var (
	_ registry.Deleter     = (*layoutStore)(nil)
	_ registry.BlobChecker = (*layoutStore)(nil)
)
