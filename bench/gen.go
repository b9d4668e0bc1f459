package main

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Docker schema 2 media types: what Docker Hub serves, and what skopeo
// copies without converting anything.
const (
	mtManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtConfig   = "application/vnd.docker.container.image.v1+json"
	mtLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// layerSpec names a layer: the same key always yields the same bytes, so
// images sharing a key share the blob.
type layerSpec struct {
	key  string
	size int64 // uncompressed bytes
}

type platformSpec struct {
	arch   string
	layers []layerSpec
}

// imageSpec is one tag: a single image, or a manifest list when it has
// more than one platform.
type imageSpec struct {
	repo, tag string
	platforms []platformSpec
}

type workload struct {
	name   string
	images []imageSpec
}

func (w workload) repos() []string {
	var out []string
	seen := map[string]bool{}
	for _, im := range w.images {
		if !seen[im.repo] {
			seen[im.repo] = true
			out = append(out, im.repo)
		}
	}
	return out
}

const mb = 1 << 20

func scaled(scale float64, megabytes float64) int64 {
	return max(int64(megabytes*mb*scale), 1024)
}

// workloads are the benchmark's three workloads; scale multiplies layer sizes
// (never counts), so a small scale runs the same requests on fewer bytes.
func workloads(scale float64) []workload {
	sz := func(m float64) int64 { return scaled(scale, m) }

	// app: 12 repositories x 5 tags, a third multi-arch (amd64+arm64),
	// sharing two base layers per architecture. About 350 MB.
	app := workload{name: "app"}
	for r := 1; r <= 12; r++ {
		repo := fmt.Sprintf("app/svc%02d", r)
		archs := []string{"amd64"}
		if r <= 4 {
			archs = append(archs, "arm64")
		}
		for v := 0; v < 5; v++ {
			im := imageSpec{repo: repo, tag: fmt.Sprintf("1.%d.0", v)}
			for _, a := range archs {
				im.platforms = append(im.platforms, platformSpec{arch: a, layers: []layerSpec{
					{"base-os-" + a, sz(30)},
					{"base-runtime-" + a, sz(15)},
					{fmt.Sprintf("deps-%s-%s", repo, a), sz(10)},
					{fmt.Sprintf("app-%s-%d-%s", repo, v, a), sz(1.25)},
				}})
			}
			app.images = append(app.images, im)
		}
	}

	// big: one image of 1.2 GB in 5 layers.
	big := workload{name: "big", images: []imageSpec{{repo: "big/image", tag: "1.0", platforms: []platformSpec{{arch: "amd64"}}}}}
	for i := 0; i < 5; i++ {
		big.images[0].platforms[0].layers = append(big.images[0].platforms[0].layers, layerSpec{fmt.Sprintf("big-%d", i), sz(240)})
	}

	// many: one repository with 300 tags sharing two base layers, each with
	// a small layer of its own.
	many := workload{name: "many"}
	for v := 1; v <= 300; v++ {
		many.images = append(many.images, imageSpec{repo: "many/app", tag: fmt.Sprintf("v%04d", v), platforms: []platformSpec{{arch: "amd64", layers: []layerSpec{
			{"many-base-os", sz(40)},
			{"many-base-runtime", sz(10)},
			{fmt.Sprintf("many-app-%d", v), sz(0.25)},
		}}}})
	}
	return []workload{app, big, many}
}

// layerStream is the deterministic content of a layer: ChaCha8 bytes.
func layerStream(key string, size int64) io.Reader {
	h := fnv.New64a()
	h.Write([]byte(key))
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], h.Sum64())
	return io.LimitReader(rand.NewChaCha8(seed), size)
}

type blobInfo struct {
	digest, diffID string
	size           int64
	repo           string // first repository it was uploaded to
}

// generator pushes workloads into a registry over plain HTTP.
type generator struct {
	base   string // http://host:port
	client *http.Client

	mu     sync.Mutex
	blobs  map[string]blobInfo // layer key -> blob
	mounts map[string]*mountOnce
	bytes  int64
}

func newGenerator(host string) *generator {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = 8
	tr.DisableCompression = true
	return &generator{base: "http://" + host, client: &http.Client{Transport: tr}, blobs: map[string]blobInfo{}, mounts: map[string]*mountOnce{}}
}

func (g *generator) do(ctx context.Context, method, u string, body io.Reader, ctype string, want int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp, nil
}

func (g *generator) location(resp *http.Response) (*url.URL, error) {
	loc, err := resp.Location()
	if err != nil {
		return nil, err
	}
	return loc, nil
}

// upload streams body into repo as one PATCH, hashing it on the way, and
// returns its digest and size.
func (g *generator) upload(ctx context.Context, repo string, body io.Reader) (string, int64, error) {
	resp, err := g.do(ctx, http.MethodPost, g.base+"/v2/"+repo+"/blobs/uploads/", nil, "", http.StatusAccepted)
	if err != nil {
		return "", 0, err
	}
	loc, err := g.location(resp)
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	cr := &countReader{r: io.TeeReader(body, h)}
	resp, err = g.do(ctx, http.MethodPatch, loc.String(), cr, "application/octet-stream", http.StatusAccepted)
	if err != nil {
		return "", 0, err
	}
	if loc, err = g.location(resp); err != nil {
		return "", 0, err
	}
	d := "sha256:" + hex.EncodeToString(h.Sum(nil))
	q := loc.Query()
	q.Set("digest", d)
	loc.RawQuery = q.Encode()
	if _, err := g.do(ctx, http.MethodPut, loc.String(), nil, "", http.StatusCreated); err != nil {
		return "", 0, err
	}
	return d, cr.n, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// pushLayer uploads a layer: gzip "stored" blocks (valid gzip that costs
// no CPU to write, and incompressible content), so every tool copies it as
// it is instead of recompressing it.
func (g *generator) pushLayer(ctx context.Context, repo string, l layerSpec) (blobInfo, error) {
	pr, pw := io.Pipe()
	diff := sha256.New()
	go func() {
		gz, _ := gzip.NewWriterLevel(pw, gzip.NoCompression)
		_, err := io.CopyBuffer(io.MultiWriter(gz, diff), layerStream(l.key, l.size), make([]byte, 1<<20))
		if err == nil {
			err = gz.Close()
		}
		pw.CloseWithError(err)
	}()
	d, n, err := g.upload(ctx, repo, pr)
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return blobInfo{}, fmt.Errorf("layer %s: %w", l.key, err)
	}
	return blobInfo{digest: d, diffID: "sha256:" + hex.EncodeToString(diff.Sum(nil)), size: n, repo: repo}, nil
}

// mount links a blob into repo, once: docker-registry 2.8's filesystem
// driver can corrupt a link written by two mounts at once.
func (g *generator) mount(ctx context.Context, repo string, b blobInfo) error {
	if repo == b.repo {
		return nil
	}
	g.mu.Lock()
	m := g.mounts[repo+"@"+b.digest]
	if m == nil {
		m = &mountOnce{}
		g.mounts[repo+"@"+b.digest] = m
	}
	g.mu.Unlock()
	m.once.Do(func() { m.err = g.mountNow(ctx, repo, b) })
	return m.err
}

type mountOnce struct {
	once sync.Once
	err  error
}

func (g *generator) mountNow(ctx context.Context, repo string, b blobInfo) error {
	_, err := g.do(ctx, http.MethodPost, g.base+"/v2/"+repo+"/blobs/uploads/?mount="+b.digest+"&from="+b.repo, nil, "", http.StatusCreated)
	if err != nil {
		return err
	}
	_, err = g.do(ctx, http.MethodHead, g.base+"/v2/"+repo+"/blobs/"+b.digest, nil, "", http.StatusOK)
	if err != nil {
		_, err2 := g.do(ctx, http.MethodHead, g.base+"/v2/"+b.repo+"/blobs/"+b.digest, nil, "", http.StatusOK)
		return fmt.Errorf("mount %+v into %s: %w (in source repo: %v)", b, repo, err, err2)
	}
	return nil
}

func (g *generator) putManifest(ctx context.Context, repo, ref, mediaType string, body []byte) error {
	_, err := g.do(ctx, http.MethodPut, g.base+"/v2/"+repo+"/manifests/"+ref, strings.NewReader(string(body)), mediaType, http.StatusCreated)
	return err
}

type descriptor struct {
	MediaType string    `json:"mediaType"`
	Size      int64     `json:"size"`
	Digest    string    `json:"digest"`
	Platform  *platform `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// pushImage pushes one platform's image (config and manifest; layers are
// already in the registry) and returns its manifest descriptor.
func (g *generator) pushImage(ctx context.Context, im imageSpec, p platformSpec, tag string) (descriptor, error) {
	var layers []descriptor
	var diffIDs []string
	for _, l := range p.layers {
		g.mu.Lock()
		b := g.blobs[l.key]
		g.mu.Unlock()
		if err := g.mount(ctx, im.repo, b); err != nil {
			return descriptor{}, err
		}
		layers = append(layers, descriptor{MediaType: mtLayer, Size: b.size, Digest: b.digest})
		diffIDs = append(diffIDs, b.diffID)
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": p.arch,
		"os":           "linux",
		"config":       map[string]any{"Labels": map[string]string{"dev.regmirror.bench": im.repo + ":" + im.tag + "/" + p.arch}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	cd, cn, err := g.upload(ctx, im.repo, strings.NewReader(string(cfg)))
	if err != nil {
		return descriptor{}, fmt.Errorf("config of %s:%s: %w", im.repo, im.tag, err)
	}
	man, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mtManifest,
		"config":        descriptor{MediaType: mtConfig, Size: cn, Digest: cd},
		"layers":        layers,
	})
	md := fmt.Sprintf("sha256:%x", sha256.Sum256(man))
	ref := md
	if tag != "" {
		ref = tag
	}
	if err := g.putManifest(ctx, im.repo, ref, mtManifest, man); err != nil {
		return descriptor{}, fmt.Errorf("%w\n%s", err, man)
	}
	return descriptor{MediaType: mtManifest, Size: int64(len(man)), Digest: md, Platform: &platform{Architecture: p.arch, OS: "linux"}}, nil
}

// push generates a workload: every distinct layer is uploaded once (three
// at a time), then every tag is written, mounting shared layers.
func (g *generator) push(ctx context.Context, w workload) error {
	first := map[string]string{} // layer key -> first repository
	var order []layerSpec
	for _, im := range w.images {
		for _, p := range im.platforms {
			for _, l := range p.layers {
				if _, ok := first[l.key]; !ok {
					first[l.key] = im.repo
					order = append(order, l)
				}
			}
		}
	}
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(3)
	for _, l := range order {
		eg.Go(func() error {
			b, err := g.pushLayer(ectx, first[l.key], l)
			if err != nil {
				return err
			}
			g.mu.Lock()
			g.blobs[l.key] = b
			g.bytes += b.size
			g.mu.Unlock()
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return err
	}
	// Mounts first per repository (sequentially per repo would be slow
	// for nothing: mounting the same blob twice is harmless).
	eg, ectx = errgroup.WithContext(ctx)
	eg.SetLimit(4)
	for _, im := range w.images {
		eg.Go(func() error {
			if len(im.platforms) == 1 {
				_, err := g.pushImage(ectx, im, im.platforms[0], im.tag)
				return err
			}
			var ms []descriptor
			for _, p := range im.platforms {
				d, err := g.pushImage(ectx, im, p, "")
				if err != nil {
					return err
				}
				ms = append(ms, d)
			}
			list, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mtList, "manifests": ms})
			return g.putManifest(ectx, im.repo, im.tag, mtList, list)
		})
	}
	return eg.Wait()
}

// putFile uploads a file as one blob: POST, then one PUT with the body
// (streamed from the file, its length known).
func (g *generator) putFile(ctx context.Context, repo, file, digest string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	resp, err := g.do(ctx, http.MethodPost, g.base+"/v2/"+repo+"/blobs/uploads/", nil, "", http.StatusAccepted)
	if err != nil {
		return err
	}
	loc, err := g.location(resp)
	if err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", digest)
	loc.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), f)
	if err != nil {
		return err
	}
	req.ContentLength = fi.Size()
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = g.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("PUT %s: %s: %s", loc, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}
