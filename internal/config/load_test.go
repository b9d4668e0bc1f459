package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// y joins lines into a document, so that a test can count lines: line n is
// argument n.
func y(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// b64 is base64 (standard, padded) of s.
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// env is an injectable environment.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

func loadString(doc string, e env) (*Config, error) {
	return load(strings.NewReader(doc), "cfg.yaml", e.lookup, readSmallFile)
}

// task is a minimal valid task; with it, line 1 is "tasks:".
func task(extra ...string) string {
	return y(append([]string{
		"tasks:",
		"  - name: t",
		"    source:",
		"      registry: src.example.com",
		"    target:",
		"      registry: dst.example.com",
		"    mappings:",
		"      - from: a/b",
	}, extra...)...)
}

func TestLoadFixtures(t *testing.T) {
	const auth = "user"
	tests := []struct {
		file     string
		tasks    []string
		mappings []int
	}{
		{"dregsy-spaceone-core.yaml", []string{"sync_spaceone_doc", "sync_spaceone_core"}, []int{5, 17}},
		{"dregsy-spaceone-plugin.yaml", []string{"sync_spaceone_plugin"}, []int{25}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			cfg, err := LoadFile(path)
			if err != nil {
				t.Fatalf("LoadFile: %v", err)
			}
			if cfg.File != path || cfg.Relay != "skopeo" || !cfg.Watch {
				t.Errorf("File, Relay, Watch = %q, %q, %v", cfg.File, cfg.Relay, cfg.Watch)
			}
			if cfg.CertsDir != "/etc/skopeo/certs.d" {
				t.Errorf("CertsDir = %q", cfg.CertsDir)
			}
			if cfg.Lister.MaxItems != 100 || cfg.Lister.CacheDuration != 2*time.Hour {
				t.Errorf("Lister = %+v", cfg.Lister)
			}
			if len(cfg.Tasks) != len(tt.tasks) {
				t.Fatalf("%d tasks, want %d", len(cfg.Tasks), len(tt.tasks))
			}
			for i, task := range cfg.Tasks {
				if task.Name != tt.tasks[i] {
					t.Errorf("task %d name %q, want %q", i, task.Name, tt.tasks[i])
				}
				if task.Interval != 6*time.Hour || !task.Verbose {
					t.Errorf("task %s: interval %v verbose %v", task.Name, task.Interval, task.Verbose)
				}
				if task.Line == 0 || task.Source.Line == 0 || task.Target.Line == 0 {
					t.Errorf("task %s: lines %d %d %d", task.Name, task.Line, task.Source.Line, task.Target.Line)
				}
				src, dst := task.Source, task.Target
				if src.Registry != "registry.hub.docker.com" || src.SkipTLSVerify || src.PlainHTTP {
					t.Errorf("task %s: source %+v", task.Name, src)
				}
				if dst.Registry != "127.0.0.1:5000" || !dst.SkipTLSVerify || dst.PlainHTTP {
					t.Errorf("task %s: target %+v", task.Name, dst)
				}
				for _, loc := range []Location{src, dst} {
					if loc.Auth == nil || loc.Auth.Username != auth || loc.Auth.Password.Reveal() != "pass" {
						t.Errorf("task %s: auth %+v", task.Name, loc.Auth)
					}
					if loc.CertsDir != "/etc/skopeo/certs.d" {
						t.Errorf("task %s: %s CertsDir %q", task.Name, loc.Registry, loc.CertsDir)
					}
				}
				if len(task.Mappings) != tt.mappings[i] {
					t.Errorf("task %s: %d mappings, want %d", task.Name, len(task.Mappings), tt.mappings[i])
				}
				for _, m := range task.Mappings {
					if want := "your_registry_project/spaceone/" + m.From[strings.LastIndex(m.From, "/")+1:]; m.To != want {
						t.Errorf("mapping %s: to %q, want %q", m.From, m.To, want)
					}
					if m.Tags == nil {
						t.Errorf("mapping %s: nil Tags", m.From)
					}
					if m.Platform != nil || m.Line == 0 {
						t.Errorf("mapping %s: platform %q line %d", m.From, m.Platform, m.Line)
					}
				}
			}
		})
	}

	// Spot checks: exact lines and tag specs as written.
	cfg, err := LoadFile("testdata/dregsy-spaceone-core.yaml")
	if err != nil {
		t.Fatal(err)
	}
	first := cfg.Tasks[0]
	if first.Line != 13 || first.Source.Line != 17 || first.Target.Line != 20 || first.Mappings[0].Line != 26 {
		t.Errorf("lines: task %d source %d target %d mapping %d", first.Line, first.Source.Line, first.Target.Line, first.Mappings[0].Line)
	}
	if got := first.Mappings[0].Tags.Specs(); len(got) != 1 || got[0] != `regex: 1\.11\.(?:[0-9]?[0-9]).*` {
		t.Errorf("specs %q", got)
	}
	if got := first.Mappings[3]; got.From != "redis" || got.Tags.Specs()[0] != "latest" {
		t.Errorf("redis mapping %+v", got)
	}
	sel := first.Mappings[0].Tags.Select([]string{"1.11.0", "1.11.12-rc", "1.12.0", "latest"})
	if strings.Join(sel, ",") != "1.11.0,1.11.12-rc" {
		t.Errorf("Select = %q", sel)
	}
	plugin, err := LoadFile("testdata/dregsy-spaceone-plugin.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sel = plugin.Tasks[0].Mappings[0].Tags.Select([]string{"0.9.0", "1.0.0", "1.2.0", "1.3.1", "2.0.0"})
	if strings.Join(sel, ",") != "1.2.0,1.3.1" {
		t.Errorf("plugin Select = %q", sel)
	}
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := loadString(task(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.File != "cfg.yaml" || cfg.Relay != "" || cfg.Watch || cfg.CertsDir != "" {
		t.Errorf("config %+v", cfg)
	}
	if cfg.Lister != (Lister{MaxItems: 100, CacheDuration: time.Hour}) {
		t.Errorf("default lister %+v", cfg.Lister)
	}
	tk := cfg.Tasks[0]
	if tk.Interval != 0 || tk.Verbose || tk.Line != 2 {
		t.Errorf("task %+v", tk)
	}
	if tk.Source.Auth != nil || tk.Source.AuthNone || tk.Source.Lister != nil || tk.Source.Line != 3 || tk.Target.Line != 5 {
		t.Errorf("source %+v", tk.Source)
	}
	m := tk.Mappings[0]
	if m.From != "a/b" || m.To != "a/b" || m.Tags == nil || m.Platform != nil || m.Line != 8 {
		t.Errorf("mapping %+v", m)
	}
	if sel := m.Tags.Select([]string{"1", "latest"}); len(sel) != 2 {
		t.Errorf("no tags should select all, got %q", sel)
	}
}

func TestLoadOK(t *testing.T) {
	dir := t.TempDir()
	caFile := writeCA(t, dir)
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := env{"REG_USER": "bob", "REG_PASS": "hunter2", "PW_DIR": dir, "EMPTY": ""}

	tests := []struct {
		name  string
		doc   string
		check func(t *testing.T, c *Config)
	}{
		{"http prefix", strings.Replace(task(), "registry: src.example.com", "registry: http://localhost:5000", 1),
			func(t *testing.T, c *Config) {
				if s := c.Tasks[0].Source; s.Registry != "localhost:5000" || !s.PlainHTTP {
					t.Errorf("source %+v", s)
				}
			}},
		{"https prefix", strings.Replace(task(), "registry: src.example.com", "registry: HTTPS://src.example.com", 1),
			func(t *testing.T, c *Config) {
				if s := c.Tasks[0].Source; s.Registry != "src.example.com" || s.PlainHTTP {
					t.Errorf("source %+v", s)
				}
			}},
		{"oci layout", strings.Replace(task(), "registry: dst.example.com", "registry: oci:/srv/mirror", 1),
			func(t *testing.T, c *Config) {
				if d := c.Tasks[0].Target; d.Registry != "oci:/srv/mirror" || d.PlainHTTP || d.CertsDir != "" {
					t.Errorf("target %+v", d)
				}
			}},
		{"interval duration", task("    interval: 6h"),
			func(t *testing.T, c *Config) {
				if c.Tasks[0].Interval != 6*time.Hour {
					t.Errorf("interval %v", c.Tasks[0].Interval)
				}
			}},
		{"interval seconds", task("    interval: 30"),
			func(t *testing.T, c *Config) {
				if c.Tasks[0].Interval != 30*time.Second {
					t.Errorf("interval %v", c.Tasks[0].Interval)
				}
			}},
		{"interval zero", task("    interval: 0"),
			func(t *testing.T, c *Config) {
				if c.Tasks[0].Interval != 0 {
					t.Errorf("interval %v", c.Tasks[0].Interval)
				}
			}},
		{"interval 90m", task(`    interval: "90m"`),
			func(t *testing.T, c *Config) {
				if c.Tasks[0].Interval != 90*time.Minute {
					t.Errorf("interval %v", c.Tasks[0].Interval)
				}
			}},
		{"schedule cron", task(`    schedule: "*/2 * * * * *"`, "    interval: 0"),
			func(t *testing.T, c *Config) {
				if c.Tasks[0].Schedule.String() != "*/2 * * * * *" || c.Tasks[0].Interval != 0 {
					t.Errorf("schedule %q interval %v", c.Tasks[0].Schedule, c.Tasks[0].Interval)
				}
			}},
		{"schedule descriptor", task("    schedule: '@daily'"),
			func(t *testing.T, c *Config) {
				if c.Tasks[0].Schedule.String() != "@daily" {
					t.Errorf("schedule %q", c.Tasks[0].Schedule)
				}
			}},
		{"env expansion", strings.Replace(task(), "      registry: dst.example.com", y(
			"      registry: dst.example.com",
			"      username: ${REG_USER}",
			"      password: pre-${REG_PASS}-$HOME-$${x}",
		), 1),
			func(t *testing.T, c *Config) {
				a := c.Tasks[0].Target.Auth
				if a == nil || a.Username != "bob" || a.Password.Reveal() != "pre-hunter2-$HOME-${x}" {
					t.Errorf("auth %+v", a)
				}
			}},
		{"password-file", strings.Replace(task(), "      registry: dst.example.com", y(
			"      registry: dst.example.com",
			"      username: bob",
			"      password-file: ${PW_DIR}/pw",
		), 1),
			func(t *testing.T, c *Config) {
				a := c.Tasks[0].Target.Auth
				if a == nil || a.Username != "bob" || a.Password.Reveal() != "s3cret" {
					t.Errorf("auth %+v", a)
				}
			}},
		{"username without password", strings.Replace(task(), "      registry: dst.example.com", y(
			"      registry: dst.example.com",
			"      username: bob",
		), 1),
			func(t *testing.T, c *Config) {
				a := c.Tasks[0].Target.Auth
				if a == nil || a.Username != "bob" || a.Password != "" {
					t.Errorf("auth %+v", a)
				}
			}},
		{"username expands to nothing", strings.Replace(task(), "      registry: dst.example.com", y(
			"      registry: dst.example.com",
			"      username: ${EMPTY}",
		), 1),
			func(t *testing.T, c *Config) {
				if a := c.Tasks[0].Target.Auth; a != nil {
					t.Errorf("auth %+v", a)
				}
			}},
		{"auth none", strings.Replace(task(), "registry: src.example.com", "registry: src.example.com\n      auth: none", 1),
			func(t *testing.T, c *Config) {
				if s := c.Tasks[0].Source; !s.AuthNone || s.Auth != nil {
					t.Errorf("source %+v", s)
				}
			}},
		{"auth variants", y(
			"tasks:",
			"  - name: t",
			"    source:",
			"      registry: src.example.com",
			"      auth: "+strings.TrimRight(base64.URLEncoding.EncodeToString([]byte(`{"username":"u?>","password":"p?>"}`)), "="),
			"    target:",
			"      registry: dst.example.com",
			"      auth: "+b64("alice:pa:ss\n"),
			"    mappings:",
			"      - from: a",
		),
			func(t *testing.T, c *Config) {
				s, d := c.Tasks[0].Source.Auth, c.Tasks[0].Target.Auth
				if s == nil || s.Username != "u?>" || s.Password.Reveal() != "p?>" {
					t.Errorf("source auth %+v", s)
				}
				if d == nil || d.Username != "alice" || d.Password.Reveal() != "pa:ss" {
					t.Errorf("target auth %+v", d)
				}
			}},
		{"auth wrapped by base64", strings.Replace(task(), "registry: src.example.com", "registry: src.example.com\n      auth: "+
			wrapped(b64(`{"username": "a-rather-long-user-name", "password": "and-an-even-longer-password-value"}`+"\n")), 1),
			func(t *testing.T, c *Config) {
				if a := c.Tasks[0].Source.Auth; a == nil || a.Username != "a-rather-long-user-name" {
					t.Errorf("auth %+v", a)
				}
			}},
		{"ca-file and certs-dir", strings.Replace(task(), "registry: src.example.com", "registry: src.example.com\n      ca-file: "+caFile+"\n      certs-dir: /etc/certs.d", 1),
			func(t *testing.T, c *Config) {
				if s := c.Tasks[0].Source; s.CAFile != caFile || s.CertsDir != "/etc/certs.d" {
					t.Errorf("source %+v", s)
				}
			}},
		{"certs-dir inherited", "skopeo:\n  certs-dir: /etc/skopeo/certs.d\n" + task(),
			func(t *testing.T, c *Config) {
				if s := c.Tasks[0].Source; s.CertsDir != "/etc/skopeo/certs.d" {
					t.Errorf("source %+v", s)
				}
			}},
		{"ecr auth-refresh", strings.Replace(task(), "registry: src.example.com", "registry: 123456789012.dkr.ecr.eu-central-1.amazonaws.com\n      auth-refresh: 10m", 1),
			func(t *testing.T, c *Config) {
				if s := c.Tasks[0].Source; s.AuthRefresh != time.Hour {
					t.Errorf("auth-refresh %v, want clamped to 1h", s.AuthRefresh)
				}
			}},
		{"ecr public", strings.Replace(task(), "registry: src.example.com", "registry: 1234:us-east-1@public.ecr.aws\n      auth-refresh: 12h", 1),
			func(t *testing.T, c *Config) {
				if s := c.Tasks[0].Source; s.Registry != "public.ecr.aws" || s.AuthRefresh != 12*time.Hour {
					t.Errorf("source %+v", s)
				}
			}},
		{"listers", y(
			"lister:",
			"  maxItems: -1",
			"  cacheDuration: 3600000000000 # dregsy: nanoseconds",
			"docker:",
			"  dockerhost: unix:///var/run/docker.sock",
			"  api-version: 1.24",
			"dockerhost: tcp://x",
			"api-version: 1.41",
			"relay: docker",
		) + strings.Replace(task(), "registry: src.example.com", y(
			"registry: registry.hub.docker.com",
			"      lister:",
			"        type: index",
			"        search: jenkins",
			`        maxItems: "20"`,
		), 1),
			func(t *testing.T, c *Config) {
				if c.Lister != (Lister{MaxItems: -1, CacheDuration: time.Hour}) {
					t.Errorf("lister %+v", c.Lister)
				}
				want := Lister{MaxItems: 20, CacheDuration: time.Hour, Type: "index", Search: "jenkins"}
				if l := c.Tasks[0].Source.Lister; l == nil || *l != want {
					t.Errorf("source lister %+v", l)
				}
			}},
		{"regex mappings", strings.Replace(task(), "      - from: a/b", y(
			"      - from: regex:jenkins/jnlp-.*",
			"        to: regex:jenkins/,dh/other-jenkins/",
			"      - from: regex:myproject/.*",
			"        to: ecr",
			"      - from: regex:other/.*",
		), 1),
			func(t *testing.T, c *Config) {
				ms := c.Tasks[0].Mappings
				if ms[0].From != "regex:jenkins/jnlp-.*" || ms[0].To != "regex:jenkins/,dh/other-jenkins/" {
					t.Errorf("mapping 0 %+v", ms[0])
				}
				if ms[1].To != "ecr" || ms[2].To != "" {
					t.Errorf("to %q %q", ms[1].To, ms[2].To)
				}
			}},
		{"leading slash and platforms", strings.Replace(task(), "      - from: a/b", y(
			"      - from: /redis",
			"        to: /mirror/redis",
			"        platform: linux/arm64/v8",
			"      - from: busybox",
			"        platform: all",
			"        tags: [1.10, 'keep: latest 3', sha256:"+strings.Repeat("a", 64)+"]",
		), 1),
			func(t *testing.T, c *Config) {
				ms := c.Tasks[0].Mappings
				if ms[0].From != "redis" || ms[0].To != "mirror/redis" || ms[0].Platform.String() != "linux/arm64/v8" {
					t.Errorf("mapping 0 %+v", ms[0])
				}
				if ms[1].To != "busybox" || ms[1].Platform != nil || ms[1].Tags.Specs()[0] != "1.10" {
					t.Errorf("mapping 1 %+v", ms[1])
				}
			}},
		{"yaml 1.1 booleans, anchors and merge keys", y(
			"watch: yes",
			"tasks:",
			"  - name: one",
			"    source: &src",
			"      registry: src.example.com",
			"      skip-tls-verify: on",
			"    target: &dst",
			"      registry: dst.example.com",
			"    mappings: &maps",
			"      - from: a",
			"  - name: two",
			"    source:",
			"      <<: *src",
			"      skip-tls-verify: false",
			"    target: *dst",
			"    mappings: *maps",
		),
			func(t *testing.T, c *Config) {
				if !c.Watch || len(c.Tasks) != 2 {
					t.Fatalf("config %+v", c)
				}
				one, two := c.Tasks[0], c.Tasks[1]
				if !one.Source.SkipTLSVerify || two.Source.SkipTLSVerify || two.Source.Registry != "src.example.com" {
					t.Errorf("sources %+v %+v", one.Source, two.Source)
				}
				if two.Target.Registry != "dst.example.com" || two.Mappings[0].From != "a" {
					t.Errorf("task two %+v", two)
				}
			}},
		{"trailing empty document", task() + "---\n",
			func(t *testing.T, c *Config) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadString(tt.doc, e)
			if err != nil {
				t.Fatalf("load:\n%s\nerror: %v", tt.doc, err)
			}
			tt.check(t, cfg)
		})
	}
}

// wrapped breaks s into 20-character lines the way base64(1) wraps, as a
// YAML folded block.
func wrapped(s string) string {
	var b strings.Builder
	b.WriteString(">-\n")
	for len(s) > 0 {
		n := min(20, len(s))
		b.WriteString("        " + s[:n] + "\n")
		s = s[n:]
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// writeCA writes a self-signed certificate to dir/ca.pem.
func writeCA(t *testing.T, dir string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// want is one expected *Error: its line and substrings of its message.
type want struct {
	line int
	msg  []string
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyPW := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyPW, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// srcLine inserts lines after the source registry (line 4), so the
	// first inserted line is line 5.
	srcLine := func(lines ...string) string {
		return strings.Replace(task(), "      registry: src.example.com\n",
			"      registry: src.example.com\n"+y(lines...), 1)
	}
	// mapLine inserts lines after "- from: a/b" (line 8): line 9 on.
	mapLine := func(lines ...string) string { return task(lines...) }
	// setSrc replaces the source registry value (line 4).
	setSrc := func(reg string) string {
		return strings.Replace(task(), "registry: src.example.com", "registry: "+reg, 1)
	}
	// setFrom replaces the mapping's from (line 8).
	setFrom := func(from string) string { return strings.Replace(task(), "from: a/b", "from: "+from, 1) }

	tests := []struct {
		name string
		doc  string
		want []want
	}{
		// Strict decoding.
		{"unknown top-level key", "relya: skopeo\n" + task(), []want{{1, []string{`unknown key "relya"`, "top level", `did you mean "relay"`}}}},
		{"unknown task key", strings.Replace(task(), "  - name: t\n", "  - name: t\n    intervall: 60\n", 1),
			[]want{{3, []string{`unknown key "intervall" in task`, `"interval"`}}}},
		{"unknown location key", srcLine("      regsitry: x"), []want{{5, []string{`unknown key "regsitry" in source`}}}},
		{"unknown target key", strings.Replace(task(), "registry: dst.example.com", "registry: dst.example.com\n      foo: bar", 1),
			[]want{{7, []string{`unknown key "foo" in target`}}}},
		{"unknown mapping key", mapLine("        tag: [latest]"), []want{{9, []string{`unknown key "tag" in mapping`, `"tags"`}}}},
		{"unknown skopeo key", "skopeo:\n  cert-dir: /x\n" + task(), []want{{2, []string{`unknown key "cert-dir" in skopeo`, `"certs-dir"`}}}},
		{"unknown lister key", "lister:\n  maxitems: 3\n" + task(), []want{{2, []string{`unknown key "maxitems" in lister`, `"maxItems"`}}}},
		{"unknown location lister key", srcLine("      lister:", "        kind: index"), []want{{6, []string{`unknown key "kind" in source lister`}}}},
		{"duplicate key", srcLine("      registry: other.example.com"), []want{{5, []string{`duplicate key "registry"`, "line 4"}}}},
		{"wrong type", "watch: maybe\n" + task(), []want{{1, []string{`"watch"`, "true or false", `"maybe"`}}}},
		{"list for string", srcLine("      certs-dir: [a]"), []want{{5, []string{`"certs-dir" in source`, "not a list"}}}},
		{"tags not a list", mapLine("        tags: latest"), []want{{9, []string{`"tags" must be a list`}}}},
		{"tags item a list", mapLine("        tags:", "          - [a]"), []want{{10, []string{"tags[0]"}}}},

		// rate-limit and transfers (regmirror additions).
		{"rate-limit unknown key", srcLine("      rate-limit:", "        min-remainig: 3"), []want{{6, []string{`unknown key "min-remainig"`}}}},
		{"rate-limit negative", srcLine("      rate-limit:", "        min-remaining: -1"), []want{{6, []string{"min-remaining must not be negative"}}}},
		{"rate-limit bad wait", srcLine("      rate-limit:", "        wait: soon"), []want{{6, []string{"wait"}}}},
		{"rate-limit zero wait", srcLine("      rate-limit:", "        wait: 0s"), []want{{6, []string{"wait must be positive"}}}},
		{"transfers zero", "transfers: 0\n" + task(), []want{{1, []string{"transfers must be at least 1"}}}},
		{"max-concurrent-requests zero", srcLine("      max-concurrent-requests: 0"), []want{{5, []string{"max-concurrent-requests must be at least 1"}}}},
		{"max-concurrent-requests not a number", srcLine("      max-concurrent-requests: one"), []want{{5, []string{`"max-concurrent-requests" in source`, "integer"}}}},
		{"max-concurrent-requests on a layout", strings.Replace(srcLine("      max-concurrent-requests: 1"), "registry: src.example.com", "registry: oci:dir", 1),
			[]want{{5, []string{`"max-concurrent-requests" does not apply to an OCI layout`}}}},
		{"negated from regex", setFrom("'regex: !team/.*'"), []want{{8, []string{"cannot be negated"}}}},

		// Documents.
		{"empty file", "", []want{{0, []string{"empty"}}}},
		{"only comments", "# nothing\n\n", []want{{0, []string{"empty"}}}},
		{"only separator", "---\n", []want{{0, []string{"empty"}}}},
		{"null document", "~\n", []want{{0, []string{"empty"}}}},
		{"multiple documents", task() + "---\n" + task(), []want{{9, []string{"more than one YAML document"}}}},
		{"syntax error", "tasks:\n  - name: t\n   bad: [\n", []want{{3, []string{"invalid YAML"}}}},
		{"top level list", "- a\n- b\n", []want{{1, []string{"top level must be a mapping", "not a list"}}}},
		{"tab indentation", "tasks:\n\t- name: x\n", []want{{2, []string{"invalid YAML"}}}},

		// Top level.
		{"bad relay", "relay: podman\n" + task(), []want{{1, []string{`relay "podman"`, `"skopeo" or "docker"`}}}},
		{"no tasks", "relay: skopeo\n", []want{{1, []string{"no tasks"}}}},
		{"empty tasks", "tasks: []\n", []want{{1, []string{"no tasks"}}}},
		{"tasks not a list", "tasks: all\n", []want{{1, []string{`"tasks" must be a list`}}}},
		{"bad lister", "lister:\n  maxItems: lots\n  cacheDuration: 2 hours\n" + task(),
			[]want{{2, []string{`"maxItems"`, "integer"}}, {3, []string{`"cacheDuration"`, "duration"}}}},

		// Tasks.
		{"missing name", strings.Replace(task(), "  - name: t\n    source:", "  - source:", 1), []want{{2, []string{"tasks[0] has no name"}}}},
		{"empty name", strings.Replace(task(), "name: t", `name: ""`, 1), []want{{2, []string{"tasks[0] has no name"}}}},
		{"duplicate name", task() + strings.TrimPrefix(task(), "tasks:\n"), []want{{9, []string{`duplicate task name "t"`, "line 2"}}}},
		{"interval too short", task("    interval: 10"), []want{{9, []string{`interval "10"`, "minimum task interval is 30 seconds"}}}},
		{"interval too short duration", task("    interval: 29s"), []want{{9, []string{"minimum task interval is 30 seconds"}}}},
		{"interval negative", task("    interval: -1"), []want{{9, []string{`interval "-1"`, "negative"}}}},
		{"interval junk", task("    interval: abc"), []want{{9, []string{`interval "abc"`, "whole seconds", `"6h"`}}}},
		{"interval float", task("    interval: 1.5"), []want{{9, []string{`interval "1.5"`}}}},
		{"interval huge", task("    interval: 99999999999999999"), []want{{9, []string{"too large"}}}},
		{"schedule bad", task("    schedule: 0 25 * * *"), []want{{9, []string{`schedule "0 25 * * *"`, "bad cron expression"}}}},
		{"schedule never", task("    schedule: 0 0 30 2 *"), []want{{9, []string{"never fires"}}}},
		{"schedule empty", task(`    schedule: ""`), []want{{9, []string{"schedule is empty"}}}},
		{"schedule and interval", task("    interval: 6h", "    schedule: '@hourly'"), []want{{10, []string{"schedule and a non-zero interval"}}}},
		{"schedule typo", task("    schedul: '@hourly'"), []want{{9, []string{`unknown key "schedul"`, `"schedule"`}}}},
		{"missing source", strings.Replace(task(), "    source:\n      registry: src.example.com\n", "", 1),
			[]want{{2, []string{`task "t" has no source`}}}},
		{"missing target", strings.Replace(task(), "    target:\n      registry: dst.example.com\n", "", 1),
			[]want{{2, []string{`task "t" has no target`}}}},
		{"empty source", strings.Replace(task(), "    source:\n      registry: src.example.com\n", "    source:\n", 1),
			[]want{{3, []string{"source is empty"}}}},
		{"missing mappings", strings.TrimSuffix(task(), "    mappings:\n      - from: a/b\n"), []want{{2, []string{`task "t" has no mappings`}}}},
		{"empty mappings", strings.Replace(task(), "    mappings:\n      - from: a/b\n", "    mappings: []\n", 1),
			[]want{{7, []string{`task "t" has no mappings`}}}},
		{"null mapping", strings.Replace(task(), "      - from: a/b\n", "      -\n", 1), []want{{8, []string{"mappings[0] must be a mapping"}}}},

		// Locations.
		{"missing registry", strings.Replace(task(), "      registry: src.example.com\n", "      skip-tls-verify: true\n", 1),
			[]want{{3, []string{"source has no registry"}}}},
		{"missing registry and bad auth", strings.Replace(task(), "      registry: src.example.com\n", "      auth: '!!'\n", 1),
			[]want{{3, []string{"source has no registry"}}, {4, []string{"auth is not valid base64"}}}},
		{"trailing slash", setSrc("src.example.com/"), []want{{4, []string{`"src.example.com/"`, `trailing "/"`}}}},
		{"registry with path", setSrc("src.example.com/proj"), []want{{4, []string{"without a path"}}}},
		{"registry with space", setSrc(`"bad host"`), []want{{4, []string{`"bad host"`, "host[:port]"}}}},
		{"registry bad port", setSrc("host:port"), []want{{4, []string{"host[:port]"}}}},
		{"registry no host", setSrc(`":5000"`), []want{{4, []string{"host[:port]"}}}},
		{"registry userinfo", setSrc("user@host"), []want{{4, []string{"host[:port]"}}}},
		{"registry scheme", setSrc("ftp://host"), []want{{4, []string{"only http:// and https://"}}}},
		{"registry http no host", setSrc("http://"), []want{{4, []string{"no host"}}}},
		{"oci without path", setSrc(`"oci:"`), []want{{4, []string{"oci:PATH"}}}},
		{"oci with auth", strings.Replace(srcLine("      auth: none", "      skip-tls-verify: true"), "registry: src.example.com", "registry: oci:dir", 1),
			[]want{{5, []string{`"auth" does not apply to an OCI layout`}}, {6, []string{`"skip-tls-verify" does not apply`}}}},
		{"auth bad base64", srcLine("      auth: '!!!notbase64'"), []want{{5, []string{"source: auth is not valid base64"}}}},
		{"auth bad json", srcLine("      auth: " + b64(`{"username": "u", `)), []want{{5, []string{"valid JSON credentials"}}}},
		{"auth not credentials", srcLine("      auth: " + b64("token")), []want{{5, []string{"does not decode to JSON credentials"}}}},
		{"auth no username", srcLine("      auth: " + b64(`{"password": "p"}`)), []want{{5, []string{"no username"}}}},
		{"auth and username", srcLine("      auth: none", "      username: bob"), []want{{5, []string{`"auth" cannot be combined with "username"`}}}},
		{"password without username", srcLine("      password: x"), []want{{5, []string{"password needs a username"}}}},
		{"password and password-file", srcLine("      username: u", "      password: x", "      password-file: /x"), []want{{7, []string{`"password" or "password-file", not both`}}}},
		{"unset env var", srcLine("      username: ${REG_USER}", "      password: ${NOT_SET_ANYWHERE}"),
			[]want{{6, []string{"password", "environment variable NOT_SET_ANYWHERE is not set"}}}},
		{"malformed env ref", srcLine("      username: ${REG_USER"), []want{{5, []string{"username", `unterminated "${"`}}}},
		{"bad env name", srcLine("      username: ${1X}"), []want{{5, []string{"malformed ${NAME}"}}}},
		{"password-file missing", srcLine("      username: u", "      password-file: "+filepath.Join(dir, "nope")),
			[]want{{6, []string{"password-file", "nope", "no such file"}}}},
		{"password-file empty", srcLine("      username: u", "      password-file: "+emptyPW), []want{{6, []string{"holds no password"}}}},
		{"ca-file missing", srcLine("      ca-file: " + filepath.Join(dir, "missing.pem")), []want{{5, []string{"ca-file", "missing.pem", "no such file"}}}},
		{"ca-file not pem", srcLine("      ca-file: " + notPEM), []want{{5, []string{"holds no PEM certificate"}}}},
		{"ca-file a directory", srcLine("      ca-file: " + dir), []want{{5, []string{"not a regular file"}}}},
		{"password-file a device", srcLine("      username: u", "      password-file: /dev/zero"), []want{{6, []string{"not a regular file"}}}},
		{"auth-refresh not ecr", srcLine("      auth-refresh: 10h"), []want{{5, []string{"wants authentication refresh, but is not an ECR registry"}}}},
		{"auth-refresh bad", srcLine("      auth-refresh: soon"), []want{{5, []string{`"auth-refresh"`, "duration"}}}},
		{"lister bad type", srcLine("      lister:", "        type: magic"), []want{{6, []string{`unknown type "magic"`}}}},
		{"lister index without search", srcLine("      lister:", "        type: index"), []want{{6, []string{"needs a \"search\""}}}},

		// Mappings.
		{"missing from", strings.Replace(task(), "- from: a/b", "- to: a/b", 1), []want{{8, []string{`mappings[0] has no "from"`}}}},
		{"bad reference", setFrom(`"UPPER/case"`), []want{{8, []string{`from "UPPER/case"`, "invalid repository path"}}}},
		{"reference with tag", setFrom("redis:7"), []want{{8, []string{`from "redis:7"`, "no tag or digest"}}}},
		{"reference bad structure", setFrom("a//b"), []want{{8, []string{`from "a//b"`, "invalid repository path"}}}},
		{"bad to", mapLine("        to: Bad_Name"), []want{{9, []string{`to "Bad_Name"`}}}},
		{"bad from regex", setFrom("regex:(x"), []want{{8, []string{`from "regex:(x"`, "error parsing regexp"}}}},
		{"empty from regex", setFrom("'regex: '"), []want{{8, []string{"empty regular expression"}}}},
		{"to regex without replacement", mapLine("        to: regex:a/(.*)"), []want{{9, []string{"replacement missing"}}}},
		{"bad to regex", mapLine("        to: regex:a/(.*,b"), []want{{9, []string{"error parsing regexp"}}}},
		{"bad regex tag", mapLine("        tags:", "          - latest", `          - 'regex: ('`),
			[]want{{11, []string{`tags[1] "regex: ("`, "error parsing regexp"}}}},
		{"bad semver range", mapLine("        tags:", "          - 'semver: >=x.y'"), []want{{10, []string{`tags[0] "semver: >=x.y"`, "semver"}}}},
		{"several bad tags", mapLine("        tags:", "          - 'regex: ('", "          - ok", "          - 'semver: ?'", "          - 'keep: latest 0'"),
			[]want{{10, []string{"tags[0]"}}, {12, []string{"tags[2]"}}, {13, []string{"tags[3]"}}}},
		{"bad platform os only", mapLine("        platform: linux"), []want{{9, []string{`platform "linux"`, "os/arch"}}}},
		{"bad platform too long", mapLine("        platform: linux/arm/v7/x"), []want{{9, []string{`platform "linux/arm/v7/x"`}}}},
		{"bad platform space", mapLine("        platform: linux/ amd64"), []want{{9, []string{"spaces"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadString(tt.doc, env{"REG_USER": "bob"})
			if err == nil {
				t.Fatalf("no error; config %+v\ndocument:\n%s", cfg, tt.doc)
			}
			if cfg != nil {
				t.Errorf("config returned with an error")
			}
			checkErrors(t, err, tt.want, tt.doc)
		})
	}
}

// checkErrors checks that err is exactly the wanted *Errors, in order.
func checkErrors(t *testing.T, err error, wants []want, doc string) {
	t.Helper()
	var first *Error
	if !errors.As(err, &first) {
		t.Fatalf("error %T %v is not an *Error", err, err)
	}
	got := Errors(err)
	if len(got) != len(wants) {
		t.Fatalf("got %d errors, want %d:\n%v\ndocument:\n%s", len(got), len(wants), err, doc)
	}
	for i, w := range wants {
		e := got[i]
		if e.File != "cfg.yaml" || e.Line != w.line {
			t.Errorf("error %d at %s:%d, want cfg.yaml:%d: %v", i, e.File, e.Line, w.line, e)
		}
		for _, s := range w.msg {
			if !strings.Contains(e.Msg, s) {
				t.Errorf("error %d %q does not contain %q", i, e.Msg, s)
			}
		}
		prefix := "cfg.yaml: "
		if e.Line > 0 {
			prefix = "cfg.yaml:" + strconv.Itoa(e.Line) + ": "
		}
		if e.Error() != prefix+e.Msg {
			t.Errorf("Error() = %q", e.Error())
		}
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	doc := y(
		"relay: podman",                       // 1
		"tasks:",                              // 2
		"  - name: a",                         // 3
		"    interval: 10",                    // 4
		"    source:",                         // 5
		"      registry: a/",                  // 6
		"    target:",                         // 7
		"      registry: b",                   // 8
		"    mappings:",                       // 9
		"      - from: A",                     // 10
		"        tags: ['regex: (']",          // 11
		"  - name: a",                         // 12
		"    source: {registry: x}",           // 13
		"    target: {registry: y, bogus: 1}", // 14
		"    mappings: [{from: ok}]",          // 15
	)
	_, err := loadString(doc, nil)
	checkErrors(t, err, []want{
		{1, []string{"relay"}},
		{4, []string{"minimum task interval"}},
		{6, []string{"trailing"}},
		{10, []string{`from "A"`}},
		{11, []string{"tags[0]"}},
		{12, []string{`duplicate task name "a"`, "line 3"}},
		{14, []string{`unknown key "bogus"`}},
	}, doc)
}

func TestLoadFileErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	_, err := LoadFile(path)
	var e *Error
	if !errors.As(err, &e) || e.File != path || e.Line != 0 || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadFile(missing) = %v", err)
	}
	if strings.Count(err.Error(), path) != 1 {
		t.Errorf("path repeated: %v", err)
	}
	_, err = Load(strings.NewReader(""), "")
	if !errors.As(err, &e) || e.File == "" {
		t.Errorf("Load with no name: %v", err)
	}
}

func TestExpandEnv(t *testing.T) {
	e := env{"A": "x", "B_2": "", "a": "low"}
	tests := []struct{ in, out, problem string }{
		{"plain", "plain", ""},
		{"$A ${A} $${A} ${B_2}${a}", "$A x ${A} low", ""},
		{"pa$$word$", "pa$$word$", ""},
		{"${", "", "unterminated"},
		{"${A", "", "unterminated"},
		{"${}", "", "malformed"},
		{"${A-B}", "", "malformed"},
		{"${C}", "", "C is not set"},
	}
	for _, tt := range tests {
		out, problem := expandEnv(tt.in, e.lookup)
		if out != tt.out || !strings.Contains(problem, tt.problem) || (tt.problem == "") != (problem == "") {
			t.Errorf("expandEnv(%q) = %q, %q; want %q, %q", tt.in, out, problem, tt.out, tt.problem)
		}
	}
}

func TestRateLimitAndTransfers(t *testing.T) {
	doc := "transfers: 3\n" + strings.Replace(task(), "      registry: src.example.com\n",
		"      registry: src.example.com\n      rate-limit:\n        min-remaining: 10\n        wait: 30s\n", 1)
	cfg, err := Load(strings.NewReader(doc), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Transfers != 3 {
		t.Errorf("Transfers = %d, want 3", cfg.Transfers)
	}
	if got := cfg.Tasks[0].Source.RateLimit; got != (RateLimit{MinRemaining: 10, Wait: 30 * time.Second}) {
		t.Errorf("RateLimit = %+v", got)
	}
	if got := cfg.Tasks[0].Target.RateLimit; got.MinRemaining != 0 {
		t.Errorf("target RateLimit = %+v, want off", got)
	}
}

func TestListerAndRequestCap(t *testing.T) {
	doc := "lister:\n  maxItems: 7\n  cacheDuration: 10m\n" + strings.Replace(task(), "      registry: src.example.com\n",
		"      registry: src.example.com\n      max-concurrent-requests: 1\n      lister:\n        maxItems: 3\n", 1) +
		strings.Replace(strings.TrimPrefix(task(), "tasks:\n"), "name: t", "name: u", 1)
	cfg, err := Load(strings.NewReader(doc), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	first, second := cfg.Tasks[0], cfg.Tasks[1]
	if first.Source.MaxConcurrentRequests != 1 || first.Target.MaxConcurrentRequests != 0 || second.Source.MaxConcurrentRequests != 0 {
		t.Errorf("caps: %d %d %d", first.Source.MaxConcurrentRequests, first.Target.MaxConcurrentRequests, second.Source.MaxConcurrentRequests)
	}
	// The source's lister overrides the top level key by key.
	if first.Lister != (Lister{MaxItems: 3, CacheDuration: 10 * time.Minute}) {
		t.Errorf("task lister %+v", first.Lister)
	}
	if second.Lister != cfg.Lister || cfg.Lister != (Lister{MaxItems: 7, CacheDuration: 10 * time.Minute}) {
		t.Errorf("second task lister %+v, top level %+v", second.Lister, cfg.Lister)
	}
	if first.File != "c.yaml" || second.Line <= first.Line {
		t.Errorf("positions %s:%d %s:%d", first.File, first.Line, second.File, second.Line)
	}
}

func TestRetrySection(t *testing.T) {
	cfg, err := Load(strings.NewReader(task()), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Retry.MinRate != 1024 || cfg.Retry.MinRateWindow != time.Minute || cfg.Retry.ImageTimeout != time.Hour {
		t.Errorf("progress deadline defaults %+v, want 1 KiB/s over 1m and 1h per image", cfg.Retry)
	}
	if cfg.Retry != DefaultRetry {
		t.Errorf("without retry: got %+v, want the defaults %+v", cfg.Retry, DefaultRetry)
	}
	doc := "retry:\n  attempts: 5\n  wait: 100ms\n  request-attempts: 2\n  request-wait: 10ms\n  idle-timeout: 30s\n" +
		"  min-rate: 4KiB/s\n  min-rate-window: 20s\n  image-timeout: 3h\n" + task()
	if cfg, err = Load(strings.NewReader(doc), "c.yaml"); err != nil {
		t.Fatal(err)
	}
	want := Retry{Attempts: 5, Wait: 100 * time.Millisecond, RequestAttempts: 2, RequestWait: 10 * time.Millisecond, IdleTimeout: 30 * time.Second,
		MinRate: 4096, MinRateWindow: 20 * time.Second, ImageTimeout: 3 * time.Hour}
	if cfg.Retry != want {
		t.Errorf("got %+v, want %+v", cfg.Retry, want)
	}
	for _, tc := range []struct{ doc, want string }{
		{"retry:\n  attempts: 0\n", "c.yaml:2: retry: attempts must be at least 1"},
		{"retry:\n  idle-timeout: -1s\n", "c.yaml:2: retry: idle-timeout must be positive"},
		{"retry:\n  wait: soon\n", "c.yaml:2:"},
		{"retry:\n  min-rate: fast\n", `c.yaml:2: "min-rate" in retry must be bytes per second`},
		{"retry:\n  min-rate: -1\n", `c.yaml:2: "min-rate" in retry must be bytes per second`},
		{"retry:\n  min-rate-window: 0s\n", "c.yaml:2: retry: min-rate-window must be positive"},
		{"retry:\n  image-timeout: -1h\n", "c.yaml:2: retry: image-timeout must be positive"},
		{"retry:\n  backoff: 2\n", "c.yaml:2:"},
	} {
		_, err := Load(strings.NewReader(tc.doc+task()), "c.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.doc, err, tc.want)
		}
	}
}
