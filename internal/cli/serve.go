package cli

import (
	"log/slog"
	"net"
	"os"

	"github.com/spf13/cobra"

	"github.com/regmirror/regmirror/internal/config"
	"github.com/regmirror/regmirror/internal/daemon"
	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/progress"
	"github.com/regmirror/regmirror/internal/report"
	"github.com/regmirror/regmirror/internal/server"
)

// defaultListen is loopback only: /status and /metrics name registries
// and repositories, which is nobody else's business unless asked for.
const defaultListen = "127.0.0.1:9090"

func newServeCmd(g *globals) *cobra.Command {
	var (
		cfgPath      string
		listen       string
		ef           engineFlags
		shards       shardFlags
		stateDir     string
		historyRuns  int
		allowTrigger bool
		reportDir    string
	)
	cmd := &cobra.Command{
		Use:   "serve --config FILE [--listen ADDR] [--state-dir DIR] [--allow-trigger]",
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

HTTP endpoints on --listen: the status page at / (HTML: tasks, the runs in
flight, failures, registries, history, config; /tasks/NAME per task, with a
JSON twin at /tasks/NAME.json), /healthz, /readyz, /metrics (Prometheus) and
/status (JSON). The page's "run now" buttons exist only with --allow-trigger.
History is kept in memory, or with --state-dir in one small file per task
there, so it survives a restart. Logs are JSON unless stderr is a terminal
(--log-format).

With --shard I/N the daemon is one of N (the pods of a StatefulSet): every
task is scheduled, but each run copies and prunes only the source
repositories this shard owns (--shard-by task: only the tasks it owns).`,
		Example: `  regmirror serve --config dregsy.yaml
  regmirror serve --config dregsy.yaml --state-dir /var/lib/regmirror --allow-trigger
  regmirror serve --config dregsy.yaml --listen 0.0.0.0:9090
  kill -HUP $(pidof regmirror)    # reload the configuration

  # one pod of a StatefulSet of 3; POD_INDEX from the pod's
  # apps.kubernetes.io/pod-index label (deploy/kubernetes/statefulset-sharded.yaml)
  regmirror serve --config /etc/regmirror/config.yaml --shard "$POD_INDEX/3"`,
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
			if err := shards.parse(); err != nil {
				return err
			}
			if historyRuns < 1 {
				return usageErr("--history must be at least 1")
			}
			if stateDir != "" {
				if err := os.MkdirAll(stateDir, 0o700); err != nil {
					return usageErr("--state-dir: %v", err)
				}
			}
			cfg, err := loadConfig(cfgPath, log)
			if err != nil {
				return err
			}
			noteRelay(log, cfg)
			if _, err := engineTasks(cfg.Tasks); err != nil {
				return err
			}
			// Engine settings (retry:, transfers:) are read at start;
			// a reload keeps them.
			ef.shard = shards.engine()
			es, err := g.assemble(cmd, cfg, ef, log)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return usageErr("--listen %s: %v", listen, err)
			}
			d := daemon.New(daemon.Options{Logger: log, Path: cfgPath, RateLimits: es.hosts.RateLimits, Pulls: es.hosts.Pulls, Hosts: es.hosts.Status,
				StateDir: stateDir, HistoryRuns: historyRuns, AllowTrigger: allowTrigger,
				Tasks: serveTasks(&shards, es), OnRun: runReports(reportDir, log)})
			// One engine for the daemon's life: stores, tokens,
			// connections and the platform cache are reused by every run.
			return d.Run(cmd.Context(), es.engine(runHooks{onResult: d.Result}), cfg, ln)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfgPath, "config", "c", "", "configuration file (dregsy format or a superset)")
	f.StringVar(&listen, "listen", defaultListen, "address of the status page and the HTTP endpoints (/, /healthz, /readyz, /metrics, /status)")
	f.StringVar(&reportDir, "report-dir", "", "write each run's report there, one JSON file per task run, in sync --report's schema (docs/reports.md)")
	f.StringVar(&stateDir, "state-dir", "", "directory keeping each task's run history, so it survives a restart (\"\": in memory)")
	f.IntVar(&historyRuns, "history", server.DefaultHistoryRuns, "runs per task the history keeps")
	f.BoolVar(&allowTrigger, "allow-trigger", false, "allow the status page's \"run now\" (POST /tasks/NAME/run)")
	jobsFlag(f, &ef.jobs, true)
	f.IntVar(&ef.transfers, "transfers", 0, "blob transfers in flight across all tasks (default: the config's transfers: key, else 8)")
	f.StringVar(&ef.platformCache, "platform-cache", defaultPlatformCache(), "file remembering which image each multi-arch index holds per platform (\"\" keeps it in memory)")
	shards.register(f)
	return cmd
}

// serveTasks is how the daemon turns each configuration it loads into
// engine tasks: with --shard-by task only this shard's tasks are kept (in
// cfg.Tasks too, which the daemon schedules them by), marked with the
// insecure registries.
func serveTasks(shards *shardFlags, es *engineSetup) func(*config.Config) ([]engine.Task, error) {
	return func(cfg *config.Config) ([]engine.Task, error) {
		cfg.Tasks = shards.tasks(cfg.Tasks, es.log)
		tasks, err := engineTasks(cfg.Tasks)
		if err == nil {
			es.markTasks(tasks)
			markVerbose(es.log, cfg) // each reload's verbose: settings
		}
		return tasks, err
	}
}

// runReports writes one report file per run into dir (nil when dir is "").
// A file that cannot be written is logged; the daemon carries on.
func runReports(dir string, log *slog.Logger) func(daemon.Run) {
	if dir == "" {
		return nil
	}
	return func(r daemon.Run) {
		rep := report.New("serve", r.Started, r.Report)
		rep.Task = r.Task
		rep.DurationMS = r.Duration.Milliseconds()
		path := report.RunFile(dir, r.Task, r.Started)
		if err := rep.Write(path); err != nil {
			log.Error("writing the run report", "task", r.Task, "error", err)
		}
	}
}
