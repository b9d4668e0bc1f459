package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An export reads the config on the connected side, where the targets'
// CA files, password files and environment do not exist: LoadFileSourcesOnly
// accepts them unresolved, LoadFile does not, and neither lets a bad
// target registry or an unknown key through.
func TestLoadFileSourcesOnly(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := write(`tasks:
  - name: t
    source: {registry: quay.example}
    target:
      registry: far.example:5000
      ca-file: /far/side/ca.pem
      password-file: /far/side/pw
      username: ${FAR_SIDE_USER_UNSET}
    mappings: [{from: a}]
`)
	if _, err := LoadFile(p); err == nil || !strings.Contains(err.Error(), "ca-file") {
		t.Fatalf("LoadFile: %v, want the missing ca-file reported", err)
	}
	cfg, err := LoadFileSourcesOnly(p)
	if err != nil {
		t.Fatal(err)
	}
	if tg := cfg.Tasks[0].Target; tg.Registry != "far.example:5000" || tg.Auth != nil {
		t.Fatalf("target %+v", tg)
	}
	for _, bad := range []string{
		"tasks:\n  - name: t\n    source: {registry: quay.example}\n    target: {registry: far.example:5000, colour: blue}\n    mappings: [{from: a}]\n",
		"tasks:\n  - name: t\n    source: {registry: quay.example, ca-file: /nope}\n    target: {registry: far.example:5000}\n    mappings: [{from: a}]\n",
	} {
		if _, err := LoadFileSourcesOnly(write(bad)); err == nil {
			t.Errorf("accepted:\n%s", bad)
		}
	}
}
