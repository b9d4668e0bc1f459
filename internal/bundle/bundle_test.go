package bundle

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

var base = imagegen.Layer(1, 4096)

// exportFrom pushes app:1 and app:2 (sharing a base layer) to an
// in-process registry and exports them to out.
// ownLayer is a layer exportFrom's images do not share (the 2048-byte
// one; the last of them in the bundle manifest) and its digest.
func ownLayer(t *testing.T, res *ExportResult) (Blob, v1.Hash) {
	t.Helper()
	var own Blob
	for _, bl := range res.Manifest.Blobs {
		if bl.Size == 2048 {
			own = bl
		}
	}
	h, err := v1.NewHash(own.Digest)
	if err != nil {
		t.Fatalf("the bundle holds no 2048-byte layer: %v", err)
	}
	return own, h
}

func exportFrom(t *testing.T, out string) (*regtest.Registry, *ExportResult) {
	t.Helper()
	src := regtest.New(t)
	for i, tag := range []string{"1", "2"} {
		imagegen.Push(t, src.Ref("app:"+tag), imagegen.Image(uint64(10+i), 1, 2048, base), remote.WithTransport(src.Transport()))
	}
	res, err := Export(context.Background(), ExportOptions{
		Engine: engine.New(engine.Options{}),
		Tasks:  []engine.Task{{Name: "t", Source: registry.Endpoint{Registry: src.Host, PlainHTTP: true}, Mappings: []engine.Mapping{{From: "app", To: "ignored"}}}},
		Output: out,
		Config: &ConfigRef{File: "c.yaml", SHA256: "00"},
		Now:    func() time.Time { return time.Unix(1e9, 0) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := res.Report.Failed(); n != 0 {
		t.Fatalf("%d failed: %v", n, res.Report.Results)
	}
	return src, res
}

func TestExportVerifyAndTarForm(t *testing.T) {
	dir := t.TempDir()
	src, res := exportFrom(t, filepath.Join(dir, "b.tar"))
	// 2 manifests, 2 configs, 2 own layers, 1 shared base layer.
	if len(res.Manifest.Blobs) != 7 || len(res.Manifest.Images) != 2 {
		t.Fatalf("%d blobs, %d images", len(res.Manifest.Blobs), len(res.Manifest.Images))
	}
	// The results name the .tar written, not the directory packed into
	// it and deleted.
	for _, r := range res.Report.Results {
		if want := "oci:" + filepath.Join(dir, "b.tar") + "/"; !strings.HasPrefix(r.Target, want) {
			t.Errorf("target %q, want it under %s", r.Target, want)
		}
	}
	b, err := Open(filepath.Join(dir, "b.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Manifest.ID != res.Manifest.ID || b.Manifest.Images[0].Name != src.Host+"/app:1" {
		t.Fatalf("read back %+v", b.Manifest.Images)
	}
	vr, err := Verify(context.Background(), b, nil)
	if err != nil || len(vr.Problems) != 0 || vr.Blobs != 7 || vr.Bytes != res.BlobBytes {
		t.Fatalf("verify: %v %+v", err, vr)
	}
	// Every section of the tar reads back as the blob it claims to be.
	for _, bl := range b.Manifest.Blobs {
		h, _ := v1.NewHash(bl.Digest)
		if _, err := b.readBlob(h); err != nil {
			t.Error(err)
		}
	}
}

func TestVerifyReaderFailsTheLastRead(t *testing.T) {
	dir := t.TempDir()
	_, res := exportFrom(t, dir)
	layer, h := ownLayer(t, res)
	p := filepath.Join(dir, blobName(h))
	data, _ := os.ReadFile(p)
	data[100] ^= 1
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.Blob(h, layer.Size, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if !errors.Is(err, ErrCorrupt) || int64(len(got)) >= layer.Size {
		t.Fatalf("read %d bytes, err %v: the corrupt blob must not be delivered whole", len(got), err)
	}
	vr, err := Verify(context.Background(), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The blob itself, and the one image that uses it.
	if len(vr.Problems) != 2 || !strings.Contains(vr.Problems[1].Image, "/app:") {
		t.Fatalf("problems %v", vr.Problems)
	}
}

func TestVerifyMissingBlobNotInherited(t *testing.T) {
	dir := t.TempDir()
	_, res := exportFrom(t, dir)
	h, _ := v1.NewHash(res.Manifest.Blobs[len(res.Manifest.Blobs)-1].Digest)
	if err := os.Remove(filepath.Join(dir, blobName(h))); err != nil {
		t.Fatal(err)
	}
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	vr, err := Verify(context.Background(), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(vr.Problems) == 0 || !errors.Is(vr.Problems[0].Err, ErrMissing) {
		t.Fatalf("problems %v", vr.Problems)
	}
}

func TestExportRefusesAnExistingBundle(t *testing.T) {
	dir := t.TempDir()
	exportFrom(t, dir)
	_, err := Export(context.Background(), ExportOptions{Output: dir, Engine: engine.New(engine.Options{})})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("err %v", err)
	}
}

func TestNameAndSplit(t *testing.T) {
	for _, c := range []struct {
		ep        registry.Endpoint
		repo, out string
	}{
		{registry.Endpoint{Registry: "registry.hub.docker.com"}, "redis", "docker.io/library/redis"},
		{registry.Endpoint{Registry: "127.0.0.1:5000"}, "/a/b", "127.0.0.1:5000/a/b"},
	} {
		if got := Name(c.ep, c.repo); got != c.out {
			t.Errorf("Name(%s, %s) = %s, want %s", c.ep.Registry, c.repo, got, c.out)
		}
	}
	if r, ref := SplitName("127.0.0.1:5000/a/b:1.0"); r != "127.0.0.1:5000/a/b" || ref != "1.0" {
		t.Errorf("SplitName: %s %s", r, ref)
	}
	if r, ref := SplitName("127.0.0.1:5000/a/b"); r != "127.0.0.1:5000/a/b" || ref != "" {
		t.Errorf("SplitName without tag: %s %s", r, ref)
	}
}

// A discovering mapping (from: regex:) exports each repository it finds
// under that repository's own name.
func TestExportDiscoveredRepositories(t *testing.T) {
	src := regtest.New(t)
	for i, r := range []string{"team/a:1", "team/b:1", "other:1"} {
		imagegen.Push(t, src.Ref(r), imagegen.Image(uint64(20+i), 1, 512), remote.WithTransport(src.Transport()))
	}
	res, err := Export(context.Background(), ExportOptions{
		Engine: engine.New(engine.Options{}),
		Tasks:  []engine.Task{{Name: "t", Source: registry.Endpoint{Registry: src.Host, PlainHTTP: true}, Mappings: []engine.Mapping{{From: "regex:team/.*", To: "x"}}}},
		Output: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, im := range res.Manifest.Images {
		names = append(names, im.Name)
	}
	slices.Sort(names)
	if want := []string{src.Host + "/team/a:1", src.Host + "/team/b:1"}; !slices.Equal(names, want) {
		t.Fatalf("images %v, want %v", names, want)
	}
}

// An incremental bundle with nothing new is still a bundle: it lists the
// images it completes, holds no blob, and opens and verifies in both forms.
func TestIncrementalWithNothingNew(t *testing.T) {
	dir := t.TempDir()
	src, first := exportFrom(t, filepath.Join(dir, "b1"))
	for _, out := range []string{filepath.Join(dir, "b2"), filepath.Join(dir, "b2.tar")} {
		res, err := Export(context.Background(), ExportOptions{
			Engine: engine.New(engine.Options{}),
			Tasks:  []engine.Task{{Name: "t", Source: registry.Endpoint{Registry: src.Host, PlainHTTP: true}, Mappings: []engine.Mapping{{From: "app"}}}},
			Output: out,
			Since:  filepath.Join(dir, "b1"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Manifest.Blobs) != 0 || len(res.Manifest.Images) != 2 || res.Manifest.Images[0].Bundle != first.Manifest.ID {
			t.Fatalf("%s: %d blobs, images %+v", out, len(res.Manifest.Blobs), res.Manifest.Images)
		}
		b, err := Open(out)
		if err != nil {
			t.Fatal(err)
		}
		vr, err := Verify(context.Background(), b, nil)
		b.Close()
		if err != nil || len(vr.Problems) != 0 {
			t.Fatalf("%s: verify %v %v", out, err, vr.Problems)
		}
	}
}

// The bundle manifest hashes to its id; an edit (here: a changed created
// time) is a problem verify reports.
func TestVerifyCatchesAnEditedManifest(t *testing.T) {
	dir := t.TempDir()
	exportFrom(t, dir)
	p := filepath.Join(dir, ManifestFile)
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(raw), "2001-09-09T01:46:40Z", "2001-09-09T01:46:41Z", 1)
	if edited == string(raw) {
		t.Fatal("created time not found in the manifest")
	}
	if err := os.WriteFile(p, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	vr, err := Verify(context.Background(), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(vr.Problems) != 1 || !strings.Contains(vr.Problems[0].String(), "was changed after export") {
		t.Fatalf("problems %v", vr.Problems)
	}
}

// A directory export cut off before it finished (no bundle manifest, no
// index.json yet, a blob missing) is resumed by running it again: only the
// missing blob is fetched, and the bundle comes out complete.
func TestInterruptedDirectoryExportResumes(t *testing.T) {
	dir := t.TempDir()
	src, res := exportFrom(t, dir)
	_, h := ownLayer(t, res)
	for _, p := range []string{ManifestFile, "index.json", blobName(h)} {
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
			t.Fatal(err)
		}
	}
	src.Reset()
	again, err := Export(context.Background(), ExportOptions{
		Engine: engine.New(engine.Options{}),
		Tasks:  []engine.Task{{Name: "t", Source: registry.Endpoint{Registry: src.Host, PlainHTTP: true}, Mappings: []engine.Mapping{{From: "app"}}}},
		Output: dir,
		Now:    func() time.Time { return time.Unix(1e9, 0) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := src.Count(regtest.KindBlobGet); n != 1 {
		t.Errorf("resumed export fetched %d blobs, want 1 (the missing layer): %v", n, src.Requests())
	}
	if len(again.Manifest.Images) != 2 || len(again.Manifest.Blobs) != len(res.Manifest.Blobs) {
		t.Fatalf("resumed bundle: %d images, %d blobs", len(again.Manifest.Images), len(again.Manifest.Blobs))
	}
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if vr, err := Verify(context.Background(), b, nil); err != nil || len(vr.Problems) != 0 {
		t.Fatalf("verify: %v %v", err, vr.Problems)
	}
}
