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
	"github.com/regmirror/regmirror/internal/verify"
)

// taskFlags are the flags that choose what a run works on, shared by sync,
// plan and check: the config file, --task and --shard.
type taskFlags struct {
	cfgPath string
	task    string
	shards  shardFlags
}

func (f *taskFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&f.cfgPath, "config", "c", "", "configuration file (dregsy format or a superset)")
	fs.StringVar(&f.task, "task", "", "run only tasks whose name fully matches this regex")
	f.shards.register(fs)
}

// shardFlags are --shard and --shard-by, shared by sync, plan, check and
// serve.
type shardFlags struct {
	shard, by string
	spec      shard.Spec
	mode      shard.By
}

func (f *shardFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.shard, "shard", "", "do only this shard's part of the work, INDEX/COUNT counting from 0 (e.g. $(JOB_COMPLETION_INDEX)/3): each (task, source repository) belongs to exactly one shard by a stable hash (see --shard-by)")
	fs.StringVar(&f.by, "shard-by", "repository", "what a shard owns: repository (each task's source repositories are spread over the shards; every shard discovers them) or task (whole tasks, by their name)")
}

// parse checks the flags; it must run before tasks or engine.
func (f *shardFlags) parse() error {
	var err error
	if f.spec, err = shard.Parse(f.shard); err != nil {
		return usageErr("--shard: %v", err)
	}
	if f.mode, err = shard.ParseBy(f.by); err != nil {
		return usageErr("--shard-by: %v", err)
	}
	return nil
}

// tasks keeps the tasks this shard runs: all of them when sharding by
// repository (the engine then picks the repositories, see engine), those
// whose name hashes to the shard when sharding by task. A shard that owns
// no task is not an error: an Indexed Job may have more pods than tasks.
func (f *shardFlags) tasks(selected []config.Task, log *slog.Logger) []config.Task {
	if f.spec.Count == 0 {
		return selected
	}
	if f.mode == shard.ByRepository {
		log.Info("shard", "shard", f.spec.String(), "by", string(f.mode), "tasks", len(selected))
		return selected
	}
	var owned []config.Task
	for _, t := range selected {
		if f.spec.Owns(t.Name) {
			owned = append(owned, t)
		}
	}
	log.Info("shard", "shard", f.spec.String(), "by", string(f.mode), "tasks", len(owned), "of", len(selected))
	return owned
}

// engine is the shard the engine is given: only repository-level shards
// reach it.
func (f *shardFlags) engine() shard.Spec {
	if f.mode == shard.ByRepository {
		return f.spec
	}
	return shard.Spec{}
}

// load loads the config and returns it with the engine tasks selected by
// --task and --shard.
func (f *taskFlags) load(log *slog.Logger) (*config.Config, []engine.Task, error) {
	if err := f.shards.parse(); err != nil {
		return nil, nil, err
	}
	cfg, err := loadConfig(f.cfgPath, log)
	if err != nil {
		return nil, nil, err
	}
	markVerbose(log, cfg)
	selected, err := selectTasks(cfg, f.task)
	if err != nil {
		return nil, nil, err
	}
	tasks, err := engineTasks(f.shards.tasks(selected, log))
	if err != nil {
		return nil, nil, err
	}
	return cfg, tasks, nil
}

// loadConfig loads and validates a configuration file.
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
	return cfg, nil
}

// noteRelay says once, at info level, that dregsy's relay setting does
// not change how we copy: only for the commands that copy, not for those
// that only read the config (config print, plan, check).
func noteRelay(log *slog.Logger, cfg *config.Config) {
	if cfg.Relay != "" {
		log.Info("copying natively; the dregsy relay setting is accepted but not used", "relay", cfg.Relay)
	}
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
			em := engine.Mapping{From: m.From, To: m.To, Repos: m.Repos, Tags: m.Tags, Platform: m.Platform,
				Referrers: m.Referrers, Prune: m.Prune, Origin: fmt.Sprintf("%s:%d", t.File, m.Line)}
			for _, ps := range m.Platforms {
				if p, err := v1.ParsePlatform(ps); err == nil { // checked at load time already
					em.Platforms = append(em.Platforms, *p)
				}
			}
			em.PlatformsSkipMissing = m.PlatformsMissing == "skip"
			if m.Verify != nil {
				keys, err := verifyKeys(m.Verify)
				if err != nil {
					return nil, fmt.Errorf("task %s: verify: %w", t.Name, err)
				}
				em.Verify = keys
			}
			et.Mappings = append(et.Mappings, em)
		}
		out = append(out, et)
	}
	return out, nil
}

// verifyKeys prepares a mapping's verify: keys.
func verifyKeys(v *config.Verify) (*verify.Keys, error) {
	ks := make([]verify.Key, len(v.Keys))
	for i, k := range v.Keys {
		ks[i] = verify.Key{Name: k.File, Key: k.Key}
	}
	return verify.NewKeys(ks)
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
