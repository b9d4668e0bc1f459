package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// runArgs runs the command line and returns its exit code and stderr.
func runArgs(t *testing.T, args ...string) (int, string) {
	t.Helper()
	_, stderr, err := executeAll(args...)
	return ExitCode(err), stderr
}

// TestEveryCommandRejectsBadArgumentsWithExit2 walks the whole command
// tree, including commands added later, and gives each one arguments it
// cannot take: an unknown flag, one argument too many, an unknown
// subcommand. Every one must be a usage error (exit 2) in our words, not
// cobra's ("accepts 1 arg(s)", exit 1; help and exit 0).
func TestEveryCommandRejectsBadArgumentsWithExit2(t *testing.T) {
	n := 0
	walkVisible(func(c *cobra.Command) {
		n++
		path := strings.Fields(c.CommandPath())[1:]
		bad := [][]string{
			append(append([]string{}, path...), "--no-such-flag"),
			// More arguments than any command takes (login takes one).
			append(append([]string{}, path...), "extra-1", "extra-2", "extra-3"),
		}
		for _, args := range bad {
			code, stderr := runArgs(t, args...)
			if code != ExitUsage {
				t.Errorf("regmirror %s: exit %d, want %d\n%s", strings.Join(args, " "), code, ExitUsage, stderr)
			}
			if strings.Contains(stderr, "arg(s)") {
				t.Errorf("regmirror %s: cobra's raw message: %s", strings.Join(args, " "), stderr)
			}
		}
	})
	if n < 15 {
		t.Errorf("walked %d commands, want at least 15", n)
	}
}

func TestUsageErrorsNameTheProblem(t *testing.T) {
	dir := t.TempDir()
	done := filepath.Join(dir, "done")
	if err := os.MkdirAll(done, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(done, "regmirror-bundle.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfg, []byte("tasks:\n- name: t\n  source: {registry: 'oci:"+dir+"/src'}\n  target: {registry: 'oci:"+dir+"/dst'}\n  mappings:\n  - from: a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"synk"}, `did you mean "sync"`},
		{[]string{"config", "printt"}, `unknown command "printt" for "regmirror config"`},
		{[]string{"completion", "tcsh"}, `unknown command "tcsh"`},
		{[]string{"help", "synk"}, `unknown help topic "synk"`},
		{[]string{"verify"}, "missing argument BUNDLE"},
		{[]string{"verify", "a", "b"}, `unexpected argument "b"`},
		{[]string{"import", "--to", "x"}, "missing argument BUNDLE"},
		{[]string{"mirror-list"}, "missing argument FILE"},
		{[]string{"login"}, "missing argument REGISTRY"},
		{[]string{"logout"}, "missing argument REGISTRY"},
		{[]string{"sync", "--config", "f", "extra"}, `unexpected argument "extra"`},
		// dregsy's single-dash flags, which pflag would read as -c onfig=...
		{[]string{"sync", "-config=dregsy.yaml"}, "use --config"},
		{[]string{"-config=dregsy.yaml"}, "use --config"},
		{[]string{"sync", "-run", "x"}, "use --task"},
		{[]string{"export", "--config", cfg, "--output", done}, "already exists"},
	}
	for _, c := range cases {
		code, stderr := runArgs(t, c.args...)
		if code != ExitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("regmirror %s: exit %d, want %d with %q:\n%s", strings.Join(c.args, " "), code, ExitUsage, c.want, stderr)
		}
	}
	// A group alone and help on a command still print help and exit 0.
	for _, args := range [][]string{{}, {"config"}, {"completion"}, {"help", "sync"}} {
		if code, stderr := runArgs(t, args...); code != ExitOK {
			t.Errorf("regmirror %s: exit %d, want 0\n%s", strings.Join(args, " "), code, stderr)
		}
	}
	// A secret after a single-dash flag is not echoed.
	if _, stderr := runArgs(t, "login", "-password=hunter2", "r"); strings.Contains(stderr, "hunter2") {
		t.Errorf("the hint echoes the value: %s", stderr)
	}
}
