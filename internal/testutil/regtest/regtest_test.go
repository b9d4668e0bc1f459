package regtest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// ctxOpt bounds every ggcr call in these tests.
func ctxOpt(t *testing.T) remote.Option {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return remote.WithContext(ctx)
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// wantStatus asserts err is a registry error with the given HTTP status.
func wantStatus(t *testing.T, err error, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("want HTTP %d error, got success", status)
	}
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != status {
		t.Fatalf("want HTTP %d error, got %v", status, err)
	}
}

func TestPushPullRoundTrip(t *testing.T) {
	reg := regtest.New(t)
	if !strings.HasPrefix(reg.Host, "127.0.0.1:") || reg.URL != "http://"+reg.Host {
		t.Fatalf("Host=%q URL=%q", reg.Host, reg.URL)
	}
	img := imagegen.Image(1, 2, 2048)
	want := imagegen.Digest(t, img)
	ref := mustRef(t, reg.Ref("team/app:v1"))

	imagegen.Push(t, ref.String(), img)
	if n := reg.Count(regtest.KindManifestPut); n < 1 {
		t.Errorf("Count(KindManifestPut) = %d, want >= 1", n)
	}
	if n := reg.Count(regtest.KindBlobUpload); n < 3 {
		t.Errorf("Count(KindBlobUpload) = %d, want >= 3 (2 layers + config)", n)
	}

	reg.Reset()
	if n := len(reg.Requests()); n != 0 {
		t.Fatalf("Requests after Reset = %d", n)
	}

	desc, err := remote.Head(ref, ctxOpt(t))
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != want {
		t.Errorf("Head digest = %s, want %s", desc.Digest, want)
	}
	got, err := remote.Get(ref, ctxOpt(t))
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != want {
		t.Errorf("Get digest = %s, want %s", got.Digest, want)
	}

	// Pull a layer's bytes back.
	pulled, err := got.Image()
	if err != nil {
		t.Fatal(err)
	}
	ls, err := pulled.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 {
		t.Fatalf("pulled %d layers, want 2", len(ls))
	}
	rc, err := ls[1].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || len(b) != 2048 {
		t.Fatalf("layer read: %d bytes, %v", len(b), err)
	}

	if reg.Count(regtest.KindManifestHead) < 1 || reg.Count(regtest.KindManifestGet) < 1 ||
		reg.Count(regtest.KindBlobGet) < 1 || reg.Count(regtest.KindPing) < 1 {
		t.Errorf("unexpected counts in %+v", reg.Requests())
	}
	for _, r := range reg.Requests() {
		if r.Status == 0 {
			t.Errorf("request without status: %+v", r)
		}
		if r.Method == http.MethodHead && strings.Contains(r.Path, "/manifests/") {
			if r.Kind != regtest.KindManifestHead || r.Repo != "team/app" || r.Ref != "v1" {
				t.Errorf("HEAD manifest classified as %+v", r)
			}
			if r.Status != http.StatusOK {
				t.Errorf("HEAD manifest status %d", r.Status)
			}
		}
	}

	// Tags and catalog work (the catalog needs MaxEntries set explicitly).
	tags, err := remote.List(ref.Context(), ctxOpt(t))
	if err != nil || !slices.Equal(tags, []string{"v1"}) {
		t.Errorf("tags = %v, %v", tags, err)
	}
	repos, err := remote.Catalog(t.Context(), ref.Context().Registry)
	if err != nil || !slices.Equal(repos, []string{"team/app"}) {
		t.Errorf("catalog = %v, %v", repos, err)
	}
	if reg.Count(regtest.KindTagsList) != 1 || reg.Count(regtest.KindCatalog) != 1 {
		t.Errorf("tags/catalog counts: %d/%d", reg.Count(regtest.KindTagsList), reg.Count(regtest.KindCatalog))
	}

	// Deletes are enabled.
	if err := remote.Delete(ref.Context().Digest(want.String()), ctxOpt(t)); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if reg.Count(regtest.KindManifestDelete) != 1 {
		t.Errorf("Count(KindManifestDelete) = %d", reg.Count(regtest.KindManifestDelete))
	}
	_, err = remote.Head(ref, ctxOpt(t))
	wantStatus(t, err, http.StatusNotFound)
}

func TestPushIndex(t *testing.T) {
	reg := regtest.New(t)
	plats := []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}}
	idx := imagegen.Index(3, plats, 1, 512)
	ref := mustRef(t, reg.Ref("multi:latest"))
	imagegen.Push(t, ref.String(), idx)

	got, err := remote.Index(ref, ctxOpt(t))
	if err != nil {
		t.Fatal(err)
	}
	if d1, d2 := imagegen.Digest(t, idx), imagegen.Digest(t, got); d1 != d2 {
		t.Fatalf("index digest %s != %s", d2, d1)
	}
	im, err := got.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range im.Manifests {
		if m.Platform == nil || !m.Platform.Equals(plats[i]) {
			t.Errorf("manifest %d platform %v, want %v", i, m.Platform, plats[i])
		}
	}
}

func TestBasicAuth(t *testing.T) {
	reg := regtest.New(t, regtest.WithBasicAuth("alice", "s3cret"))
	ref := mustRef(t, reg.Ref("private/app:v1"))
	auth := remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"})

	// Anonymous push and pull are refused.
	err := remote.Write(ref, imagegen.Image(5, 1, 100), ctxOpt(t))
	wantStatus(t, err, http.StatusUnauthorized)

	imagegen.Push(t, ref.String(), imagegen.Image(5, 1, 100), auth)

	_, err = remote.Head(ref, ctxOpt(t))
	wantStatus(t, err, http.StatusUnauthorized)
	_, err = remote.Head(ref, ctxOpt(t), remote.WithAuth(&authn.Basic{Username: "alice", Password: "wrong"}))
	wantStatus(t, err, http.StatusUnauthorized)

	desc, err := remote.Head(ref, ctxOpt(t), auth)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != imagegen.Digest(t, imagegen.Image(5, 1, 100)) {
		t.Errorf("digest mismatch")
	}
	if reg.Username != "alice" || reg.Password != "s3cret" || reg.Count(regtest.KindToken) != 0 {
		t.Errorf("Username=%q Password=%q tokens=%d", reg.Username, reg.Password, reg.Count(regtest.KindToken))
	}
}

func TestTokenAuth(t *testing.T) {
	reg := regtest.New(t, regtest.WithTokenAuth("bob", "pw"))
	ref := mustRef(t, reg.Ref("library/app:v1"))
	auth := remote.WithAuth(&authn.Basic{Username: "bob", Password: "pw"})
	img := imagegen.Image(7, 2, 300)

	err := remote.Write(ref, img, ctxOpt(t))
	wantStatus(t, err, http.StatusUnauthorized)

	imagegen.Push(t, ref.String(), img, auth)
	if reg.Count(regtest.KindToken) == 0 {
		t.Fatal("no token requests recorded")
	}
	if reg.Count(regtest.KindManifestPut) < 1 {
		t.Fatal("no manifest put recorded")
	}

	reg.Reset()
	_, err = remote.Head(ref, ctxOpt(t))
	wantStatus(t, err, http.StatusUnauthorized)
	if reg.Count(regtest.KindToken) == 0 {
		t.Error("anonymous client did not ask for a token")
	}
	_, err = remote.Head(ref, ctxOpt(t), remote.WithAuth(&authn.Basic{Username: "bob", Password: "nope"}))
	wantStatus(t, err, http.StatusUnauthorized)

	reg.Reset()
	desc, err := remote.Head(ref, ctxOpt(t), auth)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != imagegen.Digest(t, img) {
		t.Error("digest mismatch")
	}
	if reg.Count(regtest.KindToken) != 1 {
		t.Errorf("Count(KindToken) = %d, want 1: %+v", reg.Count(regtest.KindToken), reg.Requests())
	}
}

func TestTokenResponse(t *testing.T) {
	reg := regtest.New(t, regtest.WithTokenAuth("bob", "pw"), regtest.WithTokenExpiry(90*time.Second))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet,
		reg.TokenURL+"?service=regtest&scope="+url.QueryEscape("repository:a/b:pull,push"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("bob", "pw")
	resp, err := reg.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		IssuedAt    string `json:"issued_at"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	if body.Token == "" || body.Token != body.AccessToken || body.ExpiresIn != 90 {
		t.Errorf("token response %+v", body)
	}
	if _, err := time.Parse(time.RFC3339Nano, body.IssuedAt); err != nil {
		t.Errorf("issued_at: %v", err)
	}
	if got := reg.Requests(); len(got) != 1 || got[0].Kind != regtest.KindToken || got[0].Status != 200 {
		t.Errorf("requests %+v", got)
	}
}

func TestTokenExpiry(t *testing.T) {
	reg := regtest.New(t, regtest.WithTokenAuth("bob", "pw"), regtest.WithTokenExpiry(300*time.Millisecond))
	ref := mustRef(t, reg.Ref("app:v1"))
	auth := remote.WithAuth(&authn.Basic{Username: "bob", Password: "pw"})
	imagegen.Push(t, ref.String(), imagegen.Image(9, 1, 10), auth)

	// A Puller caches its transport, hence its token, across calls.
	p, err := remote.NewPuller(auth, ctxOpt(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Head(t.Context(), ref); err != nil {
		t.Fatal(err)
	}
	reg.Reset()
	if _, err := p.Head(t.Context(), ref); err != nil {
		t.Fatal(err)
	}
	if n := reg.Count(regtest.KindToken); n != 0 {
		t.Fatalf("token fetched again within its lifetime (%d)", n)
	}

	check := func(what string) {
		t.Helper()
		reg.Reset()
		if _, err := p.Head(t.Context(), ref); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var statuses []int
		for _, r := range reg.Requests() {
			if r.Kind == regtest.KindManifestHead {
				statuses = append(statuses, r.Status)
			}
		}
		if !slices.Equal(statuses, []int{401, 200}) || reg.Count(regtest.KindToken) != 1 {
			t.Errorf("%s: manifest HEAD statuses %v, tokens %d", what, statuses, reg.Count(regtest.KindToken))
		}
	}
	time.Sleep(400 * time.Millisecond)
	check("after lifetime")
	reg.ExpireTokens()
	check("after ExpireTokens")
}

func TestAnonymousPull(t *testing.T) {
	reg := regtest.New(t, regtest.WithTokenAuth("bob", "pw"), regtest.WithAnonymousPull())
	ref := mustRef(t, reg.Ref("public/app:v1"))
	img := imagegen.Image(11, 1, 10)
	err := remote.Write(ref, img, ctxOpt(t))
	wantStatus(t, err, http.StatusUnauthorized)
	imagegen.Push(t, ref.String(), img, remote.WithAuth(&authn.Basic{Username: "bob", Password: "pw"}))
	if _, err := remote.Head(ref, ctxOpt(t)); err != nil {
		t.Fatalf("anonymous pull: %v", err)
	}
}

func TestTLS(t *testing.T) {
	reg := regtest.New(t, regtest.WithTLS())
	if !strings.HasPrefix(reg.URL, "https://127.0.0.1:") || len(reg.CAPEM) == 0 {
		t.Fatalf("URL=%q CAPEM=%d bytes", reg.URL, len(reg.CAPEM))
	}
	if b, err := os.ReadFile(reg.CAFile); err != nil || string(b) != string(reg.CAPEM) {
		t.Fatalf("CAFile: %v", err)
	}
	ref := mustRef(t, reg.Ref("secure/app:v1"))
	img := imagegen.Image(13, 1, 64)

	_, err := remote.Head(ref, ctxOpt(t), remote.WithTransport(http.DefaultTransport))
	if err == nil {
		t.Fatal("default transport trusted the test CA")
	}
	var verr *tls.CertificateVerificationError
	var uerr x509.UnknownAuthorityError
	if !strings.Contains(err.Error(), "x509") || !errors.As(err, &verr) || !errors.As(err, &uerr) {
		t.Fatalf("want x509 unknown authority error, got %v", err)
	}

	tr := remote.WithTransport(reg.Transport())
	imagegen.Push(t, ref.String(), img, tr)
	desc, err := remote.Head(ref, ctxOpt(t), tr)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != imagegen.Digest(t, img) {
		t.Error("digest mismatch")
	}
	for _, r := range reg.Requests() {
		if r.Status >= 400 && r.Kind != regtest.KindManifestHead && r.Kind != regtest.KindBlobHead {
			t.Errorf("unexpected failure %+v", r)
		}
	}

	resp, err := reg.Client().Get(reg.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Errorf("GET /v2/: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestTLSWithTokenAuth(t *testing.T) {
	reg := regtest.New(t, regtest.WithTLS(), regtest.WithTokenAuth("u", "p"))
	if !strings.HasPrefix(reg.TokenURL, "https://127.0.0.1:") {
		t.Fatalf("TokenURL %q", reg.TokenURL)
	}
	ref := reg.Ref("x/y:z")
	imagegen.Push(t, ref, imagegen.Image(17, 1, 1),
		remote.WithTransport(reg.Transport()), remote.WithAuth(&authn.Basic{Username: "u", Password: "p"}))
	if reg.Count(regtest.KindToken) == 0 || reg.Count(regtest.KindManifestPut) != 1 {
		t.Errorf("requests %+v", reg.Requests())
	}
}

func TestMiddlewareFaultInjection(t *testing.T) {
	var fired atomic.Int32
	reg := regtest.New(t, regtest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if k, _, _ := regtest.Classify(r.Method, r.URL); k == regtest.KindManifestPut && fired.Add(1) == 1 {
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	ref := reg.Ref("retry/app:v1")
	imagegen.Push(t, ref, imagegen.Image(19, 1, 10),
		remote.WithRetryBackoff(remote.Backoff{Duration: 10 * time.Millisecond, Factor: 1, Steps: 3}))
	var statuses []int
	for _, r := range reg.Requests() {
		if r.Kind == regtest.KindManifestPut {
			statuses = append(statuses, r.Status)
		}
	}
	if !slices.Equal(statuses, []int{429, 201}) {
		t.Errorf("manifest PUT statuses %v", statuses)
	}
}

func TestClassify(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct {
		method, url string
		kind        regtest.Kind
		repo, ref   string
	}{
		{"GET", "/v2/", regtest.KindPing, "", ""},
		{"HEAD", "/v2", regtest.KindPing, "", ""},
		{"GET", "/v2/_catalog?n=10", regtest.KindCatalog, "", ""},
		{"GET", "/v2/a/b/tags/list", regtest.KindTagsList, "a/b", ""},
		{"GET", "/v2/a/manifests/v1", regtest.KindManifestGet, "a", "v1"},
		{"HEAD", "/v2/a/b/manifests/" + d, regtest.KindManifestHead, "a/b", d},
		{"PUT", "/v2/x/manifests/y/manifests/latest", regtest.KindManifestPut, "x/manifests/y", "latest"},
		{"DELETE", "/v2/a/manifests/" + d, regtest.KindManifestDelete, "a", d},
		{"GET", "/v2/a/blobs/" + d, regtest.KindBlobGet, "a", d},
		{"HEAD", "/v2/a/blobs/" + d, regtest.KindBlobHead, "a", d},
		{"DELETE", "/v2/a/blobs/" + d, regtest.KindBlobDelete, "a", d},
		{"POST", "/v2/a/blobs/uploads/", regtest.KindBlobUpload, "a", ""},
		{"PATCH", "/v2/a/blobs/uploads/some-uuid?_state=x", regtest.KindBlobUpload, "a", ""},
		{"PUT", "/v2/a/blobs/uploads/some-uuid?digest=" + d, regtest.KindBlobUpload, "a", ""},
		{"POST", "/v2/a/blobs/uploads/?mount=" + d + "&from=b", regtest.KindBlobMount, "a", d},
		{"GET", "/v2/a/blobs/uploads/blobs/" + d, regtest.KindBlobGet, "a/blobs/uploads", d},
		{"GET", "/v2/a/referrers/" + d, regtest.KindReferrers, "a", d},
		{"GET", "/token?scope=x", regtest.KindToken, "", ""},
		{"GET", "/v2/token", regtest.KindOther, "", ""},
		{"GET", "/v2/a/unknown", regtest.KindOther, "", ""},
	}
	for _, c := range cases {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatal(err)
		}
		k, repo, ref := regtest.Classify(c.method, u)
		if k != c.kind || repo != c.repo || ref != c.ref {
			t.Errorf("%s %s = (%s, %q, %q), want (%s, %q, %q)", c.method, c.url, k, repo, ref, c.kind, c.repo, c.ref)
		}
	}
}

func TestBadOptions(t *testing.T) {
	// Every mutually exclusive combination must fail the test, not panic.
	for _, opts := range [][]regtest.Option{
		{regtest.WithBasicAuth("a", "b"), regtest.WithTokenAuth("a", "b")},
		{regtest.WithAnonymousPull()},
		{regtest.WithTokenAuth("a", "b"), regtest.WithTokenExpiry(0)},
	} {
		ft := &fatalRecorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			regtest.New(ft, opts...)
		}()
		<-done
		if !ft.failed {
			t.Errorf("New(%d options) did not fail", len(opts))
		}
	}
}

// fatalRecorder turns Fatal into a recorded failure plus Goexit, so a
// test can check that a helper fails without failing itself.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Fatal(args ...any)                 { f.failed = true; runtime.Goexit() }
func (f *fatalRecorder) Fatalf(format string, args ...any) { f.failed = true; runtime.Goexit() }
func (f *fatalRecorder) Helper()                           {}

// TestMountFromSameRepository pins the registry behaviour the copy relies
// on to skip a blob HEAD: a mount whose source is the target repository
// itself answers 201 when the repository links the blob and 202 (an upload
// session) when it does not.
func TestMountFromSameRepository(t *testing.T) {
	reg := regtest.New(t)
	img := imagegen.Image(3, 1, 512)
	imagegen.Push(t, reg.Ref("team/app:v1"), img)
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	other, err := imagegen.Layer(4, 512).Digest()
	if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]int{cfg.String(): http.StatusCreated, other.String(): http.StatusAccepted} {
		resp, err := reg.Client().Post(reg.URL+"/v2/team/app/blobs/uploads/?mount="+d+"&from=team/app", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("mount %s from the same repository: %s, want %d", d, resp.Status, want)
		}
		if want == http.StatusAccepted && resp.Header.Get("Location") == "" {
			t.Errorf("202 without a Location")
		}
	}
}
