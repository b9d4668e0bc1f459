package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regmirror/regmirror/internal/atomicfile"
	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/filter"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/layout"
)

// ExportOptions say what to export and where.
type ExportOptions struct {
	// Tasks select the images exactly as sync would; their targets are
	// replaced by the bundle.
	Tasks []engine.Task
	// Output is a directory, or a .tar file.
	Output string
	// Since is an earlier bundle: only what its chain lacks is stored.
	Since string
	// Config names the config file the bundle was made from.
	Config *ConfigRef
	// Engine runs the copies (required). Its OnPlanned, OnResult and
	// OnBytes see the export's images and the bytes written to the bundle.
	Engine *engine.Engine
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// ExportResult is what an export produced.
type ExportResult struct {
	Report   *engine.Report
	Manifest *Manifest
	// BlobBytes is the total size of the blobs stored in the bundle.
	BlobBytes int64
}

// Name returns the bundle name for an image: the source registry as
// written in the config (Docker Hub as docker.io) and the repository path
// as the source serves it.
func Name(src registry.Endpoint, repo string) string {
	return joinPrefix(NamePrefix(src), src.RepoPath(repo))
}

// NamePrefix is what Name puts before every repository path of src: the
// registry ("docker.io" for Docker Hub), or nothing for an OCI layout.
func NamePrefix(src registry.Endpoint) string {
	if !src.Kind().Network() {
		return ""
	}
	host := strings.TrimSuffix(src.Registry, "/")
	if registry.IsDockerHub(host) {
		host = "docker.io"
	}
	return host
}

func joinPrefix(prefix, path string) string {
	if prefix == "" {
		return path
	}
	return prefix + "/" + path
}

// bundleTo is the mapping's To in an export: the bundle name of each
// source repository. A "regex:" From (repository discovery) takes the
// registry as a prefix, so each discovered path keeps its own name.
func bundleTo(src registry.Endpoint, from string) string {
	if filter.IsRepoRegex(from) {
		return NamePrefix(src)
	}
	return Name(src, from)
}

// Export writes the images the tasks select into a bundle. Images that
// fail are reported and left out; the bundle holds the others. A directory
// export interrupted part-way is resumed by running it again: blobs already
// written are kept.
func Export(ctx context.Context, o ExportOptions) (*ExportResult, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Engine == nil {
		return nil, errors.New("bundle.Export: no engine")
	}
	out := filepath.Clean(o.Output)
	dir := WorkDir(out)
	done := filepath.Join(out, ManifestFile)
	if IsTar(out) {
		done = out
	}
	if _, err := os.Stat(done); err == nil {
		return nil, fmt.Errorf("%s %w: export writes a new bundle; choose another --output", out, ErrExists)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}

	chain := &chainInfo{images: map[string]Image{}, blobs: map[string]Blob{}}
	if o.Since != "" {
		old, err := Open(o.Since)
		if err != nil {
			return nil, fmt.Errorf("--since: %w", err)
		}
		chain = newChainInfo(old.Manifest)
		old.Close()
	}

	lay, err := layout.OpenDir(dir, layout.Options{
		Elsewhere:   func(h v1.Hash) bool { _, ok := chain.blobs[h.String()]; return ok },
		FullRefName: true,
	})
	if err != nil {
		return nil, err
	}
	target := &exportTarget{Store: lay, chain: chain, out: out}
	ep := registry.LayoutEndpoint(dir)
	tasks := make([]engine.Task, len(o.Tasks))
	for i, t := range o.Tasks {
		t.Target, t.TargetStore = ep, target
		t.Mappings = slices.Clone(t.Mappings)
		for j := range t.Mappings {
			// A new To: the compiled pair no longer applies, the
			// engine compiles From and this To.
			t.Mappings[j].To, t.Mappings[j].Repos = bundleTo(t.Source, t.Mappings[j].From), nil
		}
		tasks[i] = t
	}
	rep := o.Engine.Run(ctx, tasks)
	if err := ctx.Err(); err != nil {
		return &ExportResult{Report: rep}, err
	}

	m, err := writeManifest(ctx, dir, out, lay, rep, chain, o)
	if err != nil {
		return &ExportResult{Report: rep}, err
	}
	res := &ExportResult{Report: rep, Manifest: m}
	for _, b := range m.Blobs {
		res.BlobBytes += b.Size
	}
	if IsTar(out) {
		if err := packTar(dir, out); err != nil {
			return res, fmt.Errorf("writing %s: %w", out, err)
		}
	}
	return res, nil
}

// WorkDir is the directory Export writes into: the output itself, or for
// a .tar output the directory beside it that is packed into the tar at
// the end (and kept when the export is interrupted, so a re-run resumes).
func WorkDir(out string) string {
	out = filepath.Clean(out)
	if IsTar(out) {
		return out + ".d"
	}
	return out
}

// chainInfo is what the bundles a --since export builds on already hold.
type chainInfo struct {
	parent *Manifest
	images map[string]Image
	blobs  map[string]Blob // with the bundle holding each
}

func newChainInfo(m *Manifest) *chainInfo {
	c := &chainInfo{parent: m, images: map[string]Image{}, blobs: map[string]Blob{}}
	for _, im := range m.Images {
		c.images[im.Name] = im
	}
	for _, b := range m.Inherits {
		c.blobs[b.Digest] = b
	}
	for _, b := range m.Blobs {
		b.Bundle = m.ID
		c.blobs[b.Digest] = b
	}
	return c
}

// exportTarget is the bundle's layout as the engine's target. A tag the
// chain already holds at the same digest answers HEAD as present, so the
// engine skips it without a pull and the bundle records it as completed by
// the earlier bundle.
type exportTarget struct {
	registry.Store
	chain *chainInfo
	out   string // the output as the user named it
}

// Ref names an image by the output the user asked for: for a .tar the
// work directory is packed into it and deleted, so it must not be what
// the log lines point to.
func (t *exportTarget) Ref(repo, ref string) string {
	return registry.FormatRef(registry.LayoutPrefix+t.out+"/"+strings.TrimPrefix(repo, "/"), ref)
}

func (t *exportTarget) Head(ctx context.Context, repo, ref string) (v1.Descriptor, error) {
	d, err := t.Store.Head(ctx, repo, ref)
	if !errors.Is(err, registry.ErrNotFound) {
		return d, err
	}
	if im, ok := t.chain.images[joinName(repo, ref)]; ok {
		h, herr := v1.NewHash(im.Digest)
		if herr == nil {
			return v1.Descriptor{MediaType: types.MediaType(im.MediaType), Digest: h, Size: im.Size}, nil
		}
	}
	return d, err
}

// writeManifest lists what the layout holds and what it inherits, and
// writes regmirror-bundle.json last: a bundle without it is unfinished.
func writeManifest(ctx context.Context, dir, out string, lay registry.Store, rep *engine.Report, chain *chainInfo, o ExportOptions) (*Manifest, error) {
	m := &Manifest{SchemaVersion: 1, MediaType: MediaType, Name: filepath.Base(out), Created: o.Now().UTC().Truncate(time.Second), Config: o.Config}
	if chain.parent != nil {
		p := chain.parent
		m.Chain = append(slices.Clone(p.Chain), p.Ref())
		r := p.Ref()
		m.Parent = &r
	}
	idx, err := readIndexFile(dir)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(idx.Manifests, func(a, b v1.Descriptor) int {
		return strings.Compare(a.Annotations[layout.AnnotationImageName], b.Annotations[layout.AnnotationImageName])
	})
	held := map[string]bool{}
	read := func(_ context.Context, d v1.Descriptor) ([]byte, error) {
		return os.ReadFile(filepath.Join(dir, filepath.FromSlash(blobName(d.Digest))))
	}
	seen := map[string]bool{}
	for _, d := range idx.Manifests {
		name := d.Annotations[layout.AnnotationImageName]
		if name == "" {
			continue
		}
		held[name] = true
		im := Image{Name: name, Digest: d.Digest.String(), MediaType: string(d.MediaType), Size: d.Size}
		if raw, err := read(ctx, d); err == nil {
			var mr manifestRefs
			if json.Unmarshal(raw, &mr) == nil && mr.Subject != nil {
				im.Subject = mr.Subject.Digest.String()
			}
		}
		m.Images = append(m.Images, im)
		repo, _ := SplitName(name)
		err := registry.Walk(ctx, d, read, registry.Walker{Visit: func(_ context.Context, b v1.Descriptor) (bool, error) {
			k := b.Digest.String()
			if seen[k] {
				return false, nil // listed with an earlier image
			}
			if _, ok := chain.blobs[k]; ok {
				return false, nil // inherited, with all it references
			}
			seen[k] = true
			m.Blobs = append(m.Blobs, Blob{Digest: k, Size: b.Size, Repo: repo})
			return true, nil
		}})
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", dir, name, err)
		}
	}
	for _, r := range rep.Results {
		if r.Status != engine.Skipped {
			continue
		}
		name := joinName(r.TargetRepo, r.Ref.Target())
		if held[name] {
			continue
		}
		if im, ok := chain.images[name]; ok && im.Digest == r.Digest {
			m.Images = append(m.Images, im)
			held[name] = true
		}
	}
	for _, b := range chain.blobs {
		m.Inherits = append(m.Inherits, b)
	}
	// Sorted, so the manifest does not depend on which copy finished first.
	slices.SortFunc(m.Images, func(a, b Image) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(m.Blobs, func(a, b Blob) int { return strings.Compare(a.Digest, b.Digest) })
	slices.SortFunc(m.Inherits, func(a, b Blob) int { return strings.Compare(a.Digest, b.Digest) })
	raw, err := m.seal()
	if err != nil {
		return nil, err
	}
	for i := range m.Images {
		if m.Images[i].Bundle == "" {
			m.Images[i].Bundle = m.ID
		}
	}
	// The ID covers the content with the held images' bundle left empty
	// ("this bundle"); write the manifest with it filled in.
	if raw, err = json.MarshalIndent(m, "", "  "); err != nil {
		return nil, err
	}
	// A bundle that adds nothing (every image unchanged since the chain)
	// is still a layout: an empty index and the layout marker.
	if err := layout.Init(dir); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ManifestFile), raw, 0o600); err != nil {
		return nil, err
	}
	return m, nil
}

func readIndexFile(dir string) (*v1.IndexManifest, error) {
	f, err := os.Open(filepath.Join(dir, "index.json"))
	if errors.Is(err, os.ErrNotExist) {
		return &v1.IndexManifest{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return v1.ParseIndexManifest(f)
}
