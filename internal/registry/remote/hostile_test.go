package remote_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/remote"
	rtransport "github.com/regmirror/regmirror/internal/registry/transport"
)

// Hostile registries: responses no real registry sends on demand, so each
// is a hand-written handler. Every one must end in an error, promptly, and
// without reading (or holding) more than a bound.

// hostile serves h after answering the /v2/ ping, and counts the bytes h
// managed to write.
func hostile(t *testing.T, h func(w http.ResponseWriter, r *http.Request, sent *atomic.Int64)) (registry.Store, *atomic.Int64) {
	t.Helper()
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			w.WriteHeader(http.StatusOK)
			return
		}
		h(w, r, &sent)
	}))
	t.Cleanup(srv.Close)
	m := rtransport.DefaultHosts()
	m.IdleTimeout = 300 * time.Millisecond
	m.MaxTagPages = 50
	m.MaxListSize = 1 << 20
	s, err := remote.Open(registry.Endpoint{Registry: strings.TrimPrefix(srv.URL, "http://"), PlainHTTP: true, Anonymous: true},
		registry.Options{Hosts: m, Retry: &rtransport.Retry{Attempts: 2, Wait: time.Millisecond, Factor: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return s, &sent
}

// endless writes chunk after chunk until the client goes away (or 1 GiB,
// so the test is bounded even if the client never gives up).
func endless(w http.ResponseWriter, r *http.Request, sent *atomic.Int64, chunk string) {
	buf := []byte(strings.Repeat(chunk, 64<<10/len(chunk)))
	for sent.Load() < 1<<30 && r.Context().Err() == nil {
		n, err := w.Write(buf)
		sent.Add(int64(n))
		if err != nil {
			return
		}
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The client stops reading long before the server would stop writing; what
// the server got out is the read plus the sockets' buffers.
const maxSent = 16 << 20

func TestHugeErrorBodyKeepsStatusAndIsNotRead(t *testing.T) {
	s, sent := hostile(t, func(w http.ResponseWriter, r *http.Request, sent *atomic.Int64) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"errors":[{"code":"UNAVAILABLE","message":"`)
		endless(w, r, sent, "x")
	})
	_, err := s.Fetch(testCtx(t), "app", "1")
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("want the 503 as a transport error, got %v", err)
	}
	if !rtransport.Retryable(err) {
		t.Error("a 503 with a huge body is no longer retryable")
	}
	if n := sent.Load(); n > maxSent {
		t.Errorf("server got %d bytes out before the client hung up", n)
	}
}

func TestManifestOverLimitIsAnError(t *testing.T) {
	for _, tc := range []struct {
		name   string
		length bool // announce Content-Length
	}{{"content-length", true}, {"chunked", false}} {
		t.Run(tc.name, func(t *testing.T) {
			s, sent := hostile(t, func(w http.ResponseWriter, r *http.Request, sent *atomic.Int64) {
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("0", 64))
				if tc.length {
					w.Header().Set("Content-Length", fmt.Sprint(5<<20))
				}
				if r.Method == http.MethodHead {
					return
				}
				fmt.Fprint(w, `{"schemaVersion":2,"annotations":{"a":"`)
				endless(w, r, sent, "y")
			})
			_, err := s.Fetch(testCtx(t), "app", "1")
			if !errors.Is(err, rtransport.ErrTooLarge) {
				t.Fatalf("want ErrTooLarge, got %v", err)
			}
			if rtransport.Retryable(err) {
				t.Error("an oversized manifest is retryable")
			}
			if n := sent.Load(); n > maxSent {
				t.Errorf("server got %d bytes out", n)
			}
		})
	}
}

func TestEndlessTagListPageIsAnError(t *testing.T) {
	s, sent := hostile(t, func(w http.ResponseWriter, r *http.Request, sent *atomic.Int64) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"name":"app","tags":["t"`)
		endless(w, r, sent, `,"t"`)
	})
	_, err := s.Tags(testCtx(t), "app")
	if !errors.Is(err, rtransport.ErrTooLarge) {
		t.Fatalf("want ErrTooLarge, got %v", err)
	}
	if n := sent.Load(); n > maxSent {
		t.Errorf("server got %d bytes out", n)
	}
}

func TestEndlessTagListPagesAreAnError(t *testing.T) {
	var pages atomic.Int64
	s, _ := hostile(t, func(w http.ResponseWriter, r *http.Request, _ *atomic.Int64) {
		n := pages.Add(1)
		w.Header().Set("Link", fmt.Sprintf(`</v2/app/tags/list?n=1&last=t%d>; rel="next"`, n))
		fmt.Fprintf(w, `{"name":"app","tags":["t%d"]}`, n)
	})
	_, err := s.Tags(testCtx(t), "app")
	if !errors.Is(err, rtransport.ErrTooLarge) {
		t.Fatalf("want ErrTooLarge, got %v", err)
	}
	if n := pages.Load(); n > 51 {
		t.Errorf("%d pages fetched, the cap is 50", n)
	}
}

func TestLoopingLinkHeaderIsAnError(t *testing.T) {
	var pages atomic.Int64
	s, _ := hostile(t, func(w http.ResponseWriter, r *http.Request, _ *atomic.Int64) {
		pages.Add(1)
		// a -> b -> a -> ...
		next := "a"
		if r.URL.Query().Get("last") == "a" {
			next = "b"
		}
		w.Header().Set("Link", fmt.Sprintf(`</v2/app/tags/list?last=%s>; rel="next"`, next))
		fmt.Fprintf(w, `{"name":"app","tags":["%s"]}`, next)
	})
	_, err := s.Tags(testCtx(t), "app")
	if err == nil || !strings.Contains(err.Error(), "loops") {
		t.Fatalf("want a loop error, got %v", err)
	}
	if n := pages.Load(); n > 4 {
		t.Errorf("%d pages fetched before the loop was seen", n)
	}
}

func TestStalledManifestIsAnIdleTimeout(t *testing.T) {
	s, _ := hostile(t, func(w http.ResponseWriter, r *http.Request, _ *atomic.Int64) {
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	})
	_, err := s.Fetch(testCtx(t), "app", "1")
	if !errors.Is(err, rtransport.ErrIdleTimeout) {
		t.Fatalf("want ErrIdleTimeout, got %v", err)
	}
}

// TestInvalidNamesAreNeverSent: whatever the caller hands the store, a
// repository or reference that breaks the distribution grammar is refused
// before a request is made.
func TestInvalidNamesAreNeverSent(t *testing.T) {
	var asked atomic.Int64
	s, _ := hostile(t, func(w http.ResponseWriter, r *http.Request, _ *atomic.Int64) {
		asked.Add(1)
		w.WriteHeader(http.StatusNotFound)
	})
	ctx := testCtx(t)
	for _, c := range []struct{ repo, ref string }{
		{"mirror/x", "../../../victim/app/manifests/latest"}, {"mirror/x", ".."}, {"mirror/x", "-x"}, {"mirror/x", "a/b"},
		{"mirror/x", "x y"}, {"mirror/x", strings.Repeat("t", 200)}, {"team/../../victim/app2", "1"}, {"a/./b", "1"},
		{"mirror/x", "sha256:../../x"},
	} {
		_, herr := s.Head(ctx, c.repo, c.ref)
		_, ferr := s.Fetch(ctx, c.repo, c.ref)
		_, perr := s.Push(ctx, c.repo, c.ref, &registry.Artifact{})
		for _, err := range []error{herr, ferr, perr} {
			if !errors.Is(err, registry.ErrInvalidName) {
				t.Errorf("%s %s: %v, want ErrInvalidName", c.repo, c.ref, err)
			}
		}
	}
	if _, err := s.Tags(ctx, "a/../b"); !errors.Is(err, registry.ErrInvalidName) {
		t.Errorf("tags of a/../b: %v", err)
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("%d requests reached the registry", n)
	}
}
