package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestConfigPrintLoadsBack: `config print --config A > B` then
// `config print --config B` succeeds and prints the same tasks, with every
// key A sets (max-concurrent-requests included), and resolved facts as
// comments only.
func TestConfigPrintLoadsBack(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	doc := "retry: {request-attempts: 2}\ntasks:\n  - name: t\n    interval: 1h\n" +
		"    source: {registry: ghcr.io, max-concurrent-requests: 1}\n" +
		"    target: {registry: harbor.example.com, username: bob, password-file: " + filepath.Join(dir, "pw") + "}\n" +
		"    mappings: [{from: a/b, to: c/d, tags: ['semver: >=1.0.0'], platform: linux/amd64}]\n"
	if err := os.WriteFile(a, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	first, err := execute(t, "config", "print", "--config", a)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"max-concurrent-requests: 1", "request-attempts: 2", "password-file: ", "platform: linux/amd64", "# auth: docker config.json, else anonymous"} {
		if !strings.Contains(first, want) {
			t.Errorf("config print lacks %q:\n%s", want, first)
		}
	}
	if strings.Contains(first, "hunter2") {
		t.Fatalf("config print shows the password:\n%s", first)
	}
	b := filepath.Join(dir, "b.yaml")
	if err := os.WriteFile(b, []byte(first), 0o600); err != nil {
		t.Fatal(err)
	}
	second, err := execute(t, "config", "print", "--config", b)
	if err != nil {
		t.Fatalf("the printed configuration does not load: %v\n%s", err, first)
	}
	// Comments name the file each was printed from; the rest is equal.
	comments := regexp.MustCompile(`(?m)^\s*#.*\n`)
	if comments.ReplaceAllString(first, "") != comments.ReplaceAllString(second, "") {
		t.Errorf("printing the print changes it:\n%s\n---\n%s", first, second)
	}
}
