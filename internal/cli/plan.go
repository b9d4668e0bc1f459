package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/spf13/cobra"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/progress"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/textsafe"
)

// planFlags are plan's own flags (sync --dry-run uses the same, with text
// output).
type planFlags struct {
	output string
	bytes  bool
	engineFlags
}

func (f *planFlags) register(cmd *cobra.Command, output bool) {
	fs := cmd.Flags()
	if output {
		fs.StringVarP(&f.output, "output", "o", "text", "output format: text or json (schema in docs/plan.md)")
	}
	fs.BoolVar(&f.bytes, "bytes", false, "also fetch the manifests of images to copy (costs pulls: manifest GETs) to report bytes to transfer and blobs the target already holds")
}

func newPlanCmd(g *globals) *cobra.Command {
	var (
		tf taskFlags
		pf planFlags
	)
	cmd := &cobra.Command{
		Use:   "plan --config FILE",
		Short: "Print what a sync would do, sending only tag lists and HEAD requests",
		Long: `plan lists and filters tags as sync does, then asks the source and the target
about every selected image with HEAD requests, which cost no Docker Hub
pull. It prints, per task, the images a sync would copy, skip or fail on,
what prune would delete, and the pulls (manifest GETs) a sync would spend
per source registry. Nothing is written.

Bytes to transfer need the source manifests (a GET each: a pull on Docker
Hub), so they are reported only with --bytes, which also asks the target
with HEADs which blobs it already holds.

Exit codes: 0 the plan was made and no image would fail; 1 some image would
fail (its source or target cannot be read); 2 usage or configuration error.`,
		Example: `  # what would a sync of this dregsy config do?
  regmirror plan --config dregsy.yaml

  # as JSON, with bytes to transfer (spends the pulls it reports)
  regmirror plan --config dregsy.yaml --bytes --output json

  # the same as a dry run of sync
  regmirror sync --config dregsy.yaml --dry-run`,
		Args: positional(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPlan(cmd, g, &tf, &pf)
		},
	}
	tf.register(cmd.Flags())
	pf.register(cmd, true)
	jobsFlag(cmd.Flags(), &pf.jobs, false)
	cmd.Flags().StringVar(&pf.platformCache, "platform-cache", defaultPlatformCache(), "the platform cache sync keeps: with it 'platform:' mappings are planned without a pull (\"\" to disable)")
	return cmd
}

// makePlan loads the config and asks the engine for a plan. It returns the
// manners too: with --bytes they count the pulls the plan itself spent.
func makePlan(cmd *cobra.Command, g *globals, tf *taskFlags, pf *planFlags) (*engine.Plan, *transport.Hosts, error) {
	if pf.output != "text" && pf.output != "json" {
		return nil, nil, usageErr("--output %q: want text or json", pf.output)
	}
	log, err := g.logger("text")
	if err != nil {
		return nil, nil, err
	}
	cfg, tasks, err := tf.load(log)
	if err != nil {
		return nil, nil, err
	}
	// The same engine as sync's: the same registries may use plain
	// HTTP, the same retry: section applies.
	pf.shard = tf.shards.engine()
	es, err := g.assemble(cmd, cfg, pf.engineFlags, log)
	if err != nil {
		return nil, nil, err
	}
	es.markTasks(tasks)
	ctx := cmd.Context()
	return es.engine(runHooks{}).Plan(ctx, tasks, engine.PlanOptions{Bytes: pf.bytes}), es.hosts, ctx.Err()
}

// writeJSON writes v as indented JSON: the --output json form of plan
// and check.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runPlan(cmd *cobra.Command, g *globals, tf *taskFlags, pf *planFlags) error {
	p, m, err := makePlan(cmd, g, tf, pf)
	if err != nil {
		return err
	}
	doc := planDocument(p, m.Pulls(), pf.bytes)
	if pf.output == "json" {
		if err := writeJSON(g.stdout, doc); err != nil {
			return err
		}
	} else {
		writePlanText(g.stdout, doc)
	}
	if doc.Totals.Fail > 0 {
		return fmt.Errorf("%w: %d images would fail", ErrSyncFailed, doc.Totals.Fail)
	}
	return nil
}

// The JSON document of `plan --output json`; docs/plan.md describes it.
// Field names are a contract with scripts: add, never rename.
type planDoc struct {
	Tasks  []planTask  `json:"tasks"`
	Totals planSummary `json:"totals"`
	// Pulls: manifest GETs a sync would send, per source registry.
	Pulls []planPulls `json:"pulls"`
	// Spent: manifest GETs this plan sent (only with --bytes), per host.
	Spent map[string]int `json:"spent_pulls"`
}

type planTask struct {
	Task       string          `json:"task"`
	Images     []planImage     `json:"images"`
	Prune      []planPrune     `json:"prune"`
	PruneNotes []planPruneNote `json:"prune_notes,omitempty"`
	Summary    planSummary     `json:"summary"`
}

type planImage struct {
	Source       string `json:"source"`
	Target       string `json:"target"`
	Tag          string `json:"tag"`
	Action       string `json:"action"` // copy, skip, fail, unknown
	Reason       string `json:"reason,omitempty"`
	SourceDigest string `json:"source_digest,omitempty"`
	TargetDigest string `json:"target_digest,omitempty"`
	Registry     string `json:"registry,omitempty"`
	Pulls        int    `json:"pulls"`
	PullsExact   bool   `json:"pulls_exact"`
	// Only with --bytes, for images to copy; null otherwise.
	Bytes        *int64 `json:"bytes"`
	Blobs        *int   `json:"blobs,omitempty"`
	BlobsPresent *int   `json:"blobs_present,omitempty"`
	BytesPresent *int64 `json:"bytes_present,omitempty"`
}

type planPrune struct {
	Target string `json:"target"`
	Tag    string `json:"tag"`
	Digest string `json:"digest"`
	Action string `json:"action"` // delete, keep
	Reason string `json:"reason,omitempty"`
}

type planPruneNote struct {
	Target string `json:"target"`
	Reason string `json:"reason"`
}

type planSummary struct {
	Copy    int `json:"copy"`
	Skip    int `json:"skip"`
	Fail    int `json:"fail"`
	Unknown int `json:"unknown"`
	Prune   int `json:"prune"`
	// Bytes to transfer and blobs proven present: null unless --bytes.
	Bytes        *int64 `json:"bytes"`
	BlobsPresent *int   `json:"blobs_present"`
	BytesPresent *int64 `json:"bytes_present"`
}

type planPulls struct {
	Registry  string `json:"registry"`
	DockerHub bool   `json:"docker_hub"`
	Pulls     int    `json:"pulls"`
	// Exact is false when an index's platform images are not counted
	// (they are only known with --bytes): Pulls is then a lower bound.
	Exact bool `json:"exact"`
}

func (s *planSummary) add(it engine.PlanItem, withBytes bool) {
	switch it.Action {
	case engine.WouldCopy:
		s.Copy++
	case engine.WouldSkip:
		s.Skip++
	case engine.WouldFail:
		s.Fail++
	case engine.Unknown:
		s.Unknown++
	}
	if withBytes {
		if s.Bytes == nil {
			s.Bytes, s.BlobsPresent, s.BytesPresent = new(int64), new(int), new(int64)
		}
		*s.Bytes += it.Bytes
		*s.BlobsPresent += it.BlobsPresent
		*s.BytesPresent += it.BytesPresent
	}
}

func planDocument(p *engine.Plan, spent map[string]int, withBytes bool) planDoc {
	doc := planDoc{Spent: spent, Tasks: []planTask{}}
	idx := map[string]int{}
	task := func(name string) *planTask {
		i, ok := idx[name]
		if !ok {
			i = len(doc.Tasks)
			idx[name] = i
			doc.Tasks = append(doc.Tasks, planTask{Task: name, Images: []planImage{}, Prune: []planPrune{}})
		}
		return &doc.Tasks[i]
	}
	pulls := map[string]*planPulls{}
	for _, it := range p.Items {
		t := task(it.Task)
		im := planImage{Source: it.Source, Target: it.Target, Tag: it.Tag, Action: string(it.Action), Reason: it.Reason,
			SourceDigest: it.SourceDigest, TargetDigest: it.TargetDigest, Registry: it.Registry, Pulls: it.Pulls, PullsExact: it.PullsExact}
		if it.BytesKnown {
			im.Bytes, im.Blobs, im.BlobsPresent, im.BytesPresent = &it.Bytes, &it.Blobs, &it.BlobsPresent, &it.BytesPresent
		}
		t.Images = append(t.Images, im)
		t.Summary.add(it, withBytes)
		doc.Totals.add(it, withBytes)
		// Pulls are a registry's notion: an oci: layout charges none.
		if it.Pulls > 0 && (registry.Endpoint{Registry: it.Registry}).Kind().Network() {
			pp := pulls[it.Registry]
			if pp == nil {
				pp = &planPulls{Registry: it.Registry, DockerHub: registry.IsDockerHub(it.Registry), Exact: true}
				pulls[it.Registry] = pp
			}
			pp.Pulls += it.Pulls
			pp.Exact = pp.Exact && it.PullsExact
		}
	}
	for _, pr := range p.Prune {
		t := task(pr.Task)
		x := planPrune{Target: pr.Target, Tag: pr.Tag, Digest: pr.Digest, Action: "delete", Reason: pr.Reason}
		if pr.Kept {
			x.Action = "keep"
		} else {
			t.Summary.Prune++
			doc.Totals.Prune++
		}
		t.Prune = append(t.Prune, x)
	}
	for _, n := range p.PruneNotes {
		t := task(n.Task)
		t.PruneNotes = append(t.PruneNotes, planPruneNote{Target: n.Target, Reason: n.Reason})
	}
	for _, h := range slices.Sorted(maps.Keys(pulls)) {
		doc.Pulls = append(doc.Pulls, *pulls[h])
	}
	if doc.Pulls == nil {
		doc.Pulls = []planPulls{}
	}
	if doc.Spent == nil {
		doc.Spent = map[string]int{}
	}
	return doc
}

// writePlanText prints a plan for people: per task its counts, then every
// image that would not be skipped, and what prune would do.
func writePlanText(w io.Writer, doc planDoc) {
	esc := textsafe.Escape // names and reasons come from registries
	for _, t := range doc.Tasks {
		fmt.Fprintf(w, "task %s: %s\n", t.Task, summaryText(t.Summary))
		for _, im := range t.Images {
			if im.Action == "skip" {
				continue
			}
			line := fmt.Sprintf("  %-7s %s", im.Action, esc(im.Target))
			if im.Reason != "" {
				line += " (" + esc(im.Reason) + ")"
			}
			if im.Bytes != nil {
				line += fmt.Sprintf(" %s to transfer, %d of %d blobs present", progress.Bytes(*im.Bytes), *im.BlobsPresent, *im.Blobs)
			}
			fmt.Fprintln(w, line)
		}
		for _, p := range t.Prune {
			if p.Action == "keep" {
				fmt.Fprintf(w, "  %-7s %s (not pruned: %s)\n", "keep", esc(p.Target), esc(p.Reason))
				continue
			}
			fmt.Fprintf(w, "  %-7s %s (%s)\n", "prune", esc(p.Target), esc(p.Digest))
		}
		for _, n := range t.PruneNotes {
			fmt.Fprintf(w, "  %-7s %s: %s\n", "noprune", esc(n.Target), esc(n.Reason))
		}
	}
	fmt.Fprintf(w, "total: %s\n", summaryText(doc.Totals))
	for _, p := range doc.Pulls {
		n := fmt.Sprint(p.Pulls)
		if !p.Exact {
			n = "at least " + n + " (an index's platform images count one each; --bytes counts them)"
		}
		who := p.Registry
		if p.DockerHub {
			who = "Docker Hub (" + p.Registry + ")"
		}
		fmt.Fprintf(w, "pulls a sync would spend at %s: %s\n", who, n)
	}
	for _, h := range slices.Sorted(maps.Keys(doc.Spent)) {
		fmt.Fprintf(w, "pulls this plan spent at %s: %d\n", h, doc.Spent[h])
	}
}

func summaryText(s planSummary) string {
	out := fmt.Sprintf("%d to copy, %d to skip, %d to fail", s.Copy, s.Skip, s.Fail)
	if s.Unknown > 0 {
		out += fmt.Sprintf(", %d unknown", s.Unknown)
	}
	if s.Prune > 0 {
		out += fmt.Sprintf(", %d to prune", s.Prune)
	}
	if s.Bytes != nil {
		out += fmt.Sprintf("; %s to transfer, %d blobs (%s) already on the target", progress.Bytes(*s.Bytes), *s.BlobsPresent, progress.Bytes(*s.BytesPresent))
	} else if s.Copy > 0 {
		out += "; bytes unknown (--bytes)"
	}
	return out
}
