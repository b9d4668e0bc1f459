package bundle

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// Hand-made bundles: a bundle comes from outside, through an air gap, and
// may have been made by anyone. These are the ones no export writes.

// reseal edits a directory bundle's manifest and index and seals it again,
// so that only the edit is wrong with it (its id still matches).
func reseal(t *testing.T, dir string, edit func(m *Manifest, idx *v1.IndexManifest)) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseManifest(dir, raw)
	if err != nil {
		t.Fatal(err)
	}
	rawIdx, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	idx := &v1.IndexManifest{}
	if err := json.Unmarshal(rawIdx, idx); err != nil {
		t.Fatal(err)
	}
	for i := range m.Images {
		if m.Images[i].Bundle == m.ID {
			m.Images[i].Bundle = ""
		}
	}
	edit(m, idx)
	if _, err := m.seal(); err != nil {
		t.Fatal(err)
	}
	for i := range m.Images {
		if m.Images[i].Bundle == "" {
			m.Images[i].Bundle = m.ID
		}
	}
	writeJSON(t, filepath.Join(dir, ManifestFile), m)
	writeJSON(t, filepath.Join(dir, "index.json"), idx)
}

func writeJSON(t *testing.T, p string, v any) {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// addBlob stores raw in a directory bundle and lists it.
func addBlob(t *testing.T, dir string, m *Manifest, raw []byte) v1.Hash {
	t.Helper()
	sum := sha256.Sum256(raw)
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(blobName(h))), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	m.Blobs = append(m.Blobs, Blob{Digest: h.String(), Size: int64(len(raw))})
	return h
}

// cleaningProxy forwards to backend after resolving dot segments, as nginx
// does with a URI in proxy_pass, and records the raw paths it was sent.
func cleaningProxy(t *testing.T, backend string) (host string, paths func() []string) {
	t.Helper()
	u, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var raw []string
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.URL.Path, r.Out.URL.RawPath = path.Clean(r.In.URL.Path), ""
		if strings.HasSuffix(r.In.URL.Path, "/") && r.Out.URL.Path != "/" {
			r.Out.URL.Path += "/"
		}
		r.Out.Host = u.Host
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		raw = append(raw, r.URL.EscapedPath())
		mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), raw...)
	}
}

// TestHostileImageNameIsRefused: a bundle image named
// docker.io/library/../../victim/app3:1 is a problem for verify and fails
// alone on import, whose target sits behind a proxy that cleans dot
// segments: no request carries one, victim/app3 is never written, and the
// valid neighbour is imported.
func TestHostileImageNameIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	src, _ := exportFrom(t, dir)
	const evil = "docker.io/library/../../victim/app3:1"
	reseal(t, dir, func(m *Manifest, idx *v1.IndexManifest) {
		for i := range m.Images {
			if m.Images[i].Name == src.Host+"/app:2" {
				m.Images[i].Name = evil
			}
		}
		for i := range idx.Manifests {
			if idx.Manifests[i].Annotations["io.containerd.image.name"] == src.Host+"/app:2" {
				idx.Manifests[i].Annotations["io.containerd.image.name"] = evil
			}
		}
	})
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	vr, err := Verify(context.Background(), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(vr.Problems) != 1 || !errors.Is(vr.Problems[0].Err, registry.ErrInvalidName) ||
		!strings.Contains(vr.Problems[0].Err.Error(), `"docker.io/library/../../victim/app3:1" breaks the distribution grammar`) {
		t.Fatalf("verify: %v", vr.Problems)
	}

	dst := regtest.New(t)
	victim := imagegen.Image(77, 1, 512)
	imagegen.Push(t, dst.Ref("victim/app3:1"), victim, remote.WithTransport(dst.Transport()))
	proxyHost, paths := cleaningProxy(t, dst.URL)
	target := registry.Endpoint{Registry: proxyHost, PlainHTTP: true}
	rep, err := Import(context.Background(), b, ImportOptions{
		Engine: engine.New(engine.Options{}),
		Routes: func(repo string) ([]Route, error) {
			_, p, _ := strings.Cut(repo, "/") // drop the registry host
			return []Route{{Task: "import", Target: target, To: "mirror/" + p}}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var copied, refused int
	for _, r := range rep.Results {
		switch {
		case r.Status == engine.Copied:
			copied++
		case r.Status == engine.Failed && errors.Is(r.Err, registry.ErrInvalidName):
			refused++
		default:
			t.Errorf("%s: %s %v", r.Source, r.Status, r.Err)
		}
	}
	if copied != 1 || refused != 1 {
		t.Errorf("%d copied, %d refused; want the valid neighbour copied and the hostile name refused", copied, refused)
	}
	if len(paths()) == 0 {
		t.Fatal("the target saw no request: the test did not exercise it")
	}
	for _, p := range paths() {
		if strings.Contains(p, "/../") || strings.Contains(p, "/./") || strings.Contains(p, "victim") {
			t.Errorf("the target was sent %q", p)
		}
	}
	d, err := remote.Head(mustRef(t, dst.Ref("victim/app3:1")), remote.WithTransport(dst.Transport()))
	if err != nil || d.Digest != imagegen.Digest(t, victim) {
		t.Errorf("victim/app3:1 is now %v (%v)", d, err)
	}
}

// heapPeak runs f while sampling the live heap; it returns how far the heap
// grew above where it was.
func heapPeak(f func()) int64 {
	read := func() uint64 {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	runtime.GC()
	base := read()
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, read())
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	wg.Wait()
	return int64(peak) - int64(base)
}

// hugeFile makes a sparse file of size bytes: no disk, and whoever reads it
// whole needs size bytes of memory.
func hugeFile(t *testing.T, p string, size int64, prefix string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(prefix); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

const (
	hugeSize  = 2 << 30  // what the hostile bundle declares
	heapBound = 32 << 20 // what reading it may cost
)

// TestHugeDocumentsAreRefusedInBoundedHeap: a 2 GiB index.json or bundle
// manifest in a directory bundle, a .tar whose bundle manifest entry
// declares 2 GiB, and a digest-valid 2 GiB blob listed as a 555-byte
// manifest are all errors, and none is read into memory.
func TestHugeDocumentsAreRefusedInBoundedHeap(t *testing.T) {
	for _, name := range []string{"index.json", ManifestFile} {
		t.Run("dir-"+name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "b")
			exportFrom(t, dir)
			hugeFile(t, filepath.Join(dir, name), hugeSize, `{"manifests":[`)
			var err error
			grew := heapPeak(func() {
				var b *Bundle
				if b, err = Open(dir); err == nil {
					b.Close()
				}
			})
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("open: %v, want ErrTooLarge", err)
			}
			if grew > heapBound {
				t.Errorf("heap grew by %d MiB reading a %d MiB %s", grew>>20, hugeSize>>20, name)
			}
		})
	}

	t.Run("tar-entry", func(t *testing.T) {
		// A sparse tar (a few KB on disk) whose bundle manifest entry
		// declares 2 GiB, followed by the end-of-archive blocks.
		p := filepath.Join(t.TempDir(), "evil.tar")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		tw := tar.NewWriter(f)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: ManifestFile, Mode: 0o644, Size: hugeSize}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, `{"schemaVersion":1,"mediaType":"`+MediaType+`","images":[`); err != nil {
			t.Fatal(err)
		}
		if err := tw.Flush(); err != nil && !errors.Is(err, tar.ErrWriteTooLong) {
			t.Log(err) // the entry is short: expected
		}
		if err := f.Truncate(512 + hugeSize + 1024); err != nil {
			t.Fatal(err)
		}
		f.Close()
		grew := heapPeak(func() {
			var b *Bundle
			if b, err = Open(p); err == nil {
				b.Close()
			}
		})
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("open: %v, want ErrTooLarge", err)
		}
		if grew > heapBound {
			t.Errorf("heap grew by %d MiB", grew>>20)
		}
	})

	t.Run("huge-blob-as-manifest", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "b")
		exportFrom(t, dir)
		// A blob whose digest is right for its 2 GiB content would take
		// long to hash: the bound must hold before it is read, so a file
		// of the right name suffices; verify hashes blobs by streaming.
		var h v1.Hash
		reseal(t, dir, func(m *Manifest, idx *v1.IndexManifest) {
			h = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
			m.Blobs = append(m.Blobs, Blob{Digest: h.String(), Size: 555})
			m.Images = append(m.Images, Image{Name: "docker.io/library/big:1", Digest: h.String(), MediaType: string(types.OCIManifestSchema1), Size: 555})
			idx.Manifests = append(idx.Manifests, v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: h, Size: 555,
				Annotations: map[string]string{"io.containerd.image.name": "docker.io/library/big:1"}})
		})
		hugeFile(t, filepath.Join(dir, filepath.FromSlash(blobName(h))), hugeSize, `{"schemaVersion":2,"layers":[`)
		b, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		var readErr error
		grew := heapPeak(func() {
			_, readErr = newSource(b, nil, nil).Fetch(context.Background(), "docker.io/library/big", "1")
		})
		if !errors.Is(readErr, ErrCorrupt) && !errors.Is(readErr, ErrTooLarge) {
			t.Errorf("import's read of the blob: %v, want it refused", readErr)
		}
		if grew > heapBound {
			t.Errorf("heap grew by %d MiB", grew>>20)
		}
	})
}

// countingFiles counts the blob opens of a bundle.
type countingFiles struct {
	files
	mu    sync.Mutex
	opens map[string]int
}

func (c *countingFiles) Open(name string) (io.ReadCloser, error) {
	c.mu.Lock()
	c.opens[name]++
	c.mu.Unlock()
	return c.files.Open(name)
}

// TestDiamondDAGIsWalkedLinearly: an index 40 levels deep in which every
// index lists its child twice has 2^40 paths and 41 distinct manifests.
// verify reads each manifest once, however many paths lead to it.
func TestDiamondDAGIsWalkedLinearly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	exportFrom(t, dir)
	const depth = 40
	reseal(t, dir, func(m *Manifest, idx *v1.IndexManifest) {
		// The bottom: app:1's image manifest, as exported.
		var child v1.Descriptor
		for _, d := range idx.Manifests {
			if strings.HasSuffix(d.Annotations["io.containerd.image.name"], "/app:1") {
				child = d
				child.Annotations = nil
			}
		}
		for range depth {
			raw, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{child, child}})
			if err != nil {
				t.Fatal(err)
			}
			h := addBlob(t, dir, m, raw)
			child = v1.Descriptor{MediaType: types.OCIImageIndex, Digest: h, Size: int64(len(raw))}
		}
		top := child
		top.Annotations = map[string]string{"io.containerd.image.name": "docker.io/library/dag:1"}
		idx.Manifests = append(idx.Manifests, top)
		m.Images = append(m.Images, Image{Name: "docker.io/library/dag:1", Digest: top.Digest.String(), MediaType: string(top.MediaType), Size: top.Size})
	})
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cf := &countingFiles{files: b.files, opens: map[string]int{}}
	b.files = cf
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	vr, err := Verify(ctx, b, nil)
	if err != nil || len(vr.Problems) != 0 {
		t.Fatalf("verify: %v %v", err, vr.Problems)
	}
	distinct, reads := 0, 0
	for name, n := range cf.opens {
		if strings.HasPrefix(name, "blobs/") {
			distinct++
			reads += n
		}
	}
	t.Logf("%d blob opens of %d distinct blobs (%d listed)", reads, distinct, len(b.Manifest.Blobs))
	// Every listed blob is hashed once, and each manifest of each image's
	// tree read once more: at most three opens per distinct blob, whatever
	// the depth. Without memoising, the DAG alone is 2^41 reads.
	if reads > 3*len(b.Manifest.Blobs) {
		t.Errorf("%d blob opens for %d blobs: not linear", reads, len(b.Manifest.Blobs))
	}
}

// TestVerifyStopsWhenCancelled: verify returns the context's error as soon
// as it is cancelled (SIGINT, SIGTERM), without finishing the bundle.
func TestVerifyStopsWhenCancelled(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	exportFrom(t, dir)
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cf := &countingFiles{files: b.files, opens: map[string]int{}}
	b.files = cf
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Verify(ctx, b, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("verify after cancel: %v", err)
	}
	if len(cf.opens) != 0 {
		t.Errorf("a cancelled verify opened %d files", len(cf.opens))
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
