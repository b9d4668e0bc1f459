package remote_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/remote"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// uaRecorder records the User-Agent of every request a registry (and its
// token endpoint) sees while on.
type uaRecorder struct {
	on   atomic.Bool
	mu   sync.Mutex
	seen map[string]map[regtest.Kind]int // User-Agent -> kinds of request
}

func (u *uaRecorder) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u.on.Load() {
			k, _, _ := regtest.Classify(r.Method, r.URL)
			u.mu.Lock()
			if u.seen == nil {
				u.seen = map[string]map[regtest.Kind]int{}
			}
			if u.seen[r.UserAgent()] == nil {
				u.seen[r.UserAgent()] = map[regtest.Kind]int{}
			}
			u.seen[r.UserAgent()][k]++
			u.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

// TestEveryRequestSaysRegmirror copies an image between two token-auth
// registries and uses every other remote operation (tags, catalog, blob
// check, referrers, delete, login), then checks that each request either
// registry or its token endpoint saw carried the configured User-Agent,
// including pings, token requests, uploads and the requests made outside
// go-containerregistry.
func TestEveryRequestSaysRegmirror(t *testing.T) {
	const ua = "regmirror/v9.9.9-test"
	var rec uaRecorder
	src := regtest.New(t, regtest.WithTokenAuth("u", "p"), regtest.WithMiddleware(rec.middleware))
	dst := regtest.New(t, regtest.WithTokenAuth("u", "p"), regtest.WithMiddleware(rec.middleware))
	creds := ggcrremote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: "u", Password: "p"}))
	imagegen.Push(t, src.Ref("team/app:1"), imagegen.Image(7, 2, 512), creds)

	hosts := transport.DefaultHosts()
	hosts.UserAgent = ua
	o := registry.Options{Hosts: hosts, Retry: &transport.Retry{Attempts: 1, Wait: time.Millisecond, Factor: 1}}
	open := func(r *regtest.Registry) registry.Store {
		s, err := remote.Open(registry.Endpoint{Registry: r.Host, PlainHTTP: true, Username: "u", Password: "p"}, o)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec.on.Store(true)

	s, d := open(src), open(dst)
	a, err := s.Fetch(ctx, "team/app", "1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Push(ctx, "team/app", "1", a); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Tags(ctx, "team/app"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Catalog(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.(registry.BlobChecker).HasBlob(ctx, "team/app", a.Desc.Digest.String()); err != nil || ok {
		t.Fatalf("HasBlob of a manifest digest: %v %v", ok, err)
	}
	if _, err := d.(registry.ReferrerLister).Referrers(ctx, "team/app", a.Desc.Digest.String()); err != nil {
		t.Fatal(err)
	}
	if err := d.(registry.Deleter).Delete(ctx, "team/app", a.Desc.Digest.String()); err != nil {
		t.Fatal(err)
	}
	if err := remote.CheckLogin(ctx, registry.Endpoint{Registry: dst.Host, PlainHTTP: true, Username: "u", Password: "p"}, o); err != nil {
		t.Fatal(err)
	}
	rec.on.Store(false)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for agent, kinds := range rec.seen {
		if agent != ua {
			t.Errorf("%v requests were sent as %q, want %q", kinds, agent, ua)
		}
	}
	// The test proves its reach: each kind of request was made.
	for _, k := range []regtest.Kind{regtest.KindPing, regtest.KindToken, regtest.KindManifestGet, regtest.KindBlobGet,
		regtest.KindBlobUpload, regtest.KindManifestPut, regtest.KindTagsList, regtest.KindCatalog, regtest.KindBlobHead,
		regtest.KindReferrers, regtest.KindManifestDelete} {
		if rec.seen[ua][k] == 0 {
			t.Errorf("no %s request was seen: the test does not cover it", k)
		}
	}
}
