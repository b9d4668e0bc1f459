package cli

import (
	"log/slog"
	"regexp"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regmirror/regmirror/internal/config"
	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
)

// loadConfig loads and validates a configuration file and says once, at
// info level, that dregsy's relay setting does not change how we copy.
func loadConfig(path string, log *slog.Logger) (*config.Config, error) {
	if path == "" {
		return nil, usageErr("--config is required")
	}
	cfg, err := config.LoadFile(path)
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
		et := engine.Task{Name: t.Name, Source: endpoint(t.Source), Target: endpoint(t.Target)}
		for _, m := range t.Mappings {
			em := engine.Mapping{From: m.From, To: m.To, Tags: m.Tags, Referrers: m.Referrers}
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
		RateLimit:     registry.RateLimitPolicy{MinRemaining: l.RateLimit.MinRemaining, Wait: l.RateLimit.Wait},
	}
	if l.Auth != nil {
		ep.Username = l.Auth.Username
		ep.Password = l.Auth.Password.Reveal()
	}
	return ep
}
