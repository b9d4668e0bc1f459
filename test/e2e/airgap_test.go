package e2e_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/testutil/e2e"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
)

// airgap is one air-gap scenario: a source registry A reachable only from
// the export side, the built binary, and a dregsy-style config whose
// target is a TLS + htpasswd registry B (fresh ones on demand).
type airgap struct {
	src *e2e.Registry
	bin string
	dir string
}

func newAirgap(t *testing.T) *airgap {
	t.Helper()
	e2e.RequireBinary(t, e2e.RegistryBinary)
	e2e.RequireBinary(t, "skopeo")
	return &airgap{src: e2e.StartRegistry(t, e2e.Options{}), bin: e2e.BuildRegmirror(t), dir: t.TempDir()}
}

func (a *airgap) target(t *testing.T) *e2e.Registry {
	return e2e.StartRegistry(t, e2e.Options{Count: true, TLS: true, User: "mirror", Password: "s3cret pass"})
}

var base = imagegen.Layer(7, 64<<10)

// pushWeb pushes distinct app/web images, each the shared base layer and
// one layer of its own.
func (a *airgap) pushWeb(t *testing.T, seed uint64, size int64, tags ...string) {
	t.Helper()
	for i, tag := range tags {
		imagegen.Push(t, a.src.Ref("app/web:"+tag), imagegen.Image(seed+uint64(i), 1, size, base), remoteOpts(a.src)...)
	}
}

// pushAll fills A with what the config selects (app/web 1.x and a
// multi-arch library/base:3.19) and one tag it does not (app/web:dev).
func (a *airgap) pushAll(t *testing.T) {
	t.Helper()
	a.pushWeb(t, 100, 96<<10, "1.0", "1.1", "dev")
	platforms := []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
	imagegen.Push(t, a.src.Ref("library/base:3.19"), imagegen.Index(200, platforms, 1, 32<<10, base), remoteOpts(a.src)...)
}

// config writes a dregsy-style config: source A, target dst (nil: a
// registry on the far side of the gap, which export never contacts).
func (a *airgap) config(t *testing.T, dst *e2e.Registry) string {
	t.Helper()
	if dst == nil {
		// Its CA file exists only over there: export must not need it.
		dst = &e2e.Registry{Host: "registry.internal.invalid:5000", User: "mirror", Password: "far away", CAFile: "/far/side/only/ca.pem"}
	}
	caLine := ""
	if dst.CAFile != "" {
		caLine = "\n      ca-file: " + dst.CAFile
	}
	p := filepath.Join(t.TempDir(), "dregsy.yaml")
	cfg := fmt.Sprintf(`relay: skopeo
tasks:
  - name: airgap
    interval: 3600
    verbose: true
    source:
      registry: http://%s
    target:
      registry: %s
      auth: %s%s
    mappings:
      - from: app/web
        to: mirror/web
        tags:
          - 'regex: 1\..*'
      - from: library/base
        to: mirror/base
        tags: ['3.19']
`, a.src.Host, dst.Host, authB64(dst.User, dst.Password), caLine)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// dockerConfig writes a docker config.json with dst's credentials, for
// import --to, and returns the environment naming it.
func dockerConfig(t *testing.T, dst *e2e.Registry) []string {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(dst.User + ":" + dst.Password))
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{dst.Host: map[string]string{"auth": auth}}})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"DOCKER_CONFIG=" + dir}
}

func (a *airgap) run(t *testing.T, env []string, args ...string) e2e.Result {
	t.Helper()
	return e2e.Run(t, 3*time.Minute, env, "", a.bin, args...)
}

func (a *airgap) mustRun(t *testing.T, env []string, args ...string) e2e.Result {
	t.Helper()
	res := a.run(t, env, args...)
	if res.Code != 0 {
		t.Fatalf("regmirror %s: exit %d\n%s", strings.Join(args, " "), res.Code, res.Stderr)
	}
	return res
}

func (a *airgap) importTo(dst *e2e.Registry, prefix, bundle string) []string {
	return []string{"import", "--to", dst.Host + "/" + prefix, "--ca-file", dst.CAFile, bundle}
}

// sameDigests fails unless every "repo:tag" of A has the same digest at
// dst under prefix.
func sameDigests(t *testing.T, src, dst *e2e.Registry, pairs map[string]string) {
	t.Helper()
	for from, to := range pairs {
		want := e2e.SkopeoRawDigest(t, src, from)
		if got := e2e.SkopeoRawDigest(t, dst, to); got != want {
			t.Errorf("%s: digest %s, source %s has %s", to, got, from, want)
		}
	}
}

// blobSizes returns every blob of ref at r (manifests, configs, layers,
// recursively for an index) with its size, as the registry serves them.
func blobSizes(t *testing.T, r *e2e.Registry, ref string) map[string]int64 {
	t.Helper()
	nr, err := name.ParseReference(r.Ref(ref))
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Get(nr, remoteOpts(r)...)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{d.Digest.String(): d.Size}
	addImage := func(img v1.Image) {
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		out[m.Config.Digest.String()] = m.Config.Size
		for _, l := range m.Layers {
			out[l.Digest.String()] = l.Size
		}
	}
	if d.MediaType.IsIndex() {
		idx, err := d.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range im.Manifests {
			out[c.Digest.String()] = c.Size
			img, err := idx.Image(c.Digest)
			if err != nil {
				t.Fatal(err)
			}
			addImage(img)
		}
		return out
	}
	img, err := d.Image()
	if err != nil {
		t.Fatal(err)
	}
	addImage(img)
	return out
}

// blobFiles returns the blob files of a directory bundle with their sizes.
func blobFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out["sha256:"+e.Name()] = info.Size()
	}
	return out
}

type bundleManifest struct {
	ID     string
	Name   string
	Config struct{ File, SHA256 string }
	Parent *struct{ ID string }
	Images []struct{ Name, Digest, Bundle string }
	Blobs  []struct {
		Digest string
		Size   int64
	}
	Inherits []struct{ Digest, Bundle string }
}

func readBundleManifest(t *testing.T, dir string) bundleManifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "regmirror-bundle.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m bundleManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

var selected = map[string]string{
	"app/web:1.0":       "mirror/web:1.0",
	"app/web:1.1":       "mirror/web:1.1",
	"library/base:3.19": "mirror/base:3.19",
}

func TestAirgapRoundTrip(t *testing.T) {
	a := newAirgap(t)
	a.pushAll(t)
	dst := a.target(t)
	cfg := a.config(t, dst)
	out := filepath.Join(a.dir, "bundle-1")

	res := a.mustRun(t, nil, "export", "--config", cfg, "--output", out)
	if strings.Contains(res.Stderr, dst.Password) {
		t.Error("export log shows the target's password")
	}
	m := readBundleManifest(t, out)
	raw, _ := os.ReadFile(cfg)
	for _, f := range []string{"regmirror-bundle.json", "index.json"} {
		b, _ := os.ReadFile(filepath.Join(out, f))
		if strings.Contains(string(b), dst.Password) || strings.Contains(string(b), authB64(dst.User, dst.Password)) {
			t.Errorf("%s holds the config's credentials", f)
		}
	}
	if m.Config.File != "dregsy.yaml" || len(m.Config.SHA256) != 64 || len(raw) == 0 {
		t.Errorf("config recorded as %+v", m.Config)
	}
	var names []string
	for _, im := range m.Images {
		names = append(names, im.Name)
		if im.Bundle != m.ID {
			t.Errorf("%s held by %s, want this bundle %s", im.Name, im.Bundle, m.ID)
		}
	}
	slices.Sort(names)
	wantNames := []string{a.src.Host + "/app/web:1.0", a.src.Host + "/app/web:1.1", a.src.Host + "/library/base:3.19"}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("bundle images %v, want %v", names, wantNames)
	}
	// Shared blobs are stored once: the files are exactly the union of
	// the selected images' blobs, at their registry sizes.
	want := map[string]int64{}
	for from := range selected {
		for d, n := range blobSizes(t, a.src, from) {
			want[d] = n
		}
	}
	if got := blobFiles(t, out); !mapsEqual(got, want) {
		t.Errorf("bundle blobs %v\nwant %v", got, want)
	}

	v := a.mustRun(t, nil, "verify", out)
	if !strings.Contains(v.Stdout, "ok") {
		t.Errorf("verify: %s", v.Stdout)
	}

	a.mustRun(t, nil, "import", "--config", cfg, out)
	sameDigests(t, a.src, dst, selected)
	if tags := listTags(t, dst, "mirror/web"); !slices.Equal(tags, []string{"1.0", "1.1"}) {
		t.Errorf("mirror/web tags %v", tags)
	}

	// A second import finds everything in place and writes nothing.
	dst.ResetCounts()
	res = a.mustRun(t, nil, "import", "--config", cfg, out)
	if !strings.Contains(res.Stderr, "copied=0 skipped=3 failed=0") {
		t.Errorf("re-import summary:\n%s", res.Stderr)
	}
	for k, n := range dst.Counts() {
		if strings.Contains(k, "PUT") || strings.Contains(k, "POST") || strings.Contains(k, "PATCH") {
			t.Errorf("re-import made %d %s requests", n, k)
		}
	}
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestAirgapIncrementalChain(t *testing.T) {
	a := newAirgap(t)
	a.pushAll(t)
	cfg := a.config(t, nil) // the target side is not used by export
	b1 := filepath.Join(a.dir, "bundle-1")
	b2 := filepath.Join(a.dir, "bundle-2")
	a.mustRun(t, nil, "export", "--config", cfg, "--output", b1)

	old := map[string]int64{}
	for from := range selected {
		for d, n := range blobSizes(t, a.src, from) {
			old[d] = n
		}
	}
	a.pushWeb(t, 300, 80<<10, "1.2", "1.3")
	var wantBytes int64
	newBlobs := map[string]int64{}
	for _, tag := range []string{"app/web:1.2", "app/web:1.3"} {
		for d, n := range blobSizes(t, a.src, tag) {
			if _, ok := old[d]; !ok {
				newBlobs[d] = n
			}
		}
	}
	for _, n := range newBlobs {
		wantBytes += n
	}

	a.mustRun(t, nil, "export", "--config", cfg, "--output", b2, "--since", b1)
	got := blobFiles(t, b2)
	var gotBytes int64
	for _, n := range got {
		gotBytes += n
	}
	if gotBytes != wantBytes || !mapsEqual(got, newBlobs) {
		t.Fatalf("incremental bundle holds %d bytes in %d blobs, want exactly the new blobs: %d bytes in %d blobs", gotBytes, len(got), wantBytes, len(newBlobs))
	}
	t.Logf("bundle-2 holds %d bytes in %d blobs (the new blobs' sizes)", gotBytes, len(got))
	m1, m2 := readBundleManifest(t, b1), readBundleManifest(t, b2)
	if m2.Parent == nil || m2.Parent.ID != m1.ID || len(m2.Images) != 5 {
		t.Fatalf("bundle-2 manifest: parent %v, %d images", m2.Parent, len(m2.Images))
	}
	a.mustRun(t, nil, "verify", b2)

	all := map[string]string{}
	for _, r := range []string{"app/web:1.0", "app/web:1.1", "app/web:1.2", "app/web:1.3", "library/base:3.19"} {
		all[r] = "airgap/" + r
	}
	dst := a.target(t)
	env := dockerConfig(t, dst)
	a.mustRun(t, env, a.importTo(dst, "airgap", b1)...)
	a.mustRun(t, env, a.importTo(dst, "airgap", b2)...)
	sameDigests(t, a.src, dst, all)

	// The second bundle alone cannot complete anything: the images it
	// builds on, and the base layer of its new ones, are in bundle-1.
	fresh := a.target(t)
	res := a.run(t, dockerConfig(t, fresh), a.importTo(fresh, "airgap", b2)...)
	if res.Code != 1 {
		t.Fatalf("importing bundle-2 alone: exit %d, want 1\n%s", res.Code, res.Stderr)
	}
	if !strings.Contains(res.Stderr, `bundle \"bundle-1\"`) || !strings.Contains(res.Stderr, "import that bundle first") {
		t.Errorf("the failure does not name bundle-1:\n%s", res.Stderr)
	}
	if tags := listTags(t, fresh, "airgap/app/web"); len(tags) != 0 {
		t.Errorf("tags written without their base: %v", tags)
	}
}

func TestAirgapTarRoundTrip(t *testing.T) {
	a := newAirgap(t)
	a.pushAll(t)
	dst := a.target(t)
	out := filepath.Join(a.dir, "bundle.tar")
	a.mustRun(t, nil, "export", "--config", a.config(t, dst), "--output", out)
	if _, err := os.Stat(out + ".d"); !os.IsNotExist(err) {
		t.Errorf("the staging directory is left behind: %v", err)
	}
	a.mustRun(t, nil, "verify", out)
	env := dockerConfig(t, dst)
	a.mustRun(t, env, a.importTo(dst, "tar", out)...)
	pairs := map[string]string{}
	for from := range selected {
		pairs[from] = "tar/" + from
	}
	sameDigests(t, a.src, dst, pairs)

	// skopeo reads the same file as an oci-archive, naming the image by
	// its original reference.
	e2e.SkopeoCopy(t, "oci-archive:"+out+":"+a.src.Host+"/app/web:1.1", "skopeo/web:1.1", nil, dst)
	sameDigests(t, a.src, dst, map[string]string{"app/web:1.1": "skopeo/web:1.1"})
}

func TestAirgapCorruptBlob(t *testing.T) {
	a := newAirgap(t)
	a.pushAll(t)
	out := filepath.Join(a.dir, "bundle")
	a.mustRun(t, nil, "export", "--config", a.config(t, nil), "--output", out)

	// Flip one byte of the layer only app/web:1.1 has.
	only := blobSizes(t, a.src, "app/web:1.1")
	for _, other := range []string{"app/web:1.0", "library/base:3.19"} {
		for d := range blobSizes(t, a.src, other) {
			delete(only, d)
		}
	}
	var victim string
	for d, n := range only {
		if n > 4096 {
			victim = d
		}
	}
	if victim == "" {
		t.Fatal("no layer unique to app/web:1.1")
	}
	p := filepath.Join(out, "blobs", "sha256", strings.TrimPrefix(victim, "sha256:"))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}

	res := a.run(t, nil, "verify", out)
	if res.Code != 1 || !strings.Contains(res.Stderr, victim) || !strings.Contains(res.Stderr, "app/web:1.1") {
		t.Fatalf("verify: exit %d, want 1 naming %s and app/web:1.1\n%s%s", res.Code, victim, res.Stdout, res.Stderr)
	}

	dst := a.target(t)
	res = a.run(t, dockerConfig(t, dst), a.importTo(dst, "x", out)...)
	if res.Code != 1 || !strings.Contains(res.Stderr, victim) {
		t.Fatalf("import: exit %d, want 1 naming %s\n%s", res.Code, victim, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "content has sha256:") || !strings.Contains(res.Stderr, "corrupt blob") {
		t.Errorf("import did not catch the corruption itself (reading the bundle):\n%s", res.Stderr)
	}
	if tags := listTags(t, dst, "x/app/web"); !slices.Equal(tags, []string{"1.0"}) {
		t.Errorf("x/app/web tags %v, want only 1.0 (1.1 is corrupt)", tags)
	}
	sameDigests(t, a.src, dst, map[string]string{"app/web:1.0": "x/app/web:1.0", "library/base:3.19": "x/library/base:3.19"})
}

func TestAirgapInterruptedImportConverges(t *testing.T) {
	a := newAirgap(t)
	tags := []string{"1.0", "1.1", "1.2", "1.3", "1.4", "1.5"}
	a.pushWeb(t, 500, 1<<20, tags...)
	imagegen.Push(t, a.src.Ref("library/base:3.19"), imagegen.Image(600, 1, 1024, base), remoteOpts(a.src)...)
	out := filepath.Join(a.dir, "bundle")
	a.mustRun(t, nil, "export", "--config", a.config(t, nil), "--output", out)

	dst := a.target(t)
	env := dockerConfig(t, dst)
	args := append([]string{"--jobs", "1"}, a.importTo(dst, "k", out)...)
	args[0], args[1], args[2] = "import", "--jobs", "1"
	cmd := exec.Command(a.bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill -9 as soon as the first image is in: the others are mid-way.
	sc := bufio.NewScanner(stderr)
	killed := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "msg=copied") {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			killed = true
			break
		}
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatal("the import ended before any image was copied")
	}
	before := listTags(t, dst, "k/app/web")
	if len(before) == len(tags) {
		t.Fatalf("all %d tags were in before the kill: nothing was interrupted", len(tags))
	}
	t.Logf("after kill -9: %d of %d app/web tags on the target", len(before), len(tags))

	res := a.mustRun(t, env, a.importTo(dst, "k", out)...)
	pairs := map[string]string{"library/base:3.19": "k/library/base:3.19"}
	for _, tag := range tags {
		pairs["app/web:"+tag] = "k/app/web:" + tag
	}
	sameDigests(t, a.src, dst, pairs)
	if !strings.Contains(res.Stderr, fmt.Sprintf("skipped=%d", len(before))) {
		t.Errorf("the re-run did not skip the %d images already in:\n%s", len(before), res.Stderr)
	}
}

// Signatures and SBOMs cross the gap with their images: a cosign
// signature (tag sha256-<hex>.sig) and an OCI 1.1 SBOM (a referrer stored
// by digest) exported with referrers: true arrive on B, and the signature
// still verifies against B's digest.
func TestAirgapCarriesSignaturesAndReferrers(t *testing.T) {
	a := newAirgap(t)
	a.pushWeb(t, 700, 4096, "1.0")
	digest := e2e.SkopeoRawDigest(t, a.src, "app/web:1.0")
	h, err := v1.NewHash(digest)
	if err != nil {
		t.Fatal(err)
	}
	key := imagegen.NewSigningKey(t)
	sigTag := registry.CosignTags(digest)[0]
	imagegen.Push(t, a.src.Ref("app/web:"+sigTag), imagegen.Signature(t, key, a.src.Ref("app/web"), h), remoteOpts(a.src)...)
	subject, err := remote.Head(parseRef(t, a.src.Ref("app/web:1.0")), remoteOpts(a.src)...)
	if err != nil {
		t.Fatal(err)
	}
	sbom := imagegen.PushSBOM(t, a.src.Ref("app/web"), *subject, `{"spdxVersion":"SPDX-2.3"}`, remoteOpts(a.src)...)

	cfg := filepath.Join(t.TempDir(), "signed.yaml")
	writeFile(t, cfg, fmt.Sprintf(`tasks:
  - name: signed
    source: {registry: http://%s}
    target: {registry: far.invalid:5000}
    mappings:
      - {from: app/web, to: mirror/web, tags: ['1.0'], referrers: true}
`, a.src.Host))
	out := filepath.Join(a.dir, "signed.tar")
	a.mustRun(t, nil, "export", "--config", cfg, "--output", out)
	a.mustRun(t, nil, "verify", out)

	dst := a.target(t)
	res := a.mustRun(t, dockerConfig(t, dst), a.importTo(dst, "s", out)...)
	if !strings.Contains(res.Stderr, "attachments=2") {
		t.Errorf("import did not report 2 attachments:\n%s", res.Stderr)
	}
	sameDigests(t, a.src, dst, map[string]string{"app/web:1.0": "s/app/web:1.0", "app/web:" + sigTag: "s/app/web:" + sigTag})
	tsig, err := remote.Image(parseRef(t, dst.Ref("s/app/web:"+sigTag)), remoteOpts(dst)...)
	if err != nil {
		t.Fatal(err)
	}
	if why := imagegen.VerifySignature(tsig, &key.PublicKey, e2e.SkopeoRawDigest(t, dst, "s/app/web:1.0")); why != "" {
		t.Errorf("signature on B: %s", why)
	}
	refs, err := remote.Referrers(parseRef(t, dst.Ref("s/app/web@"+digest)).(name.Digest), remoteOpts(dst)...)
	if err != nil {
		t.Fatal(err)
	}
	im, err := refs.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range im.Manifests {
		found = found || d.Digest == sbom.Digest
	}
	if !found {
		t.Errorf("the SBOM %s is not a referrer of %s on B: %+v", sbom.Digest, digest, im.Manifests)
	}
}
