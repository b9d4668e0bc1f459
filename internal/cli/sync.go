package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/progress"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/report"
)

func newSyncCmd(g *globals) *cobra.Command {
	var (
		tf         taskFlags
		dryRun     bool
		reportPath string
		pf         = planFlags{output: "text"}
	)
	cmd := &cobra.Command{
		Use:   "sync --config FILE",
		Short: "Run every task of a (dregsy-compatible) config once, then exit",
		Long: `sync runs each selected task once and exits; interval and watch are ignored
(they belong to 'regmirror serve').

For every selected tag the target and the source are asked with HEAD
requests; an image whose digests match is skipped without any GET to the
source. Everything else is copied blobs first, then manifests, then the tag.

Exit codes: 0 every image is present and current; 1 at least one image
failed (all others were still attempted); 2 usage or configuration error.`,
		Example: `  # sync everything a dregsy config describes
  regmirror sync --config dregsy.yaml

  # only the tasks whose name matches a regex, as JSON logs
  regmirror sync --config dregsy.yaml --task 'sync_spaceone_.*' --log-format json

  # pod 2 of an Indexed Job with 3 completions copies its third of the
  # repositories (--shard-by task: its third of the tasks)
  regmirror sync --config /config.yaml --shard "$JOB_COMPLETION_INDEX/3"`,
		Args: positional(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dryRun {
				return runPlan(cmd, g, &tf, &pf)
			}
			if pf.bytes {
				return usageErr("--bytes goes with --dry-run (or 'regmirror plan')")
			}
			// On a terminal a status line (images, bytes, rate, ETA)
			// stays below the log lines; in a pipe nothing but logs.
			bar := progress.New(g.stderr, "sync")
			log, err := g.loggerTo(bar.Writer(), "text")
			if err != nil {
				return err
			}
			cfg, tasks, err := tf.load(log)
			if err != nil {
				return err
			}
			noteRelay(log, cfg)
			pf.shard = tf.shards.engine()
			es, err := g.assemble(cmd, cfg, pf.engineFlags, log)
			if err != nil {
				return err
			}
			es.markTasks(tasks)
			e := es.engine(runHooks{
				onPlanned: func(n int) { bar.SetTotal(n, 0) },
				onBytes:   bar.AddBytes,
				onResult: func(r engine.Result) {
					if r.Status != engine.Pruned {
						bar.ItemDone()
					}
				},
			})
			bar.Start(250 * time.Millisecond)
			started := time.Now()
			rep := e.Run(cmd.Context(), tasks)
			bar.Stop()
			logSummary(log, rep)
			if reportPath != "" {
				if err := report.New("sync", started, rep).Write(reportPath); err != nil {
					return fmt.Errorf("writing --report: %w", err)
				}
			}
			logPulls(log, es.hosts)
			if err := reportInterrupt(cmd.Context(), log, rep); err != nil {
				return err
			}
			if rep.Failed() > 0 {
				return fmt.Errorf("%w: %d failed", ErrSyncFailed, rep.Failed())
			}
			return cmd.Context().Err()
		},
	}
	f := cmd.Flags()
	tf.register(f)
	jobsFlag(f, &pf.jobs, true)
	f.StringVar(&reportPath, "report", "", "write what the run did to this JSON file, one object per image (docs/reports.md)")
	f.StringVar(&pf.platformCache, "platform-cache", defaultPlatformCache(), "file remembering which image each multi-arch index holds per platform, so 'platform:' mappings cost no pull when current (\"\" to disable)")
	f.BoolVar(&dryRun, "dry-run", false, "print what a sync would do and copy nothing (the same as 'regmirror plan')")
	pf.register(cmd, false)
	f.IntVar(&pf.transfers, "transfers", 0, "blob transfers in flight across all tasks (default: the config's 'transfers', else 8)")
	return cmd
}

// logSummary writes one summary line per task: the counts and the names
// of the images that failed. Each failure was logged with its reason, at
// error level, where it happened (the engine's line for the image); it is
// not logged again.
func logSummary(log *slog.Logger, rep *engine.Report) {
	for _, s := range rep.Summaries() {
		attrs := []any{"task", s.Task, "copied", s.Copied, "skipped", s.Skipped, "failed", s.Failed, "pruned", s.Pruned, "bytes", s.Bytes}
		var names []string
		for _, f := range s.Failures {
			if errors.Is(f.Err, transport.ErrUnreachable) {
				continue // counted once per registry by the engine
			}
			if !f.Logged {
				// Made outside the engine (a bundle's refused name, a
				// missing base bundle): its reason has not been said yet.
				log.Error("failed", "task", f.Task, "source", f.Source, "target", f.Target, "tag", f.Tag, "error", f.Err)
			}
			name := f.Target
			if name == "" {
				name = f.Source
			}
			names = append(names, name)
		}
		if len(names) > 0 {
			attrs = append(attrs, "failed_images", names)
		}
		log.Info("summary", attrs...)
	}
}

// logPulls says how many pulls (manifest GETs) each registry was charged,
// with its last rate-limit reading when it sent one.
func logPulls(log *slog.Logger, m *transport.Hosts) {
	pulls := m.Pulls()
	hosts := slices.Sorted(maps.Keys(pulls))
	for _, h := range hosts {
		attrs := []any{"registry", h, "pulls", pulls[h]}
		if limit, remaining, ok := m.RateLimit(h); ok {
			attrs = append(attrs, "ratelimit_limit", limit, "ratelimit_remaining", remaining)
		}
		log.Info("pulls spent", attrs...)
	}
}

// defaultPlatformCache is $XDG_CACHE_HOME/regmirror/platforms.json (or the
// platform's equivalent); "" when there is no cache directory.
func defaultPlatformCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "regmirror", "platforms.json")
}
