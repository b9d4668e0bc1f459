package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regmirror/regmirror/internal/testutil/faultproxy"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// TestPlanAndCheckHonourRetry: plan and check build their engine like
// sync, so the config's retry.request-attempts caps how often a request
// that keeps failing with 503 is sent. The source answers every manifest
// HEAD with 503; with request-attempts: 2 each command sends exactly two
// (the built-in default would be four).
func TestPlanAndCheckHonourRetry(t *testing.T) {
	reg := regtest.New(t)
	imagegen.Push(t, reg.Host+"/a:v1", imagegen.Image(1, 1, 64))
	proxy := faultproxy.New(t, reg.URL)
	heads := faultproxy.Match{Kind: regtest.KindManifestHead, Repo: "a"}
	rule := proxy.Inject(heads, 1000, faultproxy.Status(503, "UNAVAILABLE"))

	dir := t.TempDir()
	cfg := filepath.Join(dir, "cfg.yaml")
	doc := fmt.Sprintf(`retry: {request-attempts: 2, request-wait: 1ms}
tasks:
  - name: t
    source: {registry: "http://%s"}
    target: {registry: "oci:%s"}
    mappings: [{from: a, tags: [v1]}]
`, proxy.Host, filepath.Join(dir, "out"))
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, command := range []string{"plan", "check"} {
		before := proxy.Count(heads)
		_, errs, code := runCLI(t, command, "--config", cfg)
		if code != ExitFailed {
			t.Errorf("%s: exit %d, want %d (the image cannot be read)\n%s", command, code, ExitFailed, errs)
		}
		if proxy.Hits(rule) == 0 {
			t.Fatalf("%s: the 503 fault was never hit", command)
		}
		if n := proxy.Count(heads) - before; n != 2 {
			t.Errorf("%s: %d manifest HEADs to the failing source, want 2 (retry.request-attempts)", command, n)
		}
	}
}

// TestTransfersZeroIsAUsageError: --transfers must be at least 1 (as the
// docs say) in every command that has it; 0 is not "the default".
func TestTransfersZeroIsAUsageError(t *testing.T) {
	dir := t.TempDir()
	cfg := shardConfig(t, dir, 1)
	for _, args := range [][]string{
		{"sync", "--config", cfg},
		{"serve", "--config", cfg, "--listen", "127.0.0.1:0"},
		{"export", "--config", cfg, "--output", filepath.Join(dir, "b.tar")},
		{"import", "--to", "127.0.0.1:1", filepath.Join(dir, "none.tar")},
		{"mirror-list", "--from", "a.example.com", "--to", "b.example.com", filepath.Join(dir, "none.txt")},
	} {
		// Bounded: a serve that accepted the flag would run until
		// cancelled.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var errb bytes.Buffer
		err := Execute(ctx, append(args, "--transfers", "0"), strings.NewReader(""), io.Discard, &errb)
		cancel()
		errs := errb.String()
		if code := ExitCode(err); code != ExitUsage || !strings.Contains(errs, "--transfers must be at least 1") {
			t.Errorf("%s --transfers 0: exit %d, want %d saying --transfers must be at least 1\n%s", args[0], code, ExitUsage, errs)
		}
	}
}

// TestFailureLoggedOnce: an image that fails is logged once at error
// level, with its reason, where it failed; the summary names it without
// logging it again.
func TestFailureLoggedOnce(t *testing.T) {
	dir := t.TempDir()
	src, err := filepath.Abs("../../examples/oci-source")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cfg.yaml")
	doc := fmt.Sprintf("tasks:\n  - name: t\n    source: {registry: 'oci:%s'}\n    target: {registry: 'oci:%s'}\n    mappings: [{from: library/hello, tags: [1.0.0, 9.9.9]}]\n", src, filepath.Join(dir, "out"))
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, code := runCLI(t, "sync", "--config", cfg, "--log-format", "json")
	if code != ExitFailed {
		t.Fatalf("sync: exit %d, want %d\n%s", code, ExitFailed, errs)
	}
	errorLines, summaries := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(errs), "\n") {
		var rec struct {
			Level, Msg   string
			FailedImages []string `json:"failed_images"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON log line: %q", line)
		}
		if rec.Level == "ERROR" {
			errorLines++
			if !strings.Contains(line, "9.9.9") {
				t.Errorf("error line does not name the image: %s", line)
			}
		}
		if rec.Msg == "summary" {
			summaries++
			if len(rec.FailedImages) != 1 || !strings.HasSuffix(rec.FailedImages[0], ":9.9.9") {
				t.Errorf("summary names %q, want the one failed image", rec.FailedImages)
			}
		}
	}
	if errorLines != 1 || summaries != 1 {
		t.Errorf("%d error lines and %d summaries, want 1 and 1:\n%s", errorLines, summaries, errs)
	}
}
