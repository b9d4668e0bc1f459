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

// TestDiscoveryOverCatalogPages mirrors every repository matching a
// `from: regex:` out of a TLS + htpasswd docker-registry whose catalog
// comes in pages of two, into a target capped at one request at a time.
func TestDiscoveryOverCatalogPages(t *testing.T) {
	e2e.RequireBinary(t, e2e.RegistryBinary)
	e2e.RequireBinary(t, "skopeo")
	src := e2e.StartRegistry(t, e2e.Options{Count: true, TLS: true, User: "lister", Password: "s3cret pw", CatalogMaxEntries: 2})
	dst := e2e.StartRegistry(t, e2e.Options{Count: true})
	bin := e2e.BuildRegmirror(t)
	for i, repo := range []string{"team/a", "team/b", "team/c", "other/x", "zed"} {
		push(t, src, repo, uint64(40+i), []string{"1"})
	}

	cfg := filepath.Join(t.TempDir(), "discover.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`lister:
  maxItems: -1
tasks:
  - name: discover
    source:
      registry: %s
      username: ${SRC_USER}
      password: ${SRC_PASS}
      ca-file: %s
    target:
      registry: http://%s
      max-concurrent-requests: 1
    mappings:
      - from: regex:team/.*
        to: mirror
      - from: regex:(?:other|zed).*
        to: regex:^/,flat/
`, src.Host, src.CAFile, dst.Host)), 0o600)
	env := []string{"SRC_USER=" + src.User, "SRC_PASS=" + src.Password}

	res := e2e.Run(t, 2*time.Minute, env, "", bin, "sync", "--config", cfg, "--log-format", "json")
	if res.Code != 0 {
		t.Fatalf("sync: exit %d\n%s", res.Code, res.Stderr)
	}
	if strings.Contains(res.Stderr, src.Password) {
		t.Error("the log shows the source password")
	}
	want := map[string]string{"team/a": "mirror/team/a", "team/b": "mirror/team/b", "team/c": "mirror/team/c", "other/x": "flat/other/x", "zed": "flat/zed"}
	for from, to := range want {
		if got := listTags(t, dst, to); !slices.Equal(got, []string{"1"}) {
			t.Errorf("%s -> %s: target tags %v, want [1]", from, to, got)
			continue
		}
		if s, d := e2e.SkopeoRawDigest(t, src, from+":1"), e2e.SkopeoRawDigest(t, dst, to+":1"); s != d {
			t.Errorf("%s: target digest %s, source %s", to, d, s)
		}
	}
	// Five repositories in pages of two: three catalog requests, made
	// once for both mappings.
	if n := src.Counts()["catalog"]; n != 3 {
		t.Errorf("%d catalog requests, want 3: %v", n, src.Counts())
	}
	if n := strings.Count(res.Stderr, `"msg":"copied"`); n != 5 {
		t.Errorf("%d images copied, want 5:\n%s", n, res.Stderr)
	}

	// A second run lists again (sync is one process per run) and copies
	// nothing.
	src.ResetCounts()
	res = e2e.Run(t, 2*time.Minute, env, "", bin, "sync", "--config", cfg, "--log-format", "json")
	if res.Code != 0 || strings.Count(res.Stderr, `"msg":"skipped"`) != 5 {
		t.Fatalf("second sync: exit %d, want 5 skipped\n%s", res.Code, res.Stderr)
	}
	if n := src.GETs(); n != 0 {
		t.Errorf("second run sent %d manifest/blob GETs to the source", n)
	}
}

// TestDiscoveryWithoutCatalogNamesTheMapping: Docker Hub has no catalog; the
// run says so, names the mapping, exits 1, and still copies the rest.
func TestDiscoveryWithoutCatalogNamesTheMapping(t *testing.T) {
	e2e.RequireBinary(t, e2e.RegistryBinary)
	src := e2e.StartRegistry(t, e2e.Options{})
	dst := e2e.StartRegistry(t, e2e.Options{})
	bin := e2e.BuildRegmirror(t)
	push(t, src, "app", 1, []string{"1"})
	cfg := filepath.Join(t.TempDir(), "hub.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`tasks:
  - name: from-hub
    source: {registry: registry.hub.docker.com, auth: none}
    target: {registry: "http://%s"}
    mappings:
      - from: regex:jenkins/jnlp-.*
        to: dh
  - name: local
    source: {registry: "http://%s"}
    target: {registry: "http://%s"}
    mappings: [{from: app}]
`, dst.Host, src.Host, dst.Host)), 0o600)
	res := e2e.Run(t, time.Minute, nil, "", bin, "sync", "--config", cfg)
	if res.Code != 1 {
		t.Fatalf("exit %d, want 1\n%s", res.Code, res.Stderr)
	}
	for _, s := range []string{`task \"from-hub\", mapping at ` + cfg + ":6", "Docker Hub", "/v2/_catalog"} {
		if !strings.Contains(res.Stderr, s) {
			t.Errorf("stderr does not say %q:\n%s", s, res.Stderr)
		}
	}
	if got := listTags(t, dst, "app"); !slices.Equal(got, []string{"1"}) {
		t.Errorf("the other task's image was not copied: %v", got)
	}
}
