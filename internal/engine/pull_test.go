package engine_test

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// artifactBytes adds up the manifests, configs and distinct layers of x.
func artifactBytes(t *testing.T, x any) (total int64, blobs map[string]bool) {
	t.Helper()
	blobs = map[string]bool{}
	var img func(v1.Image)
	img = func(i v1.Image) {
		raw, _ := i.RawManifest()
		cfg, _ := i.RawConfigFile()
		total += int64(len(raw) + len(cfg))
		m, err := i.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		blobs[m.Config.Digest.String()] = true
		for _, l := range m.Layers {
			if !blobs[l.Digest.String()] {
				total += l.Size
			}
			blobs[l.Digest.String()] = true
		}
	}
	switch v := x.(type) {
	case v1.Image:
		img(v)
	case v1.ImageIndex:
		raw, _ := v.RawManifest()
		total += int64(len(raw))
		im, _ := v.IndexManifest()
		for _, d := range im.Manifests {
			i, err := v.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			img(i)
		}
	}
	return total, blobs
}

func TestPullOnlyReadsEveryBlobOnceAndWritesNothing(t *testing.T) {
	src := regtest.New(t)
	base := imagegen.Layer(61, 2048)
	idx := imagegen.Index(62, []v1.Platform{amd64, arm64}, 2, 512, base)
	img := imagegen.Image(63, 1, 1024, base)
	imagegen.Push(t, src.Ref("app:multi"), idx)
	imagegen.Push(t, src.Ref("tool:1"), img)
	idxBytes, idxBlobs := artifactBytes(t, idx)
	imgBytes, imgBlobs := artifactBytes(t, img)
	src.Reset()

	e := engine.New(engine.Options{Jobs: 1})
	rep := e.Run(ctx(t), []engine.Task{{
		Name: "warm", Source: plain(src), PullOnly: true,
		Mappings: []engine.Mapping{
			{From: "app", Tags: tags(t, "multi")},
			{From: "tool", Tags: tags(t, "1@"+imagegen.Digest(t, img).String())},
		},
	}})
	if len(rep.Results) != 2 {
		t.Fatalf("results: %+v", rep.Results)
	}
	for i, want := range []struct {
		digest string
		bytes  int64
	}{{imagegen.Digest(t, idx).String(), idxBytes}, {imagegen.Digest(t, img).String(), imgBytes}} {
		r := rep.Results[i]
		if r.Status != engine.Pulled || r.Err != nil || r.Digest != want.digest || r.Bytes != want.bytes {
			t.Errorf("result %d: %s %s %d bytes (%v); want pulled %s %d bytes", i, r.Status, r.Digest, r.Bytes, r.Err, want.digest, want.bytes)
		}
	}
	if s := rep.Summaries()[0]; s.Pulled != 2 || s.Copied+s.Skipped+s.Failed != 0 {
		t.Errorf("summary %+v", s)
	}
	// Every blob (configs and layers) was fetched, each exactly once per
	// repository; nothing was written anywhere.
	got := map[string]int{}
	for _, r := range src.Requests() {
		switch r.Kind {
		case regtest.KindBlobGet:
			got[r.Repo+"@"+r.Ref]++
		case regtest.KindManifestPut, regtest.KindBlobUpload:
			t.Errorf("pull-only wrote: %s %s", r.Method, r.Path)
		}
	}
	want := map[string]int{}
	for d := range idxBlobs {
		want["app@"+d] = 1
	}
	for d := range imgBlobs {
		want["tool@"+d] = 1
	}
	if len(got) != len(want) {
		t.Errorf("blob GETs %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("blob %s fetched %d times, want %d", k, got[k], n)
		}
	}
}

// TestPullOnlyDetectsCorruptBlob serves one layer with a flipped byte: the
// image fails with a digest error, the other image still succeeds.
func TestPullOnlyDetectsCorruptBlob(t *testing.T) {
	bad := imagegen.Image(71, 1, 1024)
	m, err := bad.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	layer := m.Layers[0].Digest.String()
	var corrupted atomic.Int32
	src := regtest.New(t, regtest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+layer) {
				corrupted.Add(1)
				w = &flipWriter{ResponseWriter: w}
			}
			next.ServeHTTP(w, r)
		})
	}))
	imagegen.Push(t, src.Ref("bad:1"), bad)
	imagegen.Push(t, src.Ref("good:1"), imagegen.Image(72, 1, 1024))

	e := engine.New(engine.Options{Jobs: 1, Attempts: 1, Registry: registry.Options{Retry: &transport.Retry{Attempts: 1}}})
	rep := e.Run(ctx(t), []engine.Task{{
		Name: "warm", Source: plain(src), PullOnly: true,
		Mappings: []engine.Mapping{{From: "bad", Tags: tags(t, "1")}, {From: "good", Tags: tags(t, "1")}},
	}})
	if corrupted.Load() == 0 {
		t.Fatal("the corrupt layer was never requested")
	}
	if r := rep.Results[0]; r.Status != engine.Failed || r.Err == nil || !strings.Contains(r.Err.Error(), layer[len("sha256:"):len("sha256:")+12]) {
		t.Errorf("bad image: %s %v; want a failure naming the layer", r.Status, r.Err)
	}
	if r := rep.Results[1]; r.Status != engine.Pulled {
		t.Errorf("good image: %s %v", r.Status, r.Err)
	}
	// go-containerregistry's reader catches it before our own hash does.
	if err := rep.Results[0].Err; !errors.Is(err, registry.ErrDigestMismatch) && !strings.Contains(err.Error(), "verifying sha256 checksum") {
		t.Errorf("error does not say the digest is wrong: %v", rep.Results[0].Err)
	}
}

// flipWriter inverts the first byte of the body.
type flipWriter struct {
	http.ResponseWriter
	done bool
}

func (f *flipWriter) Write(b []byte) (int, error) {
	if !f.done && len(b) > 0 {
		f.done = true
		c := append([]byte(nil), b...)
		c[0] ^= 0xff
		return f.ResponseWriter.Write(c)
	}
	return f.ResponseWriter.Write(b)
}
