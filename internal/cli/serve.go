package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/spf13/cobra"

	"github.com/regmirror/regmirror/internal/config"
	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/progress"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/schedule"
	"github.com/regmirror/regmirror/internal/server"
)

// defaultListen is loopback only: /status and /metrics name registries
// and repositories, which is nobody else's business unless asked for.
const defaultListen = "127.0.0.1:9090"

// watchSettle is how long the config file must be quiet before a change
// is loaded: editors write in several steps (truncate, write, rename).
const watchSettle = 250 * time.Millisecond

func newServeCmd(g *globals) *cobra.Command {
	var (
		cfgPath       string
		listen        string
		jobs          int
		transfers     int
		platformCache string
	)
	cmd := &cobra.Command{
		Use:   "serve --config FILE [--listen ADDR]",
		Short: "Run as a daemon: run tasks on their interval or schedule, reload the config, serve metrics",
		Long: `serve runs until SIGTERM or SIGINT. A task with 'interval' > 0 runs at start
and then every interval, one with interval 0 runs once at start, and one with
'schedule' (a cron expression) runs at the times it names. A run never
overlaps the previous run of the same task: such a run is skipped and logged.

The configuration is reloaded on SIGHUP and, with 'watch: true', when the file
changes. Added, removed and changed tasks take effect (runs of changed or
removed tasks are cancelled); unchanged tasks keep their schedule. A file that
fails to load leaves the last good configuration in force; the error is
logged with file:line and shown in /status and in metrics.

On SIGTERM or SIGINT nothing new starts, copies in flight are cancelled (a tag
is only ever written after everything it points at), and the process exits 0.

HTTP endpoints on --listen: /healthz, /readyz, /metrics (Prometheus) and
/status (JSON). Logs are JSON unless stderr is a terminal (--log-format).`,
		Example: `  regmirror serve --config dregsy.yaml
  regmirror serve --config dregsy.yaml --listen 0.0.0.0:9090
  kill -HUP $(pidof regmirror)    # reload the configuration`,
		Args: positional(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			def := "json"
			if progress.IsTerminal(g.stderr) {
				def = "text"
			}
			log, err := g.logger(def)
			if err != nil {
				return err
			}
			if jobs < 1 {
				return usageErr("--jobs must be at least 1")
			}
			cfg, err := loadConfig(cfgPath, log)
			if err != nil {
				return err
			}
			if _, err := engineTasks(cfg.Tasks); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return usageErr("--listen %s: %v", listen, err)
			}
			m := manners(log, cfg.Transfers, transfers)
			insecure, err := g.insecureRegistries(log)
			if err != nil {
				return err
			}
			d := &daemon{log: log, path: cfgPath, insecure: insecure}
			d.sched = schedule.New(schedule.Options{Logger: log, OnSkip: func(task string) { d.state.RunSkipped(task) }})
			d.state = server.New(server.Options{Scheduler: d.sched, RateLimits: m.RateLimits, Pulls: m.Pulls})
			// One engine for the daemon's life: stores, tokens,
			// connections and the platform cache are reused by every run.
			opts := engine.Options{Logger: log, Jobs: jobs, Registry: registry.Options{Hosts: m},
				PlatformCache: platformCache, OnResult: d.state.Result}
			applyRetry(cfg.Retry, &opts) // read at start; a reload keeps them
			d.eng = engine.New(opts)
			return d.run(cmd.Context(), cfg, ln)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfgPath, "config", "c", "", "configuration file (dregsy format or a superset)")
	f.StringVar(&listen, "listen", defaultListen, "address of the HTTP endpoints (/healthz, /readyz, /metrics, /status)")
	f.IntVarP(&jobs, "jobs", "j", 8, "images copied in parallel per task run")
	f.IntVar(&transfers, "transfers", 0, "blob transfers in flight across all tasks (default: the config's transfers: key, else 8)")
	f.StringVar(&platformCache, "platform-cache", defaultPlatformCache(), "file remembering which image each multi-arch index holds per platform (\"\" keeps it in memory)")
	return cmd
}

// daemon ties the configuration file to the scheduler, the engine and the
// HTTP state.
type daemon struct {
	log   *slog.Logger
	path  string
	eng   *engine.Engine
	sched *schedule.Scheduler
	state *server.State

	reloadMu sync.Mutex // one load at a time
	lastRead [sha256.Size]byte
	watch    atomic.Bool // the configuration in force has watch: true
	transfer int
	insecure *config.Insecure // --insecure-registry, daemon.json, registries.conf
}

func (d *daemon) run(ctx context.Context, cfg *config.Config, ln net.Listener) error {
	d.transfer = cfg.Transfers
	if b, err := os.ReadFile(d.path); err == nil {
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
	d.log.Info("serving", "listen", ln.Addr().String(), "config", d.path, "tasks", len(cfg.Tasks), "watch", cfg.Watch)

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
func (d *daemon) apply(cfg *config.Config, reason string) error {
	tasks, err := engineTasks(cfg.Tasks)
	if err != nil {
		return err
	}
	markTasks(tasks, d.insecure, d.log)
	jobs := make([]schedule.Job, 0, len(tasks))
	infos := make([]server.TaskInfo, 0, len(tasks))
	for i, t := range cfg.Tasks {
		spec := schedule.Spec{Interval: t.Interval}
		if t.Schedule != "" {
			c, err := schedule.ParseCron(t.Schedule)
			if err != nil { // checked at load time already
				return &config.Error{File: cfg.File, Line: t.Line, Msg: err.Error()}
			}
			spec.Cron = &c
		}
		et := tasks[i]
		jobs = append(jobs, schedule.Job{Name: t.Name, Spec: spec, Fingerprint: fingerprint(et, spec), Run: d.runner(et)})
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
func (d *daemon) runner(t engine.Task) func(context.Context) {
	return func(ctx context.Context) {
		start := time.Now()
		d.log.Info("run started", "task", t.Name)
		rep := d.eng.Run(ctx, []engine.Task{t})
		cancelled := ctx.Err() != nil
		d.state.RunFinished(t.Name, rep, start, cancelled)
		attrs := []any{"task", t.Name, "duration", time.Since(start).Round(time.Millisecond)}
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
	}
}

// fingerprint identifies everything about a task that a reload may change:
// an equal fingerprint keeps the task's schedule. Credentials enter it only
// through the hash.
func fingerprint(t engine.Task, spec schedule.Spec) string {
	h := sha256.New()
	_ = json.NewEncoder(h).Encode(t) // endpoints, mappings, platforms
	for _, m := range t.Mappings {
		if m.Tags != nil {
			_ = json.NewEncoder(h).Encode(m.Tags.Specs())
		}
	}
	h.Write([]byte(spec.String()))
	return hex.EncodeToString(h.Sum(nil))
}

// reload loads the configuration file again. onlyIfChanged skips the load
// when the file's bytes are those last read (the watcher sees events for
// other files of the directory too).
func (d *daemon) reload(reason string, onlyIfChanged bool) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	b, readErr := os.ReadFile(d.path)
	sum := sha256.Sum256(b)
	if onlyIfChanged && readErr == nil && sum == d.lastRead {
		return
	}
	d.lastRead = sum
	var cfg *config.Config
	var err error
	if readErr != nil {
		err = &config.Error{File: d.path, Msg: "cannot read configuration: " + ioErrText(readErr)}
	} else {
		cfg, err = config.Load(bytes.NewReader(b), d.path)
	}
	if err == nil {
		err = d.apply(cfg, reason)
	}
	if err != nil {
		d.log.Error("configuration not loaded; the last good configuration stays in force", "config", d.path, "reason", reason, "error", err)
		d.state.ConfigFailed(d.path, err)
		return
	}
	d.log.Info("configuration reloaded", "config", d.path, "reason", reason, "tasks", len(cfg.Tasks))
}

// watchFile watches the configuration file's directory, not the file: an
// editor that saves by writing a new file and renaming it over the old one
// (vim, most IDEs, Kubernetes ConfigMap updates) replaces the inode, and a
// watch on the old inode would go quiet. Changes are acted on only while
// the configuration in force says watch: true.
func (d *daemon) watchFile(ctx context.Context) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		d.log.Warn("cannot watch the configuration file; reload with SIGHUP", "config", d.path, "error", err)
		return
	}
	defer w.Close()
	dir := filepath.Dir(d.path)
	if err := w.Add(dir); err != nil {
		d.log.Warn("cannot watch the configuration file; reload with SIGHUP", "config", d.path, "error", err)
		return
	}
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if d.watch.Load() && ev.Op != fsnotify.Chmod {
				settle = time.After(watchSettle)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			d.log.Warn("watching the configuration file", "config", d.path, "error", err)
		case <-settle:
			settle = nil
			if d.watch.Load() {
				d.reload("file changed", true)
			}
		}
	}
}

// ioErrText is err without the path an *fs.PathError repeats.
func ioErrText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
