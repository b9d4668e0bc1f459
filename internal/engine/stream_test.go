package engine_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// genStream is n deterministic pseudo-random bytes, produced on the fly.
type genStream struct {
	rng *rand.ChaCha8
	n   int64
}

func newGenStream(seed byte, n int64) *genStream {
	var s [32]byte
	s[0] = seed
	return &genStream{rng: rand.NewChaCha8(s), n: n}
}

func (g *genStream) Read(p []byte) (int, error) {
	if g.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.n {
		p = p[:g.n]
	}
	n, _ := g.rng.Read(p)
	g.n -= int64(n)
	return n, nil
}

// generatedSource is a read-only registry of one image, big:1, whose single
// layer is generated while it is served: no real registry can serve a
// blob of hundreds of MiB without holding it somewhere, and this test must
// see only regmirror's own memory.
func generatedSource(t *testing.T, size int64) (host, layerDigest string) {
	return generatedSourceTB(t, size)
}

func generatedSourceTB(t testing.TB, size int64) (host, layerDigest string) {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, newGenStream(7, size)); err != nil {
		t.Fatal(err)
	}
	layerDigest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + layerDigest + `"]}}`)
	cfgDigest := fmt.Sprintf("sha256:%x", sha256.Sum256(cfg))
	man, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     types.OCIManifestSchema1,
		"config":        map[string]any{"mediaType": types.OCIConfigJSON, "digest": cfgDigest, "size": len(cfg)},
		"layers":        []any{map[string]any{"mediaType": types.OCIUncompressedLayer, "digest": layerDigest, "size": size}},
	})
	if err != nil {
		t.Fatal(err)
	}
	manDigest := fmt.Sprintf("sha256:%x", sha256.Sum256(man))

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader
		var n int64
		switch r.URL.Path {
		case "/v2/":
			return
		case "/v2/big/manifests/1", "/v2/big/manifests/" + manDigest:
			w.Header().Set("Content-Type", string(types.OCIManifestSchema1))
			w.Header().Set("Docker-Content-Digest", manDigest)
			body, n = strings.NewReader(string(man)), int64(len(man))
		case "/v2/big/blobs/" + cfgDigest:
			body, n = strings.NewReader(string(cfg)), int64(len(cfg))
		case "/v2/big/blobs/" + layerDigest:
			body, n = newGenStream(7, size), size
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		if r.Method == http.MethodGet {
			_, _ = io.Copy(w, body)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), layerDigest
}

// filesystemRegistry is an in-process registry storing blobs in a temporary
// directory, so big copies do not sit in this process's heap.
func filesystemRegistry(t testing.TB) *regtest.Registry {
	storage := t.TempDir()
	return regtest.New(t, regtest.WithConfig(func(c *configuration.Configuration) {
		c.Storage = configuration.Storage{
			"filesystem":  configuration.Parameters{"rootdirectory": storage},
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
		}
	}))
}

// heapSampler records the peak of the live-and-unswept heap while it runs.
type heapSampler struct {
	stop chan struct{}
	done sync.WaitGroup
	peak uint64
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			h.peak = max(h.peak, heapObjects())
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	h.done.Wait()
	return h.peak
}

// TestBigBlobStreamsInBoundedHeap copies a 256 MiB layer and checks that
// the heap never grows by more than 48 MiB: the blob streams from source to
// target and is never held whole (peak memory must not grow with blob
// size). The target is a real registry on the filesystem driver, so
// the only place the bytes could pile up in this process is the copy path.
func TestBigBlobStreamsInBoundedHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 256 MiB")
	}
	const size = 256 << 20
	const bound = 48 << 20
	srcHost, layer := generatedSource(t, size)
	dst := filesystemRegistry(t)

	e := engine.New(engine.Options{Jobs: 2})
	task := engine.Task{
		Name:     "big",
		Source:   registry.Endpoint{Registry: srcHost, PlainHTTP: true},
		Target:   plain(dst),
		Mappings: []engine.Mapping{{From: "big", To: "mirror/big", Tags: tags(t, "1")}},
	}
	runtime.GC()
	base := heapObjects()
	h := sampleHeap()
	rep := e.Run(ctx(t), []engine.Task{task})
	peak := h.Stop()

	if rep.Failed() != 0 || len(rep.Results) != 1 || rep.Results[0].Status != engine.Copied {
		t.Fatalf("want one image copied, got %+v", rep.Results)
	}
	if got := rep.Results[0].Bytes; got < size {
		t.Errorf("the report says %d bytes moved, want at least the layer's %d", got, size)
	}
	// The target registry checked the layer's digest when the upload ended;
	// ask it that the blob is there, whole.
	ref := parse(t, dst.Ref("mirror/big@"+layer))
	l, err := remote.Layer(ref.Context().Digest(layer), remote.WithTransport(dst.Transport()))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := l.Size(); err != nil || n != size {
		t.Fatalf("target blob %s: size %d (%v), want %d", layer, n, err, size)
	}
	grew := int64(peak) - int64(base)
	t.Logf("heap: %d MiB before, peak %d MiB while copying %d MiB", base>>20, peak>>20, size>>20)
	if grew > bound {
		t.Errorf("heap grew by %d MiB while copying a %d MiB blob; want at most %d MiB", grew>>20, size>>20, bound>>20)
	}
}
