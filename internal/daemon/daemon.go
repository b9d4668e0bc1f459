// Package daemon is regmirror's long-running mode (`regmirror serve`): it
// puts a configuration in force (apply), runs each task on its interval or
// schedule through one engine, reloads the configuration on SIGHUP and,
// with `watch: true`, when the file changes (reload, watch), and decides
// which tasks a reload changed (Fingerprint). It feeds internal/server's
// State and serves its HTTP endpoints.
//
// It owns no copy logic and no flags: the command line (internal/cli)
// builds the engine and says how a configuration becomes engine tasks.
// It may import config, engine, registry/transport, schedule and server; nothing
// imports it but cli.
package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/regmirror/regmirror/internal/config"
	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/schedule"
	"github.com/regmirror/regmirror/internal/server"
)

// Options configure a Daemon.
type Options struct {
	// Logger receives the daemon's lines; nil discards.
	Logger *slog.Logger
	// Path is the configuration file, read again on every reload.
	Path string
	// Tasks turns a loaded configuration into the engine tasks to run,
	// in the order of cfg.Tasks (the command line's conversion, insecure
	// registries marked).
	Tasks func(cfg *config.Config) ([]engine.Task, error)
	// RateLimits and Pulls report per registry host for /metrics (the
	// engine's transport.Hosts); either may be nil.
	RateLimits func() map[string]transport.RateLimitReading
	Pulls      func() map[string]int
	// Hosts reports every registry host's status for the status page
	// (transport.Hosts.Status); nil shows none.
	Hosts func() []transport.HostStatus
	// StateDir, when set, keeps each task's run history there so it
	// survives a restart; HistoryRuns is how many runs per task are kept
	// (default server.DefaultHistoryRuns).
	StateDir    string
	HistoryRuns int
	// AllowTrigger turns on the status page's "run now"
	// (POST /tasks/NAME/run), which queues a run through the scheduler.
	AllowTrigger bool
	// OnRun, when set, is called after every run of a task, cancelled
	// runs included, once the State has recorded it.
	OnRun func(Run)
}

// Run is what one run of one task did.
type Run struct {
	Task      string
	Started   time.Time
	Duration  time.Duration
	Cancelled bool
	Report    *engine.Report
}

// Daemon ties the configuration file to the scheduler, the engine and the
// HTTP state.
type Daemon struct {
	o     Options
	log   *slog.Logger
	eng   *engine.Engine
	sched *schedule.Scheduler
	state *server.State

	reloadMu sync.Mutex // one load at a time
	lastRead [sha256.Size]byte
	watch    atomic.Bool // the configuration in force has watch: true
	transfer int         // transfers: at start; a reload cannot change it
}

// New returns a daemon with no configuration in force. Its Result method
// is the engine's OnResult: build the engine with it, then call Run.
func New(o Options) *Daemon {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Daemon{o: o, log: log}
	d.sched = schedule.New(schedule.Options{Logger: log, OnSkip: func(task string) { d.state.RunSkipped(task) }})
	so := server.Options{Scheduler: d.sched, RateLimits: o.RateLimits, Pulls: o.Pulls, Hosts: o.Hosts,
		StateDir: o.StateDir, HistoryRuns: o.HistoryRuns, Logger: log}
	if o.AllowTrigger {
		so.Trigger = d.sched.Trigger
	}
	d.state = server.New(so)
	return d
}

// State is what the daemon reports about itself (/status, /metrics).
func (d *Daemon) State() *server.State { return d.state }

// Result records one image's result; it is the engine's OnResult.
func (d *Daemon) Result(r engine.Result) { d.state.Result(r) }

// Run puts cfg in force, serves the HTTP endpoints on ln and runs tasks
// with eng until ctx ends; then it cancels the runs in flight, waits for
// them and returns nil. An error means cfg could not be put in force; ln
// is closed either way.
func (d *Daemon) Run(ctx context.Context, eng *engine.Engine, cfg *config.Config, ln net.Listener) error {
	d.eng = eng
	d.transfer = cfg.Transfers
	if b, err := os.ReadFile(d.o.Path); err == nil {
		d.lastRead = sha256.Sum256(b)
	}
	if err := d.apply(cfg, "start"); err != nil {
		ln.Close()
		return err
	}

	srv := &http.Server{Handler: d.state.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("HTTP server stopped", "error", err)
		}
	}()
	d.log.Info("serving", "listen", ln.Addr().String(), "config", d.o.Path, "tasks", len(cfg.Tasks), "watch", cfg.Watch)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); d.watchFile(bg) }()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-bg.Done():
				return
			case <-hup:
				d.reload("SIGHUP", false)
			}
		}
	}()

	go func() {
		<-ctx.Done()
		d.log.Info("shutting down: no new runs, cancelling runs in flight")
	}()
	d.sched.Run(ctx) // until SIGTERM/SIGINT; cancels and waits for runs
	stopBG()
	wg.Wait()
	shutdown, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	d.log.Info("stopped")
	return nil
}

// apply puts a loaded configuration in force.
func (d *Daemon) apply(cfg *config.Config, reason string) error {
	tasks, err := d.o.Tasks(cfg)
	if err != nil {
		return err
	}
	jobs := make([]schedule.Job, 0, len(tasks))
	infos := make([]server.TaskInfo, 0, len(tasks))
	for i, t := range cfg.Tasks {
		spec := t.Spec()
		et := tasks[i]
		jobs = append(jobs, schedule.Job{Name: t.Name, Spec: spec, Fingerprint: Fingerprint(et, spec), Run: d.runner(et)})
		infos = append(infos, server.TaskInfo{Name: t.Name, Source: t.Source.Registry, Target: t.Target.Registry})
	}
	d.state.ConfigLoaded(cfg.File, infos)
	for _, c := range d.sched.Update(jobs) {
		lvl := slog.LevelInfo
		if c.Kind == schedule.Kept {
			lvl = slog.LevelDebug
		}
		attrs := []any{"task", c.Name, "reason", reason}
		if c.Running && (c.Kind == schedule.Changed || c.Kind == schedule.Removed) {
			attrs = append(attrs, "cancelled_run", true)
		}
		d.log.Log(context.Background(), lvl, "task "+string(c.Kind), attrs...)
	}
	d.watch.Store(cfg.Watch)
	if cfg.Transfers != d.transfer {
		d.log.Warn("transfers changed: the new limit takes effect at the next start", "transfers", cfg.Transfers)
	}
	return nil
}

// runner returns the function that runs one task once.
func (d *Daemon) runner(t engine.Task) func(context.Context) {
	return func(ctx context.Context) {
		start := time.Now()
		d.log.Info("run started", "task", t.Name)
		// Followed by the state: the status page shows the run in flight.
		rep := d.eng.Run(d.state.Follow(ctx, t.Name), []engine.Task{t})
		cancelled := ctx.Err() != nil
		d.state.RunFinished(t.Name, rep, start, cancelled)
		took := time.Since(start)
		attrs := []any{"task", t.Name, "duration", took.Round(time.Millisecond)}
		for _, s := range rep.Summaries() {
			attrs = append(attrs, "copied", s.Copied, "skipped", s.Skipped, "failed", s.Failed, "bytes", s.Bytes)
		}
		switch {
		case cancelled:
			d.log.Info("run cancelled", attrs...)
		case rep.Failed() > 0:
			d.log.Warn("run finished with failures", attrs...)
		default:
			d.log.Info("run finished", attrs...)
		}
		if d.o.OnRun != nil {
			d.o.OnRun(Run{Task: t.Name, Started: start, Duration: took, Cancelled: cancelled, Report: rep})
		}
	}
}

// reload loads the configuration file again. onlyIfChanged skips the load
// when the file's bytes are those last read (the watcher sees events for
// other files of the directory too).
func (d *Daemon) reload(reason string, onlyIfChanged bool) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	path := d.o.Path
	b, readErr := os.ReadFile(path)
	sum := sha256.Sum256(b)
	if onlyIfChanged && readErr == nil && sum == d.lastRead {
		return
	}
	d.lastRead = sum
	var cfg *config.Config
	var err error
	if readErr != nil {
		err = config.ReadError(path, readErr)
	} else {
		cfg, err = config.Load(bytes.NewReader(b), path)
	}
	if err == nil {
		err = d.apply(cfg, reason)
	}
	if err != nil {
		d.log.Error("configuration not loaded; the last good configuration stays in force", "config", path, "reason", reason, "error", err)
		d.state.ConfigFailed(path, err)
		return
	}
	d.log.Info("configuration reloaded", "config", path, "reason", reason, "tasks", len(cfg.Tasks))
}
