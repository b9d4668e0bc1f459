package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// forbidden are import-path prefixes the shipped binary must never link:
// test scaffolding (the in-process registry pulls in distribution, which
// pulls in otel and redis) and anything Kubernetes-sized. They are fine in
// tests; a production import of one of them is a mistake that would
// multiply the binary and its attack surface.
var forbidden = []string{
	"github.com/regmirror/regmirror/internal/testutil",
	"github.com/distribution/distribution",
	"k8s.io",
	"go.opentelemetry.io",
	"github.com/redis",
}

// goList returns the packages `go list -deps` names for args, built as the
// release is (CGO_ENABLED=0).
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			t.Fatalf("no go command to list dependencies with: %v", err)
		}
	}
	cmd := exec.Command(gobin, append([]string{"list", "-deps"}, args...)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.Fields(string(out))
}

// offenders returns the packages of deps that match a forbidden prefix.
func offenders(deps []string) []string {
	var out []string
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				out = append(out, d)
				break
			}
		}
	}
	return out
}

// TestBinaryDependencies fails when the regmirror binary's dependency list
// gains a forbidden package, as go-containerregistry's cmd/crane
// depcheck_test.go does for crane.
func TestBinaryDependencies(t *testing.T) {
	deps := goList(t, ".")
	// The list must be the binary's: a broken invocation that printed
	// nothing would pass the check below vacuously.
	for _, want := range []string{"github.com/regmirror/regmirror/internal/cli", "github.com/spf13/cobra"} {
		if !slices.Contains(deps, want) {
			t.Fatalf("go list -deps names no %s: not the binary's dependency list (%d packages)", want, len(deps))
		}
	}
	if bad := offenders(deps); len(bad) > 0 {
		t.Errorf("the regmirror binary depends on %d forbidden packages:\n  %s", len(bad), strings.Join(bad, "\n  "))
	}
}

// TestDepcheckSeesTestOnlyDependencies proves the check can fail: the
// engine's tests do link the in-process registry, and offenders finds it.
func TestDepcheckSeesTestOnlyDependencies(t *testing.T) {
	deps := goList(t, "-test", "../../internal/engine")
	if len(offenders(deps)) == 0 {
		t.Fatal("the engine's test dependencies link no forbidden package: the check cannot tell")
	}
}
