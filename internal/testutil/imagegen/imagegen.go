// Package imagegen builds small, deterministic OCI images and indexes for
// tests. The same arguments always produce the same digests (bytes come from
// math/rand/v2's PCG, whose output is fixed by the Go 1 compatibility
// promise), so tests can compare digests across runs and registries.
//
// Images use OCI media types throughout: an OCI image manifest, an OCI
// config, and layers of type types.OCIUncompressedLayer whose content is raw
// pseudo-random bytes (digest == diffID, no compression to undo).
package imagegen

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// LayerMediaType is the media type of every generated layer.
const LayerMediaType = types.OCIUncompressedLayer

// SeedLabel is the config label carrying the seed an image was built from.
const SeedLabel = "dev.regmirror.imagegen.seed"

// DefaultPlatform is the platform of Image.
var DefaultPlatform = v1.Platform{OS: "linux", Architecture: "amd64"}

// PushTimeout bounds Push unless the caller passes its own remote.WithContext.
var PushTimeout = 2 * time.Minute

// epoch is the creation time of every image and history entry.
var epoch = v1.Time{Time: time.Unix(0, 0).UTC()}

// stream1 is the PCG stream constant ("imagegen").
const stream1 = 0x696d61676567656e

// Layer returns a layer of exactly size pseudo-random bytes derived from seed.
func Layer(seed uint64, size int64) v1.Layer {
	if size < 0 {
		panic(fmt.Sprintf("imagegen: negative layer size %d", size))
	}
	src := rand.NewPCG(seed, stream1)
	b := make([]byte, size)
	var buf [8]byte
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(buf[:], src.Uint64())
		copy(b[i:], buf[:])
	}
	return static.NewLayer(b, LayerMediaType)
}

// Image returns a DefaultPlatform image: the base layers first (for
// shared-layer tests), then `layers` generated layers of layerSize bytes.
// It equals ImageFor(seed, DefaultPlatform, ...).
func Image(seed uint64, layers int, layerSize int64, base ...v1.Layer) v1.Image {
	return ImageFor(seed, DefaultPlatform, layers, layerSize, base...)
}

// ImageFor is Image for a given platform, which is recorded in the config
// (os, architecture, variant, os.version, os.features). Generated layers
// depend on both seed and platform, so the images of an Index share only
// the base layers. A zero OS or architecture defaults to DefaultPlatform's.
func ImageFor(seed uint64, platform v1.Platform, layers int, layerSize int64, base ...v1.Layer) v1.Image {
	if layers < 0 {
		panic(fmt.Sprintf("imagegen: negative layer count %d", layers))
	}
	if platform.OS == "" {
		platform.OS = DefaultPlatform.OS
	}
	if platform.Architecture == "" {
		platform.Architecture = DefaultPlatform.Architecture
	}

	cf := &v1.ConfigFile{
		Architecture: platform.Architecture,
		OS:           platform.OS,
		Variant:      platform.Variant,
		OSVersion:    platform.OSVersion,
		OSFeatures:   platform.OSFeatures,
		Created:      epoch,
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Labels: map[string]string{SeedLabel: strconv.FormatUint(seed, 10)},
		},
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, cf)
	if err != nil {
		panic(fmt.Sprintf("imagegen: config: %v", err))
	}

	adds := make([]mutate.Addendum, 0, len(base)+layers)
	for i, l := range base {
		adds = append(adds, mutate.Addendum{
			Layer:   l,
			History: v1.History{Created: epoch, CreatedBy: fmt.Sprintf("imagegen base layer %d", i)},
		})
	}
	src := rand.NewPCG(seed, platformKey(platform))
	for i := range layers {
		adds = append(adds, mutate.Addendum{
			Layer:   Layer(src.Uint64(), layerSize),
			History: v1.History{Created: epoch, CreatedBy: fmt.Sprintf("imagegen layer %d", i)},
		})
	}
	if len(adds) > 0 {
		img, err = mutate.Append(img, adds...)
		if err != nil {
			panic(fmt.Sprintf("imagegen: append layers: %v", err))
		}
	}
	return img
}

// Index returns an OCI image index with one ImageFor(seed, p, ...) per
// platform, in the given order, each descriptor carrying its Platform.
func Index(seed uint64, platforms []v1.Platform, layers int, layerSize int64, base ...v1.Layer) v1.ImageIndex {
	adds := make([]mutate.IndexAddendum, 0, len(platforms))
	for _, p := range platforms {
		img := ImageFor(seed, p, layers, layerSize, base...)
		cf, err := img.ConfigFile()
		if err != nil {
			panic(fmt.Sprintf("imagegen: %v", err))
		}
		desc := cf.Platform() // defaults filled in by ImageFor
		adds = append(adds, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: desc},
		})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
}

// platformKey turns a platform into a PCG stream constant.
func platformKey(p v1.Platform) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(strings.Join([]string{
		p.OS, p.Architecture, p.Variant, p.OSVersion, strings.Join(p.OSFeatures, ","),
	}, "\x00")))
	return h.Sum64()
}

// Push writes x (a v1.Image or v1.ImageIndex) to ref with remote.Write or
// remote.WriteIndex, failing the test on error. It is bounded by the test's
// context and PushTimeout; options given later (e.g. remote.WithContext)
// override.
func Push(t testing.TB, ref string, x any, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatalf("imagegen: parse %q: %v", ref, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), PushTimeout)
	defer cancel()
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	switch v := x.(type) {
	case v1.Image:
		err = remote.Write(r, v, opts...)
	case v1.ImageIndex:
		err = remote.WriteIndex(r, v, opts...)
	default:
		t.Fatalf("imagegen: Push(%q): unsupported type %T", ref, x)
	}
	if err != nil {
		t.Fatalf("imagegen: push %s: %v", ref, err)
	}
}

// Digest returns the manifest digest of x (a v1.Image or v1.ImageIndex),
// failing the test on error.
func Digest(t testing.TB, x any) v1.Hash {
	t.Helper()
	var (
		h   v1.Hash
		err error
	)
	switch v := x.(type) {
	case v1.Image:
		h, err = v.Digest()
	case v1.ImageIndex:
		h, err = v.Digest()
	default:
		t.Fatalf("imagegen: Digest: unsupported type %T", x)
	}
	if err != nil {
		t.Fatalf("imagegen: digest: %v", err)
	}
	return h
}
