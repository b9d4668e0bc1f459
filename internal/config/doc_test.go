package config

import (
	"crypto/elliptic"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestConfigurationDocCoversEveryKey keeps docs/configuration.md the full
// reference: every key the loader accepts (found in this package's field
// tables) must have a row in a table of the reference, as `key` or
// `section.key`, and appear as `key:` in at least one YAML example there.
func TestConfigurationDocCoversEveryKey(t *testing.T) {
	keyRE := regexp.MustCompile(`(?m)^\s*"([a-zA-Z][a-zA-Z-]*)":\s+(?:func|ignore|count|wait)\b|fields\["([a-zA-Z][a-zA-Z-]*)"\]\s*=`)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range keyRE.FindAllStringSubmatch(string(b), -1) {
			keys[m[1]+m[2]] = true
		}
	}
	// A floor, so that a refactor of the field tables cannot make this
	// test pass by finding nothing.
	if len(keys) < 35 {
		t.Fatalf("found only %d keys in the loader's field tables: update the pattern in this test", len(keys))
	}

	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows, examples strings.Builder
	inYAML := false
	for _, l := range strings.Split(string(doc), "\n") {
		switch {
		case strings.HasPrefix(l, "```yaml"):
			inYAML = true
		case strings.HasPrefix(l, "```"):
			inYAML = false
		case inYAML:
			examples.WriteString(l + "\n")
		case strings.HasPrefix(l, "|"):
			rows.WriteString(l + "\n")
		}
	}
	var missing []string
	for k := range keys {
		inRow := regexp.MustCompile("`(?:[a-z-]+\\.)?" + regexp.QuoteMeta(k) + "(?:\\.[a-zA-Z-]+)?`").MatchString(rows.String())
		inExample := regexp.MustCompile(`(?m)(?:^|[\s{,-])` + regexp.QuoteMeta(k) + `:`).MatchString(examples.String())
		switch {
		case !inRow:
			missing = append(missing, k+" (no table row)")
		case !inExample:
			missing = append(missing, k+" (no YAML example)")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("docs/configuration.md: key %s", m)
	}
}

// TestConfigurationDocExamplesLoad loads every YAML example of
// docs/configuration.md, so the reference never shows a file the loader
// rejects. Fragments are wrapped into the smallest config around them
// (a task list, a task around source/target, a mapping list); `${NAME}`
// expands to "x" and every file named is a readable CA bundle (a cosign
// public key when it ends in .pub).
func TestConfigurationDocExamplesLoad(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(writeCA(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	// A cosign public key for files named *.pub (verify.keys).
	pub, err := os.ReadFile(writeKey(t, t.TempDir(), "cosign.pub", elliptic.P256()))
	if err != nil {
		t.Fatal(err)
	}
	readFile := func(name string) ([]byte, error) {
		if strings.HasSuffix(name, ".pub") {
			return pub, nil
		}
		return ca, nil
	}
	lookup := func(string) (string, bool) { return "x", true }
	indent := func(s, by string) string {
		return by + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+by) + "\n"
	}
	const loc = "    source: {registry: src.example.com}\n    target: {registry: dst.example.com}\n"
	const maps = "    mappings: [{from: a/b}]\n"
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 10 {
		t.Fatalf("found %d YAML examples", len(blocks))
	}
	for i, b := range blocks {
		y := strings.ReplaceAll(b[1], "tasks: [...]", "tasks: [{name: t, source: {registry: a.example.com}, target: {registry: b.example.com}, mappings: [{from: a/b}]}]")
		first := strings.TrimSpace(strings.SplitN(strings.TrimLeft(y, "\n"), "\n", 2)[0])
		var full string
		switch {
		case regexp.MustCompile(`(?m)^tasks:`).MatchString(y):
			full = y
		case strings.HasPrefix(first, "- name:"):
			full = "tasks:\n" + indent(y, "  ")
		case strings.HasPrefix(first, "source:") || strings.HasPrefix(first, "target:"):
			full = "tasks:\n  - name: t\n" + indent(y, "    ")
			if !strings.Contains(y, "source:") {
				full += "    source: {registry: src.example.com}\n"
			}
			if !strings.Contains(y, "target:") {
				full += "    target: {registry: dst.example.com}\n"
			}
			full += maps
		case strings.HasPrefix(first, "mappings:"):
			full = "tasks:\n  - name: t\n" + loc + indent(y, "    ")
		default:
			t.Errorf("example %d: don't know how to load a fragment starting %q", i+1, first)
			continue
		}
		if _, err := load(strings.NewReader(full), "example", lookup, readFile); err != nil {
			t.Errorf("example %d of docs/configuration.md does not load: %v\n%s", i+1, err, full)
		}
	}
}
