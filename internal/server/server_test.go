package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/config"
	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/filter"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/schedule"
	"github.com/regmirror/regmirror/internal/server"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/promtext"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

type fakeSched struct {
	running bool
	states  []schedule.TaskState
}

func (f *fakeSched) States() []schedule.TaskState { return f.states }
func (f *fakeSched) Running() bool                { return f.running }

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func scrape(t *testing.T, h http.Handler) promtext.Families {
	t.Helper()
	code, body := get(t, h, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	return promtext.Parse(t, body)
}

// TestMetricsAndStatusFollowARealRun runs the engine against in-process
// registries, the source sending Docker Hub's rate-limit headers, feeds the
// State as the daemon does and checks /metrics and /status.
func TestMetricsAndStatusFollowARealRun(t *testing.T) {
	src := regtest.New(t, regtest.WithMiddleware(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("RateLimit-Limit", "100;w=21600")
			w.Header().Set("RateLimit-Remaining", "42;w=21600")
			h.ServeHTTP(w, r)
		})
	}))
	dst := regtest.New(t, regtest.WithBasicAuth("bob", "hunter2"))
	img := imagegen.Image(1, 1, 1024)
	imagegen.Push(t, src.Ref("app:1"), img, remote.WithTransport(src.Transport()))
	imagegen.Push(t, src.Ref("app:2"), imagegen.Image(2, 1, 1024), remote.WithTransport(src.Transport()))

	sched := &fakeSched{}
	m := transport.DefaultHosts()
	st := server.New(server.Options{Scheduler: sched, RateLimits: m.RateLimits, Pulls: m.Pulls})
	h := st.Handler()

	if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := get(t, h, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before any config: %d, want 503", code)
	}
	st.ConfigFailed("cfg.yaml", &config.Error{File: "cfg.yaml", Line: 3, Msg: `unknown key "intervall" in task`})
	st.ConfigLoaded("cfg.yaml", []server.TaskInfo{{Name: "mirror", Source: src.Host, Target: dst.Host}, {Name: "idle"}})
	sched.running = true
	if code, _ := get(t, h, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: %d, want 200", code)
	}

	e := engine.New(engine.Options{Registry: registry.Options{Hosts: m}, OnResult: st.Result})
	all, _ := filter.ParseTags(nil)
	missing, _ := filter.ParseTags([]string{"nope"})
	task := engine.Task{Name: "mirror",
		Source: registry.Endpoint{Registry: src.Host, PlainHTTP: true},
		Target: registry.Endpoint{Registry: dst.Host, PlainHTTP: true, Username: "bob", Password: "hunter2"},
		Mappings: []engine.Mapping{
			{From: "app", To: "mirror/app", Tags: all},
			{From: "app", To: "mirror/app", Tags: missing},
		}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	started := time.Now()
	rep := e.Run(ctx, []engine.Task{task})
	st.RunFinished("mirror", rep, started, false)
	var copiedBytes int64
	for _, r := range rep.Results {
		copiedBytes += r.Bytes
	}
	if copiedBytes == 0 {
		t.Fatal("nothing copied")
	}
	// A second run finds both images current.
	started2 := time.Now()
	rep2 := e.Run(ctx, []engine.Task{{Name: task.Name, Source: task.Source, Target: task.Target, Mappings: task.Mappings[:1]}})
	st.RunFinished("mirror", rep2, started2, false)
	st.RunSkipped("mirror")

	fams := scrape(t, h)
	fams.Want(t, 2, "regmirror_images_total", "result", "copied", "task", "mirror")
	fams.Want(t, 2, "regmirror_images_total", "result", "skipped", "task", "mirror")
	fams.Want(t, 1, "regmirror_images_total", "result", "failed", "task", "mirror")
	fams.Want(t, 0, "regmirror_images_total", "result", "copied", "task", "idle")
	fams.Want(t, float64(copiedBytes), "regmirror_bytes_copied_total", "task", "mirror")
	fams.Want(t, 1, "regmirror_runs_total", "result", "failed", "task", "mirror")
	fams.Want(t, 1, "regmirror_runs_total", "result", "ok", "task", "mirror")
	fams.Want(t, 2, "regmirror_run_duration_seconds", "task", "mirror")
	fams.Want(t, 1, "regmirror_runs_skipped_total", "task", "mirror")
	fams.Want(t, 1, "regmirror_config_reload_failures_total")
	fams.Want(t, 1, "regmirror_config_last_reload_successful")
	fams.Want(t, 42, "regmirror_ratelimit_remaining", "registry", src.Host)
	fams.Want(t, 100, "regmirror_ratelimit_limit", "registry", src.Host)
	// Two manifests fetched for the copies; the failed tag and the
	// second run cost HEADs only.
	fams.Want(t, 2, "regmirror_pulls_total", "registry", src.Host)
	if ts, ok := fams.Value("regmirror_last_success_timestamp_seconds", "task", "mirror"); !ok || ts < float64(started2.Unix()) {
		t.Errorf("last success timestamp %v (present %v), want >= %d", ts, ok, started2.Unix())
	}
	if _, ok := fams.Value("regmirror_last_success_timestamp_seconds", "task", "idle"); ok {
		t.Error("a task that never ran has a last success")
	}

	code, body := get(t, h, "/status")
	if code != http.StatusOK {
		t.Fatalf("/status: %d", code)
	}
	if strings.Contains(body, "hunter2") {
		t.Errorf("/status shows a password:\n%s", body)
	}
	var s server.Status
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	if !s.Ready || len(s.Tasks) != 2 || s.Tasks[1].Name != "mirror" {
		t.Fatalf("/status: %s", body)
	}
	mt := s.Tasks[1]
	if mt.Runs != 2 || mt.SkippedRuns != 1 || mt.LastRun == nil || mt.LastRun.Result != "ok" || mt.LastRun.Skipped != 2 || mt.LastSuccess == nil {
		t.Errorf("mirror task status: %s", body)
	}
	if mt.Totals.Copied != 2 || mt.Totals.Failed != 1 || mt.Totals.Bytes != copiedBytes {
		t.Errorf("totals %+v", mt.Totals)
	}
	if len(mt.LastErrors) != 1 || mt.LastErrors[0].Tag != "nope" || !strings.Contains(mt.LastErrors[0].Error, "nope") {
		t.Errorf("last errors %+v", mt.LastErrors)
	}
	if s.Config.ReloadFailures != 1 || s.Config.LastReload == nil || !s.Config.LastReload.OK {
		t.Errorf("config status %+v", s.Config)
	}

	// A broken reload: the error with file:line shows up in /status and
	// the metrics; a removed task disappears from both.
	st.ConfigFailed("cfg.yaml", &config.Error{File: "cfg.yaml", Line: 7, Msg: "bad regex"})
	st.ConfigLoaded("cfg.yaml", []server.TaskInfo{{Name: "mirror"}})
	st.ConfigFailed("cfg.yaml", &config.Error{File: "cfg.yaml", Line: 9, Msg: "bad regex"})
	_, body = get(t, h, "/status")
	if !strings.Contains(body, "cfg.yaml:9: bad regex") || !strings.Contains(body, `"reload_failures": 3`) || strings.Contains(body, `"idle"`) {
		t.Errorf("/status after failed reloads:\n%s", body)
	}
	fams = scrape(t, h)
	fams.Want(t, 3, "regmirror_config_reload_failures_total")
	fams.Want(t, 0, "regmirror_config_last_reload_successful")
	// A result of the removed task's last run, arriving late, does not
	// bring its series back.
	st.Result(engine.Result{Task: "idle", Status: engine.Copied, Bytes: 10})
	st.RunSkipped("idle")
	fams = scrape(t, h)
	for _, name := range []string{"regmirror_images_total", "regmirror_bytes_copied_total", "regmirror_runs_skipped_total"} {
		for _, m := range fams[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "task" && l.GetValue() == "idle" {
					t.Errorf("removed task idle still has %s", name)
				}
			}
		}
	}
}
