package server_test

import (
	"context"
	"errors"

	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// mirrorRun runs one task with two images and one missing tag against
// in-process registries, followed by st as the daemon follows its runs.
type mirrorRun struct {
	st   *server.State
	eng  *engine.Engine
	task engine.Task
}

func newMirrorRun(t *testing.T, o server.Options) *mirrorRun {
	t.Helper()
	src := regtest.New(t)
	dst := regtest.New(t)
	imagegen.Push(t, src.Ref("app:1"), imagegen.Image(1, 1, 2048), remote.WithTransport(src.Transport()))
	imagegen.Push(t, src.Ref("app:2"), imagegen.Image(2, 1, 2048), remote.WithTransport(src.Transport()))
	m := transport.DefaultHosts()
	o.Hosts = m.Status
	st := server.New(o)
	st.ConfigLoaded("cfg.yaml", []server.TaskInfo{{Name: "mirror", Source: src.Host, Target: dst.Host}, {Name: "quiet"}})
	all, _ := filter.ParseTags(nil)
	missing, _ := filter.ParseTags([]string{"nope"})
	return &mirrorRun{st: st, eng: engine.New(engine.Options{Registry: registry.Options{Hosts: m}, OnResult: st.Result, Attempts: 1}),
		task: engine.Task{Name: "mirror",
			Source: registry.Endpoint{Registry: src.Host, PlainHTTP: true},
			Target: registry.Endpoint{Registry: dst.Host, PlainHTTP: true},
			Mappings: []engine.Mapping{
				{From: "app", To: "mirror/app", Tags: all},
				{From: "app", To: "mirror/app", Tags: missing},
			}}}
}

func (m *mirrorRun) run(t *testing.T) *engine.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	started := time.Now()
	rep := m.eng.Run(m.st.Follow(ctx, "mirror"), []engine.Task{m.task})
	m.st.RunFinished("mirror", rep, started, false)
	return rep
}

func taskView(t *testing.T, p server.Page, name string) server.TaskView {
	t.Helper()
	for _, tv := range p.Tasks {
		if tv.Name == name {
			return tv
		}
	}
	t.Fatalf("task %q not on the page: %+v", name, p.Tasks)
	return server.TaskView{}
}

// TestPageFollowsRuns: a real run's results become the page's data: the
// counts, the failing image with its reason, the history with one bar per
// run, and a failure that persists says since when.
func TestPageFollowsRuns(t *testing.T) {
	m := newMirrorRun(t, server.Options{})
	rep1 := m.run(t)
	if rep1.Failed() != 1 {
		t.Fatalf("first run: %d failed, want 1 (the missing tag)", rep1.Failed())
	}
	p := m.st.Page()
	tv := taskView(t, p, "mirror")
	if tv.State != server.StateIdle || tv.Current != nil {
		t.Errorf("after the run: state %q, current %+v", tv.State, tv.Current)
	}
	lr := tv.LastRun
	if lr == nil || lr.Copied != 2 || lr.Failed != 1 || lr.Skipped != 0 || lr.Result != "failed" || lr.Bytes == 0 {
		t.Fatalf("last run %+v", lr)
	}
	if len(tv.Failures) != 1 || !strings.Contains(tv.Failures[0].Image, "app:nope") || !strings.Contains(tv.Failures[0].Reason, "nope") || tv.Failures[0].Persistent {
		t.Fatalf("failures %+v", tv.Failures)
	}
	first := tv.Failures[0].FirstSeen
	if len(tv.History) != 1 || len(tv.Chart.Bars) != 1 || tv.Chart.Bars[0].CopiedH == 0 || tv.Chart.Bars[0].FailedH == 0 {
		t.Errorf("history %+v, chart %+v", tv.History, tv.Chart)
	}
	if q := taskView(t, p, "quiet"); q.LastRun != nil || len(q.History) != 0 || q.State != server.StateIdle {
		t.Errorf("a task that never ran: %+v", q)
	}
	if len(p.Registries) != 2 {
		t.Errorf("registries %+v", p.Registries)
	}
	pulls := 0
	for _, r := range p.Registries {
		pulls += r.PullsToday
		if r.InFlight != 0 || r.Pulls != r.PullsToday {
			t.Errorf("after the run: %+v", r)
		}
	}
	if pulls != 2 {
		t.Errorf("pulls today %d, want 2 (the two copied manifests)", pulls)
	}

	m.run(t)
	tv = taskView(t, m.st.Page(), "mirror")
	if lr := tv.LastRun; lr == nil || lr.Copied != 0 || lr.Skipped != 2 || lr.Failed != 1 {
		t.Fatalf("second run %+v", lr)
	}
	if len(tv.Failures) != 1 || !tv.Failures[0].Persistent || !tv.Failures[0].FirstSeen.Equal(first) {
		t.Errorf("a failure in both runs must persist since the first: %+v (first seen %v)", tv.Failures, first)
	}
	if len(tv.History) != 2 || len(tv.Chart.Bars) != 2 || tv.Chart.Bars[1].CopiedH != 0 {
		t.Errorf("history of two runs: %+v", tv.Chart.Bars)
	}

	tp, ok := m.st.TaskPage("mirror")
	if !ok || len(tp.Images) != 3 {
		t.Fatalf("task page: %v %+v", ok, tp.Images)
	}
	results := map[string]string{}
	for _, img := range tp.Images {
		results[img.Source[strings.LastIndex(img.Source, "/")+1:]] = img.Result
	}
	if fmt.Sprint(results) != "map[app:1:skipped app:2:skipped app:nope:failed]" {
		t.Errorf("images %v", results)
	}
	if _, ok := m.st.TaskPage("nope"); ok {
		t.Error("a page for a task that does not exist")
	}
}

// TestPageWaitingOnRateLimit: a source answering 429 with Retry-After
// holds the run; the page says the task waits and on which registry.
func TestPageWaitingOnRateLimit(t *testing.T) {
	var hits atomic.Int32
	limited := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer limited.Close()
	host := strings.TrimPrefix(limited.URL, "http://")
	dst := regtest.New(t)
	m := transport.DefaultHosts()
	st := server.New(server.Options{Hosts: m.Status})
	st.ConfigLoaded("cfg.yaml", []server.TaskInfo{{Name: "hub", Source: host, Target: dst.Host}})
	eng := engine.New(engine.Options{Registry: registry.Options{Hosts: m}, OnResult: st.Result, Attempts: 1})
	all, _ := filter.ParseTags([]string{"1"})
	task := engine.Task{Name: "hub", Source: registry.Endpoint{Registry: host, PlainHTTP: true},
		Target: registry.Endpoint{Registry: dst.Host, PlainHTTP: true}, Mappings: []engine.Mapping{{From: "app", To: "app", Tags: all}}}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	started := time.Now()
	go func() {
		defer close(done)
		rep := eng.Run(st.Follow(ctx, "hub"), []engine.Task{task})
		st.RunFinished("hub", rep, started, true)
	}()
	var tv server.TaskView
	deadline := time.Now().Add(20 * time.Second)
	for {
		tv = taskView(t, st.Page(), "hub")
		if tv.State == server.StateWaiting || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if hits.Load() == 0 {
		t.Fatal("the source was never asked: the test proves nothing")
	}
	if tv.State != server.StateWaiting || !strings.Contains(tv.StateText, "waiting on the rate limit of "+host) {
		t.Fatalf("state %q (%s), want waiting on %s", tv.State, tv.StateText, host)
	}
	if tv.Current == nil || len(tv.Current.Waiting) != 1 || tv.Current.Waiting[0].Until.Before(started.Add(100*time.Second)) {
		t.Errorf("current run %+v", tv.Current)
	}
	if len(tv.Current.InFlight) != 1 || !strings.Contains(tv.Current.InFlight[0], "app:1") {
		t.Errorf("in flight %v, want the one image", tv.Current.InFlight)
	}
	tv = taskView(t, st.Page(), "hub")
	if tv.State != server.StateIdle || tv.LastRun == nil || tv.LastRun.Result != "cancelled" {
		t.Errorf("after cancelling: %q %+v", tv.State, tv.LastRun)
	}
}

// TestHistorySurvivesRestart: with a state directory a new State finds
// the runs of the old one, at most HistoryRuns of them, and a damaged line
// costs that line only.
func TestHistorySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	m := newMirrorRun(t, server.Options{StateDir: dir, HistoryRuns: 3})
	for range 4 {
		m.run(t)
	}
	file := filepath.Join(dir, "mirror.jsonl")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 3 {
		t.Errorf("history file has %d lines, want 3 (the bound):\n%s", n, b)
	}
	if err := os.WriteFile(file, append(b, []byte("{not json\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	st2 := server.New(server.Options{StateDir: dir, HistoryRuns: 3})
	st2.ConfigLoaded("cfg.yaml", []server.TaskInfo{{Name: "mirror"}})
	tv := taskView(t, st2.Page(), "mirror")
	if len(tv.History) != 3 || tv.LastRun == nil || tv.LastRun.Skipped != 2 || len(tv.Failures) != 1 || !tv.Failures[0].Persistent {
		t.Errorf("after a restart: history %d, last %+v, failures %+v", len(tv.History), tv.LastRun, tv.Failures)
	}
	// Without a state directory nothing is written, nothing is read.
	st3 := server.New(server.Options{})
	st3.ConfigLoaded("cfg.yaml", []server.TaskInfo{{Name: "mirror"}})
	if tv := taskView(t, st3.Page(), "mirror"); len(tv.History) != 0 {
		t.Errorf("in-memory history read a file: %+v", tv.History)
	}
}

// TestHistoryFileNames: a task name cannot leave the state directory.
func TestHistoryFileNames(t *testing.T) {
	dir := t.TempDir()
	st := server.New(server.Options{StateDir: dir})
	names := []string{"../escape", "a/b", "..", "ok-name_1"}
	var infos []server.TaskInfo
	for _, n := range names {
		infos = append(infos, server.TaskInfo{Name: n})
	}
	st.ConfigLoaded("cfg.yaml", infos)
	for _, n := range names {
		st.RunFinished(n, &engine.Report{}, time.Now(), false)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if want := "[%2E%2E%2Fescape.jsonl %2E%2E.jsonl a%2Fb.jsonl ok-name_1.jsonl]"; fmt.Sprint(got) != want {
		t.Errorf("files %v, want %s", got, want)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape.jsonl")); err == nil {
		t.Error("a history file left the state directory")
	}
}

func post(h http.Handler, path, origin, site string, form url.Values) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if site != "" {
		req.Header.Set("Sec-Fetch-Site", site)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestRunNowRefusals: off without a Trigger, refused cross-origin and
// without the page's token.
func TestRunNowRefusals(t *testing.T) {
	off := server.New(server.Options{})
	off.ConfigLoaded("cfg.yaml", []server.TaskInfo{{Name: "a"}})
	if rec := post(off.Handler(), "/tasks/a/run", "", "", nil); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "--allow-trigger") {
		t.Errorf("without a trigger: %d %s", rec.Code, rec.Body)
	}
	if _, body := get(t, off.Handler(), "/"); strings.Contains(body, "Run now") {
		t.Error("the page offers run now although it is off")
	}

	var calls []string
	st := server.New(server.Options{Trigger: func(task string) error {
		calls = append(calls, task)
		if task == "busy" {
			return schedule.ErrRunning
		}
		return nil
	}})
	st.ConfigLoaded("cfg.yaml", []server.TaskInfo{{Name: "a"}, {Name: "busy"}})
	h := st.Handler()
	tp, _ := st.TaskPage("a")
	token := tp.CSRF
	_, body := get(t, h, "/")
	if !strings.Contains(body, token) || !strings.Contains(body, "Run now") {
		t.Fatal("the page has no run now form with the token")
	}
	good := url.Values{"csrf": {token}}
	for _, c := range []struct {
		name, origin, site string
		form               url.Values
	}{
		{"cross-site fetch", "", "cross-site", good},
		{"same-site other origin", "", "same-site", good},
		{"foreign Origin", "https://evil.example", "", good},
		{"no token", "", "same-origin", nil},
		{"wrong token", "", "same-origin", url.Values{"csrf": {strings.Repeat("0", len(token))}}},
	} {
		if rec := post(h, "/tasks/a/run", c.origin, c.site, c.form); rec.Code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", c.name, rec.Code)
		}
	}
	if len(calls) != 0 {
		t.Fatalf("a refused request reached the scheduler: %v", calls)
	}
	rec := post(h, "/tasks/a/run", "http://example.com", "same-origin", good)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/tasks/a" {
		t.Errorf("same origin with token: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if rec := post(h, "/tasks/busy/run", "", "", good); rec.Code != http.StatusConflict {
		t.Errorf("busy task: %d, want 409", rec.Code)
	}
	if fmt.Sprint(calls) != "[a busy]" {
		t.Errorf("trigger calls %v", calls)
	}
}

// TestRunNowNeverOverlaps: with the real scheduler, POSTs racing each
// other and a run in flight start exactly one run at a time.
func TestRunNowNeverOverlaps(t *testing.T) {
	sched := schedule.New(schedule.Options{})
	st := server.New(server.Options{Scheduler: sched, Trigger: sched.Trigger})
	var running, maxRunning, runs atomic.Int32
	release := make(chan struct{})
	startedRun := make(chan struct{}, 10)
	sched.Update([]schedule.Job{{Name: "a", Spec: schedule.Spec{Cron: mustCron(t, "0 0 1 1 *")}, Fingerprint: "x", Run: func(context.Context) {
		n := running.Add(1)
		for m := maxRunning.Load(); n > m && !maxRunning.CompareAndSwap(m, n); m = maxRunning.Load() {
		}
		runs.Add(1)
		startedRun <- struct{}{}
		<-release
		running.Add(-1)
	}}})
	st.ConfigLoaded("cfg.yaml", []server.TaskInfo{{Name: "a"}})
	ctx, cancel := context.WithCancel(context.Background())
	schedDone := make(chan struct{})
	go func() { sched.Run(ctx); close(schedDone) }()
	defer func() { cancel(); <-schedDone }()

	h := st.Handler()
	tp, _ := st.TaskPage("a")
	form := url.Values{"csrf": {tp.CSRF}}
	codes := make([]int, 8)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i] = post(h, "/tasks/a/run", "", "same-origin", form).Code }()
	}
	wg.Wait()
	select {
	case <-startedRun:
	case <-time.After(10 * time.Second):
		t.Fatal("no run started")
	}
	accepted := 0
	for _, c := range codes {
		switch c {
		case http.StatusSeeOther:
			accepted++
		case http.StatusConflict:
		default:
			t.Errorf("unexpected answer %d", c)
		}
	}
	if accepted != 1 {
		t.Errorf("%d of %d racing POSTs were accepted (%v), want 1", accepted, len(codes), codes)
	}
	if c := post(h, "/tasks/a/run", "", "same-origin", form).Code; c != http.StatusConflict {
		t.Errorf("POST while running: %d, want 409", c)
	}
	close(release)
	// After the run, a new POST is accepted again.
	deadline := time.Now().Add(10 * time.Second)
	for running.Load() != 0 || post(h, "/tasks/a/run", "", "same-origin", form).Code != http.StatusSeeOther {
		if time.Now().After(deadline) {
			t.Fatal("no run accepted after the first ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-startedRun:
	case <-time.After(10 * time.Second):
		t.Fatal("the second run did not start")
	}
	if maxRunning.Load() != 1 || runs.Load() != 2 {
		t.Errorf("runs %d, at most %d at once; want 2, 1", runs.Load(), maxRunning.Load())
	}
	if c := post(h, "/tasks/nope/run", "", "same-origin", form).Code; c != http.StatusNotFound {
		t.Errorf("unknown task: %d, want 404", c)
	}
}

func mustCron(t *testing.T, expr string) *schedule.Cron {
	t.Helper()
	c, err := schedule.ParseCron(expr)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// hostileRun finishes a run of task whose failures carry what a registry
// may send: markup, an upload URL with its state token, credentials in a
// URL and terminal escapes.
func hostileRun(st *server.State, task string, started time.Time, failures int) {
	rep := &engine.Report{}
	for i := range failures {
		rep.Results = append(rep.Results, engine.Result{Task: task, Source: fmt.Sprintf("src.example/app:<b>%d</b>", i), Tag: "<b>x</b>", Status: engine.Failed,
			Err: errors.New(`PUT https://bob:hunter2@dst.example/v2/app/blobs/uploads/u1?_state=SECRETSTATE&digest=sha256:1: <script>alert(1)</script> ` + "\x1b[31m" + strings.Repeat("very long reason ", 40))})
	}
	rep.Results = append(rep.Results, engine.Result{Task: task, Source: "src.example/app:ok", Status: engine.Copied, Bytes: 1 << 20})
	for _, r := range rep.Results {
		st.Result(r)
	}
	st.RunFinished(task, rep, started, false)
}

// TestPageEscapesAndHidesSecrets: outside text reaches the page escaped,
// without URL queries or credentials.
func TestPageEscapesAndHidesSecrets(t *testing.T) {
	st := server.New(server.Options{Trigger: func(string) error { return nil }})
	st.ConfigLoaded("cfg.yaml", []server.TaskInfo{{Name: `we<i>rd/na me`, Source: "src.example", Target: "dst.example"}})
	hostileRun(st, `we<i>rd/na me`, time.Now().Add(-time.Minute), 2)
	h := st.Handler()
	for _, path := range []string{"/", "/tasks/" + url.PathEscape(`we<i>rd/na me`), "/tasks/" + url.PathEscape(`we<i>rd/na me`) + ".json"} {
		code, body := get(t, h, path)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		for _, bad := range []string{"SECRETSTATE", "hunter2", "<script>alert", "<b>", "<i>", "\x1b"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s shows %q", path, bad)
			}
		}
		if !strings.Contains(body, "dst.example/v2/app/blobs/uploads/u1") {
			t.Errorf("%s lost the URL's path", path)
		}
	}
	_, body := get(t, h, "/")
	if !strings.Contains(body, `href="tasks/we%3Ci%3Erd%2Fna%20me"`) || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("task link or escaped reason missing:\n%s", body)
	}
}

// TestPageSize: five tasks with a full history of failing runs stay below
// 100 KB.
func TestPageSize(t *testing.T) {
	st := server.New(server.Options{Trigger: func(string) error { return nil }})
	var infos []server.TaskInfo
	for i := range 5 {
		infos = append(infos, server.TaskInfo{Name: fmt.Sprintf("task-%d", i), Source: "registry.hub.docker.com", Target: "harbor.example.com"})
	}
	st.ConfigLoaded("cfg.yaml", infos)
	start := time.Now().Add(-100 * time.Hour)
	for run := range server.DefaultHistoryRuns + 5 {
		for _, ti := range infos {
			hostileRun(st, ti.Name, start.Add(time.Duration(run)*time.Hour), 12)
		}
	}
	_, body := get(t, st.Handler(), "/")
	if tv := taskView(t, st.Page(), "task-0"); len(tv.History) != server.DefaultHistoryRuns || len(tv.Failures) != 10 || tv.MoreFailed != 2 {
		t.Fatalf("history %d, failures %d + %d", len(tv.History), len(tv.Failures), tv.MoreFailed)
	}
	if n := strings.Count(body, `<g class="run">`); n != 5*server.DefaultHistoryRuns {
		t.Errorf("%d bars, want %d", n, 5*server.DefaultHistoryRuns)
	}
	if len(body) >= 100<<10 {
		t.Errorf("the page is %d bytes, want < 100 KB", len(body))
	}
	t.Logf("page: %d bytes", len(body))
	if d := os.Getenv("DUMP_PAGE"); d != "" {
		_ = os.WriteFile(d, []byte(body), 0o644)
	}
}

// TestPageShowsReloadError: a failed reload shows with file:line, the last
// good configuration still in force.
func TestPageShowsReloadError(t *testing.T) {
	st := server.New(server.Options{})
	st.ConfigLoaded("/etc/regmirror.yaml", []server.TaskInfo{{Name: "a"}})
	st.ConfigFailed("/etc/regmirror.yaml", &config.Error{File: "/etc/regmirror.yaml", Line: 9, Msg: `unknown key "intervall" in task`})
	p := st.Page()
	if p.Config.File != "/etc/regmirror.yaml" || p.Config.ReloadOK || p.Config.Loaded == nil || p.Config.LastReload == nil ||
		!strings.Contains(p.Config.ReloadError, `/etc/regmirror.yaml:9: unknown key "intervall"`) {
		t.Fatalf("config view %+v", p.Config)
	}
	_, body := get(t, st.Handler(), "/")
	if !strings.Contains(body, `<p class="error" role="alert">/etc/regmirror.yaml:9: unknown key &#34;intervall&#34; in task</p>`) ||
		!strings.Contains(body, "the last good configuration stays in force") {
		t.Errorf("the page does not show the reload error:\n%s", body)
	}
}

// TestPageShowsOpenBreaker: a registry that refuses connections opens its
// circuit breaker, and the registries table says so in words.
func TestPageShowsOpenBreaker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there any more: connection refused
	dst := regtest.New(t)
	m := transport.DefaultHosts()
	st := server.New(server.Options{Hosts: m.Status})
	st.ConfigLoaded("cfg.yaml", []server.TaskInfo{{Name: "dead", Source: dead, Target: dst.Host}})
	tags, _ := filter.ParseTags([]string{"1", "2", "3", "4", "5", "6", "7", "8"})
	eng := engine.New(engine.Options{Registry: registry.Options{Hosts: m}, OnResult: st.Result, Attempts: 1, Jobs: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	started := time.Now()
	rep := eng.Run(st.Follow(ctx, "dead"), []engine.Task{{Name: "dead", Source: registry.Endpoint{Registry: dead, PlainHTTP: true},
		Target: registry.Endpoint{Registry: dst.Host, PlainHTTP: true}, Mappings: []engine.Mapping{{From: "app", To: "app", Tags: tags}}}})
	st.RunFinished("dead", rep, started, false)
	var rv *server.RegistryView
	for _, r := range st.Page().Registries {
		if r.Host == dead {
			rv = &r
		}
	}
	if rv == nil {
		t.Fatalf("the dead registry is not on the page: %+v", st.Page().Registries)
	}
	if rv.Breaker != "open" || !strings.Contains(rv.BreakerText, "requests not sent") {
		t.Errorf("breaker %q (%s), want open", rv.Breaker, rv.BreakerText)
	}
	_, body := get(t, st.Handler(), "/")
	if !strings.Contains(body, `<span class="result result-failed">open</span>`) {
		t.Error("the page does not say the breaker is open")
	}
}
