package remote_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/transport"
)

// The catalog is paged like a tag list and bounded the same way: see
// hostile_test.go for the harness.

func TestEndlessCatalogPageIsAnError(t *testing.T) {
	s, sent := hostile(t, func(w http.ResponseWriter, r *http.Request, sent *atomic.Int64) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"repositories":["r"`)
		endless(w, r, sent, `,"r"`)
	})
	_, _, err := s.Catalog(testCtx(t), 0)
	if !errors.Is(err, transport.ErrTooLarge) {
		t.Fatalf("want ErrTooLarge, got %v", err)
	}
	if n := sent.Load(); n > maxSent {
		t.Errorf("server got %d bytes out", n)
	}
}

func TestEndlessCatalogPagesAreAnError(t *testing.T) {
	var pages atomic.Int64
	s, _ := hostile(t, func(w http.ResponseWriter, r *http.Request, _ *atomic.Int64) {
		n := pages.Add(1)
		w.Header().Set("Link", fmt.Sprintf(`</v2/_catalog?n=1&last=r%d>; rel="next"`, n))
		fmt.Fprintf(w, `{"repositories":["r%d"]}`, n)
	})
	_, _, err := s.Catalog(testCtx(t), 0)
	if !errors.Is(err, transport.ErrTooLarge) {
		t.Fatalf("want ErrTooLarge, got %v", err)
	}
	if n := pages.Load(); n > 51 {
		t.Errorf("%d pages fetched, the cap is 50", n)
	}
	// With maxItems, listing stops there and says the list was cut.
	pages.Store(0)
	repos, truncated, err := s.Catalog(testCtx(t), 3)
	if err != nil || !truncated || strings.Join(repos, " ") != "r1 r2 r3" || pages.Load() != 3 {
		t.Errorf("max 3: %v %v %v after %d pages", repos, truncated, err, pages.Load())
	}
}

func TestCatalogLinkLoopsAndForeignHosts(t *testing.T) {
	for name, link := range map[string]func(r *http.Request) string{
		"loops": func(r *http.Request) string {
			if r.URL.Query().Get("last") == "a" {
				return `</v2/_catalog?last=b>; rel="next"`
			}
			return `</v2/_catalog?last=a>; rel="next"`
		},
		"another host": func(*http.Request) string { return `<http://169.254.169.254/v2/_catalog?last=a>; rel="next"` },
		"malformed":    func(*http.Request) string { return `/v2/_catalog?last=a; rel="next"` },
	} {
		t.Run(name, func(t *testing.T) {
			var pages atomic.Int64
			s, _ := hostile(t, func(w http.ResponseWriter, r *http.Request, _ *atomic.Int64) {
				pages.Add(1)
				w.Header().Set("Link", link(r))
				fmt.Fprint(w, `{"repositories":["x"]}`)
			})
			_, _, err := s.Catalog(testCtx(t), 0)
			if err == nil || !strings.Contains(err.Error(), strings.Fields(name)[0]) && !strings.Contains(err.Error(), "Link") {
				t.Fatalf("want an error about the Link header, got %v", err)
			}
			if n := pages.Load(); n > 4 {
				t.Errorf("%d pages fetched", n)
			}
		})
	}
}

func TestCatalogRefusedIsNoCatalog(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed} {
		s, _ := hostile(t, func(w http.ResponseWriter, r *http.Request, _ *atomic.Int64) {
			w.WriteHeader(status)
		})
		_, _, err := s.Catalog(testCtx(t), 0)
		if !errors.Is(err, registry.ErrNoCatalog) || !strings.Contains(err.Error(), fmt.Sprint(status)) {
			t.Errorf("HTTP %d: want ErrNoCatalog naming the status, got %v", status, err)
		}
	}
	// A server error is not "no catalog": it may pass.
	s, _ := hostile(t, func(w http.ResponseWriter, r *http.Request, _ *atomic.Int64) {
		w.WriteHeader(http.StatusBadGateway)
	})
	if _, _, err := s.Catalog(testCtx(t), 0); err == nil || errors.Is(err, registry.ErrNoCatalog) || !transport.Retryable(err) {
		t.Errorf("HTTP 502: want a retryable listing error, got %v", err)
	}
}
