package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/regmirror/regmirror/internal/registry/transport"
)

// Endpoint says how to reach one registry or OCI layout. It is built by the
// caller from configuration or flags; nothing here reads files or the
// environment except the CA and client-certificate files it names.
type Endpoint struct {
	// Registry is "host[:port]" or "oci:PATH", as ParseLocation returns
	// it; Kind tells which.
	Registry string
	// PlainHTTP allows plain HTTP for this registry (written as http://).
	PlainHTTP bool
	// SkipTLSVerify disables certificate verification and, as in skopeo
	// and dregsy, allows falling back to plain HTTP.
	SkipTLSVerify bool
	// CAFile is an extra PEM CA bundle to trust for this registry.
	CAFile string
	// CertsDir is a docker certs.d directory: CertsDir/<host>/*.crt are
	// CAs, client.cert and client.key a client certificate.
	CertsDir string

	// Username and Password are explicit credentials. When empty, docker's
	// config.json (DOCKER_CONFIG, credential helpers) is consulted, then
	// anonymous access is used.
	Username string
	Password string
	// Anonymous forces anonymous access (dregsy's `auth: none`).
	Anonymous bool
	// AuthRefresh re-resolves keychain credentials (docker config.json,
	// ECR, Google) once they are this old (dregsy's auth-refresh). Zero:
	// DefaultECRRefresh for ECR, never for other registries. Explicit
	// Username/Password are never refreshed.
	AuthRefresh time.Duration

	// RateLimit holds pulls back while the registry's remaining
	// allowance is low (Docker Hub's ratelimit-remaining header).
	RateLimit transport.RateLimitPolicy

	// MaxConcurrentRequests caps the HTTP requests in flight to this
	// registry's host at once (0: no cap). A blob download holds its slot
	// until its body is closed. The cap is shared by every store opened
	// with the same transport.Hosts, and the smallest cap set for a host
	// wins.
	// Nexus wants 1.
	MaxConcurrentRequests int
}

// Key identifies endpoints that can share connections and caches: equal
// keys mean equal settings and credentials. The password enters only as a
// hash, so the key is safe to keep around.
func (e Endpoint) Key() string {
	pw := sha256.Sum256([]byte(e.Password))
	return strings.Join([]string{e.Registry, boolStr(e.PlainHTTP), boolStr(e.SkipTLSVerify),
		e.CAFile, e.CertsDir, e.Username, hex.EncodeToString(pw[:]), boolStr(e.Anonymous),
		fmt.Sprint(e.RateLimit), e.AuthRefresh.String(), fmt.Sprint(e.MaxConcurrentRequests)}, "\x00")
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// dockerHubAliases are the names users write for Docker Hub. They are all
// served as go-containerregistry's canonical name, so that docker's
// config.json credentials (stored under index.docker.io) are found and the
// "library/" rule applies.
var dockerHubAliases = map[string]bool{
	"docker.io":               true,
	"index.docker.io":         true,
	"registry-1.docker.io":    true,
	"registry.hub.docker.com": true,
}

// IsDockerHub reports whether host is one of Docker Hub's names.
func IsDockerHub(host string) bool { return dockerHubAliases[strings.ToLower(host)] }

// Host is the registry's "host[:port]" as requests name it: Docker Hub's
// aliases are all index.docker.io.
func (e Endpoint) Host() string {
	h := strings.TrimSuffix(e.Registry, "/")
	if IsDockerHub(h) {
		return "index.docker.io"
	}
	return h
}

// TransportConfig is what the transport stack needs of the endpoint.
func (e Endpoint) TransportConfig() transport.Config {
	return transport.Config{Host: e.Host(), PlainHTTP: e.PlainHTTP, SkipTLSVerify: e.SkipTLSVerify,
		CAFile: e.CAFile, CertsDir: e.CertsDir, RateLimit: e.RateLimit}
}

// RepoPath normalises a repository path for this endpoint: a leading "/"
// (dregsy writes one) is dropped, and on Docker Hub a name without a
// namespace means "library/NAME".
func (e Endpoint) RepoPath(repo string) string {
	repo = strings.TrimPrefix(repo, "/")
	if IsDockerHub(e.Registry) && !strings.Contains(repo, "/") {
		return "library/" + repo
	}
	return repo
}
