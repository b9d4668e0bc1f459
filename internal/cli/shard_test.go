package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/regmirror/regmirror/internal/config"
	"github.com/regmirror/regmirror/internal/shard"
)

// shardConfig writes a config of n tasks, each copying one tiny image out of
// the repository's example OCI layout into its own layout under dir.
func shardConfig(t *testing.T, dir string, n int) string {
	t.Helper()
	src, err := filepath.Abs("../../examples/oci-source")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("tasks:\n")
	for i := range n {
		fmt.Fprintf(&b, `  - name: task-%d
    source: {registry: "oci:%s"}
    target: {registry: "oci:%s"}
    mappings:
      - from: library/hello
        tags: [1.0.0]
`, i, src, filepath.Join(dir, fmt.Sprintf("t%d", i)))
	}
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Running every shard of 3 syncs each task exactly once, in the shard the
// hash says: by task, the hash of its name; by repository (the default),
// the hash of the task and its one repository.
func TestSyncShardsPartitionTasks(t *testing.T) {
	t.Run("task", func(t *testing.T) {
		testShards(t, []string{"--shard-by", "task"}, func(task string, count int) int { return shard.Of(task, count) })
	})
	t.Run("repository", func(t *testing.T) {
		testShards(t, nil, func(task string, count int) int { return shard.OfRepository(task, "library/hello", count) })
	})
}

func testShards(t *testing.T, by []string, of func(task string, count int) int) {
	const tasks, count = 7, 3
	dir := t.TempDir()
	cfg := shardConfig(t, dir, tasks)
	for i := range count {
		// plan and check take the same flag and see the same tasks.
		pout, perr, code := runCLI(t, append([]string{"plan", "--config", cfg, "--shard", fmt.Sprintf("%d/%d", i, count), "--output", "json"}, by...)...)
		var doc planDoc
		if err := json.Unmarshal([]byte(pout), &doc); err != nil || code != 0 {
			t.Fatalf("plan --shard %d/%d: exit %d, %v\n%s", i, count, code, err, perr)
		}
		owned := 0
		for k := range tasks {
			if of(fmt.Sprintf("task-%d", k), count) == i {
				owned++
			}
		}
		if len(doc.Tasks) != owned {
			t.Errorf("plan --shard %d/%d planned %d tasks, the shard owns %d", i, count, len(doc.Tasks), owned)
		}
		for _, pt := range doc.Tasks {
			if k, _ := strconv.Atoi(strings.TrimPrefix(pt.Task, "task-")); of(pt.Task, count) != i || k >= tasks {
				t.Errorf("plan --shard %d/%d planned %s", i, count, pt.Task)
			}
		}
		var out, errb bytes.Buffer
		before := layouts(dir, tasks)
		err := Execute(context.Background(), append([]string{"sync", "--config", cfg, "--shard", fmt.Sprintf("%d/%d", i, count), "--platform-cache", ""}, by...),
			strings.NewReader(""), &out, &errb)
		if err != nil {
			t.Fatalf("shard %d/%d: %v\n%s", i, count, err, errb.String())
		}
		after := layouts(dir, tasks)
		for k := range tasks {
			owned := of(fmt.Sprintf("task-%d", k), count) == i
			if got := after[k] && !before[k]; got != owned {
				t.Errorf("shard %d/%d: task-%d written = %v, want %v", i, count, k, got, owned)
			}
		}
	}
	for k, ok := range layouts(dir, tasks) {
		if !ok {
			t.Errorf("task-%d was run by no shard", k)
		}
	}
}

func layouts(dir string, n int) []bool {
	out := make([]bool, n)
	for k := range n {
		_, err := os.Stat(filepath.Join(dir, fmt.Sprintf("t%d", k), "index.json"))
		out[k] = err == nil
	}
	return out
}

func TestShardFlagRejectsBadSpec(t *testing.T) {
	cfg := shardConfig(t, t.TempDir(), 1)
	var out, errb bytes.Buffer
	err := Execute(context.Background(), []string{"sync", "--config", cfg, "--shard", "0/2", "--shard-by", "tag"}, strings.NewReader(""), &out, &errb)
	if ExitCode(err) != ExitUsage || !strings.Contains(errb.String(), "--shard-by") {
		t.Errorf("--shard-by tag: exit %d, stderr %q; want exit 2 naming --shard-by", ExitCode(err), errb.String())
	}
	for _, spec := range []string{"3/3", "x", "1/0"} {
		var out, errb bytes.Buffer
		err := Execute(context.Background(), []string{"sync", "--config", cfg, "--shard", spec}, strings.NewReader(""), &out, &errb)
		if ExitCode(err) != ExitUsage || !strings.Contains(errb.String(), "--shard") {
			t.Errorf("--shard %s: exit %d, stderr %q; want exit 2 naming --shard", spec, ExitCode(err), errb.String())
		}
	}
}

// serve --shard: by repository every task is scheduled (each run copies
// only the shard's repositories); by task only the shard's tasks are.
func TestServeShardSchedulesTasks(t *testing.T) {
	cfgPath := shardConfig(t, t.TempDir(), 7)
	for _, by := range []string{"repository", "task"} {
		for i := range 3 {
			cfg, err := config.LoadFile(cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			all := cfg.Tasks
			sf := &shardFlags{shard: fmt.Sprintf("%d/3", i), by: by}
			if err := sf.parse(); err != nil {
				t.Fatal(err)
			}
			tasks, err := serveTasks(sf, &engineSetup{log: slog.New(slog.DiscardHandler), insecure: &config.Insecure{}})(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var got, scheduled []string
			for _, task := range tasks {
				got = append(got, task.Name)
			}
			for _, task := range cfg.Tasks {
				scheduled = append(scheduled, task.Name)
			}
			var want []string
			for _, task := range all {
				if by == "repository" || shard.Of(task.Name, 3) == i {
					want = append(want, task.Name)
				}
			}
			if !slices.Equal(got, want) || !slices.Equal(scheduled, want) {
				t.Errorf("serve --shard %d/3 --shard-by %s runs %v (config %v), want %v", i, by, got, scheduled, want)
			}
			if e := sf.engine(); (by == "repository") != (e.Count == 3) {
				t.Errorf("--shard-by %s: the engine gets shard %v", by, e)
			}
		}
	}
}
