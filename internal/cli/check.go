package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/textsafe"
)

func newCheckCmd(g *globals) *cobra.Command {
	var (
		tf taskFlags
		pf planFlags
	)
	cmd := &cobra.Command{
		Use:   "check --config FILE",
		Short: "Compare source and target; exit 1 when they differ (for monitoring)",
		Long: `check asks the source and the target about every image a sync would select,
with tag lists and HEAD requests only (no pull, nothing written), and prints
what differs: tags missing on the target, and tags whose digests differ.

A tag the target does not have is missing, whatever else is known. A tag
the target has, of a platform mapping whose index is not in the platform
cache, cannot be verified without a pull: it is listed as unverified and
makes the check fail. Run sync once (it fills the cache) to verify them.

Exit codes: 0 the target holds every selected image with the source's
digest, each verified; 1 something is missing, differs, is unverified or
could not be read; 2 usage or configuration error.`,
		Example: `  # in a monitoring job: non-zero exit when the mirror is behind
  regmirror check --config dregsy.yaml

  # machine-readable
  regmirror check --config dregsy.yaml --output json`,
		Args: positional(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, _, err := makePlan(cmd, g, &tf, &pf)
			if err != nil {
				return err
			}
			r := checkResult(p)
			if pf.output == "json" {
				if err := writeJSON(g.stdout, r); err != nil {
					return err
				}
			} else {
				writeCheckText(g.stdout, r)
			}
			if !r.InSync {
				return fmt.Errorf("%w: %d missing, %d differ, %d failed, %d unverified", ErrSyncFailed, len(r.Missing), len(r.Differ), len(r.Failed), len(r.Unverified))
			}
			return nil
		},
	}
	tf.register(cmd.Flags())
	cmd.Flags().StringVarP(&pf.output, "output", "o", "text", "output format: text or json")
	jobsFlag(cmd.Flags(), &pf.jobs, false)
	cmd.Flags().StringVar(&pf.platformCache, "platform-cache", defaultPlatformCache(), "the platform cache sync keeps: with it 'platform:' mappings are checked without a pull (\"\" to disable)")
	return cmd
}

// checkDoc is the JSON document of `check --output json`.
type checkDoc struct {
	InSync     bool        `json:"in_sync"`
	Images     int         `json:"images"`
	Missing    []planImage `json:"missing"`
	Differ     []planImage `json:"differ"`
	Failed     []planImage `json:"failed"`
	Unverified []planImage `json:"unverified"`
}

func checkResult(p *engine.Plan) checkDoc {
	d := checkDoc{Missing: []planImage{}, Differ: []planImage{}, Failed: []planImage{}, Unverified: []planImage{}}
	for _, it := range p.Items {
		d.Images++
		im := planImage{Source: it.Source, Target: it.Target, Tag: it.Tag, Action: string(it.Action), Reason: it.Reason,
			SourceDigest: it.SourceDigest, TargetDigest: it.TargetDigest, Registry: it.Registry}
		switch {
		case it.Action == engine.WouldFail:
			d.Failed = append(d.Failed, im)
		case it.Verdict == engine.VerdictMissing:
			d.Missing = append(d.Missing, im)
		case it.Verdict == engine.VerdictCopy:
			d.Differ = append(d.Differ, im)
		case it.Verdict == engine.VerdictUnknown:
			d.Unverified = append(d.Unverified, im)
		}
	}
	// In sync means every image verified present and current: an
	// unverified one may be neither.
	d.InSync = len(d.Missing)+len(d.Differ)+len(d.Failed)+len(d.Unverified) == 0
	return d
}

func writeCheckText(w io.Writer, d checkDoc) {
	esc := textsafe.Escape // names and reasons come from registries
	for _, im := range d.Missing {
		if im.SourceDigest == "" {
			// A platform image not in the platform cache: which digest
			// it has is only in the index, which check does not pull.
			fmt.Fprintf(w, "missing     %s\n", esc(im.Target))
			continue
		}
		fmt.Fprintf(w, "missing     %s (source %s)\n", esc(im.Target), esc(im.SourceDigest))
	}
	for _, im := range d.Differ {
		fmt.Fprintf(w, "differs     %s (source %s, target %s)\n", esc(im.Target), esc(im.SourceDigest), esc(im.TargetDigest))
	}
	for _, im := range d.Failed {
		fmt.Fprintf(w, "failed      %s: %s\n", esc(im.Target), esc(im.Reason))
	}
	for _, im := range d.Unverified {
		fmt.Fprintf(w, "unverified  %s: %s\n", esc(im.Target), esc(im.Reason))
	}
	state := "in sync"
	if !d.InSync {
		state = "OUT OF SYNC"
	}
	fmt.Fprintf(w, "check: %s: %d images, %d missing, %d differ, %d failed, %d unverified\n",
		state, d.Images, len(d.Missing), len(d.Differ), len(d.Failed), len(d.Unverified))
}
