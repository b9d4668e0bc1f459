// Package e2e_test runs the built regmirror binary against real registries:
// Debian's docker-registry as separate processes, one of them with TLS and
// htpasswd, and checks the results with skopeo.
package e2e_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/testutil/e2e"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
)

func TestMain(m *testing.M) { e2e.Main(m) }

const (
	coreTags   = "1.10.5 1.11.0 1.11.12 1.11.12-hotfix 1.11.100 1.12.0 v1.11.3 latest 1.11"
	pluginTags = "0.9.0 1.0.0 1.2 1.9.9 1.10.0 1.10.1-rc.1 2.0.0 latest"
)

// registries starts the two registries every test here uses: a plain-HTTP
// source and a TLS + htpasswd target, both counted.
func registries(t *testing.T) (src, dst *e2e.Registry) {
	e2e.RequireBinary(t, e2e.RegistryBinary)
	e2e.RequireBinary(t, "skopeo")
	src = e2e.StartRegistry(t, e2e.Options{Count: true})
	dst = e2e.StartRegistry(t, e2e.Options{Count: true, TLS: true, User: "mirror", Password: "p@ss word"})
	return src, dst
}

func remoteOpts(r *e2e.Registry) []remote.Option {
	o := []remote.Option{remote.WithTransport(r.Transport())}
	if r.User != "" {
		o = append(o, remote.WithAuth(&authn.Basic{Username: r.User, Password: r.Password}))
	}
	return o
}

// push writes a distinct tiny image for each tag of repo.
func push(t *testing.T, r *e2e.Registry, repo string, seed uint64, tags []string) {
	t.Helper()
	base := imagegen.Layer(7, 512)
	for i, tag := range tags {
		imagegen.Push(t, r.Ref(repo+":"+tag), imagegen.Image(seed*100+uint64(i), 1, 256, base), remoteOpts(r)...)
	}
}

func listTags(t *testing.T, r *e2e.Registry, repo string) []string {
	t.Helper()
	rp, err := name.NewRepository(r.Ref(repo))
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(rp, remoteOpts(r)...)
	if err != nil {
		return nil
	}
	slices.Sort(tags)
	return tags
}

func authB64(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf(`{"username": %q, "password": %q}`, user, pass)))
}

func moduleFile(t *testing.T, rel string) string {
	t.Helper()
	root, err := e2e.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, rel)
}

// seedConfig adapts one of the dregsy seed configurations (kept unchanged
// under internal/config/testdata) to the test registries: only the registry
// addresses and the auth tokens differ from what the operator wrote.
func seedConfig(t *testing.T, file string, src, dst *e2e.Registry) (path string, mappings map[string]string) {
	t.Helper()
	b, err := os.ReadFile(moduleFile(t, filepath.Join("internal/config/testdata", file)))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	s = strings.ReplaceAll(s, "registry: registry.hub.docker.com", "registry: http://"+src.Host)
	s = strings.ReplaceAll(s, "registry: 127.0.0.1:5000", "registry: "+dst.Host)
	s = regexp.MustCompile(`auth: \S+`).ReplaceAllString(s, "auth: "+authB64(dst.User, dst.Password))
	mappings = map[string]string{}
	var from string
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "- from: "); ok {
			from = v
		} else if v, ok := strings.CutPrefix(line, "to: "); ok && from != "" {
			mappings[from] = strings.Fields(v)[0]
			from = ""
		}
	}
	path = filepath.Join(t.TempDir(), file)
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, mappings
}

func TestSeedConfigsSelectDregsyTagsAndResyncIsFree(t *testing.T) {
	src, dst := registries(t)
	bin := e2e.BuildRegmirror(t)

	coreCfg, coreMaps := seedConfig(t, "dregsy-spaceone-core.yaml", src, dst)
	pluginCfg, pluginMaps := seedConfig(t, "dregsy-spaceone-plugin.yaml", src, dst)
	if len(coreMaps) != 22 || len(pluginMaps) != 25 {
		t.Fatalf("fixtures changed: %d core and %d plugin mappings", len(coreMaps), len(pluginMaps))
	}
	seedN := uint64(1)
	for from := range coreMaps {
		push(t, src, from, seedN, strings.Fields(coreTags))
		seedN++
	}
	for from := range pluginMaps {
		push(t, src, from, seedN, strings.Fields(pluginTags))
		seedN++
	}

	want := map[string][]string{}
	for from, to := range coreMaps {
		if from == "redis" || from == "mongo" {
			want[to] = []string{"latest"}
		} else {
			want[to] = []string{"1.11.0", "1.11.100", "1.11.12", "1.11.12-hotfix"}
		}
	}
	for _, to := range pluginMaps {
		want[to] = []string{"1.10.0", "1.10.1-rc.1"}
	}

	for _, cfg := range []string{coreCfg, pluginCfg} {
		res := e2e.Run(t, 5*time.Minute, nil, "", bin, "sync", "--config", cfg)
		if res.Code != 0 {
			t.Fatalf("sync %s: exit %d\n%s", filepath.Base(cfg), res.Code, res.Stderr)
		}
		if strings.Contains(res.Stderr, dst.Password) || strings.Contains(res.Stderr, authB64(dst.User, dst.Password)) {
			t.Error("the log shows the target's credentials")
		}
	}

	maps := map[string]string{}
	for k, v := range coreMaps {
		maps[k] = v
	}
	for k, v := range pluginMaps {
		maps[k] = v
	}
	for from, to := range maps {
		got := listTags(t, dst, to)
		if !slices.Equal(got, want[to]) {
			t.Errorf("%s -> %s: target tags %v, want %v", from, to, got, want[to])
			continue
		}
		// Cross-check every synced tag of a few repositories with skopeo,
		// an independent client.
		if from == "spaceone/console" || from == "redis" || from == "spaceone/plugin-slack-noti-protocol" {
			for _, tag := range got {
				s := e2e.SkopeoRawDigest(t, src, from+":"+tag)
				d := e2e.SkopeoRawDigest(t, dst, to+":"+tag)
				if s != d {
					t.Errorf("%s:%s: target digest %s, source %s", to, tag, d, s)
				}
			}
		}
	}

	// A second run finds everything current: no manifest or blob GET
	// reaches the source, only HEADs and tag lists.
	src.ResetCounts()
	dst.ResetCounts()
	for _, cfg := range []string{coreCfg, pluginCfg} {
		res := e2e.Run(t, 5*time.Minute, nil, "", bin, "sync", "--config", cfg, "--log-format", "json")
		if res.Code != 0 {
			t.Fatalf("second sync: exit %d\n%s", res.Code, res.Stderr)
		}
		if strings.Contains(res.Stderr, `"msg":"copied"`) {
			t.Errorf("second run copied something:\n%s", res.Stderr)
		}
	}
	if n := src.GETs(); n != 0 {
		t.Errorf("second run sent %d manifest/blob GETs to the source: %v", n, src.Requests())
	}
	// 20 regex mappings x 4 tags, redis and mongo x 1, 25 plugins x 2.
	const selected = 20*4 + 2 + 25*2
	if n := src.Counts()["manifest HEAD"]; n != selected {
		t.Errorf("second run sent %d manifest HEADs to the source, want one per selected tag (%d)", n, selected)
	}
	if dst.Counts()["upload"] != 0 {
		t.Errorf("second run uploaded to the target: %v", dst.Counts())
	}
}

func TestBadConfigExits2WithFileAndLine(t *testing.T) {
	bin := e2e.BuildRegmirror(t)
	dir := t.TempDir()
	cases := map[string]struct{ yaml, want string }{
		"unknown key": {"tasks:\n  - name: a\n    intervall: 60\n", ":3:"},
		"bad regex":   {"tasks:\n  - name: a\n    source: {registry: a.example}\n    target: {registry: b.example}\n    mappings:\n      - from: x\n        tags:\n          - 'regex: ('\n", ":8:"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
			if err := os.WriteFile(p, []byte(c.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			res := e2e.Run(t, 30*time.Second, nil, "", bin, "sync", "--config", p)
			if res.Code != 2 {
				t.Fatalf("exit %d, want 2\n%s", res.Code, res.Stderr)
			}
			if !strings.Contains(res.Stderr, p+c.want) {
				t.Errorf("stderr does not name %s%s:\n%s", p, c.want, res.Stderr)
			}
		})
	}
}

func TestOneFailureExits1AndOthersAreCopied(t *testing.T) {
	src, dst := registries(t)
	bin := e2e.BuildRegmirror(t)
	push(t, src, "app", 1, []string{"1.0", "2.0"})
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	caFile := dst.CAFile
	os.WriteFile(cfg, []byte(fmt.Sprintf(`tasks:
  - name: t
    source: {registry: "http://%s"}
    target:
      registry: %s
      username: ${DST_USER}
      password: ${DST_PASS}
      ca-file: %s
    mappings:
      - from: app
        tags: ['1.0', 'missing', '2.0']
`, src.Host, dst.Host, caFile)), 0o600)
	res := e2e.Run(t, 2*time.Minute, []string{"DST_USER=" + dst.User, "DST_PASS=" + dst.Password}, "", bin, "sync", "--config", cfg)
	if res.Code != 1 {
		t.Fatalf("exit %d, want 1\n%s", res.Code, res.Stderr)
	}
	if got := listTags(t, dst, "app"); !slices.Equal(got, []string{"1.0", "2.0"}) {
		t.Errorf("target tags %v, want [1.0 2.0]", got)
	}
	if !strings.Contains(res.Stderr, "missing") || !strings.Contains(res.Stderr, "summary") {
		t.Errorf("stderr does not report the failed tag and a summary:\n%s", res.Stderr)
	}
	if strings.Contains(res.Stderr, dst.Password) {
		t.Error("the log shows the password")
	}
}

func TestTLSWithoutTrustExplainsTheFixes(t *testing.T) {
	src, dst := registries(t)
	bin := e2e.BuildRegmirror(t)
	push(t, src, "app", 1, []string{"1.0"})
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`tasks:
  - name: t
    source: {registry: "http://%s"}
    target: {registry: %s, auth: %s}
    mappings: [{from: app}]
`, src.Host, dst.Host, authB64(dst.User, dst.Password))), 0o600)
	res := e2e.Run(t, 2*time.Minute, nil, "", bin, "sync", "--config", cfg)
	if res.Code != 1 {
		t.Fatalf("exit %d, want 1\n%s", res.Code, res.Stderr)
	}
	for _, fix := range []string{"ca-file", "certs-dir", "skip-tls-verify"} {
		if !strings.Contains(res.Stderr, fix) {
			t.Errorf("the TLS error does not mention %s:\n%s", fix, res.Stderr)
		}
	}
	if got := listTags(t, dst, "app"); len(got) != 0 {
		t.Errorf("something was written over unverified TLS: %v", got)
	}
}

func TestQuickstartFromREADME(t *testing.T) {
	e2e.RequireBinary(t, "skopeo")
	bin := e2e.BuildRegmirror(t)
	root, _ := e2e.ModuleRoot()
	b, err := os.ReadFile(filepath.Join(root, "examples/quickstart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	cfg := filepath.Join(t.TempDir(), "quickstart.yaml")
	s := strings.Replace(string(b), "registry: oci:regmirror-quickstart", "registry: oci:"+out, 1)
	s = strings.Replace(s, "registry: oci:examples/oci-source", "registry: oci:"+filepath.Join(root, "examples/oci-source"), 1)
	os.WriteFile(cfg, []byte(s), 0o600)
	for i, want := range []string{"copied", "skipped"} {
		res := e2e.Run(t, time.Minute, nil, "", bin, "sync", "--config", cfg, "--log-format", "json")
		if res.Code != 0 {
			t.Fatalf("run %d: exit %d\n%s", i+1, res.Code, res.Stderr)
		}
		if n := strings.Count(res.Stderr, `"msg":"`+want+`"`); n != 4 {
			t.Errorf("run %d: %d images %s, want 4\n%s", i+1, n, want, res.Stderr)
		}
	}
	// skopeo reads the mirrored layout and sees the source's digests.
	src := filepath.Join(root, "examples/oci-source")
	for _, tag := range []string{"1.1.0", "latest"} {
		a := skopeoRaw(t, "oci:"+src+":"+tag)
		b := skopeoRaw(t, "oci:"+out+":"+tag)
		if a != b || a == "" {
			t.Errorf("%s: mirrored manifest differs from the source", tag)
		}
	}
}

func skopeoRaw(t *testing.T, ref string) string {
	t.Helper()
	res := e2e.Run(t, 30*time.Second, nil, "", "skopeo", "inspect", "--raw", ref)
	if res.Code != 0 {
		t.Fatalf("skopeo inspect %s: %s", ref, res.Stderr)
	}
	return res.Stdout
}
