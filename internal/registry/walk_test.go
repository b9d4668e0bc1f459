package registry_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
)

// blob stores b and returns its descriptor.
func blob(store map[v1.Hash][]byte, mt types.MediaType, b []byte) v1.Descriptor {
	sum := sha256.Sum256(b)
	h := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sum)}
	store[h] = b
	return v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(b))}
}

// diamond builds levels indexes, each listing the one below twice, over an
// image with a config and a layer. Unmemoised, a walk of it visits 2^levels
// images.
func diamond(t *testing.T, levels int) (root v1.Descriptor, store map[v1.Hash][]byte) {
	t.Helper()
	store = map[v1.Hash][]byte{}
	cfg := blob(store, types.OCIConfigJSON, []byte(`{"architecture":"amd64","os":"linux"}`))
	layer := blob(store, types.OCILayer, []byte("layer"))
	img, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "config": cfg, "layers": []v1.Descriptor{layer}})
	d := blob(store, types.OCIManifestSchema1, img)
	for range levels {
		idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": types.OCIImageIndex, "manifests": []v1.Descriptor{d, d}})
		d = blob(store, types.OCIImageIndex, idx)
	}
	return d, store
}

// A 40-level diamond is walked in time linear in its distinct digests: each
// is visited once and each manifest read once, and every manifest is left
// after what it references.
func TestWalkVisitsEachDigestOnce(t *testing.T) {
	const levels = 40
	root, store := diamond(t, levels)
	visits, reads := map[v1.Hash]int{}, map[v1.Hash]int{}
	left := map[v1.Hash]bool{}
	read := func(_ context.Context, d v1.Descriptor) ([]byte, error) {
		reads[d.Digest]++
		return store[d.Digest], nil
	}
	err := registry.Walk(context.Background(), root, read, registry.Walker{
		Visit: func(_ context.Context, d v1.Descriptor) (bool, error) {
			visits[d.Digest]++
			return true, nil
		},
		Leave: func(_ context.Context, d v1.Descriptor) error {
			var m struct{ Manifests []v1.Descriptor }
			_ = json.Unmarshal(store[d.Digest], &m)
			for _, c := range m.Manifests {
				if !left[c.Digest] {
					t.Errorf("%s left before its child %s", d.Digest, c.Digest)
				}
			}
			left[d.Digest] = true
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(visits) != levels+3 {
		t.Errorf("%d distinct digests visited, want %d (the indexes, the image, its config and layer)", len(visits), levels+3)
	}
	for h, n := range visits {
		if n != 1 {
			t.Errorf("%s visited %d times", h, n)
		}
	}
	if len(reads) != levels+1 {
		t.Errorf("%d manifests read, want %d", len(reads), levels+1)
	}
	for h, n := range reads {
		if n != 1 {
			t.Errorf("%s read %d times", h, n)
		}
	}
	if !left[root.Digest] || len(left) != levels+1 {
		t.Errorf("%d manifests left, root left %v", len(left), left[root.Digest])
	}
}

// Visit's false stops the descent: nothing under a manifest the target
// has is read.
func TestWalkVisitFalseSkipsWhatAManifestReferences(t *testing.T) {
	root, store := diamond(t, 3)
	reads := 0
	read := func(_ context.Context, d v1.Descriptor) ([]byte, error) {
		reads++
		return store[d.Digest], nil
	}
	err := registry.Walk(context.Background(), root, read, registry.Walker{
		Visit: func(_ context.Context, d v1.Descriptor) (bool, error) { return d.Digest == root.Digest, nil },
	})
	if err != nil || reads != 1 {
		t.Errorf("reads %d, err %v; want only the root read", reads, err)
	}
}

// Drain reads a diamond of real go-containerregistry objects once per
// distinct digest: its byte count is the sum of the distinct manifests and
// blobs.
func TestDrainDiamondReadsEachDigestOnce(t *testing.T) {
	img := imagegen.Image(1, 2, 512)
	var idx v1.ImageIndex = mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img}, mutate.IndexAddendum{Add: img})
	for range 20 {
		idx = mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: idx}, mutate.IndexAddendum{Add: idx})
	}
	var want int64
	for x := idx; ; {
		raw, _ := x.RawManifest()
		want += int64(len(raw))
		im, _ := x.IndexManifest()
		if im.Manifests[0].MediaType.IsImage() {
			break
		}
		x, _ = x.ImageIndex(im.Manifests[0].Digest)
	}
	raw, _ := img.RawManifest()
	cfg, _ := img.RawConfigFile()
	want += int64(len(raw) + len(cfg))
	layers, _ := img.Layers()
	for _, l := range layers {
		n, _ := l.Size()
		want += n
	}
	d, _ := idx.Digest()
	mt, _ := idx.MediaType()
	n, err := registry.Drain(context.Background(), &registry.Artifact{Desc: v1.Descriptor{Digest: d, MediaType: mt}, Index: idx})
	if err != nil || n != want {
		t.Errorf("drained %d bytes (%v), want %d: each distinct digest once", n, err, want)
	}
}
