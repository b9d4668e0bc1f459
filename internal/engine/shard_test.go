package engine_test

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/shard"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// catalogFake is a lister: a source whose catalog holds n repositories of
// one tag each, or (as a target) a registry that holds nothing. It
// answers only what planning asks (catalog, tags, HEAD); a 1,000-repository
// catalog over 36 plans is too much for a real registry in a unit test,
// and nothing here depends on registry behaviour beyond those answers.
type catalogFake struct {
	name     string
	repos    []string
	catalogs atomic.Int64
}

func (f *catalogFake) String() string              { return f.name }
func (f *catalogFake) Ref(repo, ref string) string { return f.name + "/" + repo + ":" + ref }
func (f *catalogFake) Tags(context.Context, string) ([]string, error) {
	if f.repos == nil {
		return nil, registry.ErrNotFound
	}
	return []string{"1"}, nil
}
func (f *catalogFake) Catalog(context.Context, int) ([]string, bool, error) {
	f.catalogs.Add(1)
	return f.repos, false, nil
}
func (f *catalogFake) Head(_ context.Context, repo, ref string) (v1.Descriptor, error) {
	if f.repos == nil {
		return v1.Descriptor{}, fmt.Errorf("%s: %w", repo, registry.ErrNotFound)
	}
	sum := sha256.Sum256([]byte(repo + ":" + ref))
	return v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}}, nil
}
func (f *catalogFake) Fetch(context.Context, string, string) (*registry.Artifact, error) {
	return nil, fmt.Errorf("fetch: not in this fake")
}
func (f *catalogFake) Push(context.Context, string, string, *registry.Artifact) (int64, error) {
	return 0, fmt.Errorf("push: not in this fake")
}

// planShard plans one task discovering every repository of src with the
// given shard, and returns the source repositories its plan names.
func planShard(t *testing.T, src, dst *catalogFake, spec shard.Spec) []string {
	t.Helper()
	e := engine.New(engine.Options{Jobs: 4, Shard: spec})
	task := engine.Task{Name: "vendor", Source: registry.Endpoint{Registry: "src.test"}, Target: registry.Endpoint{Registry: "dst.test"},
		SourceStore: src, TargetStore: dst,
		Lister:   engine.Lister{MaxItems: -1},
		Mappings: []engine.Mapping{{From: "regex:vendor/.*", To: "mirror"}}}
	p := e.Plan(context.Background(), []engine.Task{task}, engine.PlanOptions{})
	var repos []string
	for _, it := range p.Items {
		if it.Action != engine.WouldCopy {
			t.Fatalf("shard %s: %s: %s %s", spec, it.Source, it.Action, it.Reason)
		}
		repo, _, _ := strings.Cut(strings.TrimPrefix(it.Source, src.name+"/"), ":")
		repos = append(repos, repo)
	}
	return repos
}

// Repository-level shards split one task's 1,000 discovered repositories:
// for every shard count from 1 to 8 the shards' plans together are exactly
// the unsharded plan, each repository in exactly one of them, and no shard
// holds more than 1.25 times the mean. Every shard lists the catalog
// itself (discovery is not sharded).
func TestShardsSplitDiscoveredRepositories(t *testing.T) {
	src := &catalogFake{name: "src.test"}
	for i := range 1000 {
		src.repos = append(src.repos, fmt.Sprintf("vendor/app-%04d", i))
	}
	dst := &catalogFake{name: "dst.test"}
	whole := planShard(t, src, dst, shard.Spec{})
	if len(whole) != 1000 {
		t.Fatalf("unsharded plan: %d repositories, want 1000", len(whole))
	}
	slices.Sort(whole)
	for count := 1; count <= 8; count++ {
		listed := src.catalogs.Load()
		var union []string
		per := make([]int, count)
		for i := range count {
			got := planShard(t, src, dst, shard.Spec{Index: i, Count: count})
			per[i] = len(got)
			union = append(union, got...)
		}
		if n := src.catalogs.Load() - listed; n != int64(count) {
			t.Errorf("%d shards listed the catalog %d times, want once each", count, n)
		}
		slices.Sort(union)
		if len(union) != len(whole) {
			t.Fatalf("%d shards plan %d repositories together (%v per shard), want %d", count, len(union), per, len(whole))
		}
		if !slices.Equal(union, whole) {
			t.Fatalf("%d shards: union of plans differs from the unsharded plan (a repository twice or missing)", count)
		}
		mean := 1000.0 / float64(count)
		for i, n := range per {
			if float64(n) > 1.25*mean {
				t.Errorf("%d shards: shard %d plans %d repositories, more than 1.25x the mean %.0f (%v)", count, i, n, mean, per)
			}
		}
		t.Logf("%d shards: %v", count, per)
	}
}

// Against a real registry: two shards copy disjoint repositories that
// together are the whole task, each pruning only what it owns; a target
// repository that a repository of the other shard writes to as well is
// not pruned (this shard cannot know which tags the other writes).
func TestShardsCopyAndPruneOnlyTheirRepositories(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	repos := []string{"v/a", "v/b", "v/c", "v/d", "v/e", "v/f"}
	for i, r := range repos {
		imagegen.Push(t, src.Ref(r+":1"), imagegen.Image(uint64(200+i), 1, 128))
	}
	// A stale tag in every target repository: each shard prunes those
	// of its own repositories.
	for i, r := range repos {
		imagegen.Push(t, dst.Ref("m/"+r+":stale"), imagegen.Image(uint64(300+i), 1, 128))
	}
	task := engine.Task{Name: "vendor", Source: plain(src), Target: plain(dst), Lister: engine.Lister{MaxItems: -1},
		Mappings: []engine.Mapping{{From: "regex:v/.*", To: "m", Prune: true}}}
	owner := map[string]int{}
	for i := range 2 {
		e := engine.New(engine.Options{Jobs: 3, Shard: shard.Spec{Index: i, Count: 2}})
		rep := e.Run(ctx(t), []engine.Task{task})
		if rep.Failed() > 0 {
			t.Fatalf("shard %d: %+v", i, rep.Results)
		}
		for _, r := range rep.Results {
			repo := strings.TrimPrefix(r.Target, dst.Host+"/m/")
			repo, _, _ = strings.Cut(repo, ":")
			want := engine.Copied
			if r.Tag == "stale" {
				want = engine.Pruned
			}
			if r.Status != want {
				t.Errorf("shard %d: %s %s: %s, want %s", i, r.Target, r.Tag, r.Status, want)
			}
			if o, seen := owner[repo+r.Tag]; seen {
				t.Errorf("%s:%s handled by shards %d and %d", repo, r.Tag, o, i)
			}
			owner[repo+r.Tag] = i
		}
	}
	for _, r := range repos {
		if got := repoTags(t, dst, "m/"+r); !slices.Equal(got, []string{"1"}) {
			t.Errorf("m/%s: tags %v, want [1]", r, got)
		}
	}
	if len(owner) != 2*len(repos) {
		t.Errorf("%d images and prunes handled, want %d", len(owner), 2*len(repos))
	}

	// Two source repositories on different shards written to one target
	// repository: neither shard prunes it.
	var a, b string
	for _, r := range repos {
		switch shard.OfRepository("shared", r, 2) {
		case 0:
			a = cmp.Or(a, r)
		case 1:
			b = cmp.Or(b, r)
		}
	}
	if a == "" || b == "" {
		t.Fatalf("want repositories on both shards, got %q and %q", a, b)
	}
	imagegen.Push(t, dst.Ref("shared:stale"), imagegen.Image(400, 1, 128))
	shared := engine.Task{Name: "shared", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{
		{From: a, To: "shared", Tags: tags(t, "1"), Prune: true},
		{From: b, To: "shared", Tags: tags(t, "regex: ^x$")},
	}}
	e := engine.New(engine.Options{Jobs: 3, Shard: shard.Spec{Index: 0, Count: 2}})
	rep := e.Run(ctx(t), []engine.Task{shared})
	var refused bool
	for _, r := range rep.Results {
		if r.Status == engine.Failed && r.Err != nil && strings.Contains(r.Err.Error(), "another shard copies") {
			refused = true
		}
		if r.Status == engine.Pruned {
			t.Errorf("pruned %s:%s although another shard writes to it", r.Target, r.Tag)
		}
	}
	if !refused {
		t.Errorf("no refusal to prune the shared target: %+v", rep.Results)
	}
}
