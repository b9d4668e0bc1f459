package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigPrintNamesTheCloudKeychain: `config print` says where
// credentials of a location without auth will come from, per host.
func TestConfigPrintNamesTheCloudKeychain(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	doc := "tasks:\n  - name: t\n    source: {registry: europe-west3-docker.pkg.dev}\n" +
		"    target: {registry: 123456789012.dkr.ecr.eu-west-1.amazonaws.com}\n    mappings: [{from: a/b}]\n" +
		"  - name: u\n    source: {registry: ghcr.io}\n    target: {registry: harbor.example.com}\n    mappings: [{from: a/b}]\n"
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := execute(t, "config", "print", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"auth: docker config.json, else Google application-default credentials, else anonymous",
		"auth: docker config.json, else the ECR credential helper (AWS SDK chain), else anonymous",
	} {
		if strings.Count(out, want) != 1 {
			t.Errorf("config print: want %q once in\n%s", want, out)
		}
	}
	if n := strings.Count(out, "auth: docker config.json, else anonymous"); n != 2 {
		t.Errorf("config print: %d locations without a cloud keychain, want 2 (ghcr.io, harbor)", n)
	}
}
