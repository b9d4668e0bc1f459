package cli

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/regmirror/regmirror/internal/config"
	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/shard"
)

// engineFlags are the flags that tune a command's engine. Each command
// registers them with its own defaults and words; assemble reads them.
type engineFlags struct {
	jobs          int    // --jobs: images at once; 0: the engine's default
	transfers     int    // --transfers: blob transfers in flight; 0: not given
	platformCache string // --platform-cache: "" keeps the cache in memory
	// shard is the repository-level part of --shard (shardFlags.engine):
	// set by the commands that take --shard, after parsing it.
	shard shard.Spec
}

// jobsFlag registers --jobs for the commands whose default is the
// engine's (engine.DefaultJobs): copy, when the command copies, tells the
// help that the number adapts below the cap.
func jobsFlag(f *pflag.FlagSet, p *int, copy bool) {
	usage := fmt.Sprintf("images asked about in parallel: %d × N (default %d)", engine.CheckFactor, engine.CheckFactor*engine.StartJobs)
	if copy {
		usage = fmt.Sprintf("images copied in parallel: at most N (default %d); below it the number adapts to the link, starting at %d",
			engine.DefaultJobs, min(engine.StartJobs, engine.DefaultJobs))
	}
	f.IntVarP(p, "jobs", "j", 0, usage)
}

// runHooks are what a command watches a run with (a progress bar, the
// daemon's state).
type runHooks struct {
	onPlanned func(images int)
	onBytes   func(n int64)
	onResult  func(engine.Result)
}

// engineSetup is a command's engine, assembled by assemble: the one place
// where configuration, flags and logger become an engine, so every command
// honours the same settings (`retry:`, `transfers:`, insecure registries).
type engineSetup struct {
	log      *slog.Logger
	insecure *config.Insecure
	// hosts is the transport policy and per-host state shared by every
	// store of the engine (pulls spent, rate limits).
	hosts *transport.Hosts
	opts  engine.Options
}

// assemble checks the engine flags of cmd and builds the engine set-up
// from them, the configuration (nil for commands that take none: its
// defaults then apply) and log. The order of precedence is flag, then
// config, then built-in default.
func (g *globals) assemble(cmd *cobra.Command, cfg *config.Config, f engineFlags, log *slog.Logger) (*engineSetup, error) {
	if cmd.Flags().Changed("jobs") && f.jobs < 1 {
		return nil, usageErr("--jobs must be at least 1, not %d", f.jobs)
	}
	if cmd.Flags().Changed("transfers") && f.transfers < 1 {
		return nil, usageErr("--transfers must be at least 1, not %d", f.transfers)
	}
	insecure, err := g.insecureRegistries(log)
	if err != nil {
		return nil, err
	}
	retry, transfers := config.DefaultRetry, 0
	if cfg != nil {
		retry, transfers = cfg.Retry, cfg.Transfers
	}
	if f.transfers > 0 {
		transfers = f.transfers
	}
	hosts := newHosts(log)
	if transfers > 0 {
		hosts.Transfers = transfers
	}
	hosts.IdleTimeout = retry.IdleTimeout
	hosts.MinRate, hosts.MinRateWindow = retry.MinRate, retry.MinRateWindow
	opts := engine.Options{Logger: log, Jobs: f.jobs, PlatformCache: f.platformCache, Shard: f.shard,
		Attempts: retry.Attempts, RetryWait: retry.Wait, ImageTimeout: retry.ImageTimeout,
		Registry: registry.Options{Hosts: hosts,
			Retry: &transport.Retry{Attempts: retry.RequestAttempts, Wait: retry.RequestWait, Factor: transport.DefaultRetry.Factor}},
	}
	return &engineSetup{log: log, insecure: insecure, hosts: hosts, opts: opts}, nil
}

// newHosts is the transport policy with regmirror's defaults, its log and
// its User-Agent: assemble's, and login's, which needs no engine.
func newHosts(log *slog.Logger) *transport.Hosts {
	h := transport.DefaultHosts()
	h.Logger = log
	h.UserAgent = userAgent()
	return h
}

// engine is the one place an engine is made (engine.New).
func (s *engineSetup) engine(h runHooks) *engine.Engine {
	o := s.opts
	o.OnPlanned, o.OnBytes, o.OnResult = h.onPlanned, h.onBytes, h.onResult
	return engine.New(o)
}

// mark lets ep use plain HTTP or unverified TLS when its registry was
// marked insecure (--insecure-registry, daemon.json, registries.conf).
func (s *engineSetup) mark(ep registry.Endpoint) registry.Endpoint {
	return markInsecure(ep, s.insecure, s.log)
}

// markTasks marks the endpoints of every task.
func (s *engineSetup) markTasks(tasks []engine.Task) { markTasks(tasks, s.insecure, s.log) }
