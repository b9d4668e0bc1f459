package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ErrDigestMismatch is returned (wrapped) when content does not hash to the
// digest it was asked for by.
var ErrDigestMismatch = fmt.Errorf("digest mismatch")

// Drain reads everything an artifact references – every child manifest of
// an index, every config and every layer – and throws it away, checking
// each against its digest and size. It is what "docker pull" does to a
// registry, without keeping anything: through a pull-through cache it
// leaves the cache holding the whole image. Blobs are read one after the
// other, so one image never opens parallel downloads (Nexus proxies break
// on those). It returns the bytes read.
func Drain(ctx context.Context, a *Artifact) (int64, error) {
	if a.Index == nil && a.Image == nil {
		return 0, fmt.Errorf("artifact %s holds neither an index nor an image", a.Desc.Digest)
	}
	tree := NewArtifactTree(a)
	var n int64
	read := func(ctx context.Context, d v1.Descriptor) ([]byte, error) {
		raw, err := tree.Read(ctx, d)
		if err != nil {
			return nil, err
		}
		n += int64(len(raw))
		what := "manifest"
		if tree.Index(d.Digest) != nil {
			what = "index"
		}
		h := sha256.Sum256(raw)
		return raw, verify(what, d.Digest, d.Size, int64(len(raw)), h[:])
	}
	// Blobs are read as they are visited, one after the other; each
	// once, also when several platforms share it.
	visit := func(ctx context.Context, d v1.Descriptor) (bool, error) {
		if IsManifest(d) || d.Digest == a.Desc.Digest {
			return true, nil
		}
		what := "blob"
		if d.MediaType.IsConfig() {
			what = "config"
		}
		rc, err := tree.Blob(d)
		if err != nil {
			return false, err
		}
		defer rc.Close()
		h := sha256.New()
		m, err := io.Copy(h, rc)
		n += m
		if err != nil {
			return false, fmt.Errorf("%s %s: %w", what, d.Digest, err)
		}
		return false, verify(what, d.Digest, d.Size, m, h.Sum(nil))
	}
	err := Walk(ctx, a.Desc, read, Walker{Visit: visit})
	return n, err
}

func verify(what string, want v1.Hash, size, n int64, sum []byte) error {
	if want.Algorithm != "sha256" {
		return fmt.Errorf("%s %s: unsupported digest algorithm", what, want)
	}
	if got := hex.EncodeToString(sum); got != want.Hex {
		return fmt.Errorf("%s %s: content hashes to sha256:%s: %w", what, want, got, ErrDigestMismatch)
	}
	if size > 0 && n != size {
		return fmt.Errorf("%s %s: %d bytes, descriptor says %d: %w", what, want, n, size, ErrDigestMismatch)
	}
	return nil
}
