package server

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/regmirror/regmirror/internal/registry/transport"
)

// The status page's view model: what a person sees, computed from the
// State in one place, so that the HTML templates only lay it out and the
// JSON twins say the same thing.

// Task states shown on the page.
const (
	StateIdle    = "idle"
	StateRunning = "running"
	StateWaiting = "waiting"
)

// maxPageFailures is how many failures of a task's last run the front page
// lists; the task's own page lists them all.
// and the front page cuts their reasons at maxPageReason bytes, so that it
// stays small (under 100 KB for five tasks with full histories).
const (
	maxPageFailures = 10
	maxPageReason   = 200
)

// Page is the front page.
type Page struct {
	Now         time.Time      `json:"now"`
	Ready       bool           `json:"ready"`
	Config      ConfigView     `json:"config"`
	Tasks       []TaskView     `json:"tasks"`
	Registries  []RegistryView `json:"registries"`
	HistoryRuns int            `json:"history_runs"`
	// Trigger is true when "run now" is allowed; CSRF is the form token.
	Trigger bool   `json:"-"`
	CSRF    string `json:"-"`
}

// ConfigView is the configuration file and how its last load went.
type ConfigView struct {
	File           string     `json:"file"`
	Loaded         *time.Time `json:"loaded,omitempty"`
	LastReload     *time.Time `json:"last_reload,omitempty"`
	ReloadOK       bool       `json:"reload_ok"`
	ReloadError    string     `json:"reload_error,omitempty"`
	ReloadFailures int        `json:"reload_failures"`
}

// TaskView is one task on the page.
type TaskView struct {
	Name     string `json:"name"`
	Source   string `json:"source"`
	Target   string `json:"target"`
	Schedule string `json:"schedule"`
	// State is idle, running or waiting (running, and a registry the task
	// talks to asked to wait); StateText says it in words.
	State       string        `json:"state"`
	StateText   string        `json:"state_text"`
	NextRun     *time.Time    `json:"next_run"`
	Current     *CurrentRun   `json:"current,omitempty"`
	LastRun     *RunView      `json:"last_run"`
	Failures    []FailureView `json:"failures"`
	MoreFailed  int           `json:"more_failures,omitempty"`
	History     []RunView     `json:"history"`
	Chart       Chart         `json:"-"`
	SkippedRuns int           `json:"skipped_runs"`
}

// CurrentRun is a run in flight.
type CurrentRun struct {
	Started time.Time `json:"started"`
	// Planned is false while the images are still being listed.
	Planned  bool     `json:"planned"`
	Done     int      `json:"done"`
	Selected int      `json:"selected"`
	Bytes    int64    `json:"bytes"`
	Rate     int64    `json:"bytes_per_second"`
	InFlight []string `json:"in_flight"`
	// Waiting lists the task's registries that asked to wait, and until
	// when.
	Waiting []Wait `json:"waiting,omitempty"`
}

// Wait is a registry asking to wait (a 429's Retry-After, or the
// min-remaining rate-limit hold) until a time.
type Wait struct {
	Host  string    `json:"host"`
	Until time.Time `json:"until"`
}

// RunView is one finished run.
type RunView struct {
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Duration time.Duration `json:"duration_ns"`
	Result   string        `json:"result"`
	counts
}

// FailureView is an image that failed in the last run. Persistent says it
// failed in the runs before too, since FirstSeen.
type FailureView struct {
	Image      string    `json:"image"`
	Reason     string    `json:"reason"`
	FirstSeen  time.Time `json:"first_seen"`
	Persistent bool      `json:"persistent"`
}

// RegistryView is one registry host.
type RegistryView struct {
	Host string `json:"host"`
	// RateLimit is the last reading ("42 of 100 left"), "" when the host
	// sent none.
	RateLimit  string     `json:"rate_limit,omitempty"`
	Pulls      int        `json:"pulls"`
	PullsToday int        `json:"pulls_today"`
	InFlight   int        `json:"in_flight"`
	WaitUntil  *time.Time `json:"wait_until,omitempty"`
	// Breaker is the host's circuit breaker: "closed", or "open" with
	// BreakerText saying why and how many requests were not sent.
	Breaker     string `json:"breaker"`
	BreakerText string `json:"breaker_text,omitempty"`
}

// TaskPage is /tasks/NAME: the task and every image of its last run.
type TaskPage struct {
	Now    time.Time     `json:"now"`
	Task   TaskView      `json:"task"`
	Images []ImageResult `json:"images"`
	// Trigger and CSRF as on Page.
	Trigger bool   `json:"-"`
	CSRF    string `json:"-"`
}

// Page returns the front page's data.
func (s *State) Page() Page {
	st := s.Status()
	now := s.now()
	var hosts []transport.HostStatus
	if s.hosts != nil {
		hosts = s.hosts()
	}
	p := Page{Now: now, Ready: st.Ready, HistoryRuns: s.hist.limit, Trigger: s.trigger != nil, CSRF: s.csrf,
		Config: ConfigView{File: st.Config.File, Loaded: st.Config.Loaded, ReloadFailures: st.Config.ReloadFailures},
		Tasks:  []TaskView{}, Registries: []RegistryView{}}
	if lr := st.Config.LastReload; lr != nil {
		t := lr.Time
		p.Config.LastReload, p.Config.ReloadOK, p.Config.ReloadError = &t, lr.OK, lr.Error
	}
	for _, ts := range st.Tasks {
		tv := s.taskView(ts, now, hosts)
		if len(tv.Failures) > maxPageFailures {
			tv.MoreFailed += len(tv.Failures) - maxPageFailures
			tv.Failures = tv.Failures[:maxPageFailures]
		}
		for i := range tv.Failures {
			tv.Failures[i].Reason = safeText(tv.Failures[i].Reason, maxPageReason)
		}
		p.Tasks = append(p.Tasks, tv)
	}
	for _, h := range hosts {
		rv := RegistryView{Host: h.Host, Pulls: h.Pulls, PullsToday: h.PullsToday, InFlight: h.InFlight}
		if h.RateLimit != nil {
			rv.RateLimit = fmt.Sprintf("%d left", h.RateLimit.Remaining)
			if h.RateLimit.Limit > 0 {
				rv.RateLimit = fmt.Sprintf("%d of %d left", h.RateLimit.Remaining, h.RateLimit.Limit)
			}
		}
		if h.WaitUntil.After(now) {
			w := h.WaitUntil
			rv.WaitUntil = &w
		}
		rv.Breaker, rv.BreakerText = breakerView(h.Breaker)
		p.Registries = append(p.Registries, rv)
	}
	return p
}

// TaskPage returns /tasks/NAME's data; false when there is no such task.
func (s *State) TaskPage(name string) (TaskPage, bool) {
	st := s.Status()
	i := slices.IndexFunc(st.Tasks, func(t taskStatus) bool { return t.Name == name })
	if i < 0 {
		return TaskPage{}, false
	}
	now := s.now()
	var hosts []transport.HostStatus
	if s.hosts != nil {
		hosts = s.hosts()
	}
	tp := TaskPage{Now: now, Task: s.taskView(st.Tasks[i], now, hosts), Trigger: s.trigger != nil, CSRF: s.csrf}
	s.mu.Lock()
	tp.Images = slices.Clone(s.images[name])
	s.mu.Unlock()
	if tp.Images == nil {
		tp.Images = []ImageResult{}
	}
	persistent := map[string]bool{}
	for _, f := range tp.Task.Failures {
		persistent[f.Image] = f.Persistent
	}
	for i := range tp.Images {
		tp.Images[i].Persistent = persistent[tp.Images[i].Source]
	}
	return tp, true
}

func (s *State) taskView(ts taskStatus, now time.Time, hosts []transport.HostStatus) TaskView {
	tv := TaskView{Name: ts.Name, Source: ts.Source, Target: ts.Target, Schedule: ts.Schedule, NextRun: ts.NextRun,
		SkippedRuns: ts.SkippedRuns, State: StateIdle, Failures: []FailureView{}, History: []RunView{}}
	runs := s.hist.list(ts.Name)
	for _, r := range runs {
		tv.History = append(tv.History, runView(r))
	}
	if len(runs) > 0 {
		last := runs[len(runs)-1]
		lv := runView(last)
		tv.LastRun = &lv
		for _, f := range last.Failures {
			tv.Failures = append(tv.Failures, FailureView{Image: f.Image, Reason: f.Reason, FirstSeen: f.FirstSeen,
				Persistent: f.FirstSeen.Before(last.Started)})
		}
		tv.MoreFailed = last.MoreFailures
	}
	tv.Chart = newChart(runs, s.hist.limit)

	s.mu.Lock()
	lr, live := s.live[ts.Name]
	var cur liveRun
	if live {
		cur = lr.snapshot()
	}
	s.mu.Unlock()
	if !live && !ts.Running {
		tv.StateText = "idle"
		return tv
	}
	tv.State = StateRunning
	c := &CurrentRun{Started: now, InFlight: []string{}}
	if live {
		c.Started, c.Planned, c.Done, c.Selected, c.Bytes = cur.started, cur.planned, cur.done, cur.selected, cur.bytes
		c.InFlight = cur.inFlightList()
		if el := now.Sub(cur.started); el >= time.Second {
			c.Rate = int64(float64(cur.bytes) / el.Seconds())
		}
	}
	for _, h := range hosts {
		if h.WaitUntil.After(now) && (sameRegistry(h.Host, ts.Source) || sameRegistry(h.Host, ts.Target)) {
			c.Waiting = append(c.Waiting, Wait{Host: h.Host, Until: h.WaitUntil})
		}
	}
	tv.Current = c
	switch {
	case len(c.Waiting) > 0:
		tv.State = StateWaiting
		w := c.Waiting[0]
		tv.StateText = fmt.Sprintf("waiting on the rate limit of %s until %s", w.Host, w.Until.UTC().Format(time.TimeOnly)+" UTC")
	case !c.Planned:
		tv.StateText = "running: listing images"
	default:
		tv.StateText = fmt.Sprintf("running: %d of %d images", c.Done, c.Selected)
	}
	return tv
}

// breakerView says a host's circuit breaker state in words.
func breakerView(b *transport.BreakerState) (state, text string) {
	switch {
	case b == nil:
		return "closed", ""
	case b.Open:
		return "open", safeText(fmt.Sprintf("%s; %d requests not sent", b.Cause, b.Rejected), maxPageReason)
	case b.Failures > 0:
		return "closed", safeText(fmt.Sprintf("%d failures in a row: %s", b.Failures, b.Cause), maxPageReason)
	}
	return "closed", ""
}

func runView(r RunRecord) RunView {
	return RunView{Started: r.Started, Finished: r.Finished, Duration: r.Duration(), Result: r.Result, counts: r.counts}
}

// dockerHub are the names of Docker Hub's registry: a task written with
// one of them sends its requests to another.
var dockerHub = []string{"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}

// sameRegistry reports whether requests to host are requests to the
// configured registry name.
func sameRegistry(host, configured string) bool {
	host, configured = strings.ToLower(host), strings.ToLower(configured)
	// A configured registry may carry a scheme ("http://") or a path.
	if _, rest, ok := strings.Cut(configured, "://"); ok {
		configured = rest
	}
	configured, _, _ = strings.Cut(configured, "/")
	if host == configured {
		return true
	}
	return slices.Contains(dockerHub, host) && slices.Contains(dockerHub, configured)
}
