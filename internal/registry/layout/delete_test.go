package layout_test

import (
	"context"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/layout"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
)

// In an OCI layout, Delete removes every entry of the repository with the
// digest, as a registry's DELETE by digest does, and nothing else; HasBlob
// reports the blob files.
func TestLayoutDeleteAndHasBlob(t *testing.T) {
	ctx := context.Background()
	s, err := layout.Open(registry.Endpoint{Registry: "oci:" + t.TempDir()}, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	push := func(repo, tag string, img v1.Image) v1.Hash {
		t.Helper()
		d, err := partial.Descriptor(img)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Push(ctx, repo, tag, &registry.Artifact{Desc: *d, Image: img}); err != nil {
			t.Fatal(err)
		}
		return d.Digest
	}
	img, other := imagegen.Image(1, 1, 256), imagegen.Image(2, 1, 256)
	h := push("a", "x", img)
	push("a", "y", img)
	push("a", "z", other)
	push("b", "x", img)

	if err := s.(registry.Deleter).Delete(ctx, "a", h.String()); err != nil {
		t.Fatal(err)
	}
	tags := func(repo string) []string {
		got, _ := s.Tags(ctx, repo)
		slices.Sort(got)
		return got
	}
	if got := tags("a"); !slices.Equal(got, []string{"z"}) {
		t.Errorf("a: %v, want [z]", got)
	}
	if got := tags("b"); !slices.Equal(got, []string{"x"}) {
		t.Errorf("b: %v, want [x] (another repository)", got)
	}
	// Deleting what is gone is not an error.
	if err := s.(registry.Deleter).Delete(ctx, "a", h.String()); err != nil {
		t.Errorf("second delete: %v", err)
	}

	cfg, _ := img.ConfigName()
	bc := s.(registry.BlobChecker)
	if ok, err := bc.HasBlob(ctx, "a", cfg.String()); !ok || err != nil {
		t.Errorf("HasBlob(config) = %v, %v; want true (blobs stay)", ok, err)
	}
	missing := "sha256:" + "00000000000000000000000000000000000000000000000000000000000000ff"
	if ok, err := bc.HasBlob(ctx, "a", missing); ok || err != nil {
		t.Errorf("HasBlob(missing) = %v, %v; want false", ok, err)
	}
}
