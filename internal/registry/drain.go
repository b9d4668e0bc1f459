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
	d := &drainer{}
	var err error
	switch {
	case a.Index != nil:
		err = d.index(ctx, a.Desc, a.Index)
	case a.Image != nil:
		err = d.image(ctx, a.Desc, a.Image)
	default:
		err = fmt.Errorf("artifact %s holds neither an index nor an image", a.Desc.Digest)
	}
	return d.n, err
}

type drainer struct {
	n    int64
	seen map[v1.Hash]bool // blobs shared by several platforms are read once
}

func (d *drainer) index(ctx context.Context, desc v1.Descriptor, idx v1.ImageIndex) error {
	raw, err := idx.RawManifest()
	if err != nil {
		return fmt.Errorf("index %s: %w", desc.Digest, err)
	}
	if err := d.check("index", desc.Digest, desc.Size, raw); err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("index %s: %w", desc.Digest, err)
	}
	for _, c := range im.Manifests {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case c.MediaType.IsIndex():
			child, err := idx.ImageIndex(c.Digest)
			if err != nil {
				return fmt.Errorf("index %s: child %s: %w", desc.Digest, c.Digest, err)
			}
			err = d.index(ctx, c, child)
			if err != nil {
				return err
			}
		case c.MediaType.IsImage():
			img, err := idx.Image(c.Digest)
			if err != nil {
				return fmt.Errorf("index %s: child %s: %w", desc.Digest, c.Digest, err)
			}
			if err := d.image(ctx, c, img); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *drainer) image(ctx context.Context, desc v1.Descriptor, img v1.Image) error {
	raw, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	if err := d.check("manifest", desc.Digest, desc.Size, raw); err != nil {
		return err
	}
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if err := d.check("config", m.Config.Digest, m.Config.Size, cfg); err != nil {
		return err
	}
	for _, l := range m.Layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !l.MediaType.IsDistributable() || d.seen[l.Digest] {
			// Foreign layers live at their URLs, not in the registry.
			continue
		}
		if err := d.layer(img, l); err != nil {
			return err
		}
		if d.seen == nil {
			d.seen = map[v1.Hash]bool{}
		}
		d.seen[l.Digest] = true
	}
	return nil
}

func (d *drainer) layer(img v1.Image, l v1.Descriptor) error {
	layer, err := img.LayerByDigest(l.Digest)
	if err != nil {
		return fmt.Errorf("blob %s: %w", l.Digest, err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return fmt.Errorf("blob %s: %w", l.Digest, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	d.n += n
	if err != nil {
		return fmt.Errorf("blob %s: %w", l.Digest, err)
	}
	return verify("blob", l.Digest, l.Size, n, h.Sum(nil))
}

func (d *drainer) check(what string, want v1.Hash, size int64, b []byte) error {
	d.n += int64(len(b))
	h := sha256.Sum256(b)
	return verify(what, want, size, int64(len(b)), h[:])
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
