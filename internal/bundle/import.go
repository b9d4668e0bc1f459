package bundle

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
)

// Route says where the images of one bundle repository go.
type Route struct {
	// Task names the destination in logs (the config task, or "import").
	Task   string
	Target registry.Endpoint
	// To is the repository at the target.
	To string
}

// ImportOptions say what to import and where.
type ImportOptions struct {
	// Routes maps a bundle repository ("docker.io/library/busybox") to
	// its destinations. A repository without one fails with err.
	Routes func(repo string) ([]Route, error)
	// Engine runs the copies (required); its OnResult sees every image.
	Engine *engine.Engine
	// OnTotal, if set, is told before the first copy how many images and
	// blob bytes the bundle holds for the routed repositories; OnBytes as
	// blob bytes are read from the bundle (each blob once). They are a
	// progress display's figures.
	OnTotal func(images int, bytes int64)
	OnBytes func(n int64)
}

// Import pushes every image a bundle completes to its routes with the
// engine: the target is asked first and what it holds is skipped, so a
// re-run after an interruption finishes the job. Images held by an
// earlier bundle must already be on the target; if not, they fail naming
// that bundle. Repositories without a route are reported as failed.
func Import(ctx context.Context, b *Bundle, o ImportOptions) (*engine.Report, error) {
	if o.Engine == nil {
		return nil, errors.New("bundle.Import: no engine")
	}
	type group struct {
		task  engine.Task
		to    map[string]string // bundle repo -> target repo
		index int
	}
	var groups []*group
	byKey := map[string]*group{}
	var unrouted []engine.Result
	images := 0
	for _, repo := range Repos(b.Manifest) {
		if err := registry.CheckRepositoryName(repo); err != nil {
			// A name with a dot segment must not become a target path.
			unrouted = append(unrouted, engine.Result{Task: "import", Source: repo, Status: engine.Failed,
				Err: fmt.Errorf("%s: image name from the bundle: %w", b.Path, err)})
			continue
		}
		routes, err := o.Routes(repo)
		if err != nil {
			unrouted = append(unrouted, engine.Result{Task: "import", Source: repo, Status: engine.Failed, Err: err})
			continue
		}
		for _, r := range routes {
			k := r.Task + "\x00" + r.Target.Key()
			g := byKey[k]
			if g == nil {
				g = &group{index: len(groups), to: map[string]string{}}
				g.task = engine.Task{Name: r.Task, Target: r.Target}
				byKey[k] = g
				groups = append(groups, g)
			}
			g.to[repo] = r.To
			// Referrers: attachments (cosign tags, OCI referrers)
			// travel with their subject, as sync copies them.
			g.task.Mappings = append(g.task.Mappings, engine.Mapping{From: repo, To: r.To, Referrers: true})
			for _, im := range b.Manifest.Images {
				// Attachments are copied with their subject, not
				// reported as images of their own.
				rp, ref := SplitName(im.Name)
				if rp == repo && !strings.Contains(im.Name, "@") && !registry.IsAttachmentTag(ref) {
					images++
				}
			}
		}
	}
	var total int64
	for _, bl := range b.Manifest.Blobs {
		total += bl.Size
	}
	if o.OnTotal != nil {
		o.OnTotal(images, total)
	}

	tasks := make([]engine.Task, len(groups))
	for i, g := range groups {
		to := g.to
		// Each route has its own view of the bundle: where an earlier
		// import put an inherited blob depends on the route.
		g.task.SourceStore = newSource(b, func(repo string) string { return to[repo] }, o.OnBytes)
		tasks[i] = g.task
	}
	if rep := missingBase(ctx, b, o.Engine, tasks); rep != nil {
		rep.Results = append(rep.Results, unrouted...)
		return rep, ctx.Err()
	}
	rep := o.Engine.Run(ctx, tasks)
	rep.Results = append(rep.Results, unrouted...)
	return rep, ctx.Err()
}

// missingBase checks the whole chain before the first push. An
// incremental bundle imported before its base would push the images it
// holds and fail those its base holds; importing the base afterwards
// would then roll the first ones back. So when an image an earlier bundle
// holds is not on the target (a plan: tag lists and HEADs only), nothing
// is pushed and every image fails naming the bundle to import first. nil
// when the chain is in place.
func missingBase(ctx context.Context, b *Bundle, e *engine.Engine, tasks []engine.Task) *engine.Report {
	earlier := map[string]Image{} // source display reference -> image
	for _, t := range tasks {
		for _, m := range t.Mappings {
			for _, im := range b.Manifest.Images {
				rp, ref := SplitName(im.Name)
				if rp == m.From && im.Bundle != b.Manifest.ID && !strings.Contains(im.Name, "@") {
					earlier[t.SourceStore.Ref(rp, ref)] = im
				}
			}
		}
	}
	if len(earlier) == 0 {
		return nil
	}
	plan := e.Plan(ctx, tasks, engine.PlanOptions{})
	var first *Image
	for _, it := range plan.Items {
		if im, ok := earlier[it.Source]; ok && it.Action == engine.WouldCopy {
			first = &im
			break
		}
	}
	if first == nil {
		return nil
	}
	base := b.Manifest.refByID(first.Bundle).Describe()
	err := fmt.Errorf("not imported: %s is held by %s and is not on the target: import that bundle first (this bundle builds on it; nothing was pushed): %w",
		first.Name, base, ErrMissing)
	rep := &engine.Report{}
	for _, it := range plan.Items {
		rep.Results = append(rep.Results, engine.Result{Task: it.Task, Source: it.Source, Target: it.Target, Tag: it.Tag, Status: engine.Failed, Err: err})
	}
	return rep
}
