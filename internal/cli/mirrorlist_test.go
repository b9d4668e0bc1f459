package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// TestMirrorListMaxRequests runs --pull-only with four jobs and
// --max-requests 1 against a registry that records how many requests it
// serves at once: never more than one.
func TestMirrorListMaxRequests(t *testing.T) {
	var inFlight, most atomic.Int32
	reg := regtest.New(t, regtest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := inFlight.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			defer inFlight.Add(-1)
			if strings.Contains(r.URL.Path, "/blobs/") {
				time.Sleep(20 * time.Millisecond) // give overlaps a chance
			}
			next.ServeHTTP(w, r)
		})
	}))
	var list strings.Builder
	for i := range 4 {
		imagegen.Push(t, reg.Ref(fmt.Sprintf("app/i%d:1", i)), imagegen.Image(uint64(500+i), 2, 256))
		fmt.Fprintf(&list, "%s/app/i%d:1\n", reg.Host, i)
	}
	path := filepath.Join(t.TempDir(), "images.txt")
	if err := os.WriteFile(path, []byte(list.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("REGMIRROR_DOCKER_DAEMON_JSON", "")
	t.Setenv("REGMIRROR_REGISTRIES_CONF", "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	most.Store(0)
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := Execute(ctx, []string{"--insecure-registry", reg.Host, "mirror-list", "--pull-only", "--jobs", "4", "--max-requests", "1", path},
		strings.NewReader(""), &out, &errb)
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), errb.String())
	}
	if n := strings.Count(out.String(), ": pulled "); n != 4 {
		t.Fatalf("%d pulled, want 4:\n%s", n, out.String())
	}
	if m := most.Load(); m != 1 {
		t.Errorf("%d requests in flight at once, want 1", m)
	}
}
