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

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	stdout, _, err := executeAll(args...)
	return stdout, err
}

// walkVisible calls f for every command a user sees (not help, not the
// hidden completion helpers), including commands added later.
func walkVisible(f func(*cobra.Command)) {
	root := newRoot(&globals{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard})
	walk(root, func(c *cobra.Command) {
		if !c.Hidden && c.Name() != "help" && !strings.HasPrefix(c.Name(), "__") {
			f(c)
		}
	})
}

// executeAll runs a command line with empty stdin and returns what it
// printed on stdout and stderr.
func executeAll(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	err = Execute(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), err
}

// TestEveryCommandHasAnExample walks the whole command tree, including
// commands other packages add later, and fails for any visible command
// whose --help would show no example.
func TestEveryCommandHasAnExample(t *testing.T) {
	n := 0
	walkVisible(func(c *cobra.Command) {
		n++
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q has no Example: add one to its cobra.Command", c.CommandPath())
			return
		}
		// Examples are command lines of this program (a line ending in
		// "\\" continues on the next).
		for _, l := range strings.Split(strings.ReplaceAll(c.Example, "\\\n", " "), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "kill ") {
				continue
			}
			if !strings.Contains(l, "regmirror") {
				t.Errorf("%q: example line %q does not run regmirror", c.CommandPath(), l)
			}
		}
		help, err := execute(t, append(strings.Fields(c.CommandPath())[1:], "--help")...)
		if err != nil || !strings.Contains(help, "Examples:") {
			t.Errorf("%s --help: err %v, no Examples section:\n%s", c.CommandPath(), err, help)
		}
	})
	// root, sync, version, completion and its four shells at least.
	if n < 8 {
		t.Errorf("walked %d commands, want at least 8", n)
	}
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

// TestFlagHelpReadsWell: pflag takes a back-quoted word of a flag's usage
// as its placeholder ("--transfers transfers", "--platform-cache
// platform:"); placeholders must be a type name or an upper-case word. A
// default that the usage text states a second time ("(default 4) (default
// 1 ...)") reads as two defaults. A command's help has more than one line.
func TestFlagHelpReadsWell(t *testing.T) {
	types := map[string]bool{"string": true, "int": true, "duration": true, "strings": true, "stringArray": true, "uint": true, "float": true}
	walkVisible(func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			name, usage := pflag.UnquoteUsage(f)
			if name != "" && !types[name] && strings.ToUpper(name) != name {
				t.Errorf("%s --%s: placeholder %q", c.CommandPath(), f.Name, name)
			}
			if strings.Contains(usage, "(default ") && f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "[]" {
				t.Errorf("%s --%s: two defaults in %q", c.CommandPath(), f.Name, usage)
			}
		})
		if c.Runnable() && !c.HasSubCommands() && c.Name() != "version" && c.Long == "" && c.Parent() == c.Root() {
			t.Errorf("%s has only a one-line help", c.CommandPath())
		}
	})
}

// dregsy's relay line is for the commands that copy, not for config print,
// plan or check, which only read the config.
func TestRelayNoteOnlyWhenCopying(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	body := "relay: skopeo\ntasks:\n- name: t\n  source: {registry: 'oci:" + dir + "/src'}\n  target: {registry: 'oci:" + dir + "/dst'}\n  mappings:\n  - from: a\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"config", "print"}, {"plan"}, {"check"}} {
		_, stderr, _ := executeAll(append(args, "--config", cfg)...)
		if strings.Contains(stderr, "relay") {
			t.Errorf("%v logs the relay line:\n%s", args, stderr)
		}
	}
	if _, stderr, _ := executeAll("sync", "--config", cfg, "--platform-cache", ""); !strings.Contains(stderr, "relay=skopeo") {
		t.Errorf("sync does not say relay is not used:\n%s", stderr)
	}
}
