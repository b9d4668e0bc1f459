package bundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// tinyBundle writes a complete one-image directory bundle by hand (no
// registry): the fuzzers' seed. It returns the bundle manifest and
// index.json as written.
func tinyBundle(tb testing.TB, dir string) (manifest, index []byte) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		tb.Fatal(err)
	}
	m := &Manifest{SchemaVersion: 1, MediaType: MediaType, Name: "tiny", Created: time.Unix(1e9, 0).UTC()}
	put := func(raw []byte, mt types.MediaType) v1.Descriptor {
		sum := sha256.Sum256(raw)
		h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
		if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", h.Hex), raw, 0o644); err != nil {
			tb.Fatal(err)
		}
		m.Blobs = append(m.Blobs, Blob{Digest: h.String(), Size: int64(len(raw)), Repo: "r.io/app"})
		return v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(raw))}
	}
	cfg := put([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`), types.OCIConfigJSON)
	layer := put([]byte("not really a tar"), types.OCILayer)
	raw, err := json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: []v1.Descriptor{layer}})
	if err != nil {
		tb.Fatal(err)
	}
	man := put(raw, types.OCIManifestSchema1)
	m.Images = []Image{{Name: "r.io/app:1", Digest: man.Digest.String(), MediaType: string(man.MediaType), Size: man.Size}}
	if _, err := m.seal(); err != nil {
		tb.Fatal(err)
	}
	m.Images[0].Bundle = m.ID
	if manifest, err = json.Marshal(m); err != nil {
		tb.Fatal(err)
	}
	man.Annotations = map[string]string{"io.containerd.image.name": "r.io/app:1"}
	if index, err = json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{man}}); err != nil {
		tb.Fatal(err)
	}
	for name, data := range map[string][]byte{ManifestFile: manifest, "index.json": index, "oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return manifest, index
}

// memFiles is a directory bundle in memory: the fuzzers need no disk.
type memFiles map[string][]byte

func (m memFiles) Open(name string) (io.ReadCloser, error) {
	b, ok := m[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m memFiles) Size(name string) (int64, error) {
	b, ok := m[name]
	if !ok {
		return 0, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return int64(len(b)), nil
}

func (m memFiles) Close() error { return nil }

// readDir reads a directory bundle into memory.
func readDir(tb testing.TB, dir string) memFiles {
	tb.Helper()
	m := memFiles{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		m[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// readBundle opens the bundle fl holds, verifies it and reads every image
// the way import does. Whatever the bundle holds, this must end in results
// or errors: no panic, no hang (the context bounds it).
func readBundle(t *testing.T, fl files) {
	b, err := openBundle("fuzz", fl)
	if err != nil {
		return
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Verify(ctx, b, nil); err != nil && ctx.Err() != nil {
		t.Fatalf("verify did not end: %v", err)
	}
	s := newSource(b, nil, nil)
	for _, repo := range Repos(b.Manifest) {
		tags, _ := s.Tags(ctx, repo)
		for _, tag := range tags {
			a, err := s.Fetch(ctx, repo, tag)
			if err != nil {
				continue
			}
			if a.Image != nil {
				_, _ = a.Image.Layers()
			}
		}
	}
}

func TestTinyBundleVerifies(t *testing.T) {
	dir := t.TempDir()
	tinyBundle(t, dir)
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	vr, err := Verify(context.Background(), b, nil)
	if err != nil || len(vr.Problems) != 0 || vr.Blobs != 3 || vr.Images != 1 {
		t.Fatalf("verify: %v %+v", err, vr)
	}
}

// FuzzBundleDir fuzzes a directory bundle's two documents, the bundle
// manifest and index.json, over a valid bundle's blobs.
func FuzzBundleDir(f *testing.F) {
	dir := f.TempDir()
	man, idx := tinyBundle(f, dir)
	blobs := readDir(f, dir)
	f.Add(man, idx)
	f.Add(man, []byte(`{"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:`+hex.EncodeToString(make([]byte, 32))+`","size":1}]}`))
	f.Add([]byte(`{"schemaVersion":1,"mediaType":"`+MediaType+`","id":"x","images":[{"name":"docker.io/library/../../victim/app3:1"}]}`), idx)
	f.Fuzz(func(t *testing.T, man, idx []byte) {
		fl := memFiles{}
		for k, v := range blobs {
			fl[k] = v
		}
		fl[ManifestFile], fl["index.json"] = man, idx
		readBundle(t, fl)
	})
}

// FuzzBundleTar fuzzes the .tar form byte by byte, seeded with the tiny
// bundle packed as export packs it.
func FuzzBundleTar(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "b")
	tinyBundle(f, dir)
	p := filepath.Join(f.TempDir(), "b.tar")
	if err := packTar(dir, p); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(p)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		fl, err := indexTar(bytes.NewReader(data), io.NopCloser(nil))
		if err != nil {
			return
		}
		readBundle(t, fl)
	})
}
