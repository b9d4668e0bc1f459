package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regmirror/regmirror/internal/config"
	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/filter"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/schedule"
)

// TestFingerprint: a reload keeps a task's schedule only when nothing that
// changes a run changed, credentials and tag filters included; where a
// mapping was written does not count.
func TestFingerprint(t *testing.T) {
	tags := func(specs ...string) *filter.Tags {
		t.Helper()
		f, err := filter.ParseTags(specs)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	base := func() engine.Task {
		return engine.Task{Name: "t",
			Source:   registry.Endpoint{Registry: "src.example.com"},
			Target:   registry.Endpoint{Registry: "dst.example.com", Username: "bob", Password: "hunter2"},
			Lister:   engine.Lister{MaxItems: 100, CacheDuration: time.Hour},
			Mappings: []engine.Mapping{{From: "a/b", To: "a/b", Tags: tags("semver: >=1.0.0"), Origin: "cfg.yaml:7"}}}
	}
	spec := schedule.Spec{Interval: time.Hour}
	ref := Fingerprint(base(), spec)
	moved := base()
	moved.Mappings[0].Origin = "cfg.yaml:8"
	if Fingerprint(moved, spec) != ref {
		t.Error("moving the mapping in the file changed the fingerprint")
	}
	if strings.Contains(ref, "hunter2") {
		t.Error("the fingerprint holds the password")
	}
	for name, change := range map[string]func(*engine.Task){
		"password":  func(t *engine.Task) { t.Target.Password = "hunter3" },
		"username":  func(t *engine.Task) { t.Target.Username = "alice" },
		"target":    func(t *engine.Task) { t.Target.Registry = "dst2.example.com" },
		"source CA": func(t *engine.Task) { t.Source.CAFile = "/ca.pem" },
		"requests":  func(t *engine.Task) { t.Source.MaxConcurrentRequests = 1 },
		"lister":    func(t *engine.Task) { t.Lister.MaxItems = 5 },
		"tags":      func(t *engine.Task) { t.Mappings[0].Tags = tags("semver: >=1.1.0") },
		"to":        func(t *engine.Task) { t.Mappings[0].To = "c/d" },
		"platform":  func(t *engine.Task) { t.Mappings[0].Platform = &v1.Platform{OS: "linux", Architecture: "amd64"} },
		"referrers": func(t *engine.Task) { t.Mappings[0].Referrers = true },
		"prune":     func(t *engine.Task) { t.Mappings[0].Prune = true },
		"mappings":  func(t *engine.Task) { t.Mappings = append(t.Mappings, t.Mappings[0]) },
		"name":      func(t *engine.Task) { t.Name = "u" },
	} {
		task := base()
		change(&task)
		if Fingerprint(task, spec) == ref {
			t.Errorf("changing the %s keeps the fingerprint", name)
		}
	}
	if Fingerprint(base(), schedule.Spec{Interval: 2 * time.Hour}) == ref {
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

// layoutConf is a configuration of tasks copying examples/oci-source into
// the OCI layout out, one repository per task: no registry needed.
func layoutConf(t *testing.T, out string, tasks ...string) string {
	t.Helper()
	root, err := filepath.Abs("../../examples/oci-source")
	if err != nil {
		t.Fatal(err)
	}
	s := "watch: true\ntasks:\n"
	for _, name := range tasks {
		s += fmt.Sprintf("  - name: %s\n    source: {registry: 'oci:%s'}\n    target: {registry: 'oci:%s'}\n    mappings: [{from: tools/busybox-lite, to: %s/busybox}]\n", name, root, out, name)
	}
	return s
}

// harness is a daemon running in the test on the configuration at path.
type harness struct {
	t    *testing.T
	d    *Daemon
	runs chan Run
	logs *syncBuffer
	stop func()
}

func start(t *testing.T, path string) *harness {
	t.Helper()
	cfg, err := config.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, runs: make(chan Run, 10), logs: &syncBuffer{}}
	h.d = New(Options{
		Logger: slog.New(slog.NewTextHandler(h.logs, nil)), Path: path,
		Tasks: func(cfg *config.Config) ([]engine.Task, error) {
			var out []engine.Task
			for _, ct := range cfg.Tasks {
				et := engine.Task{Name: ct.Name, Source: registry.Endpoint{Registry: ct.Source.Registry}, Target: registry.Endpoint{Registry: ct.Target.Registry}}
				for _, m := range ct.Mappings {
					et.Mappings = append(et.Mappings, engine.Mapping{From: m.From, To: m.To, Tags: m.Tags})
				}
				out = append(out, et)
			}
			return out, nil
		},
		OnRun: func(r Run) { h.runs <- r },
	})
	eng := engine.New(engine.Options{OnResult: h.d.Result})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.d.Run(ctx, eng, cfg, ln) }()
	h.stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancellation, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10s of cancellation")
		}
	}
	t.Cleanup(cancel)
	return h
}

// next waits for the next run to end.
func (h *harness) next(what string) Run {
	h.t.Helper()
	select {
	case r := <-h.runs:
		return r
	case <-time.After(30 * time.Second):
		h.t.Fatalf("no run of %s within 30s; log:\n%s", what, h.logs.String())
	}
	return Run{}
}

// waitLog waits for text to appear in the log.
func (h *harness) waitLog(text string) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(h.logs.String(), text) {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %q; log:\n%s", text, h.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunHookAndReload: OnRun sees every run with its report, a reload
// that fails keeps the last good configuration, and a good edit (saved by
// rename, as editors do) adds a task that then runs.
func TestRunHookAndReload(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	path := filepath.Join(dir, "cfg.yaml")
	write := func(content string) {
		t.Helper()
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(layoutConf(t, out, "first"))
	h := start(t, path)

	r := h.next("first")
	if r.Task != "first" || r.Cancelled || r.Report == nil {
		t.Fatalf("first run = %+v, want task first, not cancelled, with a report", r)
	}
	s := r.Report.Summaries()
	if len(s) != 1 || s[0].Copied != 1 || s[0].Failed != 0 {
		t.Fatalf("first run summaries = %+v, want one image copied", s)
	}

	write("tasks: [\n") // does not load
	h.waitLog("configuration not loaded")
	if st := h.d.State().Status(); st.Config.ReloadFailures != 1 || len(st.Tasks) != 1 {
		t.Errorf("after a bad edit: %d reload failures, %d tasks; want the failure counted and the one task kept", st.Config.ReloadFailures, len(st.Tasks))
	}

	write(layoutConf(t, out, "first", "second"))
	if r := h.next("second"); r.Task != "second" {
		t.Fatalf("run after the edit is of %q, want the added task second", r.Task)
	}
	h.stop()
}

// TestFollowsConfigMapSymlinkSwap mounts the configuration the way
// Kubernetes mounts a ConfigMap: cfg.yaml -> ..data/cfg.yaml, ..data -> a
// timestamped directory, updated by renaming a new ..data symlink over the
// old one. The file itself is never written, yet the edit is seen.
func TestFollowsConfigMapSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
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
	publish("v1", layoutConf(t, out, "first"))
	cfg := filepath.Join(dir, "cfg.yaml")
	if err := os.Symlink(filepath.Join("..data", "cfg.yaml"), cfg); err != nil {
		t.Fatal(err)
	}
	h := start(t, cfg)
	if r := h.next("first"); r.Task != "first" {
		t.Fatalf("first run is of %q, want first", r.Task)
	}
	publish("v2", layoutConf(t, out, "first", "second"))
	if r := h.next("second"); r.Task != "second" {
		t.Fatalf("run after the ConfigMap update is of %q, want second", r.Task)
	}
	if _, err := os.Stat(filepath.Join(out, "index.json")); err != nil {
		t.Errorf("nothing written to the target layout: %v", err)
	}
	h.stop()
}
