package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regmirror/regmirror/internal/bundle"
	"github.com/regmirror/regmirror/internal/config"
	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/progress"
	"github.com/regmirror/regmirror/internal/registry"
)

func newImportCmd(g *globals) *cobra.Command {
	var (
		to, cfgPath, task, caFile, certsDir string
		skipTLSVerify                       bool
		ef                                  engineFlags
	)
	cmd := &cobra.Command{
		Use:   "import (--to REGISTRY[/PREFIX] | --config FILE) BUNDLE",
		Short: "Push every image of an air-gap bundle to a registry",
		Long: `import pushes every image a bundle completes to the target, under its
original repository path (with --to, below PREFIX) or where the config's
mappings send it (with --config: the task whose source and mapping produced
the image gives the target registry and repository).

It follows sync's rules: the target is asked first and what it holds is
skipped; blobs go first, then child manifests, then the tag, so a tag never
names incomplete content. Every blob's digest is checked as it is read. A
blob or image the bundle inherits from an earlier bundle must already be on
the target; if not, the image fails naming the bundle to import first.
An interrupted import finishes when run again.

With --to, credentials come from docker's config.json (DOCKER_CONFIG,
credential helpers), as for docker push.

Exit codes: 0 every image is on the target; 1 some image failed (the others
were imported); 2 usage or configuration error.`,
		Example: `  regmirror import --to registry.internal:5000/mirror bundle-1.tar
  regmirror import --config dregsy.yaml bundle-2.tar`,
		Args: positional("BUNDLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (to == "") == (cfgPath == "") {
				return usageErr("give exactly one of --to and --config")
			}
			bar := progress.New(g.stderr, "import")
			log, err := g.loggerTo(bar.Writer(), "text")
			if err != nil {
				return err
			}
			// With --to there is no configuration: its defaults apply.
			var cfg *config.Config
			if cfgPath != "" {
				if cfg, err = loadConfig(cfgPath, log); err != nil {
					return err
				}
			}
			es, err := g.assemble(cmd, cfg, ef, log)
			if err != nil {
				return err
			}
			var routes func(string) ([]bundle.Route, error)
			if cfg == nil {
				ep, prefix, err := parseTo(to)
				if err != nil {
					return err
				}
				ep.CAFile, ep.CertsDir, ep.SkipTLSVerify = caFile, certsDir, skipTLSVerify
				ep = es.mark(ep)
				routes = func(repo string) ([]bundle.Route, error) {
					return []bundle.Route{{Task: "import", Target: ep, To: joinPath(prefix, repoPath(repo))}}, nil
				}
			} else {
				noteRelay(log, cfg)
				selected, err := selectTasks(cfg, task)
				if err != nil {
					return err
				}
				byConfig := configRoutes(selected, cfg.File)
				routes = func(repo string) ([]bundle.Route, error) {
					rs, err := byConfig(repo)
					for i := range rs {
						rs[i].Target = es.mark(rs[i].Target)
					}
					return rs, err
				}
			}
			b, err := bundle.Open(args[0])
			if err != nil {
				return &UsageError{err}
			}
			defer b.Close()
			log.Info("importing", "bundle", args[0], "id", b.Manifest.ID, "images", len(b.Manifest.Images), "created", b.Manifest.Created)
			bar.Start(500 * time.Millisecond)
			rep, err := bundle.Import(cmd.Context(), b, bundle.ImportOptions{
				Routes:  routes,
				Engine:  es.engine(runHooks{onResult: func(engine.Result) { bar.ItemDone() }}),
				OnTotal: bar.SetTotal,
				OnBytes: bar.AddBytes,
			})
			bar.Stop()
			logSummary(log, rep)
			if err := reportInterrupt(cmd.Context(), log, rep); err != nil {
				return err
			}
			if err != nil {
				return err
			}
			if n := rep.Failed(); n > 0 {
				return fmt.Errorf("%w: %d failed", ErrSyncFailed, n)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "target registry, optionally with a repository prefix (host[:port][/prefix]; http:// for plain HTTP)")
	f.StringVarP(&cfgPath, "config", "c", "", "take targets and mappings from this config's target side instead of --to")
	f.StringVar(&task, "task", "", "with --config: use only tasks whose name fully matches this regex")
	f.StringVar(&caFile, "ca-file", "", "with --to: extra PEM CA bundle to trust")
	f.StringVar(&certsDir, "certs-dir", "", "with --to: docker certs.d directory (CERTS_DIR/<host>/*.crt, client.cert, client.key)")
	f.BoolVar(&skipTLSVerify, "skip-tls-verify", false, "with --to: do not verify the registry's certificate")
	f.IntVarP(&ef.jobs, "jobs", "j", 4, "images pushed in parallel")
	f.IntVar(&ef.transfers, "transfers", 0, "blob transfers in flight (default: the config's 'transfers', else 8)")
	return cmd
}

// parseTo splits --to into an endpoint and a repository prefix.
func parseTo(s string) (registry.Endpoint, string, error) {
	ep, prefix, err := registry.ParseLocationPath(s)
	var le *registry.LocationError
	if errors.As(err, &le) {
		return ep, "", usageErr("--to %q: %s", s, le.Problem)
	}
	return ep, prefix, err
}

// repoPath drops the registry from a bundle repository name
// ("docker.io/library/busybox" -> "library/busybox"). Names of images
// exported from an OCI layout have no registry part.
func repoPath(repo string) string {
	first, rest, ok := strings.Cut(repo, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return rest
	}
	return repo
}

func joinPath(prefix, path string) string {
	if prefix == "" {
		return path
	}
	return prefix + "/" + path
}

// configRoutes sends each bundle repository where the config's mappings
// send its source: every task and mapping whose source names it (a
// "regex:" from by matching the repository path, as discovery would).
func configRoutes(tasks []config.Task, file string) func(string) ([]bundle.Route, error) {
	return func(repo string) ([]bundle.Route, error) {
		var out []bundle.Route
		for _, t := range tasks {
			src := endpoint(t.Source)
			prefix := bundle.NamePrefix(src)
			path := repo
			if prefix != "" {
				var ok bool
				if path, ok = strings.CutPrefix(repo, prefix+"/"); !ok {
					continue
				}
			}
			for _, m := range t.Mappings {
				rm := m.Repos // compiled by config
				for _, from := range rm.Sources([]string{path}) {
					if bundle.Name(src, from) != repo {
						continue
					}
					to, err := rm.Target(from)
					if err != nil {
						return nil, fmt.Errorf("task %s: %w", t.Name, err)
					}
					out = append(out, bundle.Route{Task: t.Name, Target: endpoint(t.Target), To: to})
				}
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("no task in %s maps %s: nowhere to import it", file, repo)
		}
		return out, nil
	}
}
