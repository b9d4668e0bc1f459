package engine_test

import (
	"fmt"
	"testing"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// TestColdCopyAsksTargetOncePerTag: the engine HEADs each tag at the target
// to decide whether to copy; the push must not ask the same question again
// (go-containerregistry's own existence check before writing a tag).
func TestColdCopyAsksTargetOncePerTag(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	base := imagegen.Layer(3, 2048)
	const n = 5
	for i := range n {
		imagegen.Push(t, src.Ref(fmt.Sprintf("many/app:v%d", i)), imagegen.Image(uint64(30+i), 1, 512, base))
	}
	rep := run(t, engine.Task{Name: "t", Source: plain(src), Target: plain(dst),
		Mappings: []engine.Mapping{{From: "many/app", To: "mirror/app"}}})
	if rep.Failed() != 0 || rep.Summaries()[0].Copied != n {
		t.Fatalf("%+v", rep.Results)
	}
	if got := dst.Count(regtest.KindManifestHead); got != n {
		t.Errorf("target saw %d manifest HEADs for %d new tags, want %d", got, n, n)
	}
	if got := dst.Count(regtest.KindManifestPut); got != n {
		t.Errorf("target saw %d manifest PUTs, want %d", got, n)
	}
	for i := range n {
		ref := fmt.Sprintf("v%d", i)
		if s, d := digestOf(t, src.Ref("many/app:"+ref)), digestOf(t, dst.Ref("mirror/app:"+ref)); s != d {
			t.Errorf("%s: target %s, source %s", ref, d, s)
		}
	}
}
