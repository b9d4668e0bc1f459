package engine_test

import (
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

func newEngine() *engine.Engine {
	return engine.New(engine.Options{Jobs: 3, Registry: registry.Options{Retry: &transport.Retry{Attempts: 2, Wait: 1, Factor: 1}}})
}

func byTag(p *engine.Plan) map[string]engine.PlanItem {
	m := map[string]engine.PlanItem{}
	for _, it := range p.Items {
		m[it.Tag] = it
	}
	return m
}

// planSetup: source a/app 1.0, 1.1, 2.0 (images sharing a base layer) and
// multi (a 2-platform index); target m/app with 1.0 current, 1.1 stale and
// 0.9 (gone from the source).
func planSetup(t *testing.T) (src, dst *regtest.Registry, task engine.Task) {
	src, dst = regtest.New(t), regtest.New(t)
	base := imagegen.Layer(1, 4096)
	for i, tag := range []string{"1.0", "1.1", "2.0"} {
		imagegen.Push(t, src.Ref("a/app:"+tag), imagegen.Image(uint64(30+i), 1, 1024, base))
	}
	imagegen.Push(t, src.Ref("a/app:multi"), imagegen.Index(40, []v1.Platform{amd64, arm64}, 1, 512, base))
	imagegen.Push(t, dst.Ref("m/app:1.0"), imagegen.Image(30, 1, 1024, base))
	imagegen.Push(t, dst.Ref("m/app:1.1"), imagegen.Image(99, 1, 1024, base))
	imagegen.Push(t, dst.Ref("m/app:0.9"), imagegen.Image(98, 1, 1024, base))
	task = engine.Task{Name: "plan", Source: plain(src), Target: plain(dst),
		Mappings: []engine.Mapping{{From: "a/app", To: "m/app", Prune: true}}}
	src.Reset()
	dst.Reset()
	return src, dst, task
}

// A plan sends tag lists and HEADs only, writes nothing, and says per image
// what a sync would do, and what prune would delete.
func TestPlanIsHeadOnly(t *testing.T) {
	src, dst, task := planSetup(t)
	p := newEngine().Plan(ctx(t), []engine.Task{task}, engine.PlanOptions{})
	items := byTag(p)
	want := map[string]engine.Action{"1.0": engine.WouldSkip, "1.1": engine.WouldCopy, "2.0": engine.WouldCopy, "multi": engine.WouldCopy}
	if len(items) != len(want) {
		t.Fatalf("items %+v", p.Items)
	}
	for tag, a := range want {
		if items[tag].Action != a {
			t.Errorf("%s: %s (%s), want %s", tag, items[tag].Action, items[tag].Reason, a)
		}
	}
	if r := items["1.1"].Reason; r != "digest differs" {
		t.Errorf("1.1 reason %q", r)
	}
	if r := items["2.0"].Reason; r != "missing on target" {
		t.Errorf("2.0 reason %q", r)
	}
	if it := items["2.0"]; it.Pulls != 1 || !it.PullsExact || it.BytesKnown {
		t.Errorf("2.0: pulls %d exact %v bytes known %v; want 1, exact, unknown", it.Pulls, it.PullsExact, it.BytesKnown)
	}
	if it := items["multi"]; it.Pulls != 1 || it.PullsExact {
		t.Errorf("multi (index): pulls %d exact %v; want a lower bound of 1", it.Pulls, it.PullsExact)
	}
	if len(p.Prune) != 1 || p.Prune[0].Tag != "0.9" || p.Prune[0].Kept {
		t.Errorf("prune %+v, want 0.9", p.Prune)
	}
	for _, r := range []*regtest.Registry{src, dst} {
		for _, q := range r.Requests() {
			switch q.Kind {
			case regtest.KindManifestHead, regtest.KindTagsList, regtest.KindPing, regtest.KindToken:
			default:
				t.Errorf("plan sent %s %s (%s)", q.Method, q.Path, q.Kind)
			}
		}
	}
}

// With Bytes, the plan fetches the manifests of what it would copy, and
// its predictions hold: a sync then sends exactly the predicted manifest
// GETs, and the target already had the blobs the plan proved present.
func TestPlanBytesPredictsSync(t *testing.T) {
	src, dst, task := planSetup(t)
	e := newEngine()
	p := e.Plan(ctx(t), []engine.Task{task}, engine.PlanOptions{Bytes: true})
	if n := dst.Count(regtest.KindManifestPut) + dst.Count(regtest.KindBlobUpload); n != 0 {
		t.Fatalf("plan wrote to the target (%d requests)", n)
	}
	pulls, present := 0, 0
	var bytes int64
	for _, it := range p.Items {
		if it.Action != engine.WouldCopy {
			continue
		}
		if !it.BytesKnown || !it.PullsExact {
			t.Errorf("%s: bytes known %v, pulls exact %v", it.Tag, it.BytesKnown, it.PullsExact)
		}
		pulls += it.Pulls
		present += it.BlobsPresent
		bytes += it.Bytes
	}
	items := byTag(p)
	// multi: the index and its 2 platform manifests.
	if it := items["multi"]; it.Pulls != 3 || it.Blobs != 5 {
		t.Errorf("multi: pulls %d blobs %d, want 3 and 5 (2 configs, 2 own layers, the shared base counted once)", it.Pulls, it.Blobs)
	}
	// Every image shares the base layer, which 1.0 put on the target.
	if present < 3 {
		t.Errorf("blobs proved present %d, want >= 3 (the base layer for 1.1, 2.0 and multi)", present)
	}
	if spent := src.Count(regtest.KindManifestGet); spent != pulls {
		t.Errorf("plan --bytes spent %d manifest GETs, predicted %d for the sync", spent, pulls)
	}

	src.Reset()
	rep := e.Run(ctx(t), []engine.Task{task})
	if rep.Failed() > 0 {
		t.Fatalf("sync: %+v", rep.Results)
	}
	if got := src.Count(regtest.KindManifestGet); got != pulls {
		t.Errorf("sync sent %d manifest GETs to the source, plan predicted %d", got, pulls)
	}
	var sent int64
	for _, r := range rep.Results {
		sent += r.Bytes
	}
	if sent < bytes || bytes == 0 {
		t.Errorf("sync wrote %d bytes, plan predicted %d bytes of blobs to transfer", sent, bytes)
	}

	// After the sync the plan has nothing to do, and 0.9 was pruned.
	p = e.Plan(ctx(t), []engine.Task{task}, engine.PlanOptions{})
	for _, it := range p.Items {
		if it.Action != engine.WouldSkip {
			t.Errorf("after sync: %s %s (%s)", it.Tag, it.Action, it.Reason)
		}
	}
	if len(p.Prune) != 0 {
		t.Errorf("after sync: prune %+v", p.Prune)
	}
	if !slices.Equal(repoTags(t, dst, "m/app"), []string{"1.0", "1.1", "2.0", "multi"}) {
		t.Errorf("target tags %v", repoTags(t, dst, "m/app"))
	}
}

// A platform mapping whose index digest is not cached is "unknown" without
// Bytes when the target holds an image (which one it should hold is only
// in the index manifest), but "missing" when the target answers 404:
// nothing in the index can make a missing image current. Neither sends a
// GET.
func TestPlanPlatformUnknownWithoutCache(t *testing.T) {
	src, dst, task := planSetup(t)
	task.Mappings[0] = engine.Mapping{From: "a/app", To: "m/app", Tags: tags(t, "multi"), Platform: &arm64}
	p := newEngine().Plan(ctx(t), []engine.Task{task}, engine.PlanOptions{})
	if len(p.Items) != 1 {
		t.Fatalf("items %+v, want one", p.Items)
	}
	if it := p.Items[0]; it.Action != engine.WouldCopy || it.Verdict != engine.VerdictMissing || it.Reason != "missing on target" || it.Pulls != 2 || !it.PullsExact {
		t.Errorf("target lacks the tag: %+v, want copy (missing on target), 2 pulls exactly", it)
	}
	if n := src.Count(regtest.KindManifestGet); n != 0 {
		t.Errorf("%d manifest GETs", n)
	}

	imagegen.Push(t, dst.Ref("m/app:multi"), imagegen.Image(97, 1, 512))
	src.Reset()
	p = newEngine().Plan(ctx(t), []engine.Task{task}, engine.PlanOptions{})
	if it := p.Items[0]; it.Action != engine.Unknown || it.Verdict != engine.VerdictUnknown || it.TargetDigest == "" {
		t.Errorf("target holds an image: %+v, want unknown with its digest", it)
	}
	if n := src.Count(regtest.KindManifestGet); n != 0 {
		t.Errorf("%d manifest GETs", n)
	}
	p = newEngine().Plan(ctx(t), []engine.Task{task}, engine.PlanOptions{Bytes: true})
	if it := p.Items[0]; it.Action != engine.WouldCopy || it.Verdict != engine.VerdictCopy || it.Pulls != 2 || it.Blobs != 3 || it.BlobsPresent != 1 {
		t.Errorf("with bytes: %+v, want copy (digest differs) with 2 pulls, 3 blobs (config, base, own layer), 1 present (base)", it)
	}
}

// A skip costs no pull, and the plan knows that exactly.
func TestPlanSkipCostsNoPullsExactly(t *testing.T) {
	_, _, task := planSetup(t)
	it := byTag(newEngine().Plan(ctx(t), []engine.Task{task}, engine.PlanOptions{}))["1.0"]
	if it.Action != engine.WouldSkip || it.Pulls != 0 || !it.PullsExact {
		t.Errorf("1.0: %s, %d pulls, exact %v; want skip, 0 pulls exactly", it.Action, it.Pulls, it.PullsExact)
	}
}
