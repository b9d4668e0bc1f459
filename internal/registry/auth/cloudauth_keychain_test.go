package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// TestCloudKeychainsAgainstLocalTokenServices runs the real keychains the
// registry package picks per host (the ECR credential helper library and
// go-containerregistry's Google keychain) against local stand-ins for
// their cloud token services, so that what reaches the registry is known:
//
//   - Google: Application Default Credentials from a service-account key
//     file (GOOGLE_APPLICATION_CREDENTIALS) whose token_uri points at a
//     local OAuth2 token endpoint; the registry gets _token and
//     the access token.
//   - ECR: the AWS SDK's default chain (static keys from the environment)
//     with the ECR endpoint overridden by AWS_ENDPOINT_URL_ECR; the registry
//     gets AWS and the password from GetAuthorizationToken.
//   - Any other host asks neither service and stays anonymous.
//
// These services are hand-written handlers because no registry serves them.
func TestCloudKeychainsAgainstLocalTokenServices(t *testing.T) {
	// No docker config.json credentials may interfere.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("HOME", t.TempDir())

	var googleCalls, ecrCalls atomic.Int32
	google := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		googleCalls.Add(1)
		_ = r.ParseForm()
		if r.URL.Path != "/token" || r.Form.Get("assertion") == "" {
			http.Error(w, "want a JWT bearer grant", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"ya29.local-token","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(google.Close)
	ecr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ecrCalls.Add(1)
		body, _ := io.ReadAll(r.Body)
		if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".GetAuthorizationToken") || !strings.Contains(string(body), "123456789012") {
			http.Error(w, "unexpected call "+r.Header.Get("X-Amz-Target"), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(map[string]any{"authorizationData": []map[string]any{{
			"authorizationToken": base64.StdEncoding.EncodeToString([]byte("AWS:ecr-local-password")),
			"expiresAt":          float64(time.Now().Add(12 * time.Hour).Unix()),
			"proxyEndpoint":      "https://123456789012.dkr.ecr.eu-central-1.amazonaws.com",
		}}})
	}))
	t.Cleanup(ecr.Close)

	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", serviceAccountKey(t, google.URL+"/token"))
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDLOCAL")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local-secret")
	t.Setenv("AWS_ENDPOINT_URL_ECR", ecr.URL)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ECR_DISABLE_CACHE", "1")

	for _, c := range []struct {
		host, user, pass string
	}{
		{"europe-west3-docker.pkg.dev", "_token", "ya29.local-token"},
		{"eu.gcr.io", "_token", "ya29.local-token"},
		{"123456789012.dkr.ecr.eu-central-1.amazonaws.com", "AWS", "ecr-local-password"},
		{"ghcr.io", "", ""},
		{"127.0.0.1:5000", "", ""},
	} {
		reg, err := name.NewRegistry(c.host)
		if err != nil {
			t.Fatal(err)
		}
		before := googleCalls.Load() + ecrCalls.Load()
		auth, err := authn.Resolve(t.Context(), cloudKeychain(c.host, nil), reg)
		if err != nil {
			t.Fatalf("%s: %v", c.host, err)
		}
		cfg, err := auth.Authorization()
		if err != nil {
			t.Fatalf("%s: %v", c.host, err)
		}
		if cfg.Username != c.user || cfg.Password != c.pass {
			t.Errorf("%s: credentials %q/%q, want %q/%q", c.host, cfg.Username, redact(cfg.Password), c.user, redact(c.pass))
		}
		if c.user == "" && googleCalls.Load()+ecrCalls.Load() != before {
			t.Errorf("%s: a cloud token service was asked for a host that is not its own", c.host)
		}
	}
	// go-containerregistry's Google keychain resolves once per process
	// (a token source that then refreshes itself), so under -count=N only
	// the first round reaches the Google stand-in; ECR is asked each time.
	if ecrCalls.Load() == 0 {
		t.Error("the ECR token service was never asked")
	}
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return s[:min(4, len(s))] + "…"
}

// serviceAccountKey writes a Google service-account key file with a fresh
// RSA key and the given token endpoint.
func serviceAccountKey(t *testing.T, tokenURI string) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "regmirror-test",
		"private_key_id": "local",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "mirror@regmirror-test.iam.gserviceaccount.com",
		"client_id":      "1",
		"token_uri":      tokenURI,
	})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
