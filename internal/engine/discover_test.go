package engine_test

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// catalogSource holds seven repositories, one small image each: more than
// three catalog pages of two. The catalog lists them sorted:
// other/x, team/a, team/b, team/c, team/d, team/e, zed.
func catalogSource(t *testing.T, opts ...regtest.Option) *regtest.Registry {
	t.Helper()
	src := regtest.New(t, opts...)
	var push []remote.Option
	if src.Username != "" {
		push = append(push, remote.WithAuth(&authn.Basic{Username: src.Username, Password: src.Password}))
	}
	for i, repo := range []string{"team/a", "team/b", "team/c", "team/d", "team/e", "other/x", "zed"} {
		imagegen.Push(t, src.Ref(repo+":1"), imagegen.Image(uint64(100+i), 1, 256), push...)
	}
	src.Reset()
	return src
}

// clock is a settable time source for the repository list cache.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newDiscoveryEngine(clk *clock) *engine.Engine {
	return engine.New(engine.Options{Jobs: 3, Now: clk.now, Registry: registry.Options{PageSize: 2,
		Retry: &transport.Retry{Attempts: 2, Wait: time.Millisecond, Factor: 1}}})
}

// copiedTargets returns the target repositories of the copied images.
func copiedTargets(t *testing.T, rep *engine.Report, host string) []string {
	t.Helper()
	var out []string
	for _, r := range rep.Results {
		if r.Status == engine.Failed {
			t.Errorf("failed: %s -> %s: %v", r.Source, r.Target, r.Err)
			continue
		}
		// The names are fields; the display string agrees with them.
		if want := host + "/" + r.TargetRepo + ":" + r.Ref.Target(); r.Target != want || r.SourceRepo == "" {
			t.Errorf("result %+v: target %q, repository %q, reference %q", r, r.Target, r.TargetRepo, r.Ref.Target())
		}
		out = append(out, r.TargetRepo)
	}
	return out
}

// catalogPages checks every catalog request asked for pages of two and
// returns how many there were.
func catalogPages(t *testing.T, reg *regtest.Registry) int {
	t.Helper()
	n := 0
	for _, q := range reg.Requests() {
		if q.Kind != regtest.KindCatalog {
			continue
		}
		n++
		v, _ := url.ParseQuery(q.Query)
		if v.Get("n") != "2" {
			t.Errorf("catalog request %s?%s: want n=2", q.Path, q.Query)
		}
	}
	return n
}

func TestDiscoveryFollowsCatalogPages(t *testing.T) {
	src, dst := catalogSource(t), regtest.New(t)
	task := engine.Task{Name: "disc", Source: plain(src), Target: plain(dst), Lister: engine.Lister{MaxItems: -1},
		Mappings: []engine.Mapping{
			{From: "regex:team/.*", To: "mirror", Origin: "c.yaml:9"},
			{From: "regex:(?:other/.*|zed)", To: "regex:^/(.*),flat-$1", Origin: "c.yaml:11"},
		}}
	rep := newDiscoveryEngine(&clock{t: time.Unix(0, 0)}).Run(ctx(t), []engine.Task{task})

	got := copiedTargets(t, rep, dst.Host)
	want := []string{"mirror/team/a", "mirror/team/b", "mirror/team/c", "mirror/team/d", "mirror/team/e", "flat-other/x", "flat-zed"}
	if !slices.Equal(got, want) {
		t.Errorf("copied %v\nwant   %v", got, want)
	}
	for _, pair := range [][2]string{{"team/c:1", "mirror/team/c:1"}, {"other/x:1", "flat-other/x:1"}} {
		if s, d := digestOf(t, src.Ref(pair[0])), digestOf(t, dst.Ref(pair[1])); s != d {
			t.Errorf("%s: target digest %s, source %s", pair[1], d, s)
		}
	}
	// Seven repositories in pages of two: four pages, listed once for
	// both mappings of the run.
	if n := catalogPages(t, src); n != 4 {
		t.Errorf("%d catalog requests, want 4 (one listing of 4 pages)", n)
	}
}

func TestDiscoveryMaxItemsAndCache(t *testing.T) {
	src, dst := catalogSource(t), regtest.New(t)
	clk := &clock{t: time.Unix(0, 0)}
	e := newDiscoveryEngine(clk)
	task := engine.Task{Name: "disc", Source: plain(src), Target: plain(dst),
		Lister:   engine.Lister{MaxItems: 3, CacheDuration: time.Hour},
		Mappings: []engine.Mapping{{From: "regex:team/.*", Tags: tags(t, "1")}}}

	// maxItems 3: other/x, team/a, team/b are listed (two pages), so
	// team/c and later are not considered.
	rep := e.Run(ctx(t), []engine.Task{task})
	if got := copiedTargets(t, rep, dst.Host); !slices.Equal(got, []string{"team/a", "team/b"}) {
		t.Errorf("copied %v, want [team/a team/b]", got)
	}
	if n := catalogPages(t, src); n != 2 {
		t.Errorf("first run: %d catalog requests, want 2", n)
	}

	// Within cacheDuration: no catalog request at all.
	src.Reset()
	clk.add(59 * time.Minute)
	rep = e.Run(ctx(t), []engine.Task{task})
	if n := src.Count(regtest.KindCatalog); n != 0 {
		t.Errorf("run within cacheDuration: %d catalog requests, want 0", n)
	}
	if got := statuses(rep)["1"]; got != engine.Skipped || len(rep.Results) != 2 {
		t.Errorf("cached run: %+v, want both images skipped", rep.Results)
	}

	// Past cacheDuration: listed again, and a repository added meanwhile
	// is seen.
	imagegen.Push(t, src.Ref("team/0:1"), imagegen.Image(99, 1, 256))
	src.Reset()
	clk.add(2 * time.Minute)
	rep = e.Run(ctx(t), []engine.Task{task})
	if n := catalogPages(t, src); n != 2 {
		t.Errorf("run after cacheDuration: %d catalog requests, want 2", n)
	}
	if got := copiedTargets(t, rep, dst.Host); !slices.Equal(got, []string{"team/0", "team/a"}) {
		t.Errorf("copied %v, want [team/0 team/a] (the first three listed are other/x team/0 team/a)", got)
	}

	// No caching (dregsy: a negative cacheDuration): every run lists.
	task.Lister.CacheDuration = -1
	src.Reset()
	for range 2 {
		e.Run(ctx(t), []engine.Task{task})
	}
	if n := catalogPages(t, src); n != 4 {
		t.Errorf("two uncached runs: %d catalog requests, want 4", n)
	}
}

func TestDiscoveryWithoutCatalog(t *testing.T) {
	// Anonymous clients may pull but not list the catalog: the registry
	// answers /v2/_catalog with 401, as Docker Hub does.
	src := catalogSource(t, regtest.WithTokenAuth("alice", "secret"), regtest.WithAnonymousPull())
	dst := regtest.New(t)
	anon := plain(src)
	anon.Anonymous = true
	hub := registry.Endpoint{Registry: "registry.hub.docker.com"}
	rep := newDiscoveryEngine(&clock{}).Run(ctx(t), []engine.Task{
		{Name: "private", Source: anon, Target: plain(dst), Mappings: []engine.Mapping{
			{From: "regex:team/.*", Origin: "c.yaml:8"},
			{From: "zed", Origin: "c.yaml:9"},
		}},
		{Name: "hub", Source: hub, Target: plain(dst), Mappings: []engine.Mapping{{From: "regex:library/.*", Origin: "c.yaml:20"}}},
		{Name: "index", Source: plain(dst), Target: plain(dst), Lister: engine.Lister{Type: "index"},
			Mappings: []engine.Mapping{{From: "regex:x/.*", Origin: "c.yaml:30"}}},
	})
	if len(rep.Results) != 4 {
		t.Fatalf("%d results, want 4: %+v", len(rep.Results), rep.Results)
	}
	for i, want := range []struct {
		err  error
		text []string
	}{
		{registry.ErrNoCatalog, []string{`task "private", mapping at c.yaml:8 (from regex:team/.*)`, "/v2/_catalog", "401"}},
		{nil, nil}, // the plain mapping of the same task is still copied
		{registry.ErrNoCatalog, []string{`task "hub", mapping at c.yaml:20`, "Docker Hub"}},
		{engine.ErrListerType, []string{`task "index", mapping at c.yaml:30`, `"index"`}},
	} {
		r := rep.Results[i]
		if want.err == nil {
			if r.Status != engine.Copied {
				t.Errorf("result %d: %s %v, want copied", i, r.Status, r.Err)
			}
			continue
		}
		if r.Status != engine.Failed || !errors.Is(r.Err, want.err) {
			t.Errorf("result %d: %s %v, want failed with %v", i, r.Status, r.Err, want.err)
			continue
		}
		for _, s := range want.text {
			if !strings.Contains(r.Err.Error(), s) {
				t.Errorf("result %d: error %q does not say %q", i, r.Err, s)
			}
		}
	}
}

func TestDiscoveryFromLayout(t *testing.T) {
	src, dst := catalogSource(t), regtest.New(t)
	layout := registry.Endpoint{Registry: "oci:" + t.TempDir()}
	e := newDiscoveryEngine(&clock{})
	// Fill a layout with three repositories, then discover them there.
	fill := engine.Task{Name: "fill", Source: plain(src), Target: layout,
		Mappings: []engine.Mapping{{From: "regex:team/[abc]"}}}
	back := engine.Task{Name: "back", Source: layout, Target: plain(dst),
		Mappings: []engine.Mapping{{From: "regex:team/[bc]", To: "from-layout"}}}
	if rep := e.Run(ctx(t), []engine.Task{fill}); rep.Failed() != 0 || len(rep.Results) != 3 {
		t.Fatalf("fill: %+v", rep.Results)
	}
	rep := e.Run(ctx(t), []engine.Task{back})
	if got := copiedTargets(t, rep, dst.Host); !slices.Equal(got, []string{"from-layout/team/b", "from-layout/team/c"}) {
		t.Errorf("copied %v", got)
	}
	if s, d := digestOf(t, src.Ref("team/b:1")), digestOf(t, dst.Ref("from-layout/team/b:1")); s != d {
		t.Errorf("digest %s, want %s", d, s)
	}
}

// TestPagesOfTLSRegistryAtLoopback: go-containerregistry guesses "http" for
// a registry at a loopback or private address and used to reject every Link
// header of such a registry served over TLS; tag lists and catalogs of more
// than one page must still be followed.
func TestPagesOfTLSRegistryAtLoopback(t *testing.T) {
	src, dst := regtest.New(t, regtest.WithTLS()), regtest.New(t)
	for i, ref := range []string{"app:1", "app:2", "app:3", "lib:1", "zz:1"} {
		imagegen.Push(t, src.Ref(ref), imagegen.Image(uint64(300+i), 1, 128), remote.WithTransport(src.Transport()))
	}
	src.Reset()
	tls := registry.Endpoint{Registry: src.Host, CAFile: src.CAFile}
	rep := newDiscoveryEngine(&clock{}).Run(ctx(t), []engine.Task{{Name: "tls", Source: tls, Target: plain(dst),
		Mappings: []engine.Mapping{{From: "app", To: "plain/app"}, {From: "regex:(?:app|lib)", To: "found"}}}})
	got := copiedTargets(t, rep, dst.Host)
	want := []string{"plain/app", "plain/app", "plain/app", "found/app", "found/app", "found/app", "found/lib"}
	if !slices.Equal(got, want) {
		t.Errorf("copied %v\nwant   %v", got, want)
	}
	// app's 3 tags in pages of 2, twice; lib's one tag; the catalog's 3
	// repositories in pages of 2.
	if n := src.Count(regtest.KindTagsList); n != 5 {
		t.Errorf("%d tag list requests, want 5", n)
	}
	if n := catalogPages(t, src); n != 2 {
		t.Errorf("%d catalog requests, want 2", n)
	}
}
