package bundle

import (
	"context"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// Export of a mapping with platforms: the bundle carries the subset index
// (with the source digest recorded) and only its platforms' blobs, and
// import pushes that index as it is.
func TestExportCarriesThePlatformSubset(t *testing.T) {
	src := regtest.New(t)
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := v1.Platform{OS: "linux", Architecture: "arm64"}
	s390x := v1.Platform{OS: "linux", Architecture: "s390x"}
	three := imagegen.Index(70, []v1.Platform{amd64, s390x, arm64}, 1, 1024)
	imagegen.Push(t, src.Ref("app:1"), three, remote.WithTransport(src.Transport()))
	out := t.TempDir()
	res, err := Export(context.Background(), ExportOptions{
		Engine: engine.New(engine.Options{}),
		Tasks: []engine.Task{{Name: "t", Source: registry.Endpoint{Registry: src.Host, PlainHTTP: true},
			Mappings: []engine.Mapping{{From: "app", To: "ignored", Platforms: []v1.Platform{amd64, arm64}}}}},
		Output: out,
	})
	if err != nil || res.Report.Failed() > 0 {
		t.Fatalf("export: %v %+v", err, res.Report)
	}
	if len(res.Manifest.Images) != 1 {
		t.Fatalf("images %+v", res.Manifest.Images)
	}
	img := res.Manifest.Images[0]
	if img.Digest == imagegen.Digest(t, three).String() {
		t.Fatal("the bundle holds the source's whole index")
	}
	// Index, 2 image manifests, 2 configs, 2 layers: nothing of s390x.
	if n := len(res.Manifest.Blobs); n != 7 {
		t.Errorf("%d blobs in the bundle, want 7 (the subset index and two platforms' images)", n)
	}
	b, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if vr, err := Verify(context.Background(), b, nil); err != nil || len(vr.Problems) > 0 {
		t.Fatalf("verify: %v %+v", err, vr)
	}

	dst := regtest.New(t)
	rep, err := Import(context.Background(), b, ImportOptions{Engine: engine.New(engine.Options{}), Routes: func(repo string) ([]Route, error) {
		return []Route{{Task: "import", Target: registry.Endpoint{Registry: dst.Host, PlainHTTP: true}, To: "mirror/app"}}, nil
	}})
	if err != nil || rep.Failed() > 0 {
		t.Fatalf("import: %v %+v", err, rep)
	}
	ref, _ := name.ParseReference(dst.Ref("mirror/app:1"), name.Insecure)
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if h, _ := idx.Digest(); h.String() != img.Digest || len(im.Manifests) != 2 || im.Annotations[registry.AnnotationSourceDigest] != imagegen.Digest(t, three).String() {
		t.Errorf("imported index %s %+v, want the bundle's %s with the source digest annotation", h, im, img.Digest)
	}
}
