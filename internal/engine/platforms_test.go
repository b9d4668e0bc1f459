package engine_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

var s390x = v1.Platform{OS: "linux", Architecture: "s390x"}

// targetIndex reads the index manifest a registry holds for ref.
func targetIndex(t *testing.T, r *regtest.Registry, ref string) (*v1.IndexManifest, v1.Hash) {
	t.Helper()
	nr, err := name.ParseReference(r.Ref(ref), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(nr)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := idx.Digest()
	return im, h
}

// sourceGETs counts what costs a Docker Hub pull or bandwidth at the
// source: manifest and blob GETs.
func sourceGETs(r *regtest.Registry) int {
	return r.Count(regtest.KindManifestGet) + r.Count(regtest.KindBlobGet)
}

// A three-platform source mirrored as two: the target's index holds the
// two platforms' manifests in the source's order, with their digests and
// the source's annotations, and records the source index; the warm run
// sends no GET to the source. A changed platform list or a changed source
// index is copied again; nothing else is.
func TestPlatformsSubset(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	three := imagegen.Index(50, []v1.Platform{s390x, amd64, arm64}, 2, 512)
	imagegen.Push(t, src.Ref("lib/app:1"), three)
	srcIM, err := three.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	srcDigest := imagegen.Digest(t, three)
	task := engine.Task{Name: "subset", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{
		{From: "lib/app", To: "m/app", Platforms: []v1.Platform{arm64, amd64}},
	}}
	src.Reset()
	rep := run(t, task)
	if rep.Failed() > 0 || rep.Results[0].Status != engine.Copied {
		t.Fatalf("first run: %+v", rep.Results)
	}
	im, dstDigest := targetIndex(t, dst, "m/app:1")
	if len(im.Manifests) != 2 || im.Manifests[0].Digest != srcIM.Manifests[1].Digest || im.Manifests[1].Digest != srcIM.Manifests[2].Digest {
		t.Fatalf("target index %+v, want the amd64 and arm64 manifests of %+v in that order", im.Manifests, srcIM.Manifests)
	}
	if got := im.Annotations[registry.AnnotationSourceDigest]; got != srcDigest.String() {
		t.Errorf("%s = %q, want %s", registry.AnnotationSourceDigest, got, srcDigest)
	}
	if rep.Results[0].Digest != dstDigest.String() {
		t.Errorf("reported digest %s, the target holds %s", rep.Results[0].Digest, dstDigest)
	}
	// The s390x image's blobs were not copied: its manifest is absent.
	if _, err := remote.Head(parse(t, dst.Ref("m/app@"+srcIM.Manifests[0].Digest.String()))); err == nil {
		t.Error("the s390x manifest reached the target")
	}
	// Only the source index and two platforms' manifests were fetched.
	if n := src.Count(regtest.KindManifestGet); n != 3 {
		t.Errorf("first run: %d manifest GETs at the source, want 3 (index, amd64, arm64)", n)
	}

	// Warm: HEAD the source, read the target's index; no source GET.
	src.Reset()
	dst.Reset()
	rep = run(t, task)
	if rep.Results[0].Status != engine.Skipped || rep.Results[0].Digest != dstDigest.String() {
		t.Fatalf("warm run: %+v", rep.Results)
	}
	if n := sourceGETs(src); n != 0 {
		t.Errorf("warm run sent %d GETs to the source, want 0", n)
	}
	if n := src.Count(regtest.KindManifestHead); n != 1 {
		t.Errorf("warm run: %d HEADs at the source, want 1", n)
	}
	if n := dst.Count(regtest.KindManifestGet); n != 1 {
		t.Errorf("warm run: %d manifest GETs at the target, want 1 (its index)", n)
	}
	// plan and check agree.
	p := newEngine().Plan(ctx(t), []engine.Task{task}, engine.PlanOptions{})
	if it := p.Items[0]; it.Action != engine.WouldSkip || it.SourceDigest != srcDigest.String() || it.TargetDigest != dstDigest.String() {
		t.Errorf("plan of the warm mirror: %+v", it)
	}

	// Another platform list: copied again, reason says why.
	task.Mappings[0].Platforms = []v1.Platform{amd64}
	p = newEngine().Plan(ctx(t), []engine.Task{task}, engine.PlanOptions{})
	if it := p.Items[0]; it.Action != engine.WouldCopy || it.Reason != "platform list changed" {
		t.Errorf("plan after changing the list: %+v", it)
	}
	src.Reset()
	if rep = run(t, task); rep.Results[0].Status != engine.Copied {
		t.Fatalf("after changing the list: %+v", rep.Results)
	}
	if im, _ := targetIndex(t, dst, "m/app:1"); len(im.Manifests) != 1 || im.Manifests[0].Digest != srcIM.Manifests[1].Digest {
		t.Errorf("target index %+v, want amd64 only", im.Manifests)
	}
	// The list in another order is the same subset.
	task.Mappings[0].Platforms = []v1.Platform{arm64, amd64}
	run(t, task)
	task.Mappings[0].Platforms = []v1.Platform{amd64, arm64}
	if rep = run(t, task); rep.Results[0].Status != engine.Skipped {
		t.Errorf("reordered platform list: %+v", rep.Results)
	}

	// A new source index: copied.
	imagegen.Push(t, src.Ref("lib/app:1"), imagegen.Index(51, []v1.Platform{s390x, amd64, arm64}, 1, 512))
	p = newEngine().Plan(ctx(t), []engine.Task{task}, engine.PlanOptions{})
	if it := p.Items[0]; it.Action != engine.WouldCopy || it.Reason != "source index changed" {
		t.Errorf("plan after a new source index: %+v", it)
	}
	if rep = run(t, task); rep.Results[0].Status != engine.Copied {
		t.Errorf("after a new source index: %+v", rep.Results)
	}
}

// A listed platform the source lacks fails the image, naming it, and
// writes nothing; with platforms-missing: skip the others are copied. A
// single-platform image is copied as it is when its platform is listed,
// and fails when it is not.
func TestPlatformsMissing(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	imagegen.Push(t, src.Ref("lib/multi:1"), imagegen.Index(60, []v1.Platform{amd64, arm64}, 1, 256))
	single := imagegen.ImageFor(61, arm64, 1, 256)
	imagegen.Push(t, src.Ref("lib/single:1"), single)
	both := []v1.Platform{amd64, s390x}
	task := engine.Task{Name: "missing", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{
		{From: "lib/multi", To: "m/multi", Platforms: both},
	}}
	rep := run(t, task)
	r := rep.Results[0]
	if r.Status != engine.Failed || !errors.Is(r.Err, registry.ErrPlatformMissing) || !strings.Contains(r.Err.Error(), "no image for linux/s390x") {
		t.Fatalf("missing platform: %+v", r)
	}
	if n := dst.Count(regtest.KindManifestPut) + dst.Count(regtest.KindBlobUpload); n != 0 {
		t.Errorf("a failed image wrote %d manifests or blobs to the target", n)
	}
	task.Mappings[0].PlatformsSkipMissing = true
	if rep = run(t, task); rep.Results[0].Status != engine.Copied {
		t.Fatalf("platforms-missing: skip: %+v", rep.Results)
	}
	if im, _ := targetIndex(t, dst, "m/multi:1"); len(im.Manifests) != 1 || im.Manifests[0].Platform.Architecture != "amd64" {
		t.Errorf("skip: target index %+v, want amd64 only", im.Manifests)
	}

	task.Mappings = []engine.Mapping{{From: "lib/single", To: "m/single", Platforms: []v1.Platform{amd64, {OS: "linux", Architecture: "arm64"}}}}
	if rep = run(t, task); rep.Results[0].Status != engine.Copied || rep.Results[0].Digest != imagegen.Digest(t, single).String() {
		t.Fatalf("single-platform image: %+v", rep.Results)
	}
	src.Reset()
	if rep = run(t, task); rep.Results[0].Status != engine.Skipped || sourceGETs(src) != 0 {
		t.Errorf("single-platform image, warm: %+v, %d source GETs", rep.Results, sourceGETs(src))
	}
	task.Mappings[0].Platforms = both
	task.Mappings[0].To = "m/single2"
	if r := run(t, task).Results[0]; r.Status != engine.Failed || !strings.Contains(r.Err.Error(), "single-platform image for linux/arm64/v8") {
		t.Errorf("unlisted single-platform image: %+v", r)
	}
}
