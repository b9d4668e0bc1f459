package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/layout"
)

// source is a bundle seen as a read-only registry.Store, so that import is
// the engine's ordinary copy with the bundle as its source: HEAD the
// target first, skip what it holds, push blobs, then child manifests, then
// the tag. Repositories are the images' original names without the tag
// ("docker.io/library/busybox").
type source struct {
	b *Bundle
	// mountFrom maps a repository of the bundle to the target repository
	// an earlier import put it in, for cross-repository mounts of
	// inherited blobs ("" for none).
	mountFrom func(repo string) string
	counted   func(int64)
	images    map[string]Image // name -> image

	mu       sync.Mutex
	counted1 map[v1.Hash]bool // digests already counted for progress
}

func newSource(b *Bundle, mountFrom func(string) string, counted func(int64)) *source {
	s := &source{b: b, mountFrom: mountFrom, counted: counted, images: map[string]Image{}, counted1: map[v1.Hash]bool{}}
	for _, im := range b.Manifest.Images {
		s.images[im.Name] = im
	}
	return s
}

func (s *source) String() string { return "bundle:" + s.b.Path }

func (s *source) Ref(repo, ref string) string {
	if _, err := v1.NewHash(ref); err == nil {
		return s.b.Path + ":" + repo + "@" + ref
	}
	if ref == "" {
		return s.b.Path + ":" + repo
	}
	return s.b.Path + ":" + repo + ":" + ref
}

// manifestRefs is what the bundle reads of a manifest: its media type and
// the subject an attachment points at (registry.Walk follows the rest).
type manifestRefs struct {
	MediaType types.MediaType `json:"mediaType"`
	Subject   *v1.Descriptor  `json:"subject"`
}

// Repos lists the repositories of a bundle's images, in manifest order.
func Repos(m *Manifest) []string {
	var out []string
	seen := map[string]bool{}
	for _, im := range m.Images {
		r, _ := SplitName(im.Name)
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}

// SplitName splits "host/path:tag" or "host/path@sha256:..." into the
// repository and the reference.
func SplitName(n string) (repo, ref string) { return layout.SplitImageName(n) }

func joinName(repo, ref string) string {
	if _, err := v1.NewHash(ref); err == nil {
		return repo + "@" + ref
	}
	return repo + ":" + ref
}

func (s *source) Tags(_ context.Context, repo string) ([]string, error) {
	var tags []string
	for _, im := range s.b.Manifest.Images {
		r, ref := SplitName(im.Name)
		if r == repo && !strings.HasPrefix(im.Name[len(r):], "@") {
			tags = append(tags, ref)
		}
	}
	if len(tags) == 0 {
		return nil, fmt.Errorf("%s: repository %s: %w", s.b.Path, repo, registry.ErrNotFound)
	}
	return tags, nil
}

func (s *source) Head(_ context.Context, repo, ref string) (v1.Descriptor, error) {
	if im, ok := s.images[joinName(repo, ref)]; ok {
		h, err := v1.NewHash(im.Digest)
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("%s: image %s: %w", s.b.Path, im.Name, err)
		}
		return v1.Descriptor{MediaType: types.MediaType(im.MediaType), Digest: h, Size: im.Size}, nil
	}
	if h, err := v1.NewHash(ref); err == nil {
		if bl, ok := s.b.held[h.String()]; ok {
			raw, err := s.b.readBlob(h)
			if err != nil {
				return v1.Descriptor{}, err
			}
			var m manifestRefs
			if err := json.Unmarshal(raw, &m); err != nil {
				return v1.Descriptor{}, fmt.Errorf("%s: %s is not a manifest: %w", s.b.Path, h, err)
			}
			return v1.Descriptor{MediaType: m.MediaType, Digest: h, Size: bl.Size}, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("%s: %w", s.Ref(repo, ref), registry.ErrNotFound)
}

func (s *source) Fetch(ctx context.Context, repo, ref string) (*registry.Artifact, error) {
	d, err := s.Head(ctx, repo, ref)
	if err != nil {
		return nil, err
	}
	if im, ok := s.images[joinName(repo, ref)]; ok && im.Bundle != s.b.Manifest.ID {
		return nil, fmt.Errorf("%s is held by %s and is not on the target: import that bundle first: %w",
			im.Name, s.b.Manifest.refByID(im.Bundle).Describe(), ErrMissing)
	}
	raw, err := s.read(d.Digest)
	if err != nil {
		return nil, err
	}
	a := &registry.Artifact{Desc: d}
	mount := ""
	if s.mountFrom != nil {
		mount = s.mountFrom(repo)
	}
	switch {
	case d.MediaType.IsIndex():
		a.Index, err = s.index(raw, d, mount)
	case d.MediaType.IsImage():
		a.Image, err = s.image(raw, d, mount)
	default:
		err = fmt.Errorf("unsupported manifest media type %q", d.MediaType)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Ref(repo, ref), err)
	}
	return a, nil
}

// Referrers lists the OCI referrers of digest in repo that the bundle
// completes (stored by digest, with that subject), so import copies them
// with their subject as sync does.
func (s *source) Referrers(_ context.Context, repo, digest string) ([]v1.Descriptor, error) {
	var out []v1.Descriptor
	for _, im := range s.b.Manifest.Images {
		if r, _ := SplitName(im.Name); r != repo || im.Subject != digest {
			continue
		}
		h, err := v1.NewHash(im.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: image %s: %w", s.b.Path, im.Name, err)
		}
		out = append(out, v1.Descriptor{MediaType: types.MediaType(im.MediaType), Digest: h, Size: im.Size})
	}
	return out, nil
}

var _ registry.ReferrerLister = (*source)(nil)

// read reads a whole (small) blob, checked and counted for progress.
func (s *source) read(h v1.Hash) ([]byte, error) { return s.b.readDoc(h, s.countOnce(h)) }

// countOnce returns the progress counter for the first read of h and nil
// for later ones (tags sharing a manifest, retries), so the bytes shown
// add up to at most the bundle's size.
func (s *source) countOnce(h v1.Hash) func(int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counted == nil || s.counted1[h] {
		return nil
	}
	s.counted1[h] = true
	return s.counted
}

func (s *source) Push(context.Context, string, string, *registry.Artifact) (int64, error) {
	return 0, errors.New("a bundle is read-only here: export writes bundles")
}

// image builds a go-containerregistry image over the bundle's blobs.
func (s *source) image(raw []byte, d v1.Descriptor, mount string) (v1.Image, error) {
	img, err := partial.CompressedToImage(&imageCore{s: s, raw: raw, mt: d.MediaType})
	if err != nil {
		return nil, err
	}
	return &mountImage{Image: img, s: s, mount: mount}, nil
}

type imageCore struct {
	s   *source
	raw []byte
	mt  types.MediaType
}

func (c *imageCore) RawManifest() ([]byte, error)        { return c.raw, nil }
func (c *imageCore) MediaType() (types.MediaType, error) { return c.mt, nil }
func (c *imageCore) RawConfigFile() ([]byte, error) {
	m, err := partial.Manifest(c)
	if err != nil {
		return nil, err
	}
	return c.s.read(m.Config.Digest)
}

func (c *imageCore) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	m, err := partial.Manifest(c)
	if err != nil {
		return nil, err
	}
	if m.Config.Digest == h {
		return &blobLayer{s: c.s, d: m.Config}, nil
	}
	for _, l := range m.Layers {
		if l.Digest == h {
			return &blobLayer{s: c.s, d: l}, nil
		}
	}
	return nil, fmt.Errorf("blob %s is not in manifest", h)
}

// blobLayer is a layer read from the bundle, checked as it is read.
type blobLayer struct {
	s *source
	d v1.Descriptor
}

func (l *blobLayer) Digest() (v1.Hash, error)            { return l.d.Digest, nil }
func (l *blobLayer) Size() (int64, error)                { return l.d.Size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error) { return l.d.MediaType, nil }
func (l *blobLayer) Compressed() (io.ReadCloser, error) {
	return l.s.b.Blob(l.d.Digest, l.d.Size, l.s.countOnce(l.d.Digest))
}

// mountImage offers each inherited layer a repository of the target to
// mount it from.
type mountImage struct {
	v1.Image
	s     *source
	mount string
}

func (m *mountImage) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = m.wrap(l)
	}
	return out, nil
}

func (m *mountImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := m.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return m.wrap(l), nil
}

func (m *mountImage) wrap(l v1.Layer) v1.Layer {
	h, err := l.Digest()
	if err != nil {
		return l
	}
	in, ok := m.s.b.inherits[h.String()]
	if !ok || m.s.mountFrom == nil {
		return l
	}
	from := m.mount
	if in.Repo != "" {
		from = m.s.mountFrom(in.Repo)
	}
	return &mountLayer{Layer: l, from: from}
}

type mountLayer struct {
	v1.Layer
	from string
}

func (l *mountLayer) MountFrom() string { return l.from }

var _ registry.MountSource = (*mountLayer)(nil)

// index is an image index over the bundle's blobs.
func (s *source) index(raw []byte, d v1.Descriptor, mount string) (v1.ImageIndex, error) {
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return &index{s: s, raw: raw, d: d, im: im, mount: mount}, nil
}

type index struct {
	s     *source
	raw   []byte
	d     v1.Descriptor
	im    *v1.IndexManifest
	mount string
}

func (x *index) MediaType() (types.MediaType, error)       { return x.d.MediaType, nil }
func (x *index) Digest() (v1.Hash, error)                  { return x.d.Digest, nil }
func (x *index) Size() (int64, error)                      { return int64(len(x.raw)), nil }
func (x *index) IndexManifest() (*v1.IndexManifest, error) { return x.im, nil }
func (x *index) RawManifest() ([]byte, error)              { return x.raw, nil }

func (x *index) child(h v1.Hash) (v1.Descriptor, []byte, error) {
	for _, c := range x.im.Manifests {
		if c.Digest == h {
			raw, err := x.s.read(h)
			return c, raw, err
		}
	}
	return v1.Descriptor{}, nil, fmt.Errorf("%s is not in index %s", h, x.d.Digest)
}

func (x *index) Image(h v1.Hash) (v1.Image, error) {
	c, raw, err := x.child(h)
	if err != nil {
		return nil, err
	}
	return x.s.image(raw, c, x.mount)
}

func (x *index) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	c, raw, err := x.child(h)
	if err != nil {
		return nil, err
	}
	return x.s.index(raw, c, x.mount)
}

// Catalog lists the bundle's repositories.
func (s *source) Catalog(_ context.Context, max int) ([]string, bool, error) {
	repos := Repos(s.b.Manifest)
	if max > 0 && len(repos) > max {
		return repos[:max], true, nil
	}
	return repos, false, nil
}
