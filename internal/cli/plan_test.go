package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Execute(context.Background(), append(args, "--platform-cache", ""), strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), ExitCode(err)
}

// plan and sync --dry-run write nothing; check fails until a sync made the
// target current, then passes; the JSON documents parse with the
// documented fields.
func TestPlanCheckAndDryRun(t *testing.T) {
	dir := t.TempDir()
	cfg := shardConfig(t, dir, 2)
	target := filepath.Join(dir, "t0")

	out, errs, code := runCLI(t, "plan", "--config", cfg, "--output", "json")
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, errs)
	}
	var doc struct {
		Tasks []struct {
			Task   string `json:"task"`
			Images []struct {
				Target, Action, Reason, SourceDigest string
				Bytes                                *int64 `json:"bytes"`
			} `json:"images"`
		} `json:"tasks"`
		Totals struct {
			Copy, Skip, Fail int
			Bytes            *int64 `json:"bytes"`
		} `json:"totals"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("plan JSON: %v\n%s", err, out)
	}
	if len(doc.Tasks) != 2 || doc.Totals.Copy != 2 || doc.Totals.Bytes != nil {
		t.Errorf("plan: %+v, want 2 tasks, 2 to copy, bytes null", doc)
	}
	if im := doc.Tasks[0].Images[0]; im.Action != "copy" || im.Reason != "missing on target" {
		t.Errorf("image %+v", im)
	}

	out, _, code = runCLI(t, "plan", "--config", cfg, "--bytes")
	if code != 0 || !strings.Contains(out, "to transfer, 0 of 3 blobs present") {
		t.Errorf("plan --bytes: exit %d\n%s", code, out)
	}
	out, _, code = runCLI(t, "sync", "--config", cfg, "--dry-run")
	if code != 0 || !strings.Contains(out, "total: 2 to copy, 0 to skip, 0 to fail") {
		t.Errorf("sync --dry-run: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("plan or dry run wrote the target: %v", err)
	}

	out, _, code = runCLI(t, "check", "--config", cfg)
	if code != ExitFailed || !strings.Contains(out, "missing") || !strings.Contains(out, "OUT OF SYNC: 2 images, 2 missing") {
		t.Errorf("check before sync: exit %d\n%s", code, out)
	}
	if _, errs, code = runCLI(t, "sync", "--config", cfg); code != 0 {
		t.Fatalf("sync: exit %d\n%s", code, errs)
	}
	out, _, code = runCLI(t, "check", "--config", cfg, "-o", "json")
	var cd checkDoc
	if err := json.Unmarshal([]byte(out), &cd); err != nil || code != 0 || !cd.InSync || cd.Images != 2 {
		t.Errorf("check after sync: exit %d, %+v (%v)\n%s", code, cd, err, out)
	}
	if _, _, code = runCLI(t, "plan", "--config", cfg, "--output", "yaml"); code != ExitUsage {
		t.Errorf("--output yaml: exit %d, want 2", code)
	}
}

// plan and check honour --insecure-registry as sync does.
func TestPlanHonoursInsecureRegistry(t *testing.T) {
	src := regtest.New(t)
	imagegen.Push(t, src.Ref("a/app:1"), imagegen.Image(1, 1, 128))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(`tasks:
  - name: t
    source: {registry: "`+src.Host+`"}
    target: {registry: "oci:`+filepath.Join(dir, "out")+`"}
    mappings: [{from: a/app, tags: ["1"]}]
`), 0o644)
	if out, _, code := runCLI(t, "plan", "--config", cfg); code != ExitFailed || !strings.Contains(out, "1 to fail") {
		t.Errorf("plain HTTP without the mark: exit %d\n%s", code, out)
	}
	if out, errs, code := runCLI(t, "plan", "--config", cfg, "--insecure-registry", src.Host); code != 0 || !strings.Contains(out, "1 to copy") {
		t.Errorf("with --insecure-registry: exit %d\n%s%s", code, out, errs)
	}
}
