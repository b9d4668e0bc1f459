package engine_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/testutil/faultproxy"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// TestColdCopyAsksTargetOncePerTag: the engine asks the target about each
// tag once to decide whether to copy (here its tag list, which answers for
// all of them; a partly filled target below); the push must not ask the
// same question again (go-containerregistry's own existence check before
// writing a tag).
func TestColdCopyAsksTargetOncePerTag(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	base := imagegen.Layer(3, 2048)
	const n = 5
	for i := range n {
		imagegen.Push(t, src.Ref(fmt.Sprintf("many/app:v%d", i)), imagegen.Image(uint64(30+i), 1, 512, base))
	}
	// The target already holds v0 and v1 (v1 another image): they are
	// asked with a HEAD each, v2..v4 are missing from its tag list.
	imagegen.Push(t, dst.Ref("mirror/app:v0"), imagegen.Image(30, 1, 512, base))
	imagegen.Push(t, dst.Ref("mirror/app:v1"), imagegen.Image(99, 1, 512, base))
	dst.Reset()
	rep := run(t, engine.Task{Name: "t", Source: plain(src), Target: plain(dst),
		Mappings: []engine.Mapping{{From: "many/app", To: "mirror/app"}}})
	if rep.Failed() != 0 || rep.Summaries()[0].Copied != n-1 || rep.Summaries()[0].Skipped != 1 {
		t.Fatalf("%+v", rep.Results)
	}
	if got := dst.Count(regtest.KindManifestHead); got != 2 {
		t.Errorf("target saw %d manifest HEADs for 2 tags its list names and 3 it lacks, want 2", got)
	}
	if got := dst.Count(regtest.KindTagsList); got != 1 {
		t.Errorf("target saw %d tag lists, want 1", got)
	}
	if got := src.Count(regtest.KindManifestGet); got != n-1 {
		t.Errorf("source saw %d manifest GETs, want %d (v0 is current)", got, n-1)
	}
	if got := dst.Count(regtest.KindManifestPut); got != n-1 {
		t.Errorf("target saw %d manifest PUTs, want %d", got, n-1)
	}
	for i := range n {
		ref := fmt.Sprintf("v%d", i)
		if s, d := digestOf(t, src.Ref("many/app:"+ref)), digestOf(t, dst.Ref("mirror/app:"+ref)); s != d {
			t.Errorf("%s: target %s, source %s", ref, d, s)
		}
	}
}

// TestTargetTagListRefusedFallsBackToHEADs: a target that will not list
// its tags (403 here, as a registry whose credentials may push but not
// list) is asked about each tag with a HEAD, and the copy is the same.
func TestTargetTagListRefusedFallsBackToHEADs(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	p := faultproxy.New(t, dst.URL)
	refused := p.Inject(faultproxy.Match{Kind: regtest.KindTagsList}, 0, faultproxy.Status(http.StatusForbidden, "DENIED"))
	const n = 3
	for i := range n {
		imagegen.Push(t, src.Ref(fmt.Sprintf("app:v%d", i)), imagegen.Image(uint64(40+i), 1, 512))
	}
	imagegen.Push(t, dst.Ref("mirror/app:v0"), imagegen.Image(40, 1, 512))
	dst.Reset()
	rep := run(t, engine.Task{Name: "t", Source: plain(src), Target: registry.Endpoint{Registry: p.Host, PlainHTTP: true},
		Mappings: []engine.Mapping{{From: "app", To: "mirror/app"}}})
	if rep.Failed() != 0 || rep.Summaries()[0].Copied != n-1 || rep.Summaries()[0].Skipped != 1 {
		t.Fatalf("%+v", rep.Results)
	}
	if p.Hits(refused) == 0 {
		t.Fatal("the target's tag list was never asked for: the test did not exercise the refusal")
	}
	if got := dst.Count(regtest.KindManifestHead); got != n {
		t.Errorf("target saw %d manifest HEADs, want %d (one per tag, its list refused)", got, n)
	}
	for i := range n {
		ref := fmt.Sprintf("v%d", i)
		if s, d := digestOf(t, src.Ref("app:"+ref)), digestOf(t, dst.Ref("mirror/app:"+ref)); s != d {
			t.Errorf("%s: target %s, source %s", ref, d, s)
		}
	}
}
