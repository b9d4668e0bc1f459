// Package auth resolves registry credentials when a location gives none of
// its own: docker's config.json (and the credential helpers it names), then
// the cloud keychain for ECR and Google hosts. It also re-resolves them on a
// schedule (dregsy's auth-refresh), for daemons that outlive 12-hour tokens.
package auth

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	ecr "github.com/awslabs/amazon-ecr-credential-helper/ecr-login"
	ecrapi "github.com/awslabs/amazon-ecr-credential-helper/ecr-login/api"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/google"
)

// Cloud registries hand out short-lived credentials through their own SDKs
// rather than docker's config.json. When a location gives no credentials,
// regmirror asks, in order: docker's config.json (and the credential
// helpers it names), then the cloud's keychain for the host, then goes
// anonymous. That is what dregsy does for ECR and Google, and what docker
// does with docker-credential-ecr-login or docker-credential-gcr installed.

// CloudHelper names the cloud keychain used for host when a location has
// no credentials of its own: "ecr" (Amazon ECR, private and public), "google"
// (Artifact Registry *-docker.pkg.dev, Container Registry gcr.io and
// *.gcr.io) or "" (none).
func CloudHelper(host string) string {
	h := strings.ToLower(host)
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	switch {
	case h == "":
		return ""
	case isECRHost(h):
		return "ecr"
	case h == "gcr.io" || strings.HasSuffix(h, ".gcr.io") || strings.HasSuffix(h, "-docker.pkg.dev"):
		return "google"
	}
	return ""
}

// isECRHost asks the ECR credential helper's own parser, so every endpoint
// form it serves (FIPS, China, GovCloud, dual-stack, public.ecr.aws) is
// recognised.
func isECRHost(host string) bool {
	_, err := ecrapi.ExtractRegistry(host)
	return err == nil
}

// DefaultECRRefresh is how old ECR credentials may get before they are
// fetched again when the location sets no auth-refresh. ECR tokens are
// valid for 12 hours; the helper caches them, so asking again early costs
// no AWS call while the cached token is fresh.
const DefaultECRRefresh = time.Hour

// Keychain returns the keychain for host: docker's config.json first, then
// the host's cloud keychain, if any. The cloud helpers' log lines go to log
// at debug level (nil discards).
func Keychain(host string, log *slog.Logger) authn.Keychain {
	return cloudKeychain(host, helperLog(log, host))
}

func cloudKeychain(host string, logw io.Writer) authn.Keychain {
	switch CloudHelper(host) {
	case "ecr":
		return authn.NewMultiKeychain(authn.DefaultKeychain,
			authn.NewKeychainFromHelper(ecr.NewECRHelper(ecr.WithLogger(logw))))
	case "google":
		return authn.NewMultiKeychain(authn.DefaultKeychain, google.Keychain)
	}
	return authn.DefaultKeychain
}

// refreshingAuth resolves credentials from a keychain when first needed and
// again once they are older than every: dregsy's auth-refresh. go-
// containerregistry otherwise resolves a keychain once per repository and
// keeps the result for the life of the process, which a daemon outlives
// when the credentials are 12-hour ECR tokens.
type refreshingAuth struct {
	kc    authn.Keychain
	res   authn.Resource
	every time.Duration
	now   func() time.Time

	mu  sync.Mutex
	cur authn.Authenticator
	at  time.Time
}

// NewRefreshing returns credentials for res resolved from kc, resolved
// again once they are older than every. now is the clock (nil: time.Now).
func NewRefreshing(kc authn.Keychain, res authn.Resource, every time.Duration, now func() time.Time) authn.Authenticator {
	return newRefreshingAuth(kc, res, every, now)
}

func newRefreshingAuth(kc authn.Keychain, res authn.Resource, every time.Duration, now func() time.Time) *refreshingAuth {
	if now == nil {
		now = time.Now
	}
	return &refreshingAuth{kc: kc, res: res, every: every, now: now}
}

// Authorization implements authn.Authenticator. go-containerregistry calls
// it for every request to a registry with basic auth (ECR) and whenever it
// fetches a bearer token, so new credentials are used from the next
// request on.
func (r *refreshingAuth) Authorization() (*authn.AuthConfig, error) {
	return r.AuthorizationContext(context.Background())
}

// AuthorizationContext is Authorization with a context for the keychain.
func (r *refreshingAuth) AuthorizationContext(ctx context.Context) (*authn.AuthConfig, error) {
	a, err := r.current(ctx)
	if err != nil {
		return nil, err
	}
	return authn.Authorization(ctx, a)
}

func (r *refreshingAuth) current(ctx context.Context) (authn.Authenticator, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.cur != nil && now.Sub(r.at) < r.every {
		return r.cur, nil
	}
	a, err := authn.Resolve(ctx, r.kc, r.res)
	if err != nil {
		return nil, err
	}
	r.cur, r.at = a, now
	return a, nil
}

// helperLog turns the ECR helper's log output (logrus lines) into debug
// lines of our logger. The helper logs why it found no credentials, which
// is what a user with a 401 from ECR needs to see with --log-level debug.
func helperLog(l *slog.Logger, host string) io.Writer {
	if l == nil {
		return io.Discard
	}
	return logWriter{l: l, host: host}
}

type logWriter struct {
	l    *slog.Logger
	host string
}

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Debug("credential helper", "registry", w.host, "message", strings.TrimSpace(string(p)))
	return len(p), nil
}
