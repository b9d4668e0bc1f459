package engine_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regmirror/regmirror/internal/engine"
	regremote "github.com/regmirror/regmirror/internal/registry/remote"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// linkedBlobs sets up a target repository "app" that already links a small
// and a big blob (app:v1 was pushed there before the run, so the run's
// ledger knows nothing of them) and a source whose app:v2 is a new image
// sharing both. It returns the source and the two shared digests.
func linkedBlobs(t *testing.T, dst *regtest.Registry) (src *regtest.Registry, small, big string) {
	t.Helper()
	src = regtest.New(t)
	smallL := imagegen.Layer(21, 2048)
	bigL := imagegen.Layer(22, regremote.MonolithicMax+1)
	v1img := imagegen.Image(23, 1, 512, smallL, bigL)
	imagegen.Push(t, src.Ref("app:v1"), v1img)
	imagegen.Push(t, dst.Ref("app:v1"), v1img)
	imagegen.Push(t, src.Ref("app:v2"), imagegen.Image(24, 1, 512, smallL, bigL))
	src.Reset()
	dst.Reset()
	digest := func(l v1.Layer) string {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	return src, digest(smallL), digest(bigL)
}

// requestsFor lists r's requests about blob d ("METHOD kind status"),
// upload PUTs that commit d included.
func requestsFor(r *regtest.Registry, d string) []string {
	var out []string
	for _, q := range r.Requests() {
		v, _ := url.ParseQuery(q.Query)
		if q.Ref == d || v.Get("digest") == d {
			out = append(out, q.Method+" "+string(q.Kind)+" "+http.StatusText(q.Status))
		}
	}
	return out
}

// copyApp runs a copy of app from src to dst, which must copy v2 and skip
// v1, and returns what the target saw by kind and about each digest of
// about (see requestsFor), before checking the digests.
func copyApp(t *testing.T, src, dst *regtest.Registry, about ...string) (kinds string, seen []string) {
	t.Helper()
	rep := run(t, engine.Task{Name: "t", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{{From: "app", To: "app"}}})
	if rep.Failed() != 0 || rep.Summaries()[0].Copied != 1 || rep.Summaries()[0].Skipped != 1 {
		t.Fatalf("%+v", rep.Results)
	}
	kinds = show(perKind(dst))
	for _, d := range about {
		seen = append(seen, strings.Join(requestsFor(dst, d), ", "))
	}
	for _, tag := range []string{"v1", "v2"} {
		if s, d := digestOf(t, src.Ref("app:"+tag)), digestOf(t, dst.Ref("app:"+tag)); s != d {
			t.Errorf("app:%s: target %s, source %s", tag, d, s)
		}
	}
	return kinds, seen
}

// stripMounts is a proxy in front of a real registry that makes it one
// that ignores mounts: it drops mount=, from= and origin= from every POST
// and counts the POSTs it changed.
func stripMounts(n *atomic.Int32) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if q := r.URL.Query(); r.Method == http.MethodPost && q.Has("mount") {
				n.Add(1)
				q.Del("mount")
				q.Del("from")
				q.Del("origin")
				r.URL.RawQuery = q.Encode()
			}
			next.ServeHTTP(w, r)
		})
	}
}

// TestSmallBlobTheRepositoryLinks: a small blob the target repository
// already links, but the run knows nothing of, costs one POST that mounts
// it from the repository itself (201): no HEAD, no upload, not even a read
// from the source. A big one keeps its HEAD. A registry that ignores mount
// (answers 202 for a blob it holds) gets the small blob uploaded again, and
// nothing else changes.
func TestSmallBlobTheRepositoryLinks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ignore bool
		// what the target sees about the small shared blob; its PUTs
		// and the source's blob GETs (config and own layer, and the
		// small shared one when it is uploaded again).
		small      string
		puts, gets int
	}{
		{"mounted", false, "POST blob-mount Created", 2, 2},
		{"mount ignored", true, "POST blob-mount Accepted, PUT blob-upload Created", 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stripped atomic.Int32
			var opts []regtest.Option
			if tc.ignore {
				opts = append(opts, regtest.WithMiddleware(stripMounts(&stripped)))
			}
			dst := regtest.New(t, opts...)
			src, small, big := linkedBlobs(t, dst)
			stripped.Store(0)
			kinds, seen := copyApp(t, src, dst, small, big)
			if n := stripped.Load(); tc.ignore && n != 3 {
				t.Fatalf("the proxy stripped %d mounts, want 3 (config, own layer, small shared layer): the test did not exercise it", n)
			}
			// The recorder sits in front of the proxy: it sees the
			// mount asked for and what the registry answered.
			if seen[0] != tc.small {
				t.Errorf("the target saw for the small shared blob: %s; want %s", seen[0], tc.small)
			}
			if seen[1] != "HEAD blob-head OK" {
				t.Errorf("the target saw for the big shared blob: %s; want only a HEAD answered 200", seen[1])
			}
			// The tag list answers for app:v2, which the target lacks;
			// app:v2's config and own layer are new: a POST (the
			// mount refused: 202) and a PUT carrying the body each.
			want := fmt.Sprintf("GET ping=1 GET tags-list=1 HEAD blob-head=1 HEAD manifest-head=1 POST blob-mount=3 PUT blob-upload=%d PUT manifest-put=1", tc.puts)
			if kinds != want {
				t.Errorf("target saw\n  %s\nwant\n  %s", kinds, want)
			}
			if got := src.Count(regtest.KindBlobGet); got != tc.gets {
				t.Errorf("%d blob GETs at the source, want %d", got, tc.gets)
			}
		})
	}
}
