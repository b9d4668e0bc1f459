package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// inFlight counts the requests a registry is serving at once and keeps the
// peak. Blob GETs are slowed a little so parallel requests overlap.
type inFlight struct {
	now, peak, total atomic.Int32
	slowHeads        bool // manifest HEADs are slowed too
}

func (f *inFlight) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.now.Add(1)
		defer f.now.Add(-1)
		f.total.Add(1)
		for {
			p := f.peak.Load()
			if n <= p || f.peak.CompareAndSwap(p, n) {
				break
			}
		}
		if kind, _, _ := regtest.Classify(r.Method, r.URL); kind == regtest.KindBlobGet || kind == regtest.KindBlobUpload || (f.slowHeads && kind == regtest.KindManifestHead) {
			time.Sleep(20 * time.Millisecond)
		}
		next.ServeHTTP(w, r)
	})
}

// capRun copies six two-layer images with 4 jobs and 8 transfers, the
// source capped at srcCap and the target at dstCap (0: no cap), and returns
// the peak number of requests each registry served at once.
func capRun(t *testing.T, srcCap, dstCap int) (srcPeak, dstPeak int32) {
	t.Helper()
	var sf, df inFlight
	src := regtest.New(t, regtest.WithMiddleware(sf.middleware))
	dst := regtest.New(t, regtest.WithMiddleware(df.middleware))
	for i := range 6 {
		imagegen.Push(t, src.Ref(fmt.Sprintf("app%d:1", i)), imagegen.Image(uint64(200+i), 2, 512))
	}
	sf.peak.Store(0)
	srcEp, dstEp := plain(src), plain(dst)
	srcEp.MaxConcurrentRequests, dstEp.MaxConcurrentRequests = srcCap, dstCap
	var ms []engine.Mapping
	for i := range 6 {
		ms = append(ms, engine.Mapping{From: fmt.Sprintf("app%d", i), To: fmt.Sprintf("mirror/app%d", i), Tags: tags(t, "1")})
	}
	e := engine.New(engine.Options{Jobs: 4, Registry: registry.Options{BlobsPerImage: 4}})
	rep := e.Run(ctx(t), []engine.Task{{Name: "cap", Source: srcEp, Target: dstEp, Mappings: ms}})
	if rep.Failed() != 0 || len(rep.Results) != 6 {
		t.Fatalf("%+v", rep.Results)
	}
	for i := range 6 {
		want := digestOf(t, src.Ref(fmt.Sprintf("app%d:1", i)))
		if got := digestOf(t, dst.Ref(fmt.Sprintf("mirror/app%d:1", i))); got != want {
			t.Errorf("app%d: target digest %s, source %s", i, got, want)
		}
	}
	if sf.total.Load() == 0 || df.total.Load() == 0 {
		t.Fatal("no requests counted")
	}
	return sf.peak.Load(), df.peak.Load()
}

func TestRequestCapPerRegistry(t *testing.T) {
	t.Parallel()
	// Without a cap the same copy keeps several requests in flight at
	// each registry: the measurement can see a cap being exceeded.
	s0, d0 := capRun(t, 0, 0)
	t.Logf("uncapped: peak %d requests at once at the source, %d at the target", s0, d0)
	if s0 <= 1 || d0 <= 2 {
		t.Fatalf("uncapped peaks %d (source) and %d (target): the test cannot tell a cap from no cap", s0, d0)
	}
	s, d := capRun(t, 1, 2)
	t.Logf("capped at 1 and 2: peak %d at the source, %d at the target", s, d)
	if s > 1 {
		t.Errorf("source capped at 1 served %d requests at once", s)
	}
	if d > 2 {
		t.Errorf("target capped at 2 served %d requests at once", d)
	}
	if s < 1 || d < 1 {
		t.Errorf("peaks %d and %d: nothing measured", s, d)
	}
}

// TestRequestCapCopyWithinOneRegistry: copying from a registry capped at 1
// back into it, with cross-repository mounts refused (as Nexus does), each
// blob streams from a download into an upload to the same host. The upload
// rides on its download's slot instead of waiting for it forever.
func TestRequestCapCopyWithinOneRegistry(t *testing.T) {
	t.Parallel()
	var f inFlight
	noMount := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if q := r.URL.Query(); q.Has("mount") {
				q.Del("mount")
				q.Del("from")
				r.URL.RawQuery = q.Encode()
			}
			next.ServeHTTP(w, r)
		})
	}
	reg := regtest.New(t, regtest.WithMiddleware(f.middleware), regtest.WithMiddleware(noMount))
	for i := range 3 {
		imagegen.Push(t, reg.Ref(fmt.Sprintf("proxy/app%d:1", i)), imagegen.Image(uint64(500+i), 2, 2048))
	}
	reg.Reset()
	f.peak.Store(0)
	ep := plain(reg)
	ep.MaxConcurrentRequests = 1
	var ms []engine.Mapping
	for i := range 3 {
		ms = append(ms, engine.Mapping{From: fmt.Sprintf("proxy/app%d", i), To: fmt.Sprintf("hosted/app%d", i), Tags: tags(t, "1")})
	}
	// Bounded: without the ride this copy waits on itself until cancelled.
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := engine.New(engine.Options{Jobs: 3, Attempts: 1, Registry: registry.Options{BlobsPerImage: 4}})
	rep := e.Run(c, []engine.Task{{Name: "same", Source: ep, Target: ep, Mappings: ms}})
	if rep.Failed() != 0 || len(rep.Results) != 3 {
		t.Fatalf("%+v", rep.Results)
	}
	for i := range 3 {
		if s, d := digestOf(t, reg.Ref(fmt.Sprintf("proxy/app%d:1", i))), digestOf(t, reg.Ref(fmt.Sprintf("hosted/app%d:1", i))); s != d {
			t.Errorf("app%d: copy %s, original %s", i, d, s)
		}
	}
	// Mount requests reach the registry without their mount parameter, so
	// every blob is downloaded and streamed back.
	if n := reg.Count(regtest.KindBlobGet); n < 6 {
		t.Errorf("%d blob GETs, want the 6 layers streamed", n)
	}
	t.Logf("peak %d requests at once", f.peak.Load())
	if p := f.peak.Load(); p > 2 {
		t.Errorf("%d requests at once: a streamed blob may add its upload to the cap of 1, nothing more", p)
	}
}

// TestWarmChecksGoWiderThanJobsButHonourTheCap: a warm run is nothing but
// HEADs, and they go out wider than --jobs (CheckFactor times); a
// max-concurrent-requests of 1 (Nexus) still holds them to one at a time.
func TestWarmChecksGoWiderThanJobsButHonourTheCap(t *testing.T) {
	t.Parallel()
	const jobs, n = 2, 16
	warmPeak := func(srcCap int) int32 {
		sf := &inFlight{slowHeads: true}
		src := regtest.New(t, regtest.WithMiddleware(sf.middleware))
		dst := regtest.New(t)
		base := imagegen.Layer(5, 256)
		for i := range n {
			imagegen.Push(t, src.Ref(fmt.Sprintf("app:v%d", i)), imagegen.Image(uint64(300+i), 1, 128, base))
		}
		ep := plain(src)
		ep.MaxConcurrentRequests = srcCap
		task := engine.Task{Name: "warm", Source: ep, Target: plain(dst), Mappings: []engine.Mapping{{From: "app", To: "app"}}}
		for i, want := range []engine.Status{engine.Copied, engine.Skipped} {
			if i == 1 {
				sf.peak.Store(0)
			}
			rep := engine.New(engine.Options{Jobs: jobs}).Run(ctx(t), []engine.Task{task})
			if rep.Failed() != 0 || len(rep.Results) != n || rep.Results[0].Status != want {
				t.Fatalf("run %d: %+v", i, rep.Results)
			}
		}
		return sf.peak.Load()
	}
	if p := warmPeak(0); p <= jobs {
		t.Errorf("uncapped warm run: at most %d requests at the source at once, want more than --jobs (%d)", p, jobs)
	}
	if p := warmPeak(1); p != 1 {
		t.Errorf("warm run capped at 1: %d requests at the source at once", p)
	}
}
