package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The one walk over an artifact tree. Everything that visits what an
// artifact references (draining a pull, writing a layout, measuring a
// plan, listing and verifying a bundle) walks through here, so there is
// one place that knows what a manifest references and one that guarantees
// a tree is walked in time linear in its distinct digests: an index may
// list the same child many times, and a hostile one may nest such
// diamonds forty deep.

// ManifestReader returns the bytes of the manifest d describes.
type ManifestReader func(ctx context.Context, d v1.Descriptor) ([]byte, error)

// Walker says what Walk does at each node; nil fields do nothing.
type Walker struct {
	// Visit is called once per distinct digest, before a manifest is
	// read: a manifest (index or image), a config or a distributable
	// layer. It returns whether to descend into a manifest (false: skip
	// what it references, e.g. the target has it). Its answer stands for
	// every other place the tree lists the digest.
	Visit func(ctx context.Context, d v1.Descriptor) (descend bool, err error)
	// Leave is called for a manifest after everything it references was
	// walked (children before parents: the order a writer needs), when
	// Visit descended into it.
	Leave func(ctx context.Context, d v1.Descriptor) error
}

// manifestRefs is what a manifest references: an index's children, an
// image's config and layers. A subject is what an attachment points at,
// not part of it, so it is not followed.
type manifestRefs struct {
	MediaType types.MediaType `json:"mediaType"`
	Config    *v1.Descriptor  `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
	Manifests []v1.Descriptor `json:"manifests"`
}

// IsManifest says whether d describes a manifest Walk descends into.
func IsManifest(d v1.Descriptor) bool { return d.MediaType.IsIndex() || d.MediaType.IsImage() }

// Walk walks the tree rooted at root depth first: the root, then an
// index's child manifests in order, an image's config and then its layers.
// Layers with non-distributable media types are skipped (clients fetch
// them from their URLs). Each distinct digest is visited once and each
// manifest read at most once, however often the tree lists it.
func Walk(ctx context.Context, root v1.Descriptor, read ManifestReader, w Walker) error {
	seen := map[v1.Hash]bool{}
	var walk func(d v1.Descriptor) error
	walk = func(d v1.Descriptor) error {
		if seen[d.Digest] {
			return nil
		}
		seen[d.Digest] = true
		if err := ctx.Err(); err != nil {
			return err
		}
		descend := true
		if w.Visit != nil {
			var err error
			if descend, err = w.Visit(ctx, d); err != nil {
				return err
			}
		}
		// The root is a manifest whatever its descriptor says (a
		// descriptor from a HEAD may carry no media type).
		if !descend || !IsManifest(d) && d.Digest != root.Digest {
			return nil
		}
		raw, err := read(ctx, d)
		if err != nil {
			return err
		}
		var m manifestRefs
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		children := m.Manifests
		if m.Config != nil {
			children = append(children, *m.Config)
		}
		for _, l := range m.Layers {
			if l.MediaType.IsDistributable() {
				children = append(children, l)
			}
		}
		for _, c := range children {
			if err := walk(c); err != nil {
				return err
			}
		}
		if w.Leave != nil {
			return w.Leave(ctx, d)
		}
		return nil
	}
	return walk(root)
}

// ArtifactTree serves Walk from an artifact's go-containerregistry
// objects: Read returns a manifest's bytes, and Image, Index and Blob the
// objects behind the digests walked so far. Reading a child manifest from
// a registry is a manifest GET; Walk reads each at most once.
type ArtifactTree struct {
	mu      sync.Mutex
	indexes map[v1.Hash]v1.ImageIndex
	images  map[v1.Hash]v1.Image
	owner   map[v1.Hash]v1.Image // a config or layer -> an image listing it
	pending map[v1.Hash]v1.ImageIndex
}

// NewArtifactTree returns the tree rooted at a.
func NewArtifactTree(a *Artifact) *ArtifactTree {
	t := &ArtifactTree{indexes: map[v1.Hash]v1.ImageIndex{}, images: map[v1.Hash]v1.Image{},
		owner: map[v1.Hash]v1.Image{}, pending: map[v1.Hash]v1.ImageIndex{}}
	if a.Index != nil {
		t.indexes[a.Desc.Digest] = a.Index
	}
	if a.Image != nil {
		t.images[a.Desc.Digest] = a.Image
	}
	return t
}

// Read returns the bytes of manifest d: the root, or a child of an index
// already read.
func (t *ArtifactTree) Read(_ context.Context, d v1.Descriptor) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if parent, ok := t.pending[d.Digest]; ok {
		switch {
		case d.MediaType.IsIndex():
			idx, err := parent.ImageIndex(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("index child %s: %w", d.Digest, err)
			}
			t.indexes[d.Digest] = idx
		case d.MediaType.IsImage():
			img, err := parent.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("index child %s: %w", d.Digest, err)
			}
			t.images[d.Digest] = img
		}
		delete(t.pending, d.Digest)
	}
	if idx, ok := t.indexes[d.Digest]; ok {
		raw, err := idx.RawManifest()
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", d.Digest, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", d.Digest, err)
		}
		for _, c := range im.Manifests {
			if _, ok := t.indexes[c.Digest]; !ok {
				if _, ok := t.images[c.Digest]; !ok {
					t.pending[c.Digest] = idx
				}
			}
		}
		return raw, nil
	}
	if img, ok := t.images[d.Digest]; ok {
		raw, err := img.RawManifest()
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		m, err := img.Manifest()
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		t.owner[m.Config.Digest] = img
		for _, l := range m.Layers {
			t.owner[l.Digest] = img
		}
		return raw, nil
	}
	return nil, fmt.Errorf("manifest %s is not in the artifact: %w", d.Digest, ErrNotFound)
}

// Image returns the image behind a manifest digest Read has read.
func (t *ArtifactTree) Image(h v1.Hash) v1.Image {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.images[h]
}

// Index returns the index behind a manifest digest Read has read.
func (t *ArtifactTree) Index(h v1.Hash) v1.ImageIndex {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.indexes[h]
}

// Blob opens the config or layer d of an image Read has read (for a layer
// its compressed bytes, as stored).
func (t *ArtifactTree) Blob(d v1.Descriptor) (io.ReadCloser, error) {
	t.mu.Lock()
	img, ok := t.owner[d.Digest]
	t.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("blob %s is not in the artifact: %w", d.Digest, ErrNotFound)
	}
	if m, err := img.Manifest(); err == nil && m.Config.Digest == d.Digest {
		raw, err := img.RawConfigFile()
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", d.Digest, err)
		}
		return io.NopCloser(bytes.NewReader(raw)), nil
	}
	l, err := img.LayerByDigest(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return rc, nil
}
