package registry_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/regmirror/regmirror/"

// allowedImports are the regmirror packages each registry package may
// import (docs/decisions.md, "Boundaries"). The root must not import the
// stores, which import it; transport and auth stand on their own.
var allowedImports = map[string][]string{
	"internal/registry":           {"internal/registry/transport"},
	"internal/registry/transport": {},
	"internal/registry/auth":      {},
	"internal/registry/layout":    {"internal/registry", "internal/registry/transport", "internal/atomicfile"},
	"internal/registry/remote":    {"internal/registry", "internal/registry/auth", "internal/registry/transport"},
	"internal/registry/stores":    {"internal/registry", "internal/registry/layout", "internal/registry/remote"},
}

// TestRegistryImports keeps the arrows between the registry packages
// pointing one way, and keeps everything outside internal/registry out of
// them (production code; tests may import what they like).
func TestRegistryImports(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			t.Fatalf("no go command to list imports with: %v", err)
		}
	}
	out, err := exec.Command(gobin, "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], module)
		allowed, ok := allowedImports[pkg]
		if !ok {
			t.Errorf("package %s is not in allowedImports: say what it may import", pkg)
			continue
		}
		seen[pkg] = true
		for _, imp := range f[1:] {
			rel, ours := strings.CutPrefix(imp, module)
			if ours && !slices.Contains(allowed, rel) {
				t.Errorf("%s imports %s, which is not one of its allowed arrows %v", pkg, rel, allowed)
			}
		}
	}
	for pkg := range allowedImports {
		if !seen[pkg] {
			t.Errorf("go list did not list %s: is allowedImports stale?", pkg)
		}
	}
}
