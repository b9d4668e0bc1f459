package bundle

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// Importing an incremental bundle before its base changes nothing on the
// target: no upload, no manifest, no tag. Then base and increment import.
func TestImportBeforeBaseChangesNothing(t *testing.T) {
	dir := t.TempDir()
	src, _ := exportFrom(t, filepath.Join(dir, "b1"))
	imagegen.Push(t, src.Ref("app:3"), imagegen.Image(30, 1, 2048, base), remote.WithTransport(src.Transport()))
	if _, err := Export(context.Background(), ExportOptions{
		Engine: engine.New(engine.Options{}),
		Tasks:  []engine.Task{{Name: "t", Source: registry.Endpoint{Registry: src.Host, PlainHTTP: true}, Mappings: []engine.Mapping{{From: "app"}}}},
		Output: filepath.Join(dir, "b2"),
		Since:  filepath.Join(dir, "b1"),
	}); err != nil {
		t.Fatal(err)
	}
	dst := regtest.New(t)
	importTo := func(name string) *engine.Report {
		t.Helper()
		b, err := Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		rep, err := Import(context.Background(), b, ImportOptions{Engine: engine.New(engine.Options{}), Routes: func(repo string) ([]Route, error) {
			return []Route{{Task: "import", Target: registry.Endpoint{Registry: dst.Host, PlainHTTP: true}, To: "mirror/app"}}, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	rep := importTo("b2")
	if rep.Failed() != 3 {
		t.Errorf("%d failed, want all 3: %+v", rep.Failed(), rep.Results)
	}
	for _, r := range rep.Results {
		if !errors.Is(r.Err, ErrMissing) || !strings.Contains(r.Err.Error(), `held by bundle "b1"`) || !strings.Contains(r.Err.Error(), "nothing was pushed") {
			t.Errorf("%s: %v, want \"import bundle b1 ... first\"", r.Tag, r.Err)
		}
	}
	for _, k := range []regtest.Kind{regtest.KindBlobUpload, regtest.KindBlobMount, regtest.KindManifestPut} {
		if n := dst.Count(k); n != 0 {
			t.Errorf("%d %s requests on the target, want none", n, k)
		}
	}

	if rep := importTo("b1"); rep.Failed() != 0 {
		t.Fatalf("base: %+v", rep.Results)
	}
	if rep := importTo("b2"); rep.Failed() != 0 || rep.Count(engine.Copied) != 1 {
		t.Fatalf("increment after base: %+v", rep.Results)
	}
}
