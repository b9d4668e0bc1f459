package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// At info level, a task with "verbose: true" logs its debug lines – the
// transport's line per request among them – and the other task does not.
func TestVerboseTaskLogsAtDebug(t *testing.T) {
	t.Setenv("REGMIRROR_DOCKER_DAEMON_JSON", filepath.Join(t.TempDir(), "none"))
	t.Setenv("REGMIRROR_REGISTRIES_CONF", filepath.Join(t.TempDir(), "none"))
	src := regtest.New(t)
	imagegen.Push(t, src.Ref("team/quiet:1.0"), imagegen.Image(81, 1, 256))
	imagegen.Push(t, src.Ref("team/loud:1.0"), imagegen.Image(82, 1, 256))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	doc := fmt.Sprintf(`tasks:
  - name: quiet
    source: {registry: %[1]q}
    target: {registry: "oci:%[2]s/q"}
    mappings: [{from: team/quiet, tags: ["1.0"]}]
  - name: loud
    verbose: true
    source: {registry: %[1]q}
    target: {registry: "oci:%[2]s/l"}
    mappings: [{from: team/loud, tags: ["1.0"]}]
`, src.Host, dir)
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := executeAll("sync", "--config", cfg, "--insecure-registry", src.Host, "--log-level", "info", "--platform-cache", "")
	if ExitCode(err) != ExitOK {
		t.Fatalf("sync: exit %d\n%s", ExitCode(err), stderr)
	}
	var loudHTTP int
	for line := range strings.SplitSeq(stderr, "\n") {
		if !strings.Contains(line, "level=DEBUG") {
			continue
		}
		if strings.Contains(line, "team/quiet") || strings.Contains(line, "task=quiet") {
			t.Errorf("a debug line of the task without verbose: %s", line)
		}
		if strings.Contains(line, "msg=http") && strings.Contains(line, "/v2/team/loud/") {
			loudHTTP++
		}
	}
	if loudHTTP == 0 {
		t.Errorf("no per-request debug line of the verbose task\n%s", stderr)
	}
	if strings.Count(stderr, "level=INFO msg=copied") != 2 {
		t.Errorf("want both images copied at info\n%s", stderr)
	}
}
