package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Execute(context.Background(), args, strings.NewReader(""), &out, io.Discard)
	return out.String(), err
}

func TestCompletionScripts(t *testing.T) {
	for sh, marker := range map[string]string{
		"bash": "__start_regmirror",
		"zsh":  "#compdef regmirror",
		"fish": "complete -c regmirror",
	} {
		out, err := execute(t, "completion", sh)
		if err != nil {
			t.Fatalf("completion %s: %v", sh, err)
		}
		if !strings.Contains(out, marker) {
			t.Errorf("completion %s: no %q in the script", sh, marker)
		}
		// Check the script's syntax with the shell itself where installed
		// (.ci/run installs bash, zsh and fish and sets
		// REGMIRROR_E2E_REQUIRE=1, which makes a missing shell a failure).
		bin, err := exec.LookPath(sh)
		if err != nil && os.Getenv("REGMIRROR_E2E_REQUIRE") == "1" {
			t.Errorf("%s not installed (REGMIRROR_E2E_REQUIRE=1): cannot check the completion script", sh)
		}
		if err == nil {
			f := filepath.Join(t.TempDir(), "regmirror."+sh)
			if err := os.WriteFile(f, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			if b, err := exec.Command(bin, "-n", f).CombinedOutput(); err != nil {
				t.Errorf("%s -n on the completion script: %v\n%s", sh, err, b)
			}
		}
	}
	if _, err := execute(t, "completion", "tcsh"); err == nil {
		t.Error("completion tcsh: no error for an unknown shell")
	}
}

// TestCompletionCandidates asks the hidden __complete command what a shell
// would offer, the way the generated scripts do.
func TestCompletionCandidates(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", ""}, []string{"sync", "version", "completion"}},
		{[]string{"__complete", "completion", ""}, []string{"bash", "zsh", "fish"}},
		{[]string{"__complete", "sync", "--log-format", ""}, []string{"text", "json"}},
		{[]string{"__complete", "sync", "--log-level", ""}, []string{"debug", "info", "warn", "error"}},
		// --config completes YAML files: directive 8 (FilterFileExt)
		// with the extensions as candidates.
		{[]string{"__complete", "sync", "--config", ""}, []string{"yaml", "yml", ":8"}},
	}
	for _, c := range cases {
		out, err := execute(t, c.args...)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		lines := strings.Split(out, "\n")
		for _, w := range c.want {
			found := false
			for _, l := range lines {
				if l == w || strings.HasPrefix(l, w+"\t") {
					found = true
				}
			}
			if !found {
				t.Errorf("%v: %q not offered; got %q", c.args, w, out)
			}
		}
	}
}
