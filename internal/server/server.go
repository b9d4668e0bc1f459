// Package server is the daemon's window: the status page (/ and
// /tasks/NAME, HTML with JSON twins), /healthz, /readyz, /metrics
// (Prometheus text format) and /status (JSON). It keeps what the daemon
// reports about itself: the configuration in force and the last reload
// error, per task the run in flight, the last run with every image's
// result, the next run, counts, the last errors and a bounded history of
// runs (in memory, or in a state directory so it survives a restart). The
// daemon feeds it (engine results, run starts and ends, reloads); the
// server never starts or changes anything, except that a "run now" POST,
// when the daemon allows it, asks the scheduler for a run.
//
// Nothing it shows holds a secret: tasks are shown by name, registries and
// repositories; configuration errors never quote secrets (see package
// config); text from registries loses URL queries and user information
// (safeText) and is escaped by html/template.
package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/schedule"
)

// maxLastErrors is how many errors /status keeps per task.
const maxLastErrors = 10

// Scheduler is what the server reads from the scheduler.
type Scheduler interface {
	States() []schedule.TaskState
	Running() bool
}

// Options configure a State.
type Options struct {
	// Scheduler tells the next runs and whether scheduling is on.
	Scheduler Scheduler
	// RateLimits and Pulls report per registry host (the engine's
	// transport.Hosts); either may be nil.
	RateLimits func() map[string]transport.RateLimitReading
	Pulls      func() map[string]int
	// Hosts reports every registry host's status for the page
	// (transport.Hosts.Status); nil shows none.
	Hosts func() []transport.HostStatus
	// Trigger queues a run of a task now (schedule.Scheduler.Trigger);
	// nil turns the page's "run now" off and POSTs are refused.
	Trigger func(task string) error
	// StateDir, when set, keeps each task's history in a file there, so
	// it survives a restart; HistoryRuns is how many runs per task are
	// kept (default DefaultHistoryRuns).
	StateDir    string
	HistoryRuns int
	// Logger receives problems writing the history; nil discards.
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// TaskInfo describes a configured task.
type TaskInfo struct {
	Name   string
	Source string
	Target string
}

// State is the daemon's reported state and metrics. Its methods are safe
// for concurrent use.
type State struct {
	sched   Scheduler
	now     func() time.Time
	metrics *metrics
	hosts   func() []transport.HostStatus
	trigger func(string) error
	hist    *history
	log     *slog.Logger
	// csrf is the per-process token a "run now" form must send back.
	csrf string

	mu     sync.Mutex
	config configStatus
	loaded bool
	tasks  map[string]*taskStatus
	live   map[string]*liveRun
	images map[string][]ImageResult // every image of each task's last run
}

// New returns a State with no configuration loaded.
func New(o Options) *State {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &State{sched: o.Scheduler, now: o.Now, metrics: newMetrics(o.RateLimits, o.Pulls), tasks: map[string]*taskStatus{},
		hosts: o.Hosts, trigger: o.Trigger, hist: newHistory(o.StateDir, o.HistoryRuns), log: o.Logger, csrf: newToken(),
		live: map[string]*liveRun{}, images: map[string][]ImageResult{}}
}

// Status is the /status document.
type Status struct {
	Ready  bool         `json:"ready"`
	Config configStatus `json:"config"`
	Tasks  []taskStatus `json:"tasks"`
}

type configStatus struct {
	File string `json:"file"`
	// Loaded is when the configuration in force was loaded.
	Loaded *time.Time `json:"loaded,omitempty"`
	// LastReload is the outcome of the last load attempt.
	LastReload     *reloadStatus `json:"last_reload,omitempty"`
	ReloadFailures int           `json:"reload_failures"`
}

type reloadStatus struct {
	Time  time.Time `json:"time"`
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
}

type taskStatus struct {
	Name        string      `json:"name"`
	Schedule    string      `json:"schedule"`
	Source      string      `json:"source"`
	Target      string      `json:"target"`
	Running     bool        `json:"running"`
	NextRun     *time.Time  `json:"next_run"`
	LastRun     *runStatus  `json:"last_run"`
	LastSuccess *time.Time  `json:"last_success"`
	Runs        int         `json:"runs"`
	SkippedRuns int         `json:"skipped_runs"`
	Totals      counts      `json:"totals"`
	LastErrors  []errStatus `json:"last_errors"`
}

type runStatus struct {
	Started         time.Time `json:"started"`
	Finished        time.Time `json:"finished"`
	DurationSeconds float64   `json:"duration_seconds"`
	Result          string    `json:"result"`
	counts
}

type counts struct {
	Copied  int   `json:"copied"`
	Skipped int   `json:"skipped"`
	Failed  int   `json:"failed"`
	Bytes   int64 `json:"bytes"`
}

type errStatus struct {
	Time   time.Time `json:"time"`
	Source string    `json:"source,omitempty"`
	Target string    `json:"target,omitempty"`
	Tag    string    `json:"tag,omitempty"`
	Error  string    `json:"error"`
}

// ConfigLoaded records that the configuration in file was loaded and is in
// force with these tasks. Tasks that are gone are forgotten.
func (s *State) ConfigLoaded(file string, tasks []TaskInfo) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loaded = true
	s.config.File = file
	s.config.Loaded = &now
	s.config.LastReload = &reloadStatus{Time: now, OK: true}
	s.metrics.reloadOK.Set(1)
	s.metrics.reloadOKTime.Set(float64(now.UnixNano()) / 1e9)
	keep := map[string]bool{}
	for _, t := range tasks {
		keep[t.Name] = true
		ts := s.tasks[t.Name]
		if ts == nil {
			ts = &taskStatus{Name: t.Name, LastErrors: []errStatus{}}
			s.tasks[t.Name] = ts
			s.metrics.addTask(t.Name)
			if err := s.hist.load(t.Name); err != nil {
				s.log.Warn("history not loaded; it starts empty", "task", t.Name, "error", err)
			}
		}
		ts.Source, ts.Target = t.Source, t.Target
	}
	for name := range s.tasks {
		if !keep[name] {
			delete(s.tasks, name)
			delete(s.images, name)
			s.hist.forget(name)
			s.metrics.removeTask(name)
		}
	}
}

// ConfigFailed records a configuration (re)load that failed; the last good
// configuration, if any, stays in force.
func (s *State) ConfigFailed(file string, err error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.config.File == "" {
		s.config.File = file
	}
	s.config.LastReload = &reloadStatus{Time: now, Error: err.Error()}
	s.config.ReloadFailures++
	s.metrics.reloadFailures.Inc()
	s.metrics.reloadOK.Set(0)
}

// Result records one image's outcome (engine.Options.OnResult).
func (s *State) Result(r engine.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.tasks[r.Task]
	if ts == nil {
		return // removed meanwhile: its series are gone and stay gone
	}
	if lr := s.live[r.Task]; lr != nil {
		lr.finished(r)
	}
	s.metrics.images.WithLabelValues(r.Task, string(r.Status)).Inc()
	if r.Bytes > 0 {
		s.metrics.bytes.WithLabelValues(r.Task).Add(float64(r.Bytes))
	}
	switch r.Status {
	case engine.Copied:
		ts.Totals.Copied++
	case engine.Skipped:
		ts.Totals.Skipped++
	case engine.Failed:
		ts.Totals.Failed++
	}
	ts.Totals.Bytes += r.Bytes
	if r.Err != nil {
		e := errStatus{Time: s.now(), Source: r.Source, Target: r.Target, Tag: r.Tag, Error: r.Err.Error()}
		ts.LastErrors = append([]errStatus{e}, ts.LastErrors...)
		if len(ts.LastErrors) > maxLastErrors {
			ts.LastErrors = ts.LastErrors[:maxLastErrors]
		}
	}
}

// RunFinished records the end of a task's run. cancelled is true when the
// run was stopped (reload or shutdown) before it finished.
func (s *State) RunFinished(task string, rep *engine.Report, started time.Time, cancelled bool) {
	finished := s.now()
	var c counts
	for _, sum := range rep.Summaries() {
		c.Copied += sum.Copied
		c.Skipped += sum.Skipped
		c.Failed += sum.Failed
		c.Bytes += sum.Bytes
	}
	result := runOK
	switch {
	case cancelled:
		result = runCancelled
	case c.Failed > 0:
		result = runFailed
	}
	dur := finished.Sub(started)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.live, task)
	ts := s.tasks[task]
	if ts == nil {
		return
	}
	s.recordRun(task, rep, RunRecord{Started: started, Finished: finished, Result: result, counts: c})
	s.metrics.runs.WithLabelValues(task, result).Inc()
	s.metrics.runDuration.WithLabelValues(task).Observe(dur.Seconds())
	if result == runOK {
		s.metrics.lastSuccess.WithLabelValues(task).Set(float64(finished.UnixNano()) / 1e9)
		ts.LastSuccess = &finished
	}
	ts.Runs++
	ts.LastRun = &runStatus{Started: started, Finished: finished, DurationSeconds: dur.Seconds(), Result: result, counts: c}
}

// RunSkipped records a run not started because the previous one was still
// going (schedule.Options.OnSkip).
func (s *State) RunSkipped(task string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts := s.tasks[task]; ts != nil {
		ts.SkippedRuns++
		s.metrics.runsSkipped.WithLabelValues(task).Inc()
	}
}

// Ready reports whether a configuration is loaded and the scheduler runs.
func (s *State) Ready() bool {
	s.mu.Lock()
	loaded := s.loaded
	s.mu.Unlock()
	return loaded && s.sched != nil && s.sched.Running()
}

// Status returns the /status document.
func (s *State) Status() Status {
	var states []schedule.TaskState
	if s.sched != nil {
		states = s.sched.States()
	}
	ready := s.Ready()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Ready: ready, Config: s.config, Tasks: []taskStatus{}}
	if st.Config.LastReload != nil {
		lr := *st.Config.LastReload
		st.Config.LastReload = &lr
	}
	byName := map[string]schedule.TaskState{}
	for _, ts := range states {
		byName[ts.Name] = ts
	}
	for _, ts := range s.tasks {
		t := *ts
		t.LastErrors = slices.Clone(ts.LastErrors)
		if ss, ok := byName[t.Name]; ok {
			t.Schedule, t.Running = ss.Spec, ss.Running
			if !ss.Next.IsZero() {
				next := ss.Next
				t.NextRun = &next
			}
		}
		st.Tasks = append(st.Tasks, t)
	}
	slices.SortFunc(st.Tasks, func(a, b taskStatus) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return st
}

// Handler serves the status page (/, /tasks/NAME, /tasks/NAME.json,
// POST /tasks/NAME/run), /healthz, /readyz, /metrics and /status.
func (s *State) Handler() http.Handler {
	mux := http.NewServeMux()
	s.pageRoutes(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !s.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: no configuration loaded or scheduler not running\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.Status())
	})
	return mux
}
