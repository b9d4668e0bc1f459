package engine_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// uploadsOf counts finished uploads (PUT ...?digest=d) and mount attempts
// (POST ...?mount=d) of digest d seen by r.
func uploadsOf(r *regtest.Registry, d string) (puts, mounts, mounted int) {
	for _, q := range r.Requests() {
		v, _ := url.ParseQuery(q.Query)
		switch {
		case q.Method == http.MethodPut && q.Kind == regtest.KindBlobUpload && v.Get("digest") == d:
			puts++
		case q.Kind == regtest.KindBlobMount && v.Get("mount") == d:
			mounts++
			if q.Status == http.StatusCreated {
				mounted++
			}
		}
	}
	return
}

func TestSharedLayerIsUploadedOnceAndMounted(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	shared := imagegen.Layer(42, 1<<20)
	var repos []string
	for i := range 6 {
		repo := "app" + string(rune('a'+i))
		repos = append(repos, repo)
		imagegen.Push(t, src.Ref(repo+":1"), imagegen.Image(uint64(200+i), 1, 512, shared))
	}
	task := engine.Task{Name: "t", Source: plain(src), Target: plain(dst)}
	for _, r := range repos {
		task.Mappings = append(task.Mappings, engine.Mapping{From: r, To: "mirror/" + r})
	}
	rep := run(t, task) // 3 images at a time: uploads of the shared layer race
	if rep.Failed() != 0 {
		t.Fatalf("%+v", rep.Results)
	}
	d, _ := shared.Digest()
	puts, mounts, mounted := uploadsOf(dst, d.String())
	if puts != 1 {
		t.Errorf("shared layer uploaded %d times, want once", puts)
	}
	if mounted != len(repos)-1 {
		t.Errorf("shared layer mounted into %d repositories (%d attempts), want %d", mounted, mounts, len(repos)-1)
	}
	if n := src.Count(regtest.KindBlobGet); n > 2*len(repos)+1 {
		// each image: its own layer + config; the shared layer once
		t.Errorf("%d blob GETs at the source, want at most %d", n, 2*len(repos)+1)
	}
}

func TestRefusedMountFallsBackToUpload(t *testing.T) {
	src := regtest.New(t)
	// A registry that ignores mount requests (some do): it answers every
	// mount with a fresh upload session, as the spec allows.
	dst := regtest.New(t, regtest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && r.URL.Query().Get("mount") != "" {
				r.URL.RawQuery = ""
			}
			next.ServeHTTP(w, r)
		})
	}))
	shared := imagegen.Layer(43, 4096)
	imagegen.Push(t, src.Ref("a:1"), imagegen.Image(301, 1, 256, shared))
	imagegen.Push(t, src.Ref("b:1"), imagegen.Image(302, 1, 256, shared))
	rep := run(t, engine.Task{Name: "t", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{{From: "a", To: "a"}}})
	rep2 := run(t, engine.Task{Name: "t", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{{From: "b", To: "b"}}})
	if rep.Failed()+rep2.Failed() != 0 {
		t.Fatalf("%+v %+v", rep.Results, rep2.Results)
	}
	d, _ := shared.Digest()
	puts, mounts, _ := uploadsOf(dst, d.String())
	if mounts == 0 {
		t.Error("no mount was attempted")
	}
	if puts != 2 {
		t.Errorf("shared layer uploaded %d times, want 2 (once per repository, mounts refused)", puts)
	}
	if digestOf(t, dst.Ref("b:1")) != digestOf(t, src.Ref("b:1")) {
		t.Error("b:1 not copied")
	}
}

func TestRetryAfterDelaysOnlyThatHost(t *testing.T) {
	var (
		mu       sync.Mutex
		order    []string
		throttle atomic.Bool
	)
	throttle.Store(true)
	note := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	slow := regtest.New(t, regtest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
				if throttle.CompareAndSwap(true, false) {
					note("slow:429")
					w.Header().Set("Retry-After", "2")
					w.WriteHeader(http.StatusTooManyRequests)
					return
				}
				note("slow:get")
			}
			next.ServeHTTP(w, r)
		})
	}))
	fast := regtest.New(t, regtest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
				note("fast:get")
			}
			next.ServeHTTP(w, r)
		})
	}))
	dst := regtest.New(t)
	imagegen.Push(t, slow.Ref("s:1"), imagegen.Image(1, 1, 128))
	for i := range 3 {
		imagegen.Push(t, fast.Ref("f:"+string(rune('1'+i))), imagegen.Image(uint64(10+i), 1, 128))
	}
	rep := run(t,
		engine.Task{Name: "slow", Source: plain(slow), Target: plain(dst), Mappings: []engine.Mapping{{From: "s", To: "s"}}},
		engine.Task{Name: "fast", Source: plain(fast), Target: plain(dst), Mappings: []engine.Mapping{{From: "f", To: "f"}}},
	)
	if rep.Failed() != 0 {
		t.Fatalf("%+v", rep.Results)
	}
	mu.Lock()
	defer mu.Unlock()
	// The slow host was asked once more after its 429; the fast host's
	// three pulls did not wait for it.
	retried := -1
	for i, s := range order {
		if s == "slow:get" {
			retried = i
		}
	}
	fastDone := 0
	for _, s := range order[:max(retried, 0)] {
		if s == "fast:get" {
			fastDone++
		}
	}
	if retried < 0 || fastDone != 3 {
		t.Errorf("request order %v: want all three fast pulls before the slow host's retry", order)
	}
}

func TestLowRateLimitDelaysGETsNotHEADs(t *testing.T) {
	var heads atomic.Int32
	var early atomic.Bool // a GET arrived while the remaining count was low
	src := regtest.New(t, regtest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.Contains(r.URL.Path, "/manifests/") && !strings.Contains(r.URL.Path, "/blobs/") {
				next.ServeHTTP(w, r)
				return
			}
			// The allowance recovers after the third HEAD (the first
			// reads it before any pull: a sync's first request to the
			// source may be the manifest GET).
			low := heads.Load() < 3
			if r.Method == http.MethodHead {
				heads.Add(1)
			}
			if r.Method == http.MethodGet && low {
				early.Store(true)
			}
			remaining := "100"
			if low {
				remaining = "1"
			}
			w.Header().Set("Ratelimit-Limit", "100;w=21600")
			w.Header().Set("Ratelimit-Remaining", remaining+";w=21600")
			next.ServeHTTP(w, r)
		})
	}))
	dst := regtest.New(t)
	imagegen.Push(t, src.Ref("app:1"), imagegen.Image(1, 1, 128))
	ep := plain(src)
	ep.RateLimit = transport.RateLimitPolicy{MinRemaining: 10, Wait: 10 * time.Millisecond}
	hosts := transport.DefaultHosts()
	e := engine.New(engine.Options{Registry: registry.Options{Hosts: hosts}})
	rep := e.Run(ctx(t), []engine.Task{{Name: "t", Source: ep, Target: plain(dst), Mappings: []engine.Mapping{{From: "app", To: "app", Tags: tags(t, "1")}}}})
	if rep.Failed() != 0 {
		t.Fatalf("%+v", rep.Results)
	}
	if early.Load() {
		t.Error("a GET was sent while ratelimit-remaining was below min-remaining")
	}
	if heads.Load() < 3 {
		t.Errorf("%d HEADs, want the waits to re-check with HEADs", heads.Load())
	}
	if got, ok := hosts.RateLimits()[src.Host]; !ok || got.Limit != 100 {
		t.Errorf("rate-limit reading of the source %+v (%v), want the limit of 100 recorded", got, ok)
	}
}

func TestPullsAreCountedPerRegistry(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	seed(t, src, "app")
	src.Reset()
	m := transport.DefaultHosts()
	e := engine.New(engine.Options{Registry: registry.Options{Hosts: m}})
	task := engine.Task{Name: "t", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{{From: "app", To: "app"}}}
	if rep := e.Run(ctx(t), []engine.Task{task}); rep.Failed() != 0 {
		t.Fatalf("%+v", rep.Results)
	}
	want := src.Count(regtest.KindManifestGet)
	if got := m.Pulls()[src.Host]; got != want || want == 0 {
		t.Errorf("pulls counted %d, the source served %d manifest GETs", got, want)
	}
	if got := m.Pulls()[dst.Host]; got != 0 {
		t.Errorf("%d pulls counted at the target", got)
	}
}
