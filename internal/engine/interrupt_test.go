package engine_test

import (
	"context"
	"testing"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// A run cancelled after its first image starts no other image, and those
// are reported as not started, not as failed with "context canceled".
func TestCancelledRunStartsNoMoreImages(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	seed(t, src, "team/app")
	seed(t, src, "team/web")
	c, cancel := context.WithCancel(ctx(t))
	defer cancel()
	e := engine.New(engine.Options{Jobs: 1, OnResult: func(engine.Result) { cancel() }})
	rep := e.Run(c, []engine.Task{{Name: "t", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{
		{From: "team/app", To: "a"}, {From: "team/web", To: "b"},
	}}})
	if len(rep.Results) != 6 {
		t.Fatalf("%d results, want 6: %+v", len(rep.Results), rep.Results)
	}
	if n := rep.Count(engine.Copied); n != 1 {
		t.Errorf("%d copied, want 1: %+v", n, rep.Results)
	}
	if n := rep.Count(engine.NotStarted); n != 5 {
		t.Errorf("%d not started, want 5: %+v", n, rep.Results)
	}
	if rep.Failed() != 0 {
		t.Errorf("%d failed, want 0: %+v", rep.Failed(), rep.Results)
	}
	s := rep.Summaries()
	if len(s) != 1 || s[0].NotStarted != 5 || s[0].Copied != 1 {
		t.Errorf("summary %+v", s)
	}
	// Nothing was written to the target after the first image: its
	// manifest, or an index and its two children.
	if n := dst.Count(regtest.KindManifestPut); n < 1 || n > 3 {
		t.Errorf("%d manifest PUTs on the target, want those of one image", n)
	}
}
