package engine_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// allowedImports are the regmirror packages engine and bundle may import
// (docs/decisions.md, "Boundaries"): the engine knows nothing of the CLI,
// the config, the progress display or the daemon, and bundle draws
// nothing and opens no engine of its own making.
var allowedImports = map[string][]string{
	"internal/engine": {"internal/filter", "internal/shard", "internal/verify", "internal/registry", "internal/registry/stores", "internal/registry/transport", "internal/atomicfile"},
	"internal/bundle": {"internal/engine", "internal/filter", "internal/registry", "internal/registry/layout", "internal/atomicfile"},
}

// TestEngineAndBundleImports keeps the arrows out of engine and bundle
// (production code; tests may import what they like) to those listed.
func TestEngineAndBundleImports(t *testing.T) {
	const module = "github.com/regmirror/regmirror/"
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			t.Fatalf("no go command to list imports with: %v", err)
		}
	}
	for pkg, allowed := range allowedImports {
		out, err := exec.Command(gobin, "list", "-f", `{{join .Imports " "}}`, "../../"+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, imp := range strings.Fields(string(out)) {
			if rel, ours := strings.CutPrefix(imp, module); ours && !slices.Contains(allowed, rel) {
				t.Errorf("%s imports %s, which is not one of its allowed arrows %v", pkg, rel, allowed)
			}
		}
	}
}
