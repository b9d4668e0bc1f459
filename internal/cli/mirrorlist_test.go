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

// TestMirrorListEscapesHostileLines: list lines are echoed with their
// control characters escaped (an ESC sequence would recolour the terminal
// or retitle it, a NUL hide what follows), and a line whose path has a dot
// segment fails alone, saying it breaks the distribution grammar, while
// its valid neighbour is copied.
func TestMirrorListEscapesHostileLines(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	imagegen.Push(t, src.Ref("team/app:1"), imagegen.Image(520, 1, 256))
	lines := []string{
		src.Host + "/team/app:1",
		src.Host + "/team/app:2\x1b[31m",
		src.Host + "/team/\x1b]0;owned\x07app:1",
		src.Host + "/team/a\x00pp:1",
		src.Host + "/team/../../victim/app3:1",
	}
	path := filepath.Join(t.TempDir(), "images.txt")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("REGMIRROR_DOCKER_DAEMON_JSON", "")
	t.Setenv("REGMIRROR_REGISTRIES_CONF", "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := Execute(ctx, []string{"--insecure-registry", src.Host, "--insecure-registry", dst.Host, "mirror-list",
		"--from", src.Host + "/team", "--to", dst.Host + "/mirror", path}, strings.NewReader(""), &out, &errb)
	if ExitCode(err) != ExitFailed {
		t.Fatalf("exit %d (%v), want %d: some lines failed\n%s\n%s", ExitCode(err), err, ExitFailed, out.String(), errb.String())
	}
	all := out.String() + errb.String()
	if strings.ContainsAny(all, "\x1b\x00\x07") {
		t.Errorf("control characters reached the terminal:\n%q", all)
	}
	for _, want := range []string{`:2\x1b[31m`, `\x1b]0;owned\x07app`, `a\x00pp`, "breaks the distribution grammar", ":1: copied "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), ": failed "); n != 4 {
		t.Errorf("%d lines failed, want 4:\n%s", n, out.String())
	}
	for _, r := range dst.Requests() {
		if strings.Contains(r.Path, "victim") || strings.Contains(r.Path, "..") {
			t.Errorf("the target was sent %s %s", r.Method, r.Path)
		}
	}
}
