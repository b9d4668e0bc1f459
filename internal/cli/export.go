package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/regmirror/regmirror/internal/bundle"
	"github.com/regmirror/regmirror/internal/config"
	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/progress"
)

func newExportCmd(g *globals) *cobra.Command {
	var (
		cfgPath, output, since, task string
		ef                           engineFlags
	)
	cmd := &cobra.Command{
		Use:   "export --config FILE --output PATH [--since OLD_BUNDLE]",
		Short: "Write the images a config selects into an air-gap bundle (OCI layout)",
		Long: `export selects images exactly as 'sync' would (same tasks, mappings, tag
filters and platforms) and writes them into one OCI image layout instead of
the config's targets: a directory, or a single .tar when PATH ends in .tar.
Each image is recorded under its original reference (source registry,
repository and tag); digests are kept byte for byte; shared blobs are stored
once. regmirror-bundle.json at the layout's root records when and from what
config the bundle was made and what it holds.

With --since, only the blobs and manifests that OLD_BUNDLE and the bundles
it builds on lack are stored; the new bundle still lists every image it
completes, so 'import' can tell when an earlier bundle was not applied.

Exit codes: 0 every image was exported; 1 some image failed (the bundle
holds the others); 2 usage or configuration error.`,
		Example: `  regmirror export --config dregsy.yaml --output bundle-1.tar
  regmirror export --config dregsy.yaml --output bundle-2.tar --since bundle-1.tar`,
		Args: positional(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output == "" {
				return usageErr("--output is required")
			}
			bar := progress.New(g.stderr, "export")
			log, err := g.loggerTo(bar.Writer(), "text")
			if err != nil {
				return err
			}
			// The targets are the far side of the gap: their
			// credentials and CA files need not exist here.
			cfg, err := loadConfigWith(config.LoadFileSourcesOnly, cfgPath, log)
			if err != nil {
				return err
			}
			noteRelay(log, cfg)
			selected, err := selectTasks(cfg, task)
			if err != nil {
				return err
			}
			tasks, err := engineTasks(selected)
			if err != nil {
				return err
			}
			es, err := g.assemble(cmd, cfg, ef, log)
			if err != nil {
				return err
			}
			for i := range tasks {
				tasks[i].Source = es.mark(tasks[i].Source)
			}
			raw, err := os.ReadFile(cfgPath)
			if err != nil {
				return usageErr("%v", err)
			}
			sum := sha256.Sum256(raw)
			bar.Start(500 * time.Millisecond)
			res, err := bundle.Export(cmd.Context(), bundle.ExportOptions{
				Tasks:  tasks,
				Output: output,
				Since:  since,
				Config: &bundle.ConfigRef{File: filepath.Base(cfgPath), SHA256: hex.EncodeToString(sum[:])},
				Engine: es.engine(runHooks{
					onPlanned: func(n int) { bar.SetTotal(n, 0) },
					onResult:  func(engine.Result) { bar.ItemDone() },
					// Blobs written to the bundle, as they land.
					onBytes: bar.AddBytes,
				}),
			})
			bar.Stop()
			if res != nil && res.Report != nil {
				logSummary(log, res.Report)
				// What is in the work directory stays: a re-run with
				// the same --output skips it and writes the rest.
				if err := reportInterrupt(cmd.Context(), log, res.Report, "partial_bundle", bundle.WorkDir(output),
					"resume", "run the same command again: it keeps what was written"); err != nil {
					return err
				}
			}
			if errors.Is(err, bundle.ErrExists) {
				return &UsageError{err}
			}
			if err != nil {
				return err
			}
			log.Info("bundle written", "bundle", output, "id", res.Manifest.ID, "images", len(res.Manifest.Images),
				"blobs", len(res.Manifest.Blobs), "bytes", res.BlobBytes, "inherited_blobs", len(res.Manifest.Inherits))
			if n := res.Report.Failed(); n > 0 {
				return fmt.Errorf("%w: %d failed", ErrSyncFailed, n)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfgPath, "config", "c", "", "configuration file (dregsy format or a superset); its targets are ignored")
	f.StringVarP(&output, "output", "o", "", "bundle to write: a directory, or a file ending in .tar")
	f.StringVar(&since, "since", "", "earlier bundle (directory or .tar): store only what it and its chain lack")
	f.StringVar(&task, "task", "", "export only tasks whose name fully matches this regex")
	f.IntVarP(&ef.jobs, "jobs", "j", 4, "images copied in parallel")
	f.IntVar(&ef.transfers, "transfers", 0, "blob transfers in flight (default: the config's 'transfers', else 8)")
	f.StringVar(&ef.platformCache, "platform-cache", defaultPlatformCache(), "platform cache file, as for sync (\"\" to disable)")
	return cmd
}
