package engine_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// TestImageLayersStreamTogether: the layers of one image copied alone are
// fetched together, as many at once as the transfer gate allows (8 by
// default), not 4 at a time with the last ones streaming by themselves.
// Each blob GET at the source waits until all six are asked for (or a
// bound passes); the test counts how many were waiting at once.
func TestImageLayersStreamTogether(t *testing.T) {
	const layers = 6
	var (
		mu      sync.Mutex
		waiting int
		peak    int
		all     = make(chan struct{})
		closed  bool
	)
	src := regtest.New(t, regtest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if k, _, _ := regtest.Classify(r.Method, r.URL); k == regtest.KindBlobGet {
				mu.Lock()
				waiting++
				peak = max(peak, waiting)
				if waiting >= layers && !closed {
					closed = true
					close(all)
				}
				mu.Unlock()
				select {
				case <-all:
				case <-time.After(3 * time.Second):
				case <-r.Context().Done():
				}
				mu.Lock()
				waiting--
				mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	}))
	dst := regtest.New(t)
	imagegen.Push(t, src.Ref("big/app:1"), imagegen.Image(61, layers, 4096))
	rep := run(t, engine.Task{Name: "t", Source: plain(src), Target: plain(dst),
		Mappings: []engine.Mapping{{From: "big/app", To: "big/app"}}})
	if rep.Failed() != 0 || rep.Summaries()[0].Copied != 1 {
		t.Fatalf("%+v", rep.Results)
	}
	mu.Lock()
	defer mu.Unlock()
	// The config is a blob GET too: it may or may not be among them.
	if peak < layers {
		t.Errorf("at most %d blob GETs of one image were on the wire at once, want all %d layers", peak, layers)
	}
}
