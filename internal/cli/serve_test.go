package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regmirror/regmirror/internal/config"
	"github.com/regmirror/regmirror/internal/schedule"
	"github.com/regmirror/regmirror/internal/server"
)

// TestFingerprint: a reload keeps a task's schedule only when nothing about
// it changed, credentials and tag filters included.
func TestFingerprint(t *testing.T) {
	const base = `tasks:
  - name: t
    interval: 1h
    source: {registry: src.example.com}
    target: {registry: dst.example.com, username: bob, password: hunter2}
    mappings:
      - from: a/b
        tags: ['semver: >=1.0.0']
`
	fp := func(doc string) string {
		t.Helper()
		cfg, err := config.Load(strings.NewReader(doc), "cfg.yaml")
		if err != nil {
			t.Fatal(err)
		}
		tasks, err := engineTasks(cfg.Tasks)
		if err != nil {
			t.Fatal(err)
		}
		return fingerprint(tasks[0], schedule.Spec{Interval: cfg.Tasks[0].Interval})
	}
	ref := fp(base)
	if fp("# a comment\n"+base) != ref {
		t.Error("a comment changed the fingerprint")
	}
	if strings.Contains(ref, "hunter2") {
		t.Error("the fingerprint holds the password")
	}
	for name, doc := range map[string]string{
		"password": strings.Replace(base, "hunter2", "hunter3", 1),
		"tags":     strings.Replace(base, ">=1.0.0", ">=1.1.0", 1),
		"to":       strings.Replace(base, "from: a/b", "from: a/b\n        to: c/d", 1),
		"platform": strings.Replace(base, "from: a/b", "from: a/b\n        platform: linux/amd64", 1),
		"target":   strings.Replace(base, "dst.example.com", "dst2.example.com", 1),
	} {
		if fp(doc) == ref {
			t.Errorf("changing the %s keeps the fingerprint", name)
		}
	}
	cfg, _ := config.Load(strings.NewReader(base), "cfg.yaml")
	tasks, _ := engineTasks(cfg.Tasks)
	if fingerprint(tasks[0], schedule.Spec{Interval: 2 * time.Hour}) == ref {
		t.Error("changing the interval keeps the fingerprint")
	}
}

// syncBuffer is a bytes.Buffer safe for the daemon's and the test's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeFollowsConfigMapSymlinkSwap runs the daemon in-process on OCI
// layouts (no registry needed) with its configuration mounted the way
// Kubernetes mounts a ConfigMap: cfg.yaml -> ..data/cfg.yaml, ..data ->
// a timestamped directory, updated by renaming a new ..data symlink over
// the old one. The file itself is never written, yet the edit is seen.
func TestServeFollowsConfigMapSymlinkSwap(t *testing.T) {
	root, err := filepath.Abs("../../examples/oci-source")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	conf := func(tasks ...string) string {
		s := "watch: true\ntasks:\n"
		for _, name := range tasks {
			s += fmt.Sprintf("  - name: %s\n    source: {registry: 'oci:%s'}\n    target: {registry: 'oci:%s'}\n    mappings: [{from: tools/busybox-lite, to: %s/busybox}]\n", name, root, out, name)
		}
		return s
	}
	publish := func(version, content string) {
		v := filepath.Join(dir, version)
		if err := os.Mkdir(v, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(v, "cfg.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(version, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	publish("v1", conf("first"))
	cfg := filepath.Join(dir, "cfg.yaml")
	if err := os.Symlink(filepath.Join("..data", "cfg.yaml"), cfg); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Execute(ctx, []string{"serve", "--config", cfg, "--listen", "127.0.0.1:0", "--platform-cache", ""}, strings.NewReader(""), io.Discard, logs)
	}()
	addr := ""
	status := func() server.Status {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/status")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s server.Status
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; log:\n%s", what, logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait("the serving line", func() bool {
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec struct{ Msg, Listen string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" {
				addr = rec.Listen
				return true
			}
		}
		return false
	})
	ran := func(name string) bool {
		for _, ts := range status().Tasks {
			if ts.Name == name && ts.LastRun != nil {
				return true
			}
		}
		return false
	}
	wait("task first to run", func() bool { return ran("first") })

	publish("v2", conf("first", "second"))
	wait("task second to run after the ConfigMap update", func() bool { return ran("second") })
	if _, err := os.Stat(filepath.Join(out, "index.json")); err != nil {
		t.Errorf("nothing written to the target layout: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v after cancellation, want nil (exit 0)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return within 10s of cancellation")
	}
}
