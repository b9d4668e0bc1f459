// Package layout is the Store of an OCI image layout directory ("oci:PATH")
// used as a registry, and the one writer of OCI layouts in regmirror (air-gap
// bundles are layouts too). A layout holds images of many repositories:
// each index.json entry names its image with containerd's
// io.containerd.image.name annotation. Blobs are written to a temporary
// file, checked against their digest and renamed into place, and index.json
// is replaced atomically, last: an interrupted push leaves no tag behind.
package layout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/regmirror/regmirror/internal/atomicfile"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/transport"
)

// Annotations naming an image in an OCI layout. The layout holds images of
// many repositories, so each descriptor in index.json carries the full
// reference the way containerd writes it, and the tag the way the OCI spec
// does. A descriptor with only the OCI tag belongs to any repository.
const (
	AnnotationImageName = "io.containerd.image.name"
	AnnotationRefName   = "org.opencontainers.image.ref.name"
)

// layoutStore is an OCI image layout directory used as a registry.
type layoutStore struct {
	dir  string
	mu   *sync.Mutex // guards index.json; shared by every store of dir
	opts Options
}

// Options adjust a layout written as an air-gap bundle.
type Options struct {
	// Elsewhere reports blobs held outside this layout (by an earlier
	// bundle): Push neither reads nor writes them, so an incremental
	// bundle carries only what its chain lacks.
	Elsewhere func(v1.Hash) bool
	// FullRefName writes the full reference ("repo:tag") into
	// org.opencontainers.image.ref.name instead of the tag alone. A
	// bundle holds many repositories, often with the same tags; tools that
	// select by that annotation (skopeo's oci: and oci-archive:) can then
	// name each image.
	FullRefName bool
}

// OpenDir returns the OCI layout store at dir with options.
func OpenDir(dir string, o Options) (registry.Store, error) {
	s, err := openLayout(registry.LayoutEndpoint(dir))
	if err != nil {
		return nil, err
	}
	s.opts = o
	return s, nil
}

// Open returns the Store of an "oci:PATH" endpoint.
func Open(ep registry.Endpoint, _ registry.Options) (registry.Store, error) {
	return openLayout(ep)
}

var (
	layoutLocksMu sync.Mutex
	layoutLocks   = map[string]*sync.Mutex{}
)

func openLayout(ep registry.Endpoint) (*layoutStore, error) {
	dir := ep.Path()
	if dir == "" {
		return nil, fmt.Errorf("registry %q: an OCI layout needs a path (oci:PATH)", ep.Registry)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	layoutLocksMu.Lock()
	defer layoutLocksMu.Unlock()
	mu, ok := layoutLocks[abs]
	if !ok {
		mu = &sync.Mutex{}
		layoutLocks[abs] = mu
	}
	return &layoutStore{dir: dir, mu: mu}, nil
}

func (s *layoutStore) String() string { return registry.LayoutPrefix + s.dir }

func (s *layoutStore) Ref(repo, ref string) string {
	return registry.FormatRef(s.String()+"/"+strings.TrimPrefix(repo, "/"), ref)
}

// readIndex reads index.json. A missing layout reads as empty, so a target
// layout need not exist before the first sync.
func (s *layoutStore) readIndex() (*v1.IndexManifest, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, "index.json"))
	if errors.Is(err, os.ErrNotExist) {
		return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, nil
	}
	if err != nil {
		return nil, err
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(b, &im); err != nil {
		return nil, fmt.Errorf("%s: index.json: %w", s, err)
	}
	return &im, nil
}

// SplitImageName splits an io.containerd.image.name value, "repo:tag" or
// "repo@sha256:...", into repo and ref (ref is "" when there is neither).
func SplitImageName(n string) (repo, ref string) { return splitImageName(n) }

// splitImageName splits "repo:tag" or "repo@sha256:..." into repo and ref.
func splitImageName(n string) (repo, ref string) {
	if r, d, ok := strings.Cut(n, "@"); ok {
		return r, d
	}
	if i := strings.LastIndex(n, ":"); i > strings.LastIndex(n, "/") {
		return n[:i], n[i+1:]
	}
	return n, ""
}

// entryRef returns the reference under which a descriptor is listed for
// repo, or "" if it belongs to another repository.
func entryRef(d v1.Descriptor, repo string) string {
	repo = strings.TrimPrefix(repo, "/")
	if n := d.Annotations[AnnotationImageName]; n != "" {
		r, ref := splitImageName(n)
		if r != repo {
			return ""
		}
		return ref
	}
	return d.Annotations[AnnotationRefName]
}

func (s *layoutStore) Tags(_ context.Context, repo string) ([]string, error) {
	im, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	var tags []string
	seen := map[string]bool{}
	for _, d := range im.Manifests {
		ref := entryRef(d, repo)
		if ref == "" || strings.HasPrefix(ref, "sha256:") || seen[ref] {
			continue
		}
		seen[ref] = true
		tags = append(tags, ref)
	}
	if len(tags) == 0 {
		return nil, fmt.Errorf("%s: repository %s: %w", s, repo, registry.ErrNotFound)
	}
	return tags, nil
}

// Catalog lists the repositories named in index.json (containerd's
// io.containerd.image.name), sorted. Entries with only an OCI tag belong to
// no repository in particular and are not listed.
func (s *layoutStore) Catalog(_ context.Context, max int) ([]string, bool, error) {
	im, err := s.readIndex()
	if err != nil {
		return nil, false, err
	}
	seen := map[string]bool{}
	var repos []string
	for _, d := range im.Manifests {
		n := d.Annotations[AnnotationImageName]
		if n == "" {
			continue
		}
		r, _ := splitImageName(n)
		if r != "" && !seen[r] {
			seen[r] = true
			repos = append(repos, r)
		}
	}
	slices.Sort(repos)
	if max > 0 && len(repos) > max {
		return repos[:max], true, nil
	}
	return repos, false, nil
}

func (s *layoutStore) Head(_ context.Context, repo, ref string) (v1.Descriptor, error) {
	im, err := s.readIndex()
	if err != nil {
		return v1.Descriptor{}, err
	}
	if h, err := v1.NewHash(ref); err == nil {
		for _, d := range im.Manifests {
			if d.Digest == h {
				return d, nil
			}
		}
		return s.blobDescriptor(h)
	}
	for _, d := range im.Manifests {
		if entryRef(d, repo) == ref {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("%s: %w", s.Ref(repo, ref), registry.ErrNotFound)
}

// blobDescriptor describes a manifest blob that index.json does not list.
func (s *layoutStore) blobDescriptor(h v1.Hash) (v1.Descriptor, error) {
	b, err := os.ReadFile(s.blobPath(h))
	if errors.Is(err, os.ErrNotExist) {
		return v1.Descriptor{}, fmt.Errorf("%s: %s: %w", s, h, registry.ErrNotFound)
	}
	if err != nil {
		return v1.Descriptor{}, err
	}
	var m struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return v1.Descriptor{}, fmt.Errorf("%s: %s is not a manifest: %w", s, h, err)
	}
	return v1.Descriptor{MediaType: m.MediaType, Digest: h, Size: int64(len(b))}, nil
}

func (s *layoutStore) Fetch(ctx context.Context, repo, ref string) (*registry.Artifact, error) {
	d, err := s.Head(ctx, repo, ref)
	if err != nil {
		return nil, err
	}
	p := layout.Path(s.dir)
	a := &registry.Artifact{Desc: d}
	switch {
	case d.MediaType.IsIndex():
		root, err := p.ImageIndex()
		if err != nil {
			return nil, err
		}
		a.Index, err = root.ImageIndex(d.Digest)
		if err != nil {
			return nil, err
		}
	case d.MediaType.IsImage():
		a.Image, err = p.Image(d.Digest)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s: unsupported manifest media type %q", s.Ref(repo, ref), d.MediaType)
	}
	return a, nil
}

func (s *layoutStore) blobPath(h v1.Hash) string {
	return filepath.Join(s.dir, "blobs", h.Algorithm, h.Hex)
}

func (s *layoutStore) Push(ctx context.Context, repo, ref string, a *registry.Artifact) (int64, error) {
	if err := os.MkdirAll(filepath.Join(s.dir, "blobs", "sha256"), 0o755); err != nil {
		return 0, err
	}
	var w blobWriter
	w.store = s
	if err := w.artifact(ctx, a); err != nil {
		return w.written(), err
	}
	// The index entry goes last: until it is written, nothing names the
	// blobs above, so an interrupted push leaves no tag behind.
	repo = strings.TrimPrefix(repo, "/")
	d := a.Desc
	d.Platform = nil
	d.Annotations = map[string]string{AnnotationImageName: registry.FormatRef(repo, ref)}
	if _, err := v1.NewHash(ref); err != nil {
		d.Annotations[AnnotationRefName] = ref
		if s.opts.FullRefName {
			d.Annotations[AnnotationRefName] = registry.FormatRef(repo, ref)
		}
	}
	return w.written(), s.putIndexEntry(repo, ref, d)
}

func (s *layoutStore) putIndexEntry(repo, ref string, d v1.Descriptor) error {
	// Replace the entry with the same name; entries without our
	// annotation (written by other tools) are left alone.
	return s.editIndex(func(old v1.Descriptor) bool {
		return old.Annotations[AnnotationImageName] != d.Annotations[AnnotationImageName]
	}, d)
}

// editIndex rewrites index.json (atomically, under the layout's lock) with
// the entries keep accepts, followed by add.
func (s *layoutStore) editIndex(keep func(v1.Descriptor) bool, add ...v1.Descriptor) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	im, err := s.readIndex()
	if err != nil {
		return err
	}
	kept := im.Manifests[:0]
	for _, old := range im.Manifests {
		if keep(old) {
			kept = append(kept, old)
		}
	}
	im.Manifests = append(kept, add...)
	b, err := json.MarshalIndent(im, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(s.dir, "oci-layout"), layoutMarker, true); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.dir, "index.json"), b, false)
}

// Init makes dir an OCI layout even when nothing was pushed to it: the
// oci-layout marker, an empty index.json when there is none, and the blobs
// directory. Existing files are kept.
func Init(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, "oci-layout"), layoutMarker, true); err != nil {
		return err
	}
	empty := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	return writeFileAtomic(filepath.Join(dir, "index.json"), empty, true)
}

// layoutMarker is the oci-layout file of the OCI image layout spec.
var layoutMarker = []byte(`{"imageLayoutVersion":"1.0.0"}`)

// writeFileAtomic replaces name with data (atomicfile.WriteFile). With
// keep, an existing file is kept.
func writeFileAtomic(name string, data []byte, keep bool) error {
	if keep {
		if _, err := os.Stat(name); err == nil {
			return nil
		}
	}
	return atomicfile.WriteFile(name, data, filePerm)
}

// filePerm is the mode of every file of a layout. It is what os.CreateTemp
// gave them before atomicfile, kept so that nothing changes for readers.
const filePerm = 0o600

// blobWriter writes an artifact's blobs into a layout, verifying every
// digest as it goes.
type blobWriter struct {
	store *layoutStore
	mu    sync.Mutex
	n     int64
}

func (w *blobWriter) written() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// artifact writes a's blobs, children before the manifests that name them,
// each distinct manifest once.
func (w *blobWriter) artifact(ctx context.Context, a *registry.Artifact) error {
	tree := registry.NewArtifactTree(a)
	return registry.Walk(ctx, a.Desc, tree.Read, registry.Walker{
		// Manifests are descended into; an image writes its own config
		// and layers (in parallel) when it is left.
		Visit: func(_ context.Context, d v1.Descriptor) (bool, error) {
			return registry.IsManifest(d) || d.Digest == a.Desc.Digest, nil
		},
		Leave: func(ctx context.Context, d v1.Descriptor) error {
			if img := tree.Image(d.Digest); img != nil {
				return w.image(ctx, img)
			}
			return w.index(ctx, tree.Index(d.Digest))
		},
	})
}

// index writes an index manifest whose children are written.
func (w *blobWriter) index(ctx context.Context, idx v1.ImageIndex) error {
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		if !registry.IsManifest(d) {
			return fmt.Errorf("index child %s: unsupported media type %q", d.Digest, d.MediaType)
		}
	}
	raw, err := idx.RawManifest()
	if err != nil {
		return err
	}
	h, err := idx.Digest()
	if err != nil {
		return err
	}
	return w.bytes(ctx, h, raw)
}

func (w *blobWriter) image(ctx context.Context, img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, l := range layers {
		g.Go(func() error {
			mt, err := l.MediaType()
			if err != nil {
				return err
			}
			if !mt.IsDistributable() {
				return nil // foreign layers are fetched from their URLs by clients
			}
			h, err := l.Digest()
			if err != nil {
				return err
			}
			if w.exists(h) {
				return nil
			}
			rc, err := l.Compressed()
			if err != nil {
				return err
			}
			defer rc.Close()
			return w.stream(gctx, h, rc)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// The config's digest from the manifest: go-containerregistry's
	// ConfigName may fetch the config to hash it.
	mf, err := img.Manifest()
	if err != nil {
		return err
	}
	cfgName := mf.Config.Digest
	// Ask for the config only when it is missing: from a registry it is a
	// blob GET (a resumed export or a re-tagged image has it already).
	if !w.exists(cfgName) {
		cfg, err := img.RawConfigFile()
		if err != nil {
			return err
		}
		if err := w.bytes(ctx, cfgName, cfg); err != nil {
			return err
		}
	}
	raw, err := img.RawManifest()
	if err != nil {
		return err
	}
	h, err := img.Digest()
	if err != nil {
		return err
	}
	return w.bytes(ctx, h, raw)
}

func (w *blobWriter) exists(h v1.Hash) bool {
	if w.store.opts.Elsewhere != nil && w.store.opts.Elsewhere(h) {
		return true
	}
	_, err := os.Stat(w.store.blobPath(h))
	return err == nil
}

func (w *blobWriter) bytes(ctx context.Context, h v1.Hash, b []byte) error {
	if w.exists(h) {
		return nil
	}
	// In memory already: finish it even when ctx is cancelled (the
	// context still carries the progress hook).
	return w.stream(context.WithoutCancel(ctx), h, io.NopCloser(bytes.NewReader(b)))
}

// stream copies one blob to a temporary file, checks its digest and
// commits it into place (atomicfile: synced, renamed, directory synced). A
// blob file therefore exists only when it is complete and correct, even
// after a crash, which is what lets a later run trust exists().
func (w *blobWriter) stream(ctx context.Context, h v1.Hash, r io.Reader) error {
	if h.Algorithm != "sha256" {
		return fmt.Errorf("blob %s: unsupported digest algorithm", h)
	}
	f, err := atomicfile.Create(w.store.blobPath(h), filePerm)
	if err != nil {
		return err
	}
	defer f.Abort()
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, sum), ctxReader{ctx, r})
	if err != nil {
		return fmt.Errorf("writing blob %s: %w", h, err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != h.Hex {
		return fmt.Errorf("blob %s: digest mismatch, content has sha256:%s", h, got)
	}
	if err := f.Commit(); err != nil {
		return err
	}
	w.mu.Lock()
	w.n += n
	w.mu.Unlock()
	transport.ReportProgress(ctx, n)
	return nil
}

// ctxReader stops a copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
