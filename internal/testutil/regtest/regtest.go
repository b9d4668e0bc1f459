// Package regtest runs a real OCI registry (CNCF distribution v3, in-memory
// storage) inside the test process, on 127.0.0.1 only, for integration tests.
//
//	reg := regtest.New(t, regtest.WithTokenAuth("alice", "secret"))
//	imagegen.Push(t, reg.Ref("team/app:v1"), img, remote.WithAuth(&authn.Basic{...}))
//	if reg.Count(regtest.KindManifestPut) == 0 { ... }
//
// Every request (and every token request) is recorded and classified, see
// Requests, Count and Kind. Fault-injection tests can wrap the real handler
// with WithMiddleware.
//
// distribution logs through the global logrus logger; the first New call
// raises its level to panic so test output stays readable. Set
// REGTEST_LOG=debug (or info, warn, ...) to see the registry's logs.
package regtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	// Registered backends used by the configuration built in New.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/auth/token"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

// DefaultTokenExpiry is the bearer token lifetime unless WithTokenExpiry is
// given (Docker Hub also uses 300s).
const DefaultTokenExpiry = 5 * time.Minute

// Registry is a running in-process registry. All fields are read-only.
type Registry struct {
	// Host is "127.0.0.1:PORT", usable as a registry name in references.
	Host string
	// URL is "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
	URL string

	// Username and Password are the credentials given to WithBasicAuth or
	// WithTokenAuth ("" without auth).
	Username, Password string
	// TokenURL is the token realm, URL+TokenPath ("" unless WithTokenAuth).
	TokenURL string

	// CAPEM is the PEM certificate of the CA that signed the server
	// certificate, and CAFile a file holding it (only with WithTLS).
	CAPEM  []byte
	CAFile string

	app       *handlers.App
	srv       *httptest.Server
	ts        *tokenServer
	transport *http.Transport

	mu   sync.Mutex
	reqs []Request
	gen  int // bumped by Reset so in-flight requests do not write stale slots
}

type options struct {
	basicUser, basicPass string
	tokenUser, tokenPass string
	basic, token         bool
	tokenExpiry          time.Duration
	anonPull             bool
	tls                  bool
	middleware           []func(http.Handler) http.Handler
	configure            []func(*configuration.Configuration)
}

// Option configures New.
type Option func(*options)

// WithBasicAuth protects the registry with htpasswd (HTTP Basic) auth for a
// single user. Anonymous requests get 401.
func WithBasicAuth(user, pass string) Option {
	return func(o *options) { o.basic, o.basicUser, o.basicPass = true, user, pass }
}

// WithTokenAuth protects the registry with Docker-style bearer token auth.
// A token endpoint (GET TokenPath on the registry's own host:port, see
// TokenURL) issues tokens for every requested scope to user/pass and tokens
// with no access to anonymous clients (see WithAnonymousPull), and rejects
// wrong credentials with 401. Token requests are recorded as KindToken.
func WithTokenAuth(user, pass string) Option {
	return func(o *options) { o.token, o.tokenUser, o.tokenPass = true, user, pass }
}

// WithTokenExpiry sets the lifetime of issued tokens (default
// DefaultTokenExpiry). It is enforced exactly, without distribution's 60s
// leeway. Only meaningful with WithTokenAuth.
func WithTokenExpiry(d time.Duration) Option {
	return func(o *options) { o.tokenExpiry = d }
}

// WithAnonymousPull makes the token server grant "pull" (only) to
// anonymous clients, like Docker Hub for public images. Only meaningful
// with WithTokenAuth.
func WithAnonymousPull() Option {
	return func(o *options) { o.anonPull = true }
}

// WithTLS serves the registry (and token endpoint) over HTTPS with a
// certificate signed by a throw-away CA; see CAPEM, CAFile and Client.
func WithTLS() Option {
	return func(o *options) { o.tls = true }
}

// WithMiddleware wraps the registry handler, e.g. to inject faults. The
// request recorder stays outermost, so injected responses are recorded
// with their status. The first middleware given is the outermost.
func WithMiddleware(mw func(http.Handler) http.Handler) Option {
	return func(o *options) { o.middleware = append(o.middleware, mw) }
}

// WithConfig lets a test adjust the distribution configuration before the
// registry is built (e.g. storage.maintenance.readonly).
func WithConfig(f func(*configuration.Configuration)) Option {
	return func(o *options) { o.configure = append(o.configure, f) }
}

var logOnce sync.Once

func quietLogs() {
	logOnce.Do(func() {
		if lvl, err := logrus.ParseLevel(os.Getenv("REGTEST_LOG")); err == nil && os.Getenv("REGTEST_LOG") != "" {
			logrus.SetLevel(lvl)
			return
		}
		logrus.SetLevel(logrus.PanicLevel)
	})
}

// New starts a registry on 127.0.0.1 that is shut down by t.Cleanup.
func New(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	quietLogs()

	o := options{tokenExpiry: DefaultTokenExpiry}
	for _, opt := range opts {
		opt(&o)
	}
	if o.basic && o.token {
		t.Fatal("regtest: WithBasicAuth and WithTokenAuth are mutually exclusive")
	}
	if o.anonPull && !o.token {
		t.Fatal("regtest: WithAnonymousPull needs WithTokenAuth")
	}
	if o.tokenExpiry <= 0 {
		t.Fatalf("regtest: token expiry must be positive, got %v", o.tokenExpiry)
	}

	r := &Registry{}
	dir := t.TempDir()

	// Listen first: the token realm in the configuration needs the address.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("regtest: listen: %v", err)
	}
	r.Host = l.Addr().String()
	r.URL = "http://" + r.Host
	if o.tls {
		r.URL = "https://" + r.Host
	}

	var secret [16]byte
	if _, err := rand.Read(secret[:]); err != nil {
		t.Fatalf("regtest: %v", err)
	}
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"inmemory": configuration.Parameters{},
			"delete":   configuration.Parameters{"enabled": true},
			// The purger goroutine sleeps a random 0-60 min; not wanted.
			"maintenance": configuration.Parameters{
				"uploadpurging": map[any]any{"enabled": false},
			},
		},
		// Defaults the YAML parser would fill in; a zero MaxEntries makes
		// /v2/_catalog always return an empty list.
		Catalog: configuration.Catalog{MaxEntries: 1000},
		Tags:    configuration.Tags{MaxTags: 1000},
	}
	// A fixed secret avoids a warning (and is what signs upload state).
	cfg.HTTP.Secret = hex.EncodeToString(secret[:])
	cfg.Log.Level = "error"
	cfg.Log.AccessLog.Disabled = true

	switch {
	case o.basic:
		hash, err := bcrypt.GenerateFromPassword([]byte(o.basicPass), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("regtest: bcrypt: %v", err)
		}
		path := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(path, fmt.Appendf(nil, "%s:%s\n", o.basicUser, hash), 0o600); err != nil {
			t.Fatalf("regtest: %v", err)
		}
		cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{
			"realm": "regtest",
			"path":  path,
		}}
		r.Username, r.Password = o.basicUser, o.basicPass
	case o.token:
		signer := newSigningCert(t)
		bundle := filepath.Join(dir, "token-signer.pem")
		if err := os.WriteFile(bundle, signer.pem(), 0o600); err != nil {
			t.Fatalf("regtest: %v", err)
		}
		// The token endpoint is served on the registry's own host:port:
		// ggcr (>= v0.21) refuses realms on any other loopback or private
		// address (SSRF protection), and the same-host realm is allowed.
		r.TokenURL = r.URL + TokenPath
		r.ts = &tokenServer{
			user: o.tokenUser, pass: o.tokenPass,
			expiry: o.tokenExpiry, anonPull: o.anonPull,
			signer: signer, realm: r.TokenURL,
			issued: map[string]time.Time{},
		}
		cfg.Auth = configuration.Auth{"token": configuration.Parameters{
			"realm":          r.TokenURL,
			"service":        tokenService,
			"issuer":         tokenIssuer,
			"rootcertbundle": bundle,
		}}
		r.Username, r.Password = o.tokenUser, o.tokenPass
	}

	for _, f := range o.configure {
		f(cfg)
	}

	r.app = newApp(t, cfg)
	t.Cleanup(func() { _ = r.app.Shutdown() })

	// recorder -> middleware... -> (/token: token server | expiry check -> app)
	var h http.Handler = r.app
	if r.ts != nil {
		reg := r.ts.expiryHandler(r.app)
		h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.URL.Path == TokenPath {
				r.ts.ServeHTTP(w, req)
				return
			}
			reg.ServeHTTP(w, req)
		})
	}
	for i := len(o.middleware) - 1; i >= 0; i-- {
		h = o.middleware[i](h)
	}

	r.srv = httptest.NewUnstartedServer(r.recordingHandler(h))
	_ = r.srv.Listener.Close()
	r.srv.Listener = l
	r.srv.Config.ErrorLog = serverLog
	if o.tls {
		ca, leaf := newServerPKI(t)
		r.CAPEM = ca.pem()
		r.CAFile = filepath.Join(dir, "ca.pem")
		if err := os.WriteFile(r.CAFile, r.CAPEM, 0o600); err != nil {
			t.Fatalf("regtest: %v", err)
		}
		r.srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.tlsCertificate()}}
		r.srv.StartTLS()
	} else {
		r.srv.Start()
	}
	t.Cleanup(r.srv.Close)
	if r.srv.URL != r.URL {
		t.Fatalf("regtest: server URL %q, expected %q", r.srv.URL, r.URL)
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // loopback only, never through a proxy
	if o.tls {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(r.CAPEM)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	r.transport = tr
	t.Cleanup(tr.CloseIdleConnections)
	return r
}

// newApp builds the distribution app, turning its configuration panics
// into test failures.
func newApp(t testing.TB, cfg *configuration.Configuration) (app *handlers.App) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("regtest: distribution rejected the configuration: %v", p)
		}
	}()
	// Shutdown cancels the app's context, which stops its goroutines.
	return handlers.NewApp(context.Background(), cfg)
}

// serverLog is the http.Server error log: it drops TLS handshake errors
// (expected whenever a test checks that an untrusting client fails) and
// distribution's second WriteHeader when a client hangs up in the middle of
// a blob (expected in fault-injection tests), and passes everything else,
// such as handler panics, to stderr.
var serverLog = log.New(filterWriter{os.Stderr}, "", log.LstdFlags)

type filterWriter struct{ w io.Writer }

func (f filterWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("TLS handshake error")) || bytes.Contains(p, []byte("superfluous response.WriteHeader")) {
		return len(p), nil
	}
	return f.w.Write(p)
}

// Ref returns "127.0.0.1:PORT/" + repoAndTag, e.g. Ref("library/busybox:1").
func (r *Registry) Ref(repoAndTag string) string {
	return r.Host + "/" + strings.TrimPrefix(repoAndTag, "/")
}

// Transport returns an http.RoundTripper for this registry that trusts its
// CA (with WithTLS) and never uses a proxy. Pass it to ggcr with
// remote.WithTransport.
func (r *Registry) Transport() http.RoundTripper { return r.transport }

// Client returns an *http.Client using Transport.
func (r *Registry) Client() *http.Client {
	return &http.Client{Transport: r.transport, Timeout: time.Minute}
}

// Handler returns the bare distribution handler, without the recorder,
// middleware or token-expiry check, for tests that build their own server.
func (r *Registry) Handler() http.Handler { return r.app }

// Requests returns a copy of every request seen so far (registry and token
// server), in arrival order. Requests still in flight have Status 0.
func (r *Registry) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

// Count returns how many recorded requests have kind k.
func (r *Registry) Count(k Kind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, q := range r.reqs {
		if q.Kind == k {
			n++
		}
	}
	return n
}

// Reset forgets all recorded requests.
func (r *Registry) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = nil
	r.gen++
}

// ExpireTokens makes every token issued so far invalid, so the next
// registry request with one gets 401 and the client must fetch a new
// token. No-op without WithTokenAuth.
func (r *Registry) ExpireTokens() {
	if r.ts != nil {
		r.ts.expireAll()
	}
}
