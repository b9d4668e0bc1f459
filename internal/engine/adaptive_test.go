package engine_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/testutil/faultproxy"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/logbuf"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// farLink delays every answer of a registry by d once on is set (seeding
// stays fast): a far link in front of a real registry, where what decides
// throughput is how many requests are in flight, not the CPU.
type farLink struct {
	d  time.Duration
	on atomic.Bool
}

func (f *farLink) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.on.Load() {
			time.Sleep(f.d)
		}
		next.ServeHTTP(w, r)
	})
}

// copiesInFlight watches a target for copies under way: a repository's
// copy starts with its first blob request (the engine sends them only
// once it holds a copy slot; the check before is a manifest HEAD) and ends
// when its manifest PUT is answered. One image per repository.
type copiesInFlight struct {
	mu     sync.Mutex
	active map[string]bool
	now    int
	peak   int
}

func (c *copiesInFlight) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind, repo, _ := regtest.Classify(r.Method, r.URL)
		switch kind {
		case regtest.KindBlobHead, regtest.KindBlobUpload, regtest.KindBlobMount:
			c.mu.Lock()
			if !c.active[repo] {
				c.active[repo] = true
				c.now++
				c.peak = max(c.peak, c.now)
			}
			c.mu.Unlock()
		}
		next.ServeHTTP(w, r)
		if kind == regtest.KindManifestPut {
			c.mu.Lock()
			if c.active[repo] {
				delete(c.active, repo)
				c.now--
			}
			c.mu.Unlock()
		}
	})
}

// farRun copies n one-image repositories from a source to a target, both
// delay away (40 ms: a far link), and returns the peak number of copies the target saw under
// way at once, the peak number of requests the source served at once, and
// the engine's "copy concurrency" log lines.
// With warm set it then runs again and describes that run there; with
// dstFault set the target is reached through a fault proxy it arms.
func farRun(t *testing.T, n int, delay time.Duration, o engine.Options, srcCap int, warm *string, dstFault ...func(*faultproxy.Proxy)) (copies int, srcPeak int32, changes []string) {
	t.Helper()
	link := &farLink{d: delay}
	sf := &inFlight{}
	cf := &copiesInFlight{active: map[string]bool{}}
	src := regtest.New(t, regtest.WithMiddleware(func(h http.Handler) http.Handler { return sf.middleware(link.middleware(h)) }))
	dst := regtest.New(t, regtest.WithMiddleware(func(h http.Handler) http.Handler { return cf.middleware(link.middleware(h)) }))
	base := imagegen.Layer(7, 256)
	var ms []engine.Mapping
	for i := range n {
		imagegen.Push(t, src.Ref(fmt.Sprintf("app%d:1", i)), imagegen.Image(uint64(500+i), 0, 0, base))
		ms = append(ms, engine.Mapping{From: fmt.Sprintf("app%d", i), To: fmt.Sprintf("app%d", i), Tags: tags(t, "1")})
	}
	t0 := time.Now()
	sf.peak.Store(0)
	sf.total.Store(0)
	link.on.Store(true)
	var lines logbuf.Buffer
	o.Logger = slog.New(slog.NewTextHandler(&lines, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ep, dstEp := plain(src), plain(dst)
	ep.MaxConcurrentRequests = srcCap
	for _, arm := range dstFault {
		p := faultproxy.New(t, dst.URL)
		arm(p)
		dstEp = registry.Endpoint{Registry: p.Host, PlainHTTP: true}
	}
	rep := engine.New(o).Run(ctx(t), []engine.Task{{Name: "far", Source: ep, Target: dstEp, Mappings: ms}})
	link.on.Store(false)
	t.Logf("%d images in %s, %d source requests", n, time.Since(t0).Round(time.Millisecond), sf.total.Load())
	if rep.Failed() != 0 || rep.Count(engine.Copied) != n {
		t.Fatalf("%d copied, %d failed of %d: %+v", rep.Count(engine.Copied), rep.Failed(), n, rep.Results)
	}
	for i := range n {
		ref := fmt.Sprintf("app%d:1", i)
		if got, want := digestOf(t, dst.Ref(ref)), digestOf(t, src.Ref(ref)); got != want {
			t.Errorf("%s: target digest %s, source %s", ref, got, want)
		}
	}
	for _, l := range strings.Split(lines.String(), "\n") {
		if strings.Contains(l, "copy concurrency") {
			t.Log(l)
			changes = append(changes, l)
		}
	}
	if warm != nil {
		t0 = time.Now()
		sf.peak.Store(0)
		sf.total.Store(0)
		link.on.Store(true)
		rep = engine.New(o).Run(ctx(t), []engine.Task{{Name: "far", Source: ep, Target: dstEp, Mappings: ms}})
		link.on.Store(false)
		if rep.Count(engine.Skipped) != n {
			t.Fatalf("warm run: %d skipped of %d", rep.Count(engine.Skipped), n)
		}
		*warm = fmt.Sprintf("warm: %d images in %s, %d source requests, at most %d at once", n, time.Since(t0).Round(time.Millisecond), sf.total.Load(), sf.peak.Load())
	}
	return cf.peak, sf.peak.Load(), changes
}

// On a far link the copy limit grows past where it starts, and never past
// --jobs.
func TestAdaptiveCopiesGrowOnAFarLinkUpToTheCap(t *testing.T) {
	t.Parallel()
	const cap = 12
	if engine.StartJobs >= cap {
		t.Fatalf("the test needs StartJobs (%d) below its cap %d", engine.StartJobs, cap)
	}
	peak, _, changes := farRun(t, 48, 40*time.Millisecond, engine.Options{Jobs: cap}, 0, nil)
	if len(changes) == 0 {
		t.Errorf("the copy limit never changed")
	}
	if peak <= engine.StartJobs {
		t.Errorf("at most %d copies under way at once, want more than the start (%d)", peak, engine.StartJobs)
	}
	if peak > cap {
		t.Errorf("%d copies under way at once, above --jobs %d", peak, cap)
	}
}

// However wide the copies and checks go, a registry capped at one request
// at a time (Nexus) sees one.
func TestAdaptiveCopiesHonourOneRequestAtATime(t *testing.T) {
	t.Parallel()
	_, srcPeak, _ := farRun(t, 12, 40*time.Millisecond, engine.Options{}, 1, nil)
	if srcPeak != 1 {
		t.Errorf("the source capped at 1 served %d requests at once", srcPeak)
	}
}

// A 429 or a 5xx from the target halves the copy limit at once: the first
// copy to finish after it sees the transport's count move.
func TestAdaptiveCopiesHalveOnPushback(t *testing.T) {
	t.Parallel()
	for _, code := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			hosts := transport.DefaultHosts()
			hosts.Backoff429 = 10 * time.Millisecond
			o := engine.Options{Attempts: 3, RetryWait: time.Millisecond, Registry: registry.Options{Hosts: hosts,
				Retry: &transport.Retry{Attempts: 3, Wait: time.Millisecond, Factor: 1}}}
			var rule *faultproxy.Rule
			var p *faultproxy.Proxy
			_, _, changes := farRun(t, 24, 40*time.Millisecond, o, 0, nil, func(fp *faultproxy.Proxy) {
				p = fp
				// The first manifest PUT: before any copy finished.
				rule = fp.Inject(faultproxy.Match{Method: http.MethodPut, Kind: regtest.KindManifestPut}, 1, faultproxy.Status(code, ""))
			})
			mustHit(t, p, rule, 1)
			if hosts.Pushback() == 0 {
				t.Fatal("the transport counted no pushback")
			}
			want := fmt.Sprintf("copy concurrency %d → %d (pushback", engine.StartJobs, engine.StartJobs/2)
			if len(changes) == 0 || !strings.Contains(changes[0], want) {
				t.Errorf("first change %q, want %q", changes, want)
			}
		})
	}
}
