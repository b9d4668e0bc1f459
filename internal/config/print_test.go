package config

import (
	"bytes"
	"crypto/elliptic"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// loadWithSchema loads doc and returns, besides the Config, the keys each
// kind of mapping knows (the schema) and those the document set.
func loadWithSchema(t *testing.T, doc string, e env) (*Config, map[string]map[string]bool, map[string]map[string]bool) {
	t.Helper()
	schema := map[string]map[string]bool{}
	cfg, err := load(strings.NewReader(doc), "cfg.yaml", e.lookup, readSmallFile, func(l *loader) { l.schema = schema })
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return cfg, schema, keysSet(t, cfg)
}

// keysSet walks the printed tree of cfg and names each key by the kind of
// mapping it is in, as the loader names them ("task", "source lister").
func keysSet(t *testing.T, cfg *Config) map[string]map[string]bool {
	t.Helper()
	set := map[string]map[string]bool{}
	var walk func(n *yaml.Node, what string)
	walk = func(n *yaml.Node, what string) {
		if n == nil || n.Kind != yaml.MappingNode {
			return
		}
		if set[what] == nil {
			set[what] = map[string]bool{}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			set[what][k] = true
			switch {
			case what == topLevel && k == "tasks":
				for _, tn := range v.Content {
					walk(tn, "task")
				}
			case what == topLevel:
				walk(v, k)
			case what == "task" && (k == "source" || k == "target"):
				walk(v, k)
			case what == "task" && k == "mappings":
				for _, mn := range v.Content {
					walk(mn, "mapping")
				}
			case what == "source" || what == "target":
				walk(v, what+" "+k)
			default: // a section of a task or mapping (verify)
				walk(v, k)
			}
		}
	}
	walk(cfg.printed, topLevel)
	return set
}

// sideless names source and target keys alike: they share one schema.
func sideless(what string) string {
	for _, side := range []string{"source", "target"} {
		if rest, ok := strings.CutPrefix(what, side); ok {
			return "location" + rest
		}
	}
	return what
}

// printed is cfg as `config print` writes it.
func printed(t *testing.T, cfg *Config) string {
	t.Helper()
	var b bytes.Buffer
	if err := cfg.Print(&b, PrintOptions{}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// placeRE matches the comments that say where a task starts.
var placeRE = regexp.MustCompile(`(?m)^\s*# cfg\.yaml:\d+\n`)

// withoutPlaces clears what only says where things were written.
// Compiled tag filters are compared by what they were compiled from.
func withoutPlaces(c *Config) (Config, [][]string) {
	var specs [][]string
	out := *c
	out.File, out.printed = "", nil
	out.Tasks = slices.Clone(c.Tasks)
	for i := range out.Tasks {
		tk := &out.Tasks[i]
		tk.File, tk.Line, tk.Source.Line, tk.Target.Line = "", 0, 0, 0
		tk.Mappings = slices.Clone(tk.Mappings)
		for j := range tk.Mappings {
			m := &tk.Mappings[j]
			m.Line, m.missingLine = 0, 0
			specs = append(specs, m.Tags.Specs())
			m.Tags = nil
		}
	}
	return out, specs
}

// TestPrintRoundTripsEverySchemaKey: over these documents every key of the
// schema is set at least once (the test fails when a key is added to the
// loader and not here), `config print` writes every key set, and what it
// writes loads back to the same configuration and prints the same again.
func TestPrintRoundTripsEverySchemaKey(t *testing.T) {
	dir := t.TempDir()
	ca := writeCA(t, dir)
	key := writeKey(t, dir, "cosign.pub", elliptic.P256())
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := env{"PW": "s3cret", "USER": "bob"}
	docs := []string{y(
		"relay: skopeo",
		"watch: true",
		"skopeo: {binary: /usr/bin/skopeo, certs-dir: "+dir+"}",
		"docker: {dockerhost: unix:///var/run/docker.sock, api-version: '1.41'}",
		"dockerhost: unix:///var/run/docker.sock",
		"api-version: '1.41'",
		"lister: {maxItems: 50, cacheDuration: 30m}",
		"transfers: 4",
		"retry: {attempts: 2, wait: 3s, request-attempts: 7, request-wait: 500ms, idle-timeout: 1m, min-rate: 512, min-rate-window: 30s, image-timeout: 2h}",
		"base: &base",
		"tasks:",
		"  - name: interval",
		"    interval: 21600",
		"    verbose: true",
		"    source:",
		"      <<: {registry: 'https://ghcr.io', max-concurrent-requests: 2}",
		"      rate-limit: {min-remaining: 10, wait: 30s}",
		"      lister: {maxItems: 5, cacheDuration: 1m, type: index, search: team}",
		"      skip-tls-verify: true",
		"      ca-file: "+ca,
		"      certs-dir: "+dir,
		"      auth: none",
		"    target: {registry: 'http://127.0.0.1:5000', username: '${USER}', password: '${PW}'}",
		"    mappings:",
		"      - from: /library/busybox",
		"        to: mirror/busybox",
		"        tags: ['semver: >=1.36.0', latest, 'keep: latest 3', '1.10']",
		"        platform: linux/arm64/v8",
		"        referrers: true",
		"        prune: true",
		"        verify: {keys: ["+key+"]}",
		"      - from: 'regex:team/.*'",
		"        to: 'regex:team/,mirror/'",
		"  - name: cron",
		"    schedule: '0 3 * * *'",
		"    platforms: [linux/amd64, linux/arm64]",
		"    platforms-missing: skip",
		"    verify: {keys: ["+key+"]}",
		"    source: {registry: 'oci:"+dir+"/layout'}",
		"    target: {registry: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, auth-refresh: 12h, username: AWS, password-file: "+pwFile+"}",
		"    mappings: [{from: a/b}, {from: c/d, platforms: [linux/arm64], platforms-missing: fail}]",
	)}
	docs[0] = strings.Replace(docs[0], "base: &base\n", "", 1)

	known := map[string]map[string]bool{}
	seen := map[string]map[string]bool{}
	for i, doc := range docs {
		cfg, schema, set := loadWithSchema(t, doc, e)
		for what, keys := range schema {
			what = sideless(what)
			for k := range keys {
				if known[what] == nil {
					known[what] = map[string]bool{}
				}
				known[what][k] = true
			}
		}
		out := printed(t, cfg)
		back, err := loadString(out, e)
		if err != nil {
			t.Fatalf("doc %d: the printed configuration does not load: %v\n%s", i, err, out)
		}
		backSet := keysSet(t, back)
		for what, keys := range backSet {
			for k := range keys {
				if !set[what][k] {
					t.Errorf("doc %d: printed %s key %q the file does not set", i, what, k)
				}
				if seen[sideless(what)] == nil {
					seen[sideless(what)] = map[string]bool{}
				}
				seen[sideless(what)][k] = true
			}
		}
		for what, keys := range set {
			for k := range keys {
				if !backSet[what][k] {
					t.Errorf("doc %d: %s key %q set in the file, missing from the print:\n%s", i, what, k, out)
				}
			}
		}
		got, gotSpecs := withoutPlaces(back)
		want, wantSpecs := withoutPlaces(cfg)
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotSpecs, wantSpecs) {
			t.Errorf("doc %d: the printed configuration loads differently:\n got %+v\nwant %+v", i, got, want)
		}
		if again := printed(t, back); placeRE.ReplaceAllString(again, "") != placeRE.ReplaceAllString(out, "") {
			t.Errorf("doc %d: printing the print changes it:\n%s\n---\n%s", i, out, again)
		}
	}
	// The schema as the loader walked it: a floor, so that a change to
	// how the loader records it cannot pass by recording nothing.
	n := 0
	for what, keys := range known {
		for k := range keys {
			n++
			if !seen[what][k] {
				t.Errorf("schema key %s %q is set by no test document: add it above", what, k)
			}
		}
	}
	if n < 45 {
		t.Errorf("the loader's schema has only %d keys: not recorded?", n)
	}
}

// TestPrintRedactsAndRedactedDoesNotLoad: a literal password or auth
// string prints as REDACTED, a ${NAME} reference as written, and loading
// REDACTED fails, naming the file, the line and why.
func TestPrintRedactsAndRedactedDoesNotLoad(t *testing.T) {
	const pw = "Hunter2-TopSecret"
	auth := b64(`{"username": "bob", "password": "` + pw + `"}`)
	doc := y(
		"tasks:",
		"  - name: t",
		"    source: {registry: a.example.com, auth: "+auth+"}",
		"    target: {registry: b.example.com, username: bob, password: "+pw+"}",
		"    mappings: [{from: x}]",
		"  - name: u",
		"    source: {registry: a.example.com, auth: none}",
		"    target: {registry: b.example.com, username: bob, password: '${PW}'}",
		"    mappings: [{from: x}]",
	)
	cfg, err := loadString(doc, env{"PW": pw})
	if err != nil {
		t.Fatal(err)
	}
	out := printed(t, cfg)
	if strings.Contains(out, pw) || strings.Contains(out, auth) {
		t.Fatalf("a secret is printed:\n%s", out)
	}
	for _, want := range []string{"auth: REDACTED", "password: REDACTED", "auth: none", "password: '${PW}'", "# auth: credentials of bob"} {
		if !strings.Contains(out, want) {
			t.Errorf("print lacks %q:\n%s", want, out)
		}
	}
	_, err = loadString(out, env{"PW": pw})
	errs := Errors(err)
	if len(errs) != 2 {
		t.Fatalf("loading the print: %v; want two errors (auth, password)", err)
	}
	lines := strings.Split(out, "\n")
	for _, e := range errs {
		if !strings.Contains(e.Msg, "redacted value") || e.Line == 0 || !strings.Contains(lines[e.Line-1], "REDACTED") {
			t.Errorf("error %q at line %d (%q): want the REDACTED line named and called a redacted value", e.Msg, e.Line, lines[max(e.Line-1, 0)])
		}
	}
	if s := fmt.Sprint(err); strings.Contains(s, pw) {
		t.Errorf("the error holds the password: %s", s)
	}
}
