package cli

import (
	"fmt"
	"log/slog"
	"regexp"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"

	"github.com/regmirror/regmirror/internal/config"
	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/shard"
)

// taskFlags are the flags that choose what a run works on, shared by sync,
// plan and check: the config file, --task and --shard.
type taskFlags struct {
	cfgPath string
	task    string
	shard   string
}

func (f *taskFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&f.cfgPath, "config", "c", "", "configuration file (dregsy format or a superset)")
	fs.StringVar(&f.task, "task", "", "run only tasks whose name fully matches this regex")
	fs.StringVar(&f.shard, "shard", "", "run only the tasks this shard owns, INDEX/COUNT counting from 0 (e.g. $(JOB_COMPLETION_INDEX)/3): each task belongs to exactly one shard by a stable hash of its name")
}

// load loads the config and returns it with the engine tasks selected by
// --task and --shard. A shard that owns no task is not an error: an Indexed
// Job may have more pods than tasks.
func (f *taskFlags) load(log *slog.Logger) (*config.Config, []engine.Task, error) {
	spec, err := shard.Parse(f.shard)
	if err != nil {
		return nil, nil, usageErr("--shard: %v", err)
	}
	cfg, err := loadConfig(f.cfgPath, log)
	if err != nil {
		return nil, nil, err
	}
	selected, err := selectTasks(cfg, f.task)
	if err != nil {
		return nil, nil, err
	}
	if spec.Count > 0 {
		var owned []config.Task
		for _, t := range selected {
			if spec.Owns(t.Name) {
				owned = append(owned, t)
			}
		}
		log.Info("shard", "shard", spec.String(), "tasks", len(owned), "of", len(selected))
		selected = owned
	}
	tasks, err := engineTasks(selected)
	if err != nil {
		return nil, nil, err
	}
	return cfg, tasks, nil
}

// loadConfig loads and validates a configuration file and says once, at
// info level, that dregsy's relay setting does not change how we copy.
func loadConfig(path string, log *slog.Logger) (*config.Config, error) {
	return loadConfigWith(config.LoadFile, path, log)
}

// loadConfigWith is loadConfig with another loader (export's, which leaves
// the targets' secrets and files to the far side).
func loadConfigWith(load func(string) (*config.Config, error), path string, log *slog.Logger) (*config.Config, error) {
	if path == "" {
		return nil, usageErr("--config is required")
	}
	cfg, err := load(path)
	if err != nil {
		return nil, err
	}
	if cfg.Relay != "" {
		log.Info("copying natively; the dregsy relay setting is accepted but not used", "relay", cfg.Relay)
	}
	return cfg, nil
}

// selectTasks keeps the tasks whose name fully matches expr (dregsy's -run).
func selectTasks(cfg *config.Config, expr string) ([]config.Task, error) {
	if expr == "" {
		return cfg.Tasks, nil
	}
	re, err := regexp.Compile("^(?:" + expr + ")$")
	if err != nil {
		return nil, usageErr("--task %q: %v", expr, err)
	}
	var out []config.Task
	for _, t := range cfg.Tasks {
		if re.MatchString(t.Name) {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, usageErr("--task %q matches no task in %s", expr, cfg.File)
	}
	return out, nil
}

// engineTasks turns configuration tasks into engine tasks.
func engineTasks(tasks []config.Task) ([]engine.Task, error) {
	out := make([]engine.Task, 0, len(tasks))
	for _, t := range tasks {
		et := engine.Task{Name: t.Name, Source: endpoint(t.Source), Target: endpoint(t.Target),
			Lister: engine.Lister{MaxItems: t.Lister.MaxItems, CacheDuration: t.Lister.CacheDuration, Type: t.Lister.Type}}
		for _, m := range t.Mappings {
			em := engine.Mapping{From: m.From, To: m.To, Tags: m.Tags, Referrers: m.Referrers, Prune: m.Prune, Origin: fmt.Sprintf("%s:%d", t.File, m.Line)}
			if m.Platform != "" && m.Platform != "all" {
				p, err := v1.ParsePlatform(m.Platform)
				if err != nil {
					return nil, usageErr("task %s: platform %q: %v", t.Name, m.Platform, err)
				}
				em.Platform = p
			}
			et.Mappings = append(et.Mappings, em)
		}
		out = append(out, et)
	}
	return out, nil
}

func endpoint(l config.Location) registry.Endpoint {
	ep := registry.Endpoint{
		Registry:      l.Registry,
		PlainHTTP:     l.PlainHTTP,
		SkipTLSVerify: l.SkipTLSVerify,
		CAFile:        l.CAFile,
		CertsDir:      l.CertsDir,
		Anonymous:     l.AuthNone,
		AuthRefresh:   l.AuthRefresh,
		RateLimit:     transport.RateLimitPolicy{MinRemaining: l.RateLimit.MinRemaining, Wait: l.RateLimit.Wait},

		MaxConcurrentRequests: l.MaxConcurrentRequests,
	}
	if l.Auth != nil {
		ep.Username = l.Auth.Username
		ep.Password = l.Auth.Password.Reveal()
	}
	return ep
}

// applyRetry puts the config's `retry:` section into engine options whose
// Registry.Hosts is already set.
func applyRetry(r config.Retry, o *engine.Options) {
	o.Attempts, o.RetryWait = r.Attempts, r.Wait
	o.Registry.Retry = &transport.Retry{Attempts: r.RequestAttempts, Wait: r.RequestWait, Factor: transport.DefaultRetry.Factor}
	if o.Registry.Hosts != nil {
		o.Registry.Hosts.IdleTimeout = r.IdleTimeout
	}
}
