package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestMain(m *testing.M) { Main(m) }

// remoteOpts returns ggcr options for talking to r with its own credentials
// (anonymous when anon or when r has none).
func remoteOpts(t *testing.T, r *Registry, anon bool) []remote.Option {
	t.Helper()
	var auth authn.Authenticator = authn.Anonymous
	if r.User != "" && !anon {
		auth = &authn.Basic{Username: r.User, Password: r.Password}
	}
	return remoteOptsWith(t, r.Transport(), auth)
}

func remoteOptsWith(t *testing.T, tr *http.Transport, auth authn.Authenticator) []remote.Option {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	t.Cleanup(tr.CloseIdleConnections)
	return []remote.Option{remote.WithContext(ctx), remote.WithTransport(tr), remote.WithAuth(auth)}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func pushRandomImage(t *testing.T, r *Registry, repoTag string) v1.Hash {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, r.Ref(repoTag)), img, remoteOpts(t, r, false)...); err != nil {
		t.Fatalf("push %s: %v\nregistry log:\n%s", repoTag, err, r.Logs())
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestTLSHtpasswdCounting(t *testing.T) {
	r := StartRegistry(t, Options{TLS: true, User: "alice", Password: "s3cret pass", Count: true})
	if r.Host == r.BackendHost || !strings.HasPrefix(r.Host, "127.0.0.1:") {
		t.Fatalf("Host %q BackendHost %q", r.Host, r.BackendHost)
	}
	if _, err := os.Stat(filepath.Join(r.CertsDir, r.Host, "ca.crt")); err != nil {
		t.Fatal(err)
	}

	want := pushRandomImage(t, r, "test/img:v1")
	c := r.Counts()
	for _, k := range []string{"ping", "manifest PUT", "upload", "blob HEAD"} {
		if c[k] == 0 {
			t.Errorf("Counts()[%q] = 0 after a push; counts %v\nrequests:\n%s", k, c, strings.Join(r.Requests(), "\n"))
		}
	}
	if c["other"] != 0 {
		t.Errorf("unclassified requests: %v", r.Requests())
	}

	if got := SkopeoRawDigest(t, r, "test/img:v1"); got != want.String() {
		t.Errorf("SkopeoRawDigest = %s, ggcr pushed %s", got, want)
	}
	if got := SkopeoDigest(t, r, r.Ref("test/img:v1")); got != want.String() {
		t.Errorf("SkopeoDigest = %s, ggcr pushed %s", got, want)
	}

	// A HEAD-only check costs no GETs.
	r.ResetCounts()
	desc, err := remote.Head(mustRef(t, r.Ref("test/img:v1")), remoteOpts(t, r, false)...)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != want {
		t.Errorf("HEAD digest %s, want %s", desc.Digest, want)
	}
	if c := r.Counts(); c["manifest HEAD"] != 1 || r.GETs() != 0 {
		t.Errorf("after HEAD: counts %v, GETs %d", c, r.GETs())
	}
	if reqs := r.Requests(); len(reqs) == 0 || !strings.HasPrefix(reqs[len(reqs)-1], "HEAD /v2/test/img/manifests/v1") {
		t.Errorf("Requests() = %v", reqs)
	}

	// Pulling sends manifest and blob GETs.
	r.ResetCounts()
	img, err := remote.Image(mustRef(t, r.Ref("test/img:v1")), remoteOpts(t, r, false)...)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if c := r.Counts(); c["manifest GET"] != 1 || c["blob GET"] == 0 || r.GETs() != c["manifest GET"]+c["blob GET"] {
		t.Errorf("after pull: counts %v", c)
	}

	// The blobs are on disk.
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(r.Dir, "docker/registry/v2/blobs/sha256", cfg.Hex[:2], cfg.Hex, "data")
	if _, err := os.Stat(blob); err != nil {
		t.Errorf("config blob not in storage: %v", err)
	}

	// Anonymous access is refused.
	_, err = remote.Head(mustRef(t, r.Ref("test/img:v1")), remoteOpts(t, r, true)...)
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous HEAD: err %v, want 401", err)
	}
	// So are wrong credentials.
	_, err = remote.Head(mustRef(t, r.Ref("test/img:v1")),
		remoteOptsWith(t, r.Transport(), &authn.Basic{Username: r.User, Password: "wrong"})...)
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong-password HEAD: err %v, want 401", err)
	}
}

func TestPlainHTTPIndexAndCopy(t *testing.T) {
	plain := StartRegistry(t, Options{Count: true})
	if plain.Scheme != "http" || plain.CAFile != "" || plain.CertsDir != "" {
		t.Fatalf("plain registry: %+v", plain)
	}
	want := pushRandomImage(t, plain, "single:latest")
	if got := SkopeoRawDigest(t, plain, "single:latest"); got != want.String() {
		t.Errorf("SkopeoRawDigest = %s, want %s", got, want)
	}
	if c := plain.Counts(); c["manifest PUT"] != 1 {
		t.Errorf("counts %v", c)
	}

	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(mustRef(t, plain.Ref("multi:v1")), idx, remoteOpts(t, plain, false)...); err != nil {
		t.Fatal(err)
	}
	idxDigest, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got := SkopeoRawDigest(t, plain, "multi:v1"); got != idxDigest.String() {
		t.Errorf("SkopeoRawDigest(index) = %s, want %s", got, idxDigest)
	}

	// SkopeoDigest of a multi-arch image.
	amd64, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	plat := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
		Add:        amd64,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}},
	})
	if err := remote.WriteIndex(mustRef(t, plain.Ref("plat:v1")), plat, remoteOpts(t, plain, false)...); err != nil {
		t.Fatal(err)
	}
	platDigest, _ := plat.Digest()
	amd64Digest, _ := amd64.Digest()
	// skopeo 1.9 reports the digest of the top-level manifest (the index),
	// though it needs an instance for the running platform to succeed.
	if got := SkopeoDigest(t, plain, "plat:v1"); got != platDigest.String() || got == amd64Digest.String() {
		t.Errorf("SkopeoDigest(index) = %s, want index %s (instance %s)", got, platDigest, amd64Digest)
	}

	// Copy both into a TLS registry with auth and client certificates.
	secure := StartRegistry(t, Options{TLS: true, ClientCAs: true, User: "bob", Password: "pw", Count: true})
	SkopeoCopy(t, "multi:v1", "copied/multi:v1", plain, secure)
	SkopeoCopy(t, plain.Ref("single:latest"), "copied/single:1", plain, secure)
	if got := SkopeoRawDigest(t, secure, "copied/multi:v1"); got != idxDigest.String() {
		t.Errorf("copied index digest %s, want %s", got, idxDigest)
	}
	if got := SkopeoRawDigest(t, secure, "copied/single:1"); got != want.String() {
		t.Errorf("copied image digest %s, want %s", got, want)
	}
	if c := secure.Counts(); c["manifest PUT"] != 4 { // index, 2 children, single
		t.Errorf("secure counts %v", c)
	}

	// ggcr with the client certificate works; without it the handshake fails.
	if _, err := remote.Head(mustRef(t, secure.Ref("copied/single:1")), remoteOpts(t, secure, false)...); err != nil {
		t.Errorf("HEAD with client cert: %v", err)
	}
	noCert := secure.Transport()
	noCert.TLSClientConfig.Certificates = nil
	if _, err := remote.Head(mustRef(t, secure.Ref("copied/single:1")),
		remoteOptsWith(t, noCert, &authn.Basic{Username: secure.User, Password: secure.Password})...); err == nil {
		t.Errorf("HEAD without client cert succeeded")
	}
	if secure.ClientCert == "" || secure.ClientKey == "" {
		t.Errorf("ClientCert/ClientKey not set")
	}
	for _, f := range []string{"ca.crt", "client.cert", "client.key"} {
		if _, err := os.Stat(filepath.Join(secure.CertsDir, secure.Host, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestPullThroughCache(t *testing.T) {
	upstream := StartRegistry(t, Options{Count: true})
	want := pushRandomImage(t, upstream, "lib/app:1")

	cache := StartRegistry(t, Options{ProxyRemoteURL: "http://" + upstream.Host, Count: true})
	upstream.ResetCounts()
	if got := SkopeoRawDigest(t, cache, "lib/app:1"); got != want.String() {
		t.Errorf("through cache: %s, want %s", got, want)
	}
	img, err := remote.Image(mustRef(t, cache.Ref("lib/app:1")), remoteOpts(t, cache, false)...)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	if upstream.GETs() == 0 {
		t.Errorf("cache fetched nothing from upstream: %v", upstream.Requests())
	}
	if cache.Counts()["manifest GET"] == 0 {
		t.Errorf("cache counts %v", cache.Counts())
	}
	// A pull-through cache refuses pushes.
	img2, _ := random.Image(64, 1)
	if err := remote.Write(mustRef(t, cache.Ref("lib/app:2")), img2, remoteOpts(t, cache, false)...); err == nil {
		t.Errorf("push to pull-through cache succeeded")
	}
}

func TestPullThroughCacheTLSUpstream(t *testing.T) {
	// No htpasswd upstream: docker-registry 2.8 only sends proxy credentials
	// to bearer-token realms, never as basic auth (see Options).
	upstream := StartRegistry(t, Options{TLS: true, Count: true})
	want := pushRandomImage(t, upstream, "lib/app:1")
	cache := StartRegistry(t, Options{ProxyRemoteURL: upstream.URL(), ProxyRemoteCAFile: upstream.CAFile})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cache log:\n%s\nupstream requests: %v\nconfig:\n%s", cache.Logs(), upstream.Requests(), redactConfig(cache.ConfigFile))
		}
	})
	if got := SkopeoRawDigest(t, cache, "lib/app:1"); got != want.String() {
		t.Errorf("through cache: %s, want %s", got, want)
	}
	if upstream.Counts()["manifest GET"] == 0 {
		t.Errorf("upstream counts %v", upstream.Counts())
	}
}

func TestStopAndCleanup(t *testing.T) {
	var r *Registry
	t.Run("inner", func(t *testing.T) {
		r = StartRegistry(t, Options{TLS: true})
		r.Stop()
		r.Stop()
		c := &http.Client{Transport: r.Transport(), Timeout: 2 * time.Second}
		if resp, err := c.Get(r.URL() + "/v2/"); err == nil {
			resp.Body.Close()
			t.Errorf("registry still answers after Stop")
		}
	})
	if r == nil {
		t.Skip("inner skipped")
	}
	if _, err := os.Stat(r.Dir); !os.IsNotExist(err) {
		t.Errorf("storage dir %s left behind: %v", r.Dir, err)
	}
	if r.proc.cmd.ProcessState == nil {
		t.Errorf("registry process not reaped")
	}
}

func TestCountsPanicsWithoutCount(t *testing.T) {
	r := &Registry{}
	defer func() {
		if recover() == nil {
			t.Errorf("Counts on a non-counting registry did not panic")
		}
	}()
	r.Counts()
}

func TestRequestKind(t *testing.T) {
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/v2/", "ping"},
		{"GET", "/v2", "ping"},
		{"GET", "/v2/_catalog", "catalog"},
		{"GET", "/v2/a/b/tags/list", "tags list"},
		{"GET", "/v2/a/manifests/latest", "manifest GET"},
		{"HEAD", "/v2/a/b/manifests/sha256:abc", "manifest HEAD"},
		{"PUT", "/v2/manifests/manifests/v1", "manifest PUT"},
		{"GET", "/v2/a/blobs/sha256:abc", "blob GET"},
		{"HEAD", "/v2/blobs/blobs/sha256:abc", "blob HEAD"},
		{"POST", "/v2/a/blobs/uploads/", "upload"},
		{"PATCH", "/v2/a/blobs/uploads/1234-uuid", "upload"},
		{"PUT", "/v2/a/blobs/uploads/1234-uuid", "upload"},
		{"GET", "/v2/a/referrers/sha256:abc", "referrers"},
		{"GET", "/v2/a/manifests/", "other"},
		{"GET", "/metrics", "other"},
	} {
		if got := requestKind(tc.method, tc.path); got != tc.want {
			t.Errorf("requestKind(%s %s) = %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}

func TestRun(t *testing.T) {
	sh := RequireBinary(t, "sh")
	res := Run(t, 10*time.Second, []string{"E2E_X=42"}, "in put", sh, "-c", `echo "out $E2E_X"; cat >&2; exit 3`)
	if res.Stdout != "out 42\n" || res.Stderr != "in put" || res.Code != 3 || res.TimedOut {
		t.Errorf("Run = %+v", res)
	}
	start := time.Now()
	res = Run(t, 300*time.Millisecond, nil, "", sh, "-c", "sleep 30 & sleep 30; wait")
	if !res.TimedOut || res.Code != -1 || time.Since(start) > 10*time.Second {
		t.Errorf("time-out: %+v after %s", res, time.Since(start))
	}
}

func TestRequireBinaryMissing(t *testing.T) {
	t.Setenv(RequireEnv, "") // with it set, the inner test would fail by design
	skipped := false
	t.Run("inner", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		RequireBinary(t, "regmirror-e2e-no-such-binary")
	})
	if !skipped {
		t.Errorf("missing binary did not skip")
	}
}

func TestBuildRegmirror(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd/regmirror/main.go")); err != nil {
		t.Skip("no cmd/regmirror yet")
	}
	RequireBinary(t, "go")
	bin := BuildRegmirror(t)
	if again := BuildRegmirror(t); again != bin {
		t.Errorf("second build at %s, first at %s", again, bin)
	}
	res := Run(t, 30*time.Second, nil, "", bin, "--help")
	if res.Code != 0 || res.Stdout+res.Stderr == "" {
		t.Errorf("regmirror --help: %+v", res)
	}
}

func TestStartRegistryRetriesTakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	calls := 0
	pickPort = func() (int, error) {
		calls++
		if calls == 1 {
			return taken.Addr().(*net.TCPAddr).Port, nil
		}
		return freePort()
	}
	defer func() { pickPort = freePort }()
	r := StartRegistry(t, Options{})
	if calls != 2 || r.BackendHost == taken.Addr().String() {
		t.Errorf("calls %d, BackendHost %s, taken %s", calls, r.BackendHost, taken.Addr())
	}
}

// fakeTB records Fatalf instead of failing the real test.
type fakeTB struct {
	testing.TB
	fatal string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestStartRegistryFailureShowsLog(t *testing.T) {
	RequireBinary(t, RegistryBinary)
	dead, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		StartRegistry(f, Options{ProxyRemoteURL: fmt.Sprintf("http://127.0.0.1:%d", dead), ProxyPassword: "hidden-pw", ProxyUsername: "x"})
	}()
	<-done
	t.Logf("StartRegistry gave up after %s", time.Since(start))
	if f.fatal == "" {
		t.Skip("docker-registry started with an unreachable proxy remote")
	}
	// docker-registry 2.8 pings the remote at start-up and panics when it is
	// unreachable; the panic must show up in the failure message.
	if !strings.Contains(f.fatal, "log tail:") || !strings.Contains(f.fatal, fmt.Sprintf("127.0.0.1:%d", dead)) ||
		strings.Contains(f.fatal, "hidden-pw") {
		t.Errorf("failure message lacks the log tail or leaks the password:\n%s", f.fatal)
	}
}

// TestMountFromSameRepository pins what regmirror relies on to skip a blob
// HEAD before a small upload: docker-registry answers a mount whose source
// is the target repository itself with 201 when the repository links the
// blob and with 202 (an upload session) when it does not.
func TestMountFromSameRepository(t *testing.T) {
	RequireBinary(t, RegistryBinary)
	r := StartRegistry(t, Options{TLS: true, User: "alice", Password: "s3cret", Count: true})
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, r.Ref("team/app:v1")), img, remoteOpts(t, r, false)...); err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	lacks, err := random.Layer(512, "application/vnd.oci.image.layer.v1.tar")
	if err != nil {
		t.Fatal(err)
	}
	other, err := lacks.Digest()
	if err != nil {
		t.Fatal(err)
	}
	tr := r.Transport()
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	for d, want := range map[string]int{cfg.String(): http.StatusCreated, other.String(): http.StatusAccepted} {
		req, err := http.NewRequest(http.MethodPost, r.URL()+"/v2/team/app/blobs/uploads/?mount="+d+"&from=team/app", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(r.User, r.Password)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("mount %s from the same repository: %s, want %d\nregistry log:\n%s", d, resp.Status, want, r.Logs())
		}
		if want == http.StatusAccepted && resp.Header.Get("Location") == "" {
			t.Errorf("202 without a Location")
		}
	}
}
