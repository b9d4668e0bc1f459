package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regmirror/regmirror/internal/testutil/e2e"
)

// TestMutualTLSWithClientCertificate mirrors into a docker-registry that
// demands a client certificate (http.tls.clientcas). The certificate comes
// from a docker certs.d directory (client.cert, client.key, ca.crt); with
// only the CA it is refused, and the error says it is TLS.
func TestMutualTLSWithClientCertificate(t *testing.T) {
	e2e.RequireBinary(t, e2e.RegistryBinary)
	bin := e2e.BuildRegmirror(t)
	src := e2e.StartRegistry(t, e2e.Options{})
	dst := e2e.StartRegistry(t, e2e.Options{TLS: true, ClientCAs: true, User: "mirror", Password: "mTLS-pa55"})
	push(t, src, "app", 3, []string{"1.0", "2.0"})

	for _, f := range []string{"client.cert", "client.key", "ca.crt"} {
		if _, err := os.Stat(filepath.Join(dst.CertsDir, dst.Host, f)); err != nil {
			t.Fatalf("certs.d lacks %s: %v", f, err)
		}
	}
	write := func(name, trust string) string {
		p := filepath.Join(t.TempDir(), name)
		os.WriteFile(p, []byte(fmt.Sprintf(`tasks:
  - name: t
    source: {registry: "http://%s"}
    target:
      registry: %s
      auth: %s
      %s
    mappings: [{from: app}]
`, src.Host, dst.Host, authB64(dst.User, dst.Password), trust)), 0o600)
		return p
	}

	// Only the CA: the server wants a certificate we do not present.
	res := e2e.Run(t, time.Minute, nil, "", bin, "sync", "--config", write("ca-only.yaml", "ca-file: "+dst.CAFile), "--platform-cache", "")
	if res.Code != 1 {
		t.Fatalf("without a client certificate: exit %d, want 1\n%s", res.Code, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "client certificate") || !strings.Contains(res.Stderr, "client.cert") {
		t.Errorf("the failure does not say a client certificate is wanted:\n%s", res.Stderr)
	}
	if got := listTags(t, dst, "app"); len(got) != 0 {
		t.Errorf("tags written without a client certificate: %v", got)
	}

	// certs.d with client.cert/client.key: copied.
	res = e2e.Run(t, time.Minute, nil, "", bin, "sync", "--config", write("mtls.yaml", "certs-dir: "+dst.CertsDir), "--platform-cache", "")
	if res.Code != 0 {
		t.Fatalf("with the client certificate: exit %d\n%s", res.Code, res.Stderr)
	}
	if got := listTags(t, dst, "app"); !slices.Equal(got, []string{"1.0", "2.0"}) {
		t.Errorf("target tags %v, want [1.0 2.0]", got)
	}
	for _, tag := range []string{"1.0", "2.0"} {
		if a, b := e2e.SkopeoRawDigest(t, src, "app:"+tag), e2e.SkopeoRawDigest(t, dst, "app:"+tag); a != b {
			t.Errorf("app:%s: target %s, source %s", tag, b, a)
		}
	}
}

// TestPlainHTTPOnlyWhenMarked: a registry that speaks only HTTP is used
// over HTTP when written as http://, and refused with an error that says
// how to allow it when it is not: never a silent downgrade.
func TestPlainHTTPOnlyWhenMarked(t *testing.T) {
	e2e.RequireBinary(t, e2e.RegistryBinary)
	bin := e2e.BuildRegmirror(t)
	plain := e2e.StartRegistry(t, e2e.Options{Count: true})
	secure := e2e.StartRegistry(t, e2e.Options{TLS: true, User: "mirror", Password: "pa55"})
	push(t, plain, "app", 4, []string{"1.0"})

	cfg := func(srcReg string) string {
		p := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(p, []byte(fmt.Sprintf(`tasks:
  - name: t
    source: {registry: "%s"}
    target: {registry: %s, auth: %s, ca-file: %s}
    mappings: [{from: app}]
`, srcReg, secure.Host, authB64(secure.User, secure.Password), secure.CAFile)), 0o600)
		return p
	}

	// Unmarked: HTTPS is tried and fails; no request goes out in clear.
	plain.ResetCounts()
	res := e2e.Run(t, time.Minute, nil, "", bin, "sync", "--config", cfg(plain.Host), "--platform-cache", "")
	if res.Code != 1 {
		t.Fatalf("unmarked plain-HTTP source: exit %d, want 1\n%s", res.Code, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "plain HTTP not allowed") || !strings.Contains(res.Stderr, "http://"+plain.Host) {
		t.Errorf("the error does not say plain HTTP was refused and how to allow it:\n%s", res.Stderr)
	}
	if c := plain.Counts(); c["tags list"]+c["manifest GET"]+c["manifest HEAD"]+c["blob GET"] != 0 {
		t.Errorf("requests reached the plain-HTTP registry over HTTP: %v", c)
	}
	if got := listTags(t, secure, "app"); len(got) != 0 {
		t.Errorf("copied from an unmarked plain-HTTP registry: %v", got)
	}

	// Marked http://: used, copied.
	res = e2e.Run(t, time.Minute, nil, "", bin, "sync", "--config", cfg("http://"+plain.Host), "--platform-cache", "")
	if res.Code != 0 {
		t.Fatalf("marked http:// source: exit %d\n%s", res.Code, res.Stderr)
	}
	if got := listTags(t, secure, "app"); !slices.Equal(got, []string{"1.0"}) {
		t.Errorf("target tags %v, want [1.0]", got)
	}
}
