package engine_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/filter"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func plain(r *regtest.Registry) registry.Endpoint {
	return registry.Endpoint{Registry: r.Host, PlainHTTP: true}
}

func tags(t testing.TB, specs ...string) *filter.Tags {
	t.Helper()
	f, err := filter.ParseTags(specs)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func digestOf(t *testing.T, ref string, opts ...remote.Option) string {
	t.Helper()
	d, err := remote.Head(parse(t, ref), opts...)
	if err != nil {
		t.Fatalf("HEAD %s: %v", ref, err)
	}
	return d.Digest.String()
}

func parse(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func run(t *testing.T, tasks ...engine.Task) *engine.Report {
	t.Helper()
	e := engine.New(engine.Options{Jobs: 3, Registry: registry.Options{Retry: &transport.Retry{Attempts: 2, Wait: time.Millisecond, Factor: 1}}})
	return e.Run(ctx(t), tasks)
}

func statuses(rep *engine.Report) map[string]engine.Status {
	m := map[string]engine.Status{}
	for _, r := range rep.Results {
		m[r.Tag] = r.Status
	}
	return m
}

// seed pushes 1.0 (single image), 1.1 and latest (the same multi-arch index)
// that share a base layer.
func seed(t *testing.T, src *regtest.Registry, repo string, opts ...remote.Option) {
	t.Helper()
	base := imagegen.Layer(1, 2048)
	imagegen.Push(t, src.Ref(repo+":1.0"), imagegen.Image(10, 2, 1024, base), opts...)
	idx := imagegen.Index(11, []v1.Platform{amd64, arm64}, 2, 1024, base)
	imagegen.Push(t, src.Ref(repo+":1.1"), idx, opts...)
	imagegen.Push(t, src.Ref(repo+":latest"), idx, opts...)
}

func TestCopyThenSkipWithoutSourceGETs(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	seed(t, src, "team/app")
	task := engine.Task{Name: "t", Source: plain(src), Target: plain(dst),
		Mappings: []engine.Mapping{{From: "team/app", To: "mirror/app"}}}

	rep := run(t, task)
	if rep.Failed() != 0 {
		t.Fatalf("failures: %+v", rep.Results)
	}
	for _, tag := range []string{"1.0", "1.1", "latest"} {
		if got := statuses(rep)[tag]; got != engine.Copied {
			t.Errorf("%s: %s, want copied", tag, got)
		}
		want := digestOf(t, src.Ref("team/app:"+tag))
		if got := digestOf(t, dst.Ref("mirror/app:"+tag)); got != want {
			t.Errorf("%s: target digest %s, source %s", tag, got, want)
		}
	}
	// The index's children are on the target too, by digest.
	idx, err := remote.Index(parse(t, dst.Ref("mirror/app:1.1")))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	for _, d := range im.Manifests {
		digestOf(t, dst.Ref("mirror/app@"+d.Digest.String()))
	}
	var bytes int64
	for _, r := range rep.Results {
		bytes += r.Bytes
	}
	if bytes == 0 {
		t.Error("report counts no bytes for copied images")
	}

	src.Reset()
	dst.Reset()
	rep = run(t, task)
	for tag, s := range statuses(rep) {
		if s != engine.Skipped {
			t.Errorf("second run: %s %s, want skipped", tag, s)
		}
	}
	if n := src.Count(regtest.KindManifestGet) + src.Count(regtest.KindBlobGet); n != 0 {
		t.Errorf("second run sent %d GETs for manifests/blobs to the source: %v", n, src.Requests())
	}
	if n := src.Count(regtest.KindManifestHead); n != 3 {
		t.Errorf("second run sent %d manifest HEADs to the source, want one per tag (3)", n)
	}
	if n := src.Count(regtest.KindTagsList); n != 1 {
		t.Errorf("second run listed tags %d times, want once per repository", n)
	}
	if n := dst.Count(regtest.KindManifestHead); n != 3 {
		t.Errorf("second run sent %d manifest HEADs to the target, want one per tag (3)", n)
	}
	if n := dst.Count(regtest.KindManifestPut) + dst.Count(regtest.KindBlobUpload) + dst.Count(regtest.KindManifestGet) + dst.Count(regtest.KindBlobGet); n != 0 {
		t.Errorf("second run sent %d writes or GETs to the target", n)
	}
}

func TestTagFiltersAndMissingVerbatimTagFailsAlone(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	for i, tag := range []string{"1.9.0", "1.10.0", "1.10.1-rc.1", "2.0.0", "latest"} {
		imagegen.Push(t, src.Ref("app:"+tag), imagegen.Image(uint64(100+i), 1, 256))
	}
	rep := run(t, engine.Task{Name: "t", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{
		{From: "app", To: "app", Tags: tags(t, "semver: >=1.0.0 <1.99.0", "keep: latest 2", "nope")},
	}})
	got := statuses(rep)
	want := map[string]engine.Status{"1.10.0": engine.Copied, "1.10.1-rc.1": engine.Copied, "nope": engine.Failed}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	for _, r := range rep.Results {
		if r.Tag == "nope" && !errors.Is(r.Err, registry.ErrNotFound) {
			t.Errorf("missing tag error %v does not say not found", r.Err)
		}
	}
}

func TestPlatformCopiesOneImage(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	seed(t, src, "app")
	p := arm64
	rep := run(t, engine.Task{Name: "t", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{
		{From: "app", To: "app", Tags: tags(t, "1.1"), Platform: &p},
	}})
	if rep.Failed() != 0 {
		t.Fatalf("%+v", rep.Results)
	}
	idx, err := remote.Index(parse(t, src.Ref("app:1.1")))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	d, ok := registry.PlatformDescriptor(im, arm64)
	if !ok {
		t.Fatal("source index has no arm64 image")
	}
	if got := digestOf(t, dst.Ref("app:1.1")); got != d.Digest.String() {
		t.Errorf("target holds %s, want the arm64 image %s", got, d.Digest)
	}
	// A second run finds it current.
	if s := statuses(run(t, engine.Task{Name: "t", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{
		{From: "app", To: "app", Tags: tags(t, "1.1"), Platform: &p},
	}}))["1.1"]; s != engine.Skipped {
		t.Errorf("second run: %s, want skipped", s)
	}
}

func TestDigestReferences(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	seed(t, src, "app")
	d10 := digestOf(t, src.Ref("app:1.0"))
	d11 := digestOf(t, src.Ref("app:1.1"))
	rep := run(t, engine.Task{Name: "t", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{
		{From: "app", To: "app", Tags: tags(t, d10, "pinned@"+d11)},
	}})
	if rep.Failed() != 0 {
		t.Fatalf("%+v", rep.Results)
	}
	digestOf(t, dst.Ref("app@"+d10))
	if got := digestOf(t, dst.Ref("app:pinned")); got != d11 {
		t.Errorf("pinned tag holds %s, want %s", got, d11)
	}
}

func TestMovedTagIsOverwritten(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	imagegen.Push(t, src.Ref("app:1"), imagegen.Image(1, 1, 128))
	imagegen.Push(t, dst.Ref("app:1"), imagegen.Image(2, 1, 128))
	rep := run(t, engine.Task{Name: "t", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{{From: "app", To: "app"}}})
	if s := statuses(rep)["1"]; s != engine.Copied {
		t.Fatalf("%s, want copied", s)
	}
	if digestOf(t, dst.Ref("app:1")) != digestOf(t, src.Ref("app:1")) {
		t.Error("target tag was not updated")
	}
}

func TestTagListPagination(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	img := imagegen.Image(5, 1, 64)
	for i := range 7 {
		imagegen.Push(t, src.Ref(fmt.Sprintf("app:t%d", i)), img)
	}
	e := engine.New(engine.Options{Registry: registry.Options{PageSize: 2}})
	rep := e.Run(ctx(t), []engine.Task{{Name: "t", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{{From: "app", To: "app"}}}})
	if len(rep.Results) != 7 || rep.Failed() != 0 {
		t.Fatalf("got %d results (%d failed), want 7 copied: %+v", len(rep.Results), rep.Failed(), rep.Results)
	}
	if n := src.Count(regtest.KindTagsList); n < 4 {
		t.Errorf("%d tag list requests for 7 tags in pages of 2, want >= 4", n)
	}
}

func TestBasicAuthAndOtherTasksCarryOn(t *testing.T) {
	src := regtest.New(t, regtest.WithBasicAuth("alice", "s3cret"))
	dst := regtest.New(t, regtest.WithBasicAuth("bob", "hunter2"))
	imagegen.Push(t, src.Ref("app:1"), imagegen.Image(1, 1, 128), remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"}))
	good := engine.Task{Name: "good", Target: registry.Endpoint{Registry: dst.Host, PlainHTTP: true, Username: "bob", Password: "hunter2"},
		Source:   registry.Endpoint{Registry: src.Host, PlainHTTP: true, Username: "alice", Password: "s3cret"},
		Mappings: []engine.Mapping{{From: "app", To: "app"}}}
	bad := good
	bad.Name = "bad"
	bad.Source.Password = "wrong"
	bad.Mappings = []engine.Mapping{{From: "app", To: "other", Tags: tags(t, "1")}}
	rep := run(t, bad, good)
	byTask := map[string]engine.Status{}
	for _, r := range rep.Results {
		byTask[r.Task] = r.Status
		if r.Err != nil && (strings.Contains(r.Err.Error(), "wrong") || strings.Contains(r.Err.Error(), "s3cret")) {
			t.Errorf("error leaks a password: %v", r.Err)
		}
	}
	if byTask["good"] != engine.Copied || byTask["bad"] != engine.Failed {
		t.Fatalf("got %v, want good copied and bad failed", byTask)
	}
}

func TestBearerTokenAuth(t *testing.T) {
	src := regtest.New(t, regtest.WithTokenAuth("alice", "s3cret"))
	dst := regtest.New(t)
	seed(t, src, "app", remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"}))
	src.Reset()
	rep := run(t, engine.Task{Name: "t", Source: registry.Endpoint{Registry: src.Host, PlainHTTP: true, Username: "alice", Password: "s3cret"},
		Target: plain(dst), Mappings: []engine.Mapping{{From: "app", To: "app"}}})
	if rep.Failed() != 0 {
		t.Fatalf("%+v", rep.Results)
	}
	// Tokens are cached per registry and scope: one repository, one pull
	// scope, so at most one exchange (plus the ping's) for all three tags.
	if n := src.Count(regtest.KindToken); n == 0 || n > 2 {
		t.Errorf("%d token requests for one repository, want 1 or 2", n)
	}
}

func TestDockerConfigCredentials(t *testing.T) {
	src := regtest.New(t, regtest.WithBasicAuth("alice", "s3cret"))
	dst := regtest.New(t)
	imagegen.Push(t, src.Ref("app:1"), imagegen.Image(1, 1, 128), remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"}))
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"`+src.Host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	rep := run(t, engine.Task{Name: "t", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{{From: "app", To: "app"}}})
	if rep.Failed() != 0 {
		t.Fatalf("credentials from DOCKER_CONFIG were not used: %+v", rep.Results)
	}
}

func TestLayoutRoundTrip(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	seed(t, src, "team/app")
	dir := filepath.Join(t.TempDir(), "layout")
	lay := registry.LayoutEndpoint(dir)
	rep := run(t, engine.Task{Name: "out", Source: plain(src), Target: lay, Mappings: []engine.Mapping{{From: "team/app", To: "team/app"}}})
	if rep.Failed() != 0 {
		t.Fatalf("%+v", rep.Results)
	}
	rep = run(t, engine.Task{Name: "in", Source: lay, Target: plain(dst), Mappings: []engine.Mapping{{From: "team/app", To: "copy/app"}}})
	if rep.Failed() != 0 || len(rep.Results) != 3 {
		t.Fatalf("%+v", rep.Results)
	}
	for _, tag := range []string{"1.0", "1.1", "latest"} {
		if digestOf(t, dst.Ref("copy/app:"+tag)) != digestOf(t, src.Ref("team/app:"+tag)) {
			t.Errorf("%s: digest changed through the layout", tag)
		}
	}
	// And the layout target skips what it holds.
	rep = run(t, engine.Task{Name: "out", Source: plain(src), Target: lay, Mappings: []engine.Mapping{{From: "team/app", To: "team/app"}}})
	for tag, s := range statuses(rep) {
		if s != engine.Skipped {
			t.Errorf("layout second run: %s %s", tag, s)
		}
	}
}

func TestPlatformMappingCostsNoGETOnceCached(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	seed(t, src, "app")
	p := arm64
	cache := filepath.Join(t.TempDir(), "platforms.json")
	task := engine.Task{Name: "t", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{
		{From: "app", To: "app", Tags: tags(t, "1.1", "latest"), Platform: &p},
	}}
	// Two separate engines, as two cron runs of `sync` would be.
	for i, want := range []engine.Status{engine.Copied, engine.Skipped} {
		src.Reset()
		rep := engine.New(engine.Options{PlatformCache: cache}).Run(ctx(t), []engine.Task{task})
		for tag, s := range statuses(rep) {
			if s != want {
				t.Errorf("run %d: %s %s, want %s", i+1, tag, s, want)
			}
		}
		if i == 1 {
			if n := src.Count(regtest.KindManifestGet) + src.Count(regtest.KindBlobGet); n != 0 {
				t.Errorf("second run sent %d GETs to the source: %v", n, src.Requests())
			}
		}
	}
	// A moved tag is still noticed: point latest at another index.
	imagegen.Push(t, src.Ref("app:latest"), imagegen.Index(99, []v1.Platform{amd64, arm64}, 1, 256))
	rep := engine.New(engine.Options{PlatformCache: cache}).Run(ctx(t), []engine.Task{task})
	if s := statuses(rep)["latest"]; s != engine.Copied {
		t.Errorf("moved tag: %s, want copied", s)
	}
	idx, err := remote.Index(parse(t, src.Ref("app:latest")))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	d, _ := registry.PlatformDescriptor(im, arm64)
	if got := digestOf(t, dst.Ref("app:latest")); got != d.Digest.String() {
		t.Errorf("target holds %s, want the new arm64 image %s", got, d.Digest)
	}
}

// A failure before any tag is known (the tag list of a repository the
// source lacks) names the repositories without an empty ":" tag.
func TestRepositoryFailureNamesRepositoryWithoutColon(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	rep := run(t, engine.Task{Name: "t", Source: plain(src), Target: plain(dst),
		Mappings: []engine.Mapping{{From: "team/missing", To: "mirror/missing"}}})
	if len(rep.Results) != 1 || rep.Results[0].Status != engine.Failed {
		t.Fatalf("results %+v, want one failed", rep.Results)
	}
	r := rep.Results[0]
	if r.Source != src.Host+"/team/missing" || r.Target != dst.Host+"/mirror/missing" {
		t.Errorf("source %q target %q, want the repositories without a trailing colon", r.Source, r.Target)
	}
}
