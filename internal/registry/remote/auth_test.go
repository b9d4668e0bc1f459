package remote_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/regmirror/regmirror/internal/registry"
	regremote "github.com/regmirror/regmirror/internal/registry/remote"
	rtransport "github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// rotatingCreds is what ECR does: a password valid for a while, then
// replaced. The keychain hands out the current one and counts how often it
// was asked; the middleware lets only the current one through to the token
// server.
type rotatingCreds struct {
	mu    sync.Mutex
	gen   int
	asked atomic.Int32
}

func (r *rotatingCreds) password() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return "ecr-token-" + string(rune('0'+r.gen))
}

func (r *rotatingCreds) rotate() {
	r.mu.Lock()
	r.gen++
	r.mu.Unlock()
}

func (r *rotatingCreds) Resolve(authn.Resource) (authn.Authenticator, error) {
	r.asked.Add(1)
	return authn.FromConfig(authn.AuthConfig{Username: "AWS", Password: r.password()}), nil
}

func (r *rotatingCreds) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == regtest.TokenPath {
			if u, p, ok := req.BasicAuth(); ok {
				if u != "AWS" || p != r.password() {
					w.Header().Set("WWW-Authenticate", `Basic realm="regtest"`)
					http.Error(w, `{"details":"expired token"}`, http.StatusUnauthorized)
					return
				}
				req.SetBasicAuth("AWS", "real")
			}
		}
		next.ServeHTTP(w, req)
	})
}

// TestAuthRefreshAgainstTokenServer runs a store for "13 hours" against a
// token server whose password rotates like an ECR token: credentials are
// resolved once, reused while younger than auth-refresh (so a rotated
// password fails until then), and resolved again once older.
func TestAuthRefreshAgainstTokenServer(t *testing.T) {
	creds := &rotatingCreds{gen: 1}
	reg := regtest.New(t, regtest.WithTokenAuth("AWS", "real"), regtest.WithTokenExpiry(time.Minute),
		regtest.WithMiddleware(creds.middleware))
	imagegen.Push(t, reg.Ref("app:1"), imagegen.Image(1, 1, 64),
		remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: "AWS", Password: creds.password()})))

	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	st, err := regremote.Open(registry.Endpoint{Registry: reg.Host, PlainHTTP: true, AuthRefresh: 10 * time.Hour},
		registry.Options{Keychain: creds, Now: clock, Retry: &rtransport.Retry{Attempts: 1, Wait: time.Millisecond, Factor: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	head := func() error { _, err := st.Head(ctx, "app", "1"); return err }

	if err := head(); err != nil {
		t.Fatalf("first HEAD: %v", err)
	}
	if n := creds.asked.Load(); n != 1 {
		t.Fatalf("keychain asked %d times, want 1", n)
	}

	// Two hours later the password has rotated and the registry's tokens
	// expired. Credentials are only 2h old: not refreshed, so the token
	// request with the old password is refused.
	advance(2 * time.Hour)
	creds.rotate()
	reg.ExpireTokens()
	var terr *transport.Error
	if err := head(); !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("HEAD with a rotated password before auth-refresh: %v; want 401", err)
	}
	if n := creds.asked.Load(); n != 1 {
		t.Errorf("keychain asked %d times before auth-refresh, want 1", n)
	}

	// At 11h the credentials are older than auth-refresh (10h): resolved
	// again, the new password works, no restart needed.
	advance(9 * time.Hour)
	reg.ExpireTokens()
	if err := head(); err != nil {
		t.Fatalf("HEAD after auth-refresh: %v", err)
	}
	if n := creds.asked.Load(); n != 2 {
		t.Errorf("keychain asked %d times after 11h, want 2", n)
	}
	// Fresh credentials are reused, not resolved per request.
	reg.ExpireTokens()
	if err := head(); err != nil {
		t.Fatal(err)
	}
	if n := creds.asked.Load(); n != 2 {
		t.Errorf("keychain asked %d times, want still 2", n)
	}
}

// TestNoRefreshWithoutAuthRefresh: a registry that is not ECR and sets no
// auth-refresh resolves its keychain once, as before.
func TestNoRefreshWithoutAuthRefresh(t *testing.T) {
	creds := &rotatingCreds{gen: 1}
	reg := regtest.New(t, regtest.WithTokenAuth("AWS", "real"), regtest.WithMiddleware(creds.middleware))
	imagegen.Push(t, reg.Ref("app:1"), imagegen.Image(2, 1, 64),
		remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: "AWS", Password: creds.password()})))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st, err := regremote.Open(registry.Endpoint{Registry: reg.Host, PlainHTTP: true},
		registry.Options{Keychain: creds, Now: func() time.Time { now = now.Add(24 * time.Hour); return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 3 {
		reg.ExpireTokens()
		if _, err := st.Head(ctx, "app", "1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := creds.asked.Load(); n != 1 {
		t.Errorf("keychain asked %d times, want 1", n)
	}
}
