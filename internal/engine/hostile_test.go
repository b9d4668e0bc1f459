package engine_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/filter"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/testutil/faultproxy"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// A hostile source names things no real registry would serve: tags and
// catalog entries with dot segments, slashes, spaces, a leading dash, 200
// characters. Such a registry is a hand-written handler in front of a real
// one (the real one serves the content). The target is a real registry
// behind a reverse proxy that cleans dot segments out of paths, as nginx
// does with a URI in proxy_pass: there a request for
// /v2/mirror/x/manifests/../../../victim/app/manifests/latest lands in
// victim/app.

var hostileTags = []string{
	"1", "ok1",
	"../../../victim/app/manifests/latest",
	"..", "-x", "a/b", "x y", strings.Repeat("t", 200),
}

// dotSegment finds "." or ".." as a whole path segment, raw or escaped.
var dotSegment = regexp.MustCompile(`(?i)(^|/)(\.|%2e){1,2}(/|$)`)

// cleaningProxy is a reverse proxy that resolves dot segments before it
// forwards, and records every raw path it was sent.
type cleaningProxy struct {
	URL, Host string
	mu        sync.Mutex
	raw       []string
}

func newCleaningProxy(t *testing.T, backend string) *cleaningProxy {
	t.Helper()
	u, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	p := &cleaningProxy{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.URL.Path = path.Clean(r.In.URL.Path)
		if strings.HasSuffix(r.In.URL.Path, "/") && r.Out.URL.Path != "/" {
			r.Out.URL.Path += "/" // as nginx keeps it: /v2/ stays /v2/
		}
		r.Out.URL.RawPath = ""
		r.Out.Host = u.Host
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.raw = append(p.raw, r.URL.EscapedPath())
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL, p.Host = srv.URL, strings.TrimPrefix(srv.URL, "http://")
	return p
}

func (p *cleaningProxy) paths() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.raw...)
}

// noDotSegments fails the test for every path that carried one.
func noDotSegments(t *testing.T, who string, paths []string) {
	t.Helper()
	if len(paths) == 0 {
		t.Fatalf("%s saw no request: the test did not exercise it", who)
	}
	for _, p := range paths {
		if dotSegment.MatchString(p) || strings.ContainsAny(p, " \\") {
			t.Errorf("%s was sent %q", who, p)
		}
	}
}

// hostileSource serves the real registry's content under hostile names:
// repository x lists hostileTags, every one of which resolves to x:1, and
// the catalog lists team/ok beside team/../../victim/app2.
func hostileSource(t *testing.T) *regtest.Registry {
	t.Helper()
	return regtest.New(t, regtest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch p := r.URL.Path; {
			case p == "/v2/x/tags/list":
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]any{"name": "x", "tags": hostileTags})
				return
			case p == "/v2/_catalog":
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]any{"repositories": []string{"team/ok", "team/../../victim/app2", "x"}})
				return
			case strings.HasPrefix(p, "/v2/x/manifests/") && !strings.Contains(p, "sha256:"):
				r.URL.Path = "/v2/x/manifests/1"
			}
			next.ServeHTTP(w, r)
		})
	}))
}

func TestHostileNamesFailAloneAndNeverLeaveTheMapping(t *testing.T) {
	src := hostileSource(t)
	dst := regtest.New(t)
	proxy := newCleaningProxy(t, dst.URL)

	img := imagegen.Image(1200, 1, 4<<10)
	imagegen.Push(t, src.Ref("x:1"), img)
	imagegen.Push(t, src.Ref("team/ok:1"), imagegen.Image(1201, 1, 4<<10))
	victim := imagegen.Image(1202, 1, 4<<10)
	imagegen.Push(t, dst.Ref("victim/app:latest"), victim)
	victimDigest := imagegen.Digest(t, victim).String()

	all, err := filter.ParseTags(nil)
	if err != nil {
		t.Fatal(err)
	}
	task := engine.Task{Name: "hostile", Source: plain(src), Target: registry.Endpoint{Registry: proxy.Host, PlainHTTP: true},
		Mappings: []engine.Mapping{
			{From: "x", To: "mirror/x", Tags: all},
			{From: "regex:team/.*", To: "mirror", Tags: tags(t, "1")},
		}}
	e := engine.New(engine.Options{Jobs: 4, Attempts: 1, RetryWait: time.Millisecond,
		Registry: registry.Options{Retry: &transport.Retry{Attempts: 1, Wait: time.Millisecond, Factor: 1}}})
	rep := e.Run(ctx(t), []engine.Task{task})

	copied := map[string]bool{}
	var invalid []string
	for _, r := range rep.Results {
		switch {
		case r.Status == engine.Copied:
			copied[r.Target] = true
		case r.Status == engine.Failed && errors.Is(r.Err, registry.ErrInvalidName):
			if !strings.Contains(r.Err.Error(), "breaks the distribution grammar") {
				t.Errorf("message %q does not say the name breaks the distribution grammar", r.Err)
			}
			if strings.ContainsAny(r.Err.Error(), "\x00\x1b") {
				t.Errorf("message %q carries control characters", r.Err)
			}
			invalid = append(invalid, r.Err.Error())
		default:
			t.Errorf("%s -> %s: %s %v", r.Source, r.Target, r.Status, r.Err)
		}
	}
	for _, want := range []string{"mirror/x:1", "mirror/x:ok1", "mirror/team/ok:1"} {
		if !copied[proxy.Host+"/"+want] {
			t.Errorf("valid neighbour %s was not copied (copied: %v)", want, copied)
		}
	}
	// Six bad tags and one bad catalog entry, each failed on its own.
	if len(invalid) != 7 {
		t.Errorf("%d names failed as invalid, want 7: %q", len(invalid), invalid)
	}
	for _, bad := range []string{`"../../../victim/app/manifests/latest"`, `"x y"`, `"-x"`, `"team/../../victim/app2"`} {
		found := false
		for _, msg := range invalid {
			found = found || strings.Contains(msg, bad)
		}
		if !found {
			t.Errorf("no failure quotes %s", bad)
		}
	}

	noDotSegments(t, "the target's proxy", proxy.paths())
	var srcPaths []string
	for _, r := range src.Requests() {
		srcPaths = append(srcPaths, r.Path)
	}
	noDotSegments(t, "the source", srcPaths)

	if got := digestOf(t, dst.Ref("victim/app:latest")); got != victimDigest {
		t.Errorf("victim/app:latest is now %s, was %s", got, victimDigest)
	}
	vt, err := remote.List(parse(t, dst.Ref("victim/app:latest")).Context())
	if err != nil || len(vt) != 1 {
		t.Errorf("victim/app tags %v (%v), want only latest", vt, err)
	}
	if _, err := remote.List(parse(t, dst.Ref("victim/app2:1")).Context()); err == nil {
		t.Error("victim/app2 exists on the target")
	}
}

// TestOneTagsFailureIsNotAnothers: eight valid tags of one digest are
// copied at once and the target rejects the manifest PUT of one of them.
// go-containerregistry's pusher shares one result per manifest digest among
// the pushes of a repository, so the others used to fail with that tag's
// error; each tag now fails or succeeds on its own.
func TestOneTagsFailureIsNotAnothers(t *testing.T) {
	r := newRig(t)
	var all []string
	for i := range 8 {
		tag := fmt.Sprintf("t%d", i)
		imagegen.Push(t, r.src.Ref("a:"+tag), r.images["a"])
		all = append(all, tag)
	}
	rule := r.dp.Inject(faultproxy.Match{Method: http.MethodPut, Kind: regtest.KindManifestPut, Repo: "a", Ref: "t3"}, 0,
		faultproxy.Status(http.StatusBadRequest, "MANIFEST_INVALID"))
	task := engine.Task{Name: "t", Source: r.srcEP, Target: r.dstEP,
		Mappings: []engine.Mapping{{From: "a", To: "a", Tags: tags(t, all...)}}}
	e := engine.New(engine.Options{Jobs: 8, Attempts: 1, RetryWait: time.Millisecond, Registry: registry.Options{
		Retry: &transport.Retry{Attempts: 1, Wait: time.Millisecond, Factor: 1}, Hosts: r.manners}})
	rep := e.Run(ctx(t), []engine.Task{task})
	mustHit(t, r.dp, rule, 1)
	for _, res := range rep.Results {
		want := engine.Copied
		if res.Tag == "t3" {
			want = engine.Failed
		}
		if res.Status != want {
			t.Errorf("%s: %s (%v), want %s", res.Tag, res.Status, res.Err, want)
		}
	}
}
