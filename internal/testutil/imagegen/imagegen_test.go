package imagegen_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

func digest(t *testing.T, x interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Pinned digests: they must not change between runs or machines. The layer
// digest depends only on math/rand/v2's PCG and SHA-256; the image digest
// also on ggcr's JSON encoding of manifest and config.
func TestGolden(t *testing.T) {
	if got, want := digest(t, imagegen.Layer(1, 1000)).String(), "sha256:1b1a58883c1854a31853a69ea6c01b8c4711b3e7d48c1f528b8833bb1caa5e8c"; got != want {
		t.Errorf("Layer(1, 1000) = %s, want %s", got, want)
	}
	if got, want := digest(t, imagegen.Image(1, 2, 1024)).String(), "sha256:0f0509a3b22bf993ef0babd91cc9d143ecd9895672a2e2cef1d7027432905f3b"; got != want {
		t.Errorf("Image(1, 2, 1024) = %s, want %s", got, want)
	}
}

func TestLayer(t *testing.T) {
	for _, size := range []int64{0, 1, 7, 8, 1000, 1 << 20} {
		l := imagegen.Layer(42, size)
		n, err := l.Size()
		if err != nil || n != size {
			t.Fatalf("size %d: Size() = %d, %v", size, n, err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || int64(len(b)) != size {
			t.Fatalf("size %d: read %d bytes, %v", size, len(b), err)
		}
		mt, _ := l.MediaType()
		if mt != imagegen.LayerMediaType {
			t.Errorf("media type %s", mt)
		}
	}
	if digest(t, imagegen.Layer(1, 64)) != digest(t, imagegen.Layer(1, 64)) {
		t.Error("same seed, different layer digests")
	}
	if digest(t, imagegen.Layer(1, 64)) == digest(t, imagegen.Layer(2, 64)) {
		t.Error("different seeds, same layer digest")
	}
	// A longer layer extends the shorter one's stream: the seed picks the
	// stream, the size only where it stops. Still different digests.
	if digest(t, imagegen.Layer(1, 64)) == digest(t, imagegen.Layer(1, 65)) {
		t.Error("different sizes, same layer digest")
	}
}

func TestImageDeterministic(t *testing.T) {
	base := imagegen.Layer(100, 512)
	a := imagegen.Image(5, 3, 256, base)
	b := imagegen.Image(5, 3, 256, imagegen.Layer(100, 512))
	if digest(t, a) != digest(t, b) {
		t.Fatal("same seed, different image digests")
	}
	if digest(t, a) == digest(t, imagegen.Image(6, 3, 256, base)) {
		t.Error("different seeds, same image digest")
	}
	if digest(t, imagegen.Image(5, 0, 0)) == digest(t, imagegen.Image(6, 0, 0)) {
		t.Error("different seeds, same digest for layerless images")
	}
	if digest(t, a) != digest(t, imagegen.ImageFor(5, imagegen.DefaultPlatform, 3, 256, base)) {
		t.Error("Image != ImageFor(DefaultPlatform)")
	}

	ls, err := a.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 4 {
		t.Fatalf("%d layers, want 1 base + 3", len(ls))
	}
	if digest(t, ls[0]) != digest(t, base) {
		t.Error("base layer is not first")
	}
	seen := map[v1.Hash]bool{}
	for _, l := range ls {
		seen[digest(t, l)] = true
	}
	if len(seen) != 4 {
		t.Error("generated layers are not distinct")
	}

	m, err := a.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("media types %s / %s", m.MediaType, m.Config.MediaType)
	}
	cf, err := a.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || len(cf.RootFS.DiffIDs) != 4 {
		t.Errorf("config %+v", cf)
	}
}

func TestImageForPlatform(t *testing.T) {
	p := v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	img := imagegen.ImageFor(1, p, 1, 16)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Platform(); got == nil || !got.Equals(p) {
		t.Errorf("platform %v, want %v", got, p)
	}
	if digest(t, img) == digest(t, imagegen.ImageFor(1, v1.Platform{OS: "linux", Architecture: "arm64"}, 1, 16)) {
		t.Error("different platforms, same digest")
	}
}

func TestIndex(t *testing.T) {
	plats := []v1.Platform{
		{OS: "linux", Architecture: "amd64"},
		{OS: "linux", Architecture: "arm64", Variant: "v8"},
		{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.1234"},
	}
	base := imagegen.Layer(7, 128)
	idx := imagegen.Index(9, plats, 2, 64, base)
	if digest(t, idx) != digest(t, imagegen.Index(9, plats, 2, 64, base)) {
		t.Fatal("same seed, different index digests")
	}
	if digest(t, idx) == digest(t, imagegen.Index(10, plats, 2, 64, base)) {
		t.Fatal("different seeds, same index digest")
	}

	mt, err := idx.MediaType()
	if err != nil || mt != types.OCIImageIndex {
		t.Fatalf("media type %s, %v", mt, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != len(plats) {
		t.Fatalf("%d manifests, want %d", len(im.Manifests), len(plats))
	}
	for i, d := range im.Manifests {
		if d.Platform == nil || !d.Platform.Equals(plats[i]) {
			t.Errorf("manifest %d platform %v, want %v", i, d.Platform, plats[i])
		}
		if d.MediaType != types.OCIManifestSchema1 {
			t.Errorf("manifest %d media type %s", i, d.MediaType)
		}
		if want := digest(t, imagegen.ImageFor(9, plats[i], 2, 64, base)); d.Digest != want {
			t.Errorf("manifest %d digest %s, want ImageFor's %s", i, d.Digest, want)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		ls, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) != 3 || digest(t, ls[0]) != digest(t, base) {
			t.Errorf("manifest %d: %d layers / base not shared", i, len(ls))
		}
	}
}

func TestPushRoundTrip(t *testing.T) {
	reg := regtest.New(t)
	idx := imagegen.Index(21, []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "s390x"}}, 1, 4096)
	img := imagegen.Image(22, 2, 100<<10) // 100 KiB layers

	imagegen.Push(t, reg.Ref("gen/index:v1"), idx)
	imagegen.Push(t, reg.Ref("gen/image:v1"), img)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for ref, want := range map[string]v1.Hash{
		reg.Ref("gen/index:v1"): imagegen.Digest(t, idx),
		reg.Ref("gen/image:v1"): imagegen.Digest(t, img),
	} {
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Head(r, remote.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest != want {
			t.Errorf("%s: digest %s, want %s", ref, desc.Digest, want)
		}
	}
}
