package engine

import (
	"context"
	"fmt"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/regmirror/regmirror/internal/registry"
)

// Plan says what a run would do without doing it: the same listing and
// filtering as Run, then for every selected image a HEAD at the source and
// at the target. No manifest is fetched (a manifest GET is a Docker Hub
// pull) unless PlanOptions.Bytes asks for it, and nothing is written.

// Action is what a sync would do with one image.
type Action string

const (
	WouldCopy Action = "copy"
	WouldSkip Action = "skip"
	WouldFail Action = "fail"
	// Unknown: a platform mapping whose index is not in the platform
	// cache; which image the target should hold is only in the index
	// manifest, which a plan without Bytes does not fetch.
	Unknown Action = "unknown"
)

// PlanOptions tune Plan.
type PlanOptions struct {
	// Bytes fetches the manifests of the images to copy (GETs: Docker Hub
	// counts them as pulls) to learn blob sizes, and asks the target with
	// HEADs which blobs it already holds.
	Bytes bool
}

// PlanItem is what a sync would do with one image.
type PlanItem struct {
	Task, Source, Target, Tag string
	Action                    Action
	// Verdict is the copy decision behind Action (empty for a fail): it
	// tells an image the target lacks from one whose digest differs.
	Verdict Verdict
	// Reason says why: "missing on target", "digest differs", the error.
	Reason       string
	SourceDigest string
	TargetDigest string
	// Registry is the source's host ("index.docker.io" for Docker Hub).
	Registry string
	// Pulls is the number of manifest GETs a sync would send to the
	// source for this image; a lower bound unless PullsExact (an index's
	// platform images that the target lacks are fetched one by one, and
	// only Bytes learns how many there are).
	Pulls      int
	PullsExact bool
	// With PlanOptions.Bytes, for images to copy: BytesKnown is set,
	// Bytes is the size of the blobs the target lacks (an upper bound:
	// a registry may mount some from another repository), BytesPresent
	// that of the Blobs the target proved (HEAD) it already holds.
	BytesKnown          bool
	Blobs, BlobsPresent int
	Bytes, BytesPresent int64
	Err                 error
}

// PruneNote says why prune would not run for a repository.
type PruneNote struct {
	Task, Target, Reason string
}

// Plan is what a run would do, in task, mapping and tag order.
type Plan struct {
	Items []PlanItem
	// Prune lists the target tags prune would delete (and those it would
	// keep, with Kept and a reason) for mappings with Prune.
	Prune      []PruneItem
	PruneNotes []PruneNote
}

// Plan works out what Run would do with tasks, sending only tag lists and
// HEAD requests (and, with o.Bytes, manifest GETs for images to copy).
func (e *Engine) Plan(ctx context.Context, tasks []Task, o PlanOptions) *Plan {
	jobs, repos := e.expand(ctx, tasks)
	slices.SortStableFunc(jobs, func(a, b job) int { return slices.Compare(a.order[:], b.order[:]) })
	p := &Plan{Items: make([]PlanItem, len(jobs))}
	g := errgroup.Group{}
	g.SetLimit(e.checkWidth())
	for i := range jobs {
		g.Go(func() error {
			p.Items[i] = e.planImage(ctx, &jobs[i], o)
			return nil
		})
	}
	_ = g.Wait()
	if err := e.platforms.save(); err != nil {
		e.log.Warn("could not save the platform cache", "error", err)
	}

	failing := map[*Mapping]int{}
	for i, it := range p.Items {
		if it.Action == WouldFail {
			failing[jobs[i].mapping]++
		}
	}
	written := newWrittenTags(repos)
	for _, rp := range repos {
		if !rp.mapping.Prune {
			continue
		}
		target := rp.dst.Ref(rp.mapping.To, "")
		if n := failing[rp.mapping]; n > 0 {
			p.PruneNotes = append(p.PruneNotes, PruneNote{rp.task.Name, target, fmt.Sprintf("prune would not run: %d images would fail", n)})
			continue
		}
		items, err := e.pruneCandidates(ctx, rp, written)
		if err != nil {
			p.PruneNotes = append(p.PruneNotes, PruneNote{rp.task.Name, target, err.Error()})
			continue
		}
		p.Prune = append(p.Prune, items...)
	}
	return p
}

func (e *Engine) planImage(ctx context.Context, j *job, o PlanOptions) PlanItem {
	it := PlanItem{Task: j.task.Name, Source: j.srcR, Target: j.dstR, Tag: j.ref.String()}
	if j.src != nil {
		it.Registry = j.src.String()
	}
	fail := func(err error) PlanItem {
		it.Action, it.Err, it.Reason = WouldFail, err, err.Error()
		return it
	}
	if j.preResolved != nil {
		return fail(j.preResolved)
	}
	d, art, err := e.observe(ctx, j, observeOptions{headPinned: true, fetchIndex: o.Bytes})
	if err != nil {
		return fail(err)
	}
	it.Verdict, it.Reason = d.Verdict, d.Reason
	it.SourceDigest, it.TargetDigest = d.SourceDigest, d.TargetDigest
	it.Pulls, it.PullsExact = d.Pulls, d.PullsExact
	switch d.Verdict {
	case VerdictSkip:
		it.Action = WouldSkip
		return it
	case VerdictUnknown:
		it.Action = Unknown
		return it
	}
	it.Action = WouldCopy
	if !o.Bytes {
		return it
	}
	if art == nil {
		if art, err = e.fetch(ctx, j); err != nil {
			return fail(fmt.Errorf("source %s: %w", j.srcR, err))
		}
	}
	if err := e.measure(ctx, j, art, &it); err != nil {
		return fail(fmt.Errorf("measuring %s: %w", j.srcR, err))
	}
	return it
}

// measure counts the blobs of art and asks the target which it holds.
// Child manifests of an index that the target already has are not
// fetched, as a sync would not fetch them either.
func (e *Engine) measure(ctx context.Context, j *job, art *registry.Artifact, it *PlanItem) error {
	bc, ok := j.dst.(registry.BlobChecker)
	if !ok {
		return fmt.Errorf("%s cannot check blobs", j.dst)
	}
	m := j.mapping
	pulls := 1
	if m.Platform != nil && art.Image != nil && it.Pulls == 2 {
		pulls = 2
	}
	tree := registry.NewArtifactTree(art)
	visit := func(ctx context.Context, d v1.Descriptor) (bool, error) {
		switch {
		case d.Digest == art.Desc.Digest:
			return true, nil // fetched already
		case registry.IsManifest(d):
			if _, err := j.dst.Head(ctx, m.To, d.Digest.String()); err == nil {
				return false, nil // the target has this child: a sync does not fetch it
			}
			pulls++
			return true, nil
		}
		it.Blobs++
		has, err := bc.HasBlob(ctx, m.To, d.Digest.String())
		if err != nil {
			return false, err
		}
		if has {
			it.BlobsPresent++
			it.BytesPresent += d.Size
		} else {
			it.Bytes += d.Size
		}
		return false, nil
	}
	if err := registry.Walk(ctx, art.Desc, tree.Read, registry.Walker{Visit: visit}); err != nil {
		return err
	}
	it.Pulls, it.PullsExact, it.BytesKnown = pulls, true, true
	return nil
}
