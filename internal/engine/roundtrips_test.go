package engine_test

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// perKind counts r's requests by "METHOD kind", e.g. "PUT blob-upload".
func perKind(r *regtest.Registry) map[string]int {
	n := map[string]int{}
	for _, q := range r.Requests() {
		n[q.Method+" "+string(q.Kind)]++
	}
	return n
}

func show(m map[string]int) string {
	var ks []string
	for k, v := range m {
		ks = append(ks, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(ks)
	return strings.Join(ks, " ")
}

// TestRoundTripsPerImage counts every request both registries see for a
// cold and then a warm copy of tags shaped like the benchmark's `many`
// workload (two base layers shared by every tag, one layer and a config of
// its own), in two repositories of one host. The budget is what a copy
// needs and nothing more:
//
//   - one /v2/ ping per host per run, whatever the number of repositories;
//   - each repository costs a tag list at each end, read at once; a tag
//     the target's list lacks costs the target no HEAD;
//   - a cold image costs the source one manifest GET and its blob GETs,
//     no HEAD (the target lacked the tag, so the GET answers the question);
//   - a new small blob costs the target a POST and one PUT carrying the
//     body (no PATCH, and no HEAD: the POST asks to mount it from the
//     repository itself, which answers the HEAD's question); a blob the
//     run already put into the repository costs nothing, and one it put
//     into another repository a HEAD and a mount;
//   - a warm image costs one manifest HEAD at each end and no GET.
func TestRoundTripsPerImage(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	bases := []v1.Layer{imagegen.Layer(7, 4096), imagegen.Layer(8, 2048)}
	const n = 5 // tags per repository
	repos := []string{"many/a", "many/b"}
	for ri, r := range repos {
		for i := range n {
			imagegen.Push(t, src.Ref(fmt.Sprintf("%s:v%d", r, i)), imagegen.Image(uint64(70+10*ri+i), 1, 512, bases...))
		}
	}
	src.Reset()
	task := engine.Task{Name: "t", Source: plain(src), Target: plain(dst)}
	for _, r := range repos {
		task.Mappings = append(task.Mappings, engine.Mapping{From: r, To: "mirror/" + r})
	}
	images := n * len(repos)

	rep := run(t, task)
	if rep.Failed() != 0 || rep.Summaries()[0].Copied != images {
		t.Fatalf("cold: %+v", rep.Results)
	}
	// Per image: a config and a layer of its own; the two base layers are
	// new to the first repository and mounted into the second.
	own := 2 * images
	wantCold := map[string]map[string]int{
		"source": {
			"GET ping": 1, "GET tags-list": len(repos), "GET manifest-get": images,
			"GET blob-get": own + len(bases),
		},
		"target": {
			// Its tag list per repository instead of a HEAD per tag.
			"GET ping": 1, "GET tags-list": len(repos), "PUT manifest-put": images,
			"HEAD blob-head":  len(bases) * (len(repos) - 1),
			"POST blob-mount": own + len(bases)*len(repos),
			"PUT blob-upload": own + len(bases),
		},
	}
	check := func(phase string, want map[string]map[string]int) {
		t.Helper()
		for side, r := range map[string]*regtest.Registry{"source": src, "target": dst} {
			got := perKind(r)
			if show(got) != show(want[side]) {
				t.Errorf("%s copy of %d images: %s saw\n  %s\nwant\n  %s", phase, images, side, show(got), show(want[side]))
			}
		}
	}
	check("cold", wantCold)
	for _, r := range repos {
		for i := range n {
			ref := fmt.Sprintf("%s:v%d", r, i)
			if s, d := digestOf(t, src.Ref(ref)), digestOf(t, dst.Ref("mirror/"+ref)); s != d {
				t.Errorf("%s: target %s, source %s", ref, d, s)
			}
		}
	}

	src.Reset()
	dst.Reset()
	rep = run(t, task)
	if rep.Failed() != 0 || rep.Summaries()[0].Skipped != images {
		t.Fatalf("warm: %+v", rep.Results)
	}
	check("warm", map[string]map[string]int{
		"source": {"GET ping": 1, "GET tags-list": len(repos), "HEAD manifest-head": images},
		"target": {"GET ping": 1, "GET tags-list": len(repos), "HEAD manifest-head": images},
	})
}

// TestMonolithicRefusedFallsBackToChunked: a registry that answers a PUT
// carrying a blob with 405 (one that only takes chunked uploads) still gets
// every image, through PATCH and an empty PUT, and is asked monolithically
// only once.
func TestMonolithicRefusedFallsBackToChunked(t *testing.T) {
	var refused atomic.Int32
	chunkedOnly := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// A PUT with a body: a length, or chunked (-1).
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && r.ContentLength != 0 {
				refused.Add(1)
				http.Error(w, "monolithic uploads not supported", http.StatusMethodNotAllowed)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	src, dst := regtest.New(t), regtest.New(t, regtest.WithMiddleware(chunkedOnly))
	const n = 3
	for i := range n {
		imagegen.Push(t, src.Ref(fmt.Sprintf("app:v%d", i)), imagegen.Image(uint64(90+i), 2, 1024))
	}
	e := engine.New(engine.Options{Jobs: 1, Registry: registry.Options{BlobsPerImage: 1}})
	rep := e.Run(ctx(t), []engine.Task{{Name: "t", Source: plain(src), Target: plain(dst),
		Mappings: []engine.Mapping{{From: "app", To: "app"}}}})
	if rep.Failed() != 0 || rep.Summaries()[0].Copied != n {
		t.Fatalf("%+v", rep.Results)
	}
	if got := refused.Load(); got != 1 {
		t.Errorf("the registry refused %d monolithic PUTs, want exactly 1 (then chunked)", got)
	}
	// 3 blobs per image (config, two layers): all but the first chunked.
	if got, want := perKind(dst)["PATCH blob-upload"], 3*n; got != want {
		t.Errorf("%d PATCHes, want %d (every blob chunked, the refused one again)", got, want)
	}
	for i := range n {
		ref := fmt.Sprintf("app:v%d", i)
		if s, d := digestOf(t, src.Ref(ref)), digestOf(t, dst.Ref(ref)); s != d {
			t.Errorf("%s: target %s, source %s", ref, d, s)
		}
	}
}
