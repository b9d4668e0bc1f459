package bundle

import (
	"context"
	"errors"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regmirror/regmirror/internal/registry"
)

// Problem is one thing wrong with a bundle.
type Problem struct {
	// Image is the image affected ("" for the bundle as a whole).
	Image string
	Err   error
}

func (p Problem) String() string {
	if p.Image == "" {
		return p.Err.Error()
	}
	return p.Image + ": " + p.Err.Error()
}

// VerifyResult is what Verify found.
type VerifyResult struct {
	Blobs    int   // blobs checked
	Bytes    int64 // bytes hashed
	Images   int   // images whose manifests the bundle holds
	Problems []Problem
}

// Verify checks a bundle without a registry: every blob the manifest lists
// is present with the right size and digest, every image the index names
// is listed and complete (each blob it references is here or declared
// inherited), the images held by earlier bundles are declared so, and the
// bundle manifest still hashes to its id.
// counted, if set, is told of every byte hashed.
func Verify(ctx context.Context, b *Bundle, counted func(int64)) (*VerifyResult, error) {
	res := &VerifyResult{}
	if id, err := b.Manifest.contentID(); err != nil || id != b.Manifest.ID {
		res.Problems = append(res.Problems, Problem{Err: fmt.Errorf("%s: %s was changed after export: its content hashes to %s, not its id %s", b.Path, ManifestFile, id, b.Manifest.ID)})
	}
	bad := map[string]error{}
	for _, bl := range b.Manifest.Blobs {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		h, err := v1.NewHash(bl.Digest)
		if err != nil {
			res.Problems = append(res.Problems, Problem{Err: fmt.Errorf("blob %q: %w", bl.Digest, err)})
			continue
		}
		res.Blobs++
		r, err := b.Blob(h, bl.Size, counted)
		if err == nil {
			var n int64
			n, err = io.Copy(io.Discard, r)
			r.Close()
			res.Bytes += n
		}
		if err != nil {
			bad[bl.Digest] = err
			res.Problems = append(res.Problems, Problem{Err: err})
		}
	}

	listed := map[string]Image{}
	for _, im := range b.Manifest.Images {
		if err := checkImageName(im.Name); err != nil {
			res.Problems = append(res.Problems, Problem{Image: im.Name, Err: err})
		}
		listed[im.Name] = im
		if im.Bundle != b.Manifest.ID {
			if _, ok := b.Manifest.chainRef(im.Bundle); !ok {
				res.Problems = append(res.Problems, Problem{Image: im.Name, Err: fmt.Errorf("held by bundle %s, which is not in this bundle's chain", im.Bundle)})
			}
		}
	}
	read := func(_ context.Context, d v1.Descriptor) ([]byte, error) {
		if err, ok := bad[d.Digest.String()]; ok {
			return nil, err
		}
		return b.readBlob(d.Digest)
	}
	for _, d := range b.Index.Manifests {
		name := d.Annotations["io.containerd.image.name"]
		if name == "" {
			name = d.Digest.String()
		}
		res.Images++
		if im, ok := listed[name]; !ok || im.Digest != d.Digest.String() {
			res.Problems = append(res.Problems, Problem{Image: name, Err: fmt.Errorf("index.json names %s, which %s does not list", d.Digest, ManifestFile)})
		}
		var problem error
		err := registry.Walk(ctx, d, read, registry.Walker{Visit: func(_ context.Context, c v1.Descriptor) (bool, error) {
			k := c.Digest.String()
			if err, ok := bad[k]; ok {
				problem = errors.Join(problem, err)
				return false, nil
			}
			if bl, ok := b.held[k]; ok {
				if bl.Size != c.Size {
					problem = errors.Join(problem, fmt.Errorf("%s: size %d, the manifest says %d: %w", k, bl.Size, c.Size, ErrCorrupt))
				}
				return true, nil
			}
			if _, ok := b.inherits[k]; ok {
				return false, nil
			}
			problem = errors.Join(problem, fmt.Errorf("%s is neither in the bundle nor declared inherited: %w", k, ErrMissing))
			return false, nil
		}})
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if err := errors.Join(problem, err); err != nil {
			res.Problems = append(res.Problems, Problem{Image: name, Err: err})
		}
	}
	return res, nil
}

func (m *Manifest) chainRef(id string) (Ref, bool) {
	for _, r := range m.Chain {
		if r.ID == id {
			return r, true
		}
	}
	return Ref{}, false
}
