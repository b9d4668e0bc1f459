package remote

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func (s *remoteStore) Referrers(ctx context.Context, repo, digest string) ([]v1.Descriptor, error) {
	r, err := s.repo(repo)
	if err != nil {
		return nil, err
	}
	if _, err := v1.NewHash(digest); err != nil {
		return nil, fmt.Errorf("referrers of %q: %w", digest, err)
	}
	// Reuse shares the puller's transport, credentials and token cache.
	idx, err := remote.Referrers(r.Digest(digest), remote.Reuse(s.puller), remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s@%s: %w", r, digest, explain(s.host, err))
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s@%s: %w", r, digest, err)
	}
	return im.Manifests, nil
}
