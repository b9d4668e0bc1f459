package registry_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
)

var (
	amd64   = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64   = v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	s390x   = v1.Platform{OS: "linux", Architecture: "s390x"}
	ppc64le = v1.Platform{OS: "linux", Architecture: "ppc64le"}
)

func indexArtifact(t *testing.T, idx v1.ImageIndex) *registry.Artifact {
	t.Helper()
	h, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := idx.MediaType()
	return &registry.Artifact{Desc: v1.Descriptor{Digest: h, MediaType: mt}, Index: idx}
}

func TestSelectPlatformsKeepsSourceOrderAndAnnotations(t *testing.T) {
	src := imagegen.Index(1, []v1.Platform{s390x, amd64, ppc64le, arm64}, 1, 64)
	src = mutate.Annotations(src, map[string]string{"org.opencontainers.image.source": "https://example.com/x"}).(v1.ImageIndex)
	a := indexArtifact(t, src)
	// Listed in another order than the source's: the subset keeps the
	// source's; "linux/arm64" is satisfied by linux/arm64/v8.
	out, missing, err := registry.SelectPlatforms(a, []v1.Platform{{OS: "linux", Architecture: "arm64"}, amd64}, false)
	if err != nil || len(missing) != 0 {
		t.Fatalf("SelectPlatforms: %v, missing %v", err, missing)
	}
	im, err := out.Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	srcIM, _ := src.IndexManifest()
	want := []v1.Descriptor{srcIM.Manifests[1], srcIM.Manifests[3]}
	if len(im.Manifests) != 2 || im.Manifests[0].Digest != want[0].Digest || im.Manifests[1].Digest != want[1].Digest {
		t.Fatalf("subset manifests %+v, want amd64 then arm64 with the source's digests", im.Manifests)
	}
	if im.Annotations["org.opencontainers.image.source"] != "https://example.com/x" {
		t.Errorf("source annotations lost: %v", im.Annotations)
	}
	if got := im.Annotations[registry.AnnotationSourceDigest]; got != a.Desc.Digest.String() {
		t.Errorf("source digest annotation %q, want %s", got, a.Desc.Digest)
	}
	if got := im.Annotations[registry.AnnotationPlatforms]; got != "linux/amd64,linux/arm64" {
		t.Errorf("platforms annotation %q", got)
	}
	if out.Desc.Digest == a.Desc.Digest {
		t.Error("the subset has the source index's digest")
	}
	// The descriptor is the manifest's: digest and size of the raw bytes.
	raw, _ := out.Index.RawManifest()
	if h, _ := out.Index.Digest(); h != out.Desc.Digest || out.Desc.Size != int64(len(raw)) {
		t.Errorf("descriptor %+v does not describe the manifest", out.Desc)
	}
	// Children are the source's.
	img, err := out.Index.Image(want[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := img.Digest(); h != want[0].Digest {
		t.Errorf("child %s, want %s", h, want[0].Digest)
	}
	if !registry.SubsetCurrent(im, a.Desc.Digest.String(), []v1.Platform{amd64, {OS: "linux", Architecture: "arm64"}}) {
		t.Error("SubsetCurrent: the subset is not current for its own source and platforms")
	}
	if registry.SubsetCurrent(im, a.Desc.Digest.String(), []v1.Platform{amd64}) {
		t.Error("SubsetCurrent: a changed platform list counts as current")
	}
	if registry.SubsetCurrent(im, "sha256:"+strings.Repeat("0", 64), []v1.Platform{amd64, {OS: "linux", Architecture: "arm64"}}) {
		t.Error("SubsetCurrent: a changed source counts as current")
	}
}

func TestSelectPlatformsMissing(t *testing.T) {
	a := indexArtifact(t, imagegen.Index(2, []v1.Platform{amd64, arm64}, 1, 64))
	_, missing, err := registry.SelectPlatforms(a, []v1.Platform{amd64, s390x}, false)
	if !errors.Is(err, registry.ErrPlatformMissing) || !slices.Equal(missing, []string{"linux/s390x"}) {
		t.Fatalf("err %v, missing %v; want ErrPlatformMissing for linux/s390x", err, missing)
	}
	for _, s := range []string{"no image for linux/s390x", "it has linux/amd64, linux/arm64/v8", "platforms-missing: skip"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	out, missing, err := registry.SelectPlatforms(a, []v1.Platform{amd64, s390x}, true)
	if err != nil || !slices.Equal(missing, []string{"linux/s390x"}) {
		t.Fatalf("skip: %v, %v", err, missing)
	}
	if im, _ := out.Index.IndexManifest(); len(im.Manifests) != 1 {
		t.Errorf("skip: %d manifests, want 1", len(im.Manifests))
	}
	// None at all: an error even with skip.
	if _, _, err := registry.SelectPlatforms(a, []v1.Platform{s390x}, true); !errors.Is(err, registry.ErrPlatformMissing) {
		t.Errorf("no listed platform present: err %v", err)
	}
}

func TestSelectPlatformsSingleImage(t *testing.T) {
	img := imagegen.ImageFor(3, arm64, 1, 64)
	h, _ := img.Digest()
	a := &registry.Artifact{Desc: v1.Descriptor{Digest: h}, Image: img}
	out, _, err := registry.SelectPlatforms(a, []v1.Platform{amd64, {OS: "linux", Architecture: "arm64"}}, false)
	if err != nil || out != a {
		t.Fatalf("a listed single-platform image is copied as is: %v, %v", out, err)
	}
	_, _, err = registry.SelectPlatforms(a, []v1.Platform{amd64}, true)
	if !errors.Is(err, registry.ErrPlatformMissing) || !strings.Contains(err.Error(), "single-platform image for linux/arm64/v8") {
		t.Errorf("unlisted single-platform image: %v", err)
	}
}
