// Command gen writes examples/oci-source: a tiny OCI image layout (a few KB)
// that the README's first command mirrors with no registry at all.
//
// The output is deterministic (fixed timestamps, fixed contents), so running
// it again reproduces the committed files byte for byte:
//
//	go run ./examples/gen examples/oci-source
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/stores"
)

func main() {
	dir := "examples/oci-source"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := generate(context.Background(), dir); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// epoch keeps every timestamp fixed so digests never change.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func generate(ctx context.Context, dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	store, err := stores.Open(registry.LayoutEndpoint(dir), registry.Options{})
	if err != nil {
		return err
	}
	base := layer("etc/motd", "regmirror example base layer\n")
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}

	images := []struct {
		repo, tag string
		art       *registry.Artifact
	}{
		{"library/hello", "1.0.0", single(amd64, base, layer("hello.txt", "hello 1.0.0\n"))},
		{"library/hello", "1.1.0", multi(base, "hello 1.1.0\n", amd64, arm64)},
		{"library/hello", "1.2.0-rc.1", single(amd64, base, layer("hello.txt", "hello 1.2.0-rc.1\n"))},
		{"library/hello", "latest", multi(base, "hello 1.1.0\n", amd64, arm64)},
		{"tools/busybox-lite", "2.0", single(amd64, base, layer("bin/lite", "#!/bin/sh\necho lite\n"))},
	}
	for _, im := range images {
		if _, err := store.Push(ctx, im.repo, im.tag, im.art); err != nil {
			return fmt.Errorf("%s:%s: %w", im.repo, im.tag, err)
		}
	}
	return nil
}

// layer is a gzipped tar holding one file, with fixed metadata.
func layer(name, content string) v1.Layer {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	must(tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: epoch, Typeflag: tar.TypeReg}))
	_, err := tw.Write([]byte(content))
	must(err)
	must(tw.Close())
	var gb bytes.Buffer
	gw := gzip.NewWriter(&gb) // no name or mtime in the header: deterministic
	_, err = gw.Write(tb.Bytes())
	must(err)
	must(gw.Close())
	return static.NewLayer(gb.Bytes(), types.OCILayer)
}

func image(p v1.Platform, layers ...v1.Layer) v1.Image {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	must(err)
	cf, err := img.ConfigFile()
	must(err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Cmd = []string{"/bin/sh"}
	img, err = mutate.ConfigFile(img, cf)
	must(err)
	return img
}

func single(p v1.Platform, layers ...v1.Layer) *registry.Artifact {
	img := image(p, layers...)
	d, err := img.Digest()
	must(err)
	raw, err := img.RawManifest()
	must(err)
	return &registry.Artifact{Image: img, Desc: v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: d, Size: int64(len(raw))}}
}

func multi(base v1.Layer, text string, ps ...v1.Platform) *registry.Artifact {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range ps {
		img := image(p, base, layer("hello.txt", text+p.Architecture+"\n"))
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	d, err := idx.Digest()
	must(err)
	raw, err := idx.RawManifest()
	must(err)
	return &registry.Artifact{Index: idx, Desc: v1.Descriptor{MediaType: types.OCIImageIndex, Digest: d, Size: int64(len(raw))}}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
