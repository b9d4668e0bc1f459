package engine_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

func repoTags(t *testing.T, r *regtest.Registry, repo string) []string {
	t.Helper()
	rp, err := name.NewRepository(r.Ref(repo), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(rp)
	if err != nil {
		t.Fatalf("listing %s: %v", repo, err)
	}
	slices.Sort(tags)
	return tags
}

// pruneSetup mirrors a/app 1.0, 1.1, 2.0 into m/app, then puts beside them
// on the target: "custom" (pushed by hand, not matched by the filter),
// "1.5" (matched, never at the source) and "1.9" (matched, not at the
// source, same digest as 2.0). Then 1.0 is deleted at the source.
func pruneSetup(t *testing.T, dst *regtest.Registry, specs ...string) (*regtest.Registry, engine.Task) {
	t.Helper()
	src := regtest.New(t)
	base := imagegen.Layer(1, 256)
	for i, tag := range []string{"1.0", "1.1", "2.0"} {
		imagegen.Push(t, src.Ref("a/app:"+tag), imagegen.Image(uint64(10+i), 1, 128, base))
	}
	task := engine.Task{Name: "prune", Source: plain(src), Target: plain(dst),
		Mappings: []engine.Mapping{{From: "a/app", To: "m/app", Tags: tags(t, specs...), Prune: true}}}
	if rep := run(t, task); rep.Failed() > 0 {
		t.Fatalf("first run: %+v", rep.Results)
	}
	imagegen.Push(t, dst.Ref("m/app:custom"), imagegen.Image(20, 1, 128, base))
	imagegen.Push(t, dst.Ref("m/app:1.5"), imagegen.Image(21, 1, 128, base))
	imagegen.Push(t, dst.Ref("m/app:1.9"), imagegen.Image(12, 1, 128, base)) // = 2.0
	if err := remote.Delete(parse(t, src.Ref("a/app@"+digestOf(t, src.Ref("a/app:1.0"))))); err != nil {
		t.Fatal(err)
	}
	return src, task
}

func TestPruneDeletesOnlyOwnedTagsGoneFromSource(t *testing.T) {
	dst := regtest.New(t)
	_, task := pruneSetup(t, dst, "semver: >=1.0.0")
	dst.Reset()
	var mu sync.Mutex
	seen := map[engine.Status]int{}
	e := engine.New(engine.Options{OnResult: func(r engine.Result) {
		mu.Lock()
		seen[r.Status]++
		mu.Unlock()
	}})
	rep := e.Run(ctx(t), []engine.Task{task})
	if rep.Failed() > 0 {
		t.Fatalf("prune run: %+v", rep.Results)
	}
	// The daemon's metrics hear of prunes too.
	if seen[engine.Pruned] != 2 || seen[engine.Skipped] != 2 {
		t.Errorf("OnResult saw %v, want 2 pruned, 2 skipped", seen)
	}
	var pruned []string
	for _, r := range rep.Results {
		if r.Status == engine.Pruned {
			pruned = append(pruned, r.Tag)
		}
	}
	slices.Sort(pruned)
	if want := []string{"1.0", "1.5"}; !slices.Equal(pruned, want) {
		t.Errorf("pruned %v, want %v", pruned, want)
	}
	// custom: not the mapping's; 1.9: shares its digest with 2.0.
	if got, want := repoTags(t, dst, "m/app"), []string{"1.1", "1.9", "2.0", "custom"}; !slices.Equal(got, want) {
		t.Errorf("target tags %v, want %v", got, want)
	}
	if n := dst.Count(regtest.KindManifestDelete); n != 2 {
		t.Errorf("%d manifest DELETEs, want 2", n)
	}
	if s := rep.Summaries()[0]; s.Pruned != 2 || s.Skipped != 2 {
		t.Errorf("summary %+v, want 2 pruned, 2 skipped", s)
	}
}

// A failed image (a verbatim tag the source lacks) or a failed listing
// stops prune for the mapping: nothing is deleted.
func TestPruneNeverAfterAFailure(t *testing.T) {
	dst := regtest.New(t)
	_, task := pruneSetup(t, dst, "semver: >=1.0.0")
	task.Mappings[0].Tags = tags(t, "semver: >=1.0.0", "9.9")
	dst.Reset()
	rep := run(t, task)
	if rep.Failed() != 1 {
		t.Fatalf("want the 9.9 image to fail: %+v", rep.Results)
	}
	if n := dst.Count(regtest.KindManifestDelete); n != 0 {
		t.Errorf("%d DELETEs after a failed image, want 0", n)
	}
	if got := repoTags(t, dst, "m/app"); !slices.Contains(got, "1.0") || !slices.Contains(got, "1.5") {
		t.Errorf("target tags %v: prune ran after a failure", got)
	}

	task.Mappings[0].Tags = tags(t, "semver: >=1.0.0")
	task.Mappings[0].From = "a/gone" // listing fails: 404
	rep = run(t, task)
	if rep.Failed() != 1 || dst.Count(regtest.KindManifestDelete) != 0 {
		t.Errorf("failed listing: %d failed, %d DELETEs; want 1, 0", rep.Failed(), dst.Count(regtest.KindManifestDelete))
	}
}

// distribution without storage.delete.enabled answers 405 UNSUPPORTED: the
// run fails (exit 1) with a message naming the setting, once.
func TestPruneRefusedByRegistry(t *testing.T) {
	dst := regtest.New(t, regtest.WithConfig(func(c *configuration.Configuration) {
		c.Storage["delete"] = configuration.Parameters{"enabled": false}
	}))
	_, task := pruneSetup(t, dst, "semver: >=1.0.0")
	rep := run(t, task)
	var failed []engine.Result
	for _, r := range rep.Results {
		if r.Status == engine.Failed {
			failed = append(failed, r)
		}
	}
	if len(failed) != 1 {
		t.Fatalf("want one failure, got %+v", rep.Results)
	}
	err := failed[0].Err
	if !errors.Is(err, registry.ErrDeleteRefused) || !strings.Contains(err.Error(), "storage.delete.enabled: true") {
		t.Errorf("error %v: want ErrDeleteRefused naming storage.delete.enabled", err)
	}
	if got := repoTags(t, dst, "m/app"); len(got) != 6 {
		t.Errorf("target tags %v, want all 6 still there", got)
	}
}

// Two mappings may write to the same target repository: what one writes
// in the run is not the other's to prune.
func TestPruneSparesTagsOtherMappingsWrite(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	imagegen.Push(t, src.Ref("a/app:1.0"), imagegen.Image(1, 1, 128))
	imagegen.Push(t, src.Ref("a/other:x"), imagegen.Image(2, 1, 128))
	task := engine.Task{Name: "shared", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{
		{From: "a/app", To: "m/app", Prune: true},
		{From: "a/other", To: "m/app", Tags: tags(t, "x")},
	}}
	for range 2 {
		if rep := run(t, task); rep.Failed() > 0 {
			t.Fatalf("%+v", rep.Results)
		}
	}
	if got := repoTags(t, dst, "m/app"); !slices.Equal(got, []string{"1.0", "x"}) {
		t.Errorf("target tags %v, want [1.0 x]", got)
	}
	if n := dst.Count(regtest.KindManifestDelete); n != 0 {
		t.Errorf("%d DELETEs", n)
	}
	// Without the other mapping in the run, x is the prune mapping's
	// (no tags: every tag) and the source has no x: it goes.
	task.Mappings = task.Mappings[:1]
	rep := run(t, task)
	if s := rep.Summaries()[0]; s.Pruned != 1 {
		t.Errorf("summary %+v, want x pruned", s)
	}
}
