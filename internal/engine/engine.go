// Package engine plans and runs copies: which images a task selects, which of
// them the target already holds, and copying the rest in parallel. It knows
// nothing of the CLI or of YAML: callers hand it Tasks built from whatever
// configuration they read, and get a Report (Run) or a Plan (Plan) back.
//
// The rule that shapes it: never pull what the target already has. For each
// selected tag the target and the source are asked with HEAD requests, and
// only when their digests differ is anything fetched from the source.
//
// The rooms:
//   - engine.go: Task, Mapping, Result and Run; expand turns tasks into
//     jobs (repositories discovered, tags listed and filtered).
//   - decide.go: the one copy decision. observe asks, decide (pure) says
//     skip, copy, missing or unknown. Run, Plan (plan, check, sync
//     --dry-run) and the daemon all go through it.
//   - plan.go: Plan, and with Bytes the blob sizes (over registry.Walk).
//   - attach.go, prune.go, discover.go: attachments, prune, the catalog.
//   - platformcache.go: which image an index holds per platform.
//
// A Task names its stores by endpoint (opened through registry/stores and
// cached per engine) or brings its own (SourceStore, TargetStore: a bundle).
// Results carry repositories and references as fields; Source and Target
// are display strings.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/regmirror/regmirror/internal/filter"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/stores"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/shard"
	"github.com/regmirror/regmirror/internal/verify"
)

// Task is one unit of configuration: a source, a target and mappings.
type Task struct {
	Name   string
	Source registry.Endpoint
	Target registry.Endpoint
	// SourceStore and TargetStore, when set, are the stores to use instead
	// of opening Source and Target (a bundle being imported or written):
	// Source and Target then only name them in messages and caches.
	SourceStore, TargetStore registry.Store
	Mappings                 []Mapping
	// Lister applies to the mappings whose From is a regex:.
	Lister Lister
	// PullOnly reads every selected image from Source – manifests and
	// blobs, each checked against its digest – and keeps nothing: it warms
	// a pull-through cache the way "docker pull" would. Target and the
	// mappings' To are ignored.
	PullOnly bool
}

// Mapping copies the selected tags of one source repository to a target
// repository, or, with From "regex:RE", of every repository of the source's
// catalog that RE matches. From and To follow dregsy's rules, see
// filter.RepoMap: with a regex From a plain To is a prefix, and To
// "regex:RE,REPLACEMENT" rewrites source paths.
type Mapping struct {
	From string
	To   string
	// Repos is From and To compiled (config hands them over that way);
	// nil: the engine compiles them. Whoever changes From or To clears it.
	Repos *filter.RepoMap
	// Origin says where the mapping was written ("dregsy.yaml:12"), for
	// messages only: it is not part of what the mapping does (the
	// daemon's fingerprint leaves it out).
	Origin string
	// Tags selects tags; nil selects every tag.
	Tags *filter.Tags
	// Platform, when set, copies only that platform's image of a
	// multi-arch tag. Nil copies the whole index byte for byte.
	Platform *v1.Platform
	// Platforms, when set, copies an index of only these platforms'
	// images, cut from the source's (registry.SelectPlatforms). A warm
	// run reads the target's index, not the source's, to see whether it
	// is current. Exclusive with Platform.
	Platforms []v1.Platform
	// PlatformsSkipMissing copies the listed platforms an index has when
	// it lacks some, instead of failing the image.
	PlatformsSkipMissing bool
	// Verify, when set, copies an image only once a cosign signature of
	// the source reference's digest verifies with one of its keys (see
	// signatures.go); the copy then reads the source by that digest. An
	// image the target already holds is not checked again.
	Verify *verify.Keys
	// Referrers also copies what is attached to each image: OCI
	// referrers and cosign's .sig/.att/.sbom tags (see attach.go).
	Referrers bool
	// Prune deletes, after a run in which every image of a repository
	// synced, the target tags the mapping owns (Tags.Owns) that the
	// source no longer has (see prune.go).
	Prune bool
}

// Options configure an Engine.
type Options struct {
	// Logger receives one line per image; nil discards.
	Logger *slog.Logger
	// Jobs caps how many images are copied at once (0: DefaultJobs).
	// Within the cap the number adapts to the link, starting at
	// StartJobs (adapt.go): most of an image's time is request latency,
	// and blob downloads are capped separately by Registry.Hosts.Transfers.
	// Deciding whether an image needs copying (a HEAD at each end) goes
	// CheckFactor × Jobs wide: HEADs are cheap, and Docker Hub does not
	// count them as pulls.
	Jobs int
	// Registry tunes the stores the engine opens.
	Registry registry.Options
	// Attempts is how many times an image copy is tried when it fails with
	// a transient error (default 3); RetryWait is the first wait between
	// attempts, doubled each time (default 2s).
	Attempts  int
	RetryWait time.Duration
	// ImageTimeout bounds one image's copy, every attempt included (0: no
	// bound). The transport's progress deadline fails a slow body; this
	// bounds the whole, so a source slow in every way still lets the run
	// end.
	ImageTimeout time.Duration
	// PlatformCache is a file remembering which image each multi-arch
	// index holds per platform, so `platform:` mappings cost no manifest
	// GET when nothing changed ("" keeps it in memory only).
	PlatformCache string
	// OnResult, if set, is called once per finished image (from several
	// goroutines at once), and once per pruned tag: the daemon feeds its
	// metrics from it.
	OnResult func(Result)
	// OnPlanned, if set, is called once per Run with the number of
	// images selected, before any is copied: a progress display's total.
	OnPlanned func(images int)
	// OnBytes, if set, is called as bytes are written to targets (from
	// several goroutines at once): a progress display's byte count.
	OnBytes func(n int64)
	// Now is the clock for the repository list cache (tests); default
	// time.Now.
	Now func() time.Time
	// Shard, when its Count is above 1, makes this engine one of several
	// processes sharing the work: every mapping is still expanded (so
	// every shard discovers repositories, with the lister cache as
	// usual), but only the (task, source repository) pairs the shard
	// owns are planned, copied and pruned (shard.Spec.OwnsRepository).
	Shard shard.Spec
}

// Engine runs tasks. It caches stores per endpoint, so connections and
// tokens are reused across tasks and runs.
type Engine struct {
	log       *slog.Logger
	jobs      int
	checks    int // checkWidth
	attempts  int
	retryWait time.Duration
	imageTO   time.Duration
	onResult  func(Result)
	onPlanned func(int)
	onBytes   func(int64)
	platforms *platformCache
	ropt      registry.Options
	now       func() time.Time
	catalogs  catalogCache
	shard     shard.Spec
	verified  sync.Map // digest and key set ID -> the key that verified it
	runs      atomic.Uint64

	mu     sync.Mutex
	stores map[string]registry.Store
}

// New returns an Engine.
func New(o Options) *Engine {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	checks := o.Jobs * CheckFactor
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs
		checks = CheckFactor * StartJobs
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.RetryWait <= 0 {
		o.RetryWait = 2 * time.Second
	}
	if o.Registry.Logger == nil {
		o.Registry.Logger = o.Logger
	}
	if o.Registry.Hosts == nil {
		// One set of manners for every store: the transfer limit and the
		// per-host waits are global to the engine.
		o.Registry.Hosts = transport.DefaultHosts()
		o.Registry.Hosts.Logger = o.Logger
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Engine{log: o.Logger, jobs: o.Jobs, checks: checks, attempts: o.Attempts, retryWait: o.RetryWait, imageTO: o.ImageTimeout, onResult: o.OnResult, onPlanned: o.OnPlanned, onBytes: o.OnBytes, platforms: newPlatformCache(o.PlatformCache), ropt: o.Registry, now: o.Now, shard: o.Shard, stores: map[string]registry.Store{}}
}

func (e *Engine) store(ep registry.Endpoint) (registry.Store, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := ep.Key()
	if s, ok := e.stores[k]; ok {
		return s, nil
	}
	s, err := stores.Open(ep, e.ropt)
	if err != nil {
		return nil, err
	}
	e.stores[k] = s
	return s, nil
}

// taskStore is a task's own store when it brings one, else the engine's
// store for ep.
func (e *Engine) taskStore(own registry.Store, ep registry.Endpoint) (registry.Store, error) {
	if own != nil {
		return own, nil
	}
	return e.store(ep)
}

// Status is what happened to one image.
type Status string

const (
	Copied  Status = "copied"
	Skipped Status = "skipped"
	Failed  Status = "failed"
	// Pruned: the tag was deleted from the target (mappings with Prune).
	Pruned Status = "pruned"
	// Pulled: read in full from the source and thrown away (PullOnly).
	Pulled Status = "pulled"
	// Interrupted: the run was cancelled while the image was being
	// copied; nothing half-written is left, and a new run copies it.
	Interrupted Status = "interrupted"
	// NotStarted: the run was cancelled before the image's turn came.
	NotStarted Status = "not-started"
)

// Result is the outcome for one image (or, with an empty Tag, for a whole
// mapping whose tags could not be listed).
type Result struct {
	Task string
	// Source and Target are display references ("host/repo:tag"), for
	// messages: read names from SourceRepo, TargetRepo and Ref, never by
	// parsing these.
	Source string
	Target string
	// Tag is Ref as written in the mapping ("1.2", "sha256:...",
	// "1.2@sha256:...").
	Tag string
	// SourceRepo and TargetRepo are the repositories as the stores name
	// them (the mapping's From and To, "" when unknown), Ref the image's
	// reference (zero for a whole mapping).
	SourceRepo, TargetRepo string
	Ref                    registry.Reference
	Digest                 string
	Status                 Status
	Bytes                  int64
	Duration               time.Duration
	// Attachments counts the signatures, attestations and SBOMs copied
	// with the image (mappings with Referrers only).
	Attachments int
	Err         error
	// Logged says the engine has already logged this failure with its
	// reason, where it happened; a summary names it without repeating it.
	// A failure made outside the engine (a bundle's refused name, an
	// import whose base is missing) is not Logged.
	Logged bool

	mapping *Mapping // the repository's mapping the result belongs to (prune)
}

// Report is the outcome of a run, in task, mapping, repository and tag
// order.
type Report struct {
	Results []Result
}

// TaskSummary adds up the results of one task.
type TaskSummary struct {
	Task                    string
	Copied, Skipped, Failed int
	Pruned                  int
	Pulled                  int
	Interrupted, NotStarted int
	Bytes                   int64
	Failures                []Result
}

// Summaries returns one summary per task, in the order tasks were run.
func (r *Report) Summaries() []TaskSummary {
	var out []TaskSummary
	idx := map[string]int{}
	for _, res := range r.Results {
		i, ok := idx[res.Task]
		if !ok {
			i = len(out)
			idx[res.Task] = i
			out = append(out, TaskSummary{Task: res.Task})
		}
		s := &out[i]
		switch res.Status {
		case Copied:
			s.Copied++
		case Skipped:
			s.Skipped++
		case Failed:
			s.Failed++
			s.Failures = append(s.Failures, res)
		case Pruned:
			s.Pruned++
		case Pulled:
			s.Pulled++
		case Interrupted:
			s.Interrupted++
		case NotStarted:
			s.NotStarted++
		}
		s.Bytes += res.Bytes
	}
	return out
}

// Failed counts failed results.
func (r *Report) Failed() int { return r.Count(Failed) }

// Count counts the results with status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, res := range r.Results {
		if res.Status == s {
			n++
		}
	}
	return n
}

// logUnreachable says once per registry found down how many images were
// not attempted because of it, instead of a failure line per image.
func logUnreachable(log *slog.Logger, rep *Report) {
	type down struct {
		cause string
		n     int
	}
	hosts := map[string]*down{}
	var order []string
	for _, r := range rep.Results {
		var ue *transport.UnreachableError
		if r.Status != Failed || !errors.As(r.Err, &ue) {
			continue
		}
		if hosts[ue.Host] == nil {
			hosts[ue.Host] = &down{cause: ue.Cause}
			order = append(order, ue.Host)
		}
		hosts[ue.Host].n++
	}
	for _, h := range order {
		d := hosts[h]
		log.Error(fmt.Sprintf("%s unreachable (%s); %d images not attempted", h, d.cause, d.n), "registry", h, "cause", d.cause, "not_attempted", d.n)
	}
}

// job is one selected image.
type job struct {
	order      [4]int // task, mapping, repository, tag: for a stable report order
	task       *Task
	mapping    *Mapping
	ref        registry.Reference
	src, dst   registry.Store
	srcR, dstR string // display references
	// srcRepo and dstRepo are the repositories, once known ("" for a
	// mapping that failed before its repositories were).
	srcRepo, dstRepo string
	preResolved      error // set when the job failed before it started
	// listed: the source's tag list named the tag, so it exists there.
	listed bool
	// targetTags is the target repository's tag list, read alongside the
	// source's (nil: not read, or it could not be): a tag it lacks is
	// missing there without a HEAD, and one it names is asked at both
	// ends at once (see observe).
	targetTags map[string]bool
	// copies holds the run's copy slots (the adaptive limit, at most
	// Jobs): a job takes one only once it knows the image needs copying.
	copies *copyGate
	// copying is set once the job took a copy slot: from then on an
	// interrupt cuts it, before then it was not started.
	copying bool
}

// DefaultJobs is the cap on images copied at once when Options.Jobs is
// not set, and StartJobs where the adaptive limit starts (or the cap, when
// lower). Every command's default comes from here.
//
// 8 at once was latency-bound on a source 40 ms away (1.4 requests in
// flight there on average) and right on loopback, so the limit starts at
// 8 and may grow to 32: four times as many copies cover a link of about
// four times the round trips that 8 were tuned on, while copies still
// cost no more bandwidth (Hosts.Transfers caps blob downloads on its
// own) and a run's memory stays small (a copy holds a manifest and
// streams its blobs). Checks go CheckFactor × StartJobs = 32 images wide
// by default (see checkWidth).
const (
	DefaultJobs = 32
	StartJobs   = 8
)

// CheckFactor is how many more images are checked (HEADs) than copied at
// once. A warm run is nothing but checks: on a link of 40 ms, 8 at a time
// is 200 tags a second, 32 is 800. The per-host request caps
// (max-concurrent-requests) still bound every request.
const CheckFactor = 4

// checkWidth is how many questions the engine has on the wire at once when
// it only asks (tag lists, catalogs, the HEADs of the copy decision), for
// sync, plan and check alike: CheckFactor × Jobs when Jobs was given, and
// CheckFactor × StartJobs (32) by default, not × the default cap. HEADs are
// cheap, not free: 128 at once cost a CPU-bound loopback run with nothing
// to copy a fifth more time than 32 (300 tags: 0.71-0.82 s against
// 0.60-0.61 s) and gained nothing through a 40 ms link (0.87-0.97 s
// either way), where the registries' CPU, not the round trips, was left.
func (e *Engine) checkWidth() int { return e.checks }

// copySlot waits for one of the run's copy slots (copyGate),
// once per job: Run gives it back when the job's result is reported, so a
// run cancelled from OnResult starts no further copy.
func (j *job) copySlot(ctx context.Context) error {
	if j.copying || j.copies == nil {
		j.copying = true
		return nil
	}
	if err := j.copies.acquire(ctx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		j.copies.release(false, 0) // cancelled while waiting: not started
		return err
	}
	j.copying = true
	return nil
}

type taskKey struct{}

// withTask marks ctx as working for the task named name: the requests made
// with it carry the name to a logger (TaskOf), which is how a task's
// "verbose: true" reaches the transport's per-request lines.
func withTask(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, taskKey{}, name)
}

// TaskOf returns the name of the task ctx works for, "" outside a task.
func TaskOf(ctx context.Context) string {
	s, _ := ctx.Value(taskKey{}).(string)
	return s
}

// Run runs every task once and reports every image's outcome. It returns
// when all images are done or ctx is cancelled; cancelled images are
// reported as failed.
func (e *Engine) Run(ctx context.Context, tasks []Task) *Report {
	// A registry found down in an earlier run (the daemon's) is asked
	// again; one more failure marks it down again.
	e.ropt.Hosts.HalfOpen()
	jobs, repos := e.expand(ctx, tasks)
	if e.onPlanned != nil {
		e.onPlanned(len(jobs))
	}
	hooks := runHooks(ctx)
	if hooks.Planned != nil {
		hooks.Planned(len(jobs))
	}
	if e.onBytes != nil {
		ctx = transport.WithProgress(ctx, e.onBytes)
	}
	results := make([]Result, len(jobs))
	g := errgroup.Group{}
	g.SetLimit(e.checkWidth())
	copies := newCopyGate(newAdaptive(1, e.jobs, StartJobs, time.Now(), e.ropt.Hosts.Pushback()), time.Now, e.ropt.Hosts.Pushback, e.log)
	for i := range jobs {
		jobs[i].copies = copies
		g.Go(func() error {
			if ctx.Err() != nil {
				// Cancelled (SIGINT, SIGTERM): start no new image.
				j := &jobs[i]
				results[i] = Result{Task: j.task.Name, Source: j.srcR, Target: j.dstR, Tag: j.ref.String(), Status: NotStarted, mapping: j.mapping}
				return nil
			}
			if hooks.Started != nil {
				hooks.Started(jobs[i].srcR)
			}
			results[i] = e.runJob(ctx, &jobs[i])
			if e.onResult != nil {
				e.onResult(results[i])
			}
			if jobs[i].copying && jobs[i].copies != nil {
				st := results[i].Status
				jobs[i].copies.release(st == Copied || st == Pulled, results[i].Bytes)
			}
			return nil
		})
	}
	_ = g.Wait()
	order := make([]int, len(jobs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return slices.Compare(jobs[a].order[:], jobs[b].order[:])
	})
	rep := &Report{Results: make([]Result, 0, len(jobs))}
	for _, i := range order {
		rep.Results = append(rep.Results, results[i])
	}
	pruned := e.pruneAll(ctx, repos, rep.Results)
	if e.onResult != nil {
		for _, r := range pruned {
			e.onResult(r) // the daemon counts prunes and their failures too
		}
	}
	rep.Results = append(rep.Results, pruned...)
	logUnreachable(e.log, rep)
	if err := e.platforms.save(); err != nil {
		e.log.Warn("could not save the platform cache", "error", err)
	}
	return rep
}

// expand turns every mapping into the repositories it names (listing the
// source's catalog for a regex: From), then lists and filters the tags of
// each repository; both steps run concurrently.
func (e *Engine) expand(ctx context.Context, tasks []Task) ([]job, []*expandedRepo) {
	run := e.runs.Add(1)
	var (
		mu    sync.Mutex
		jobs  []job
		repos []job // one per repository, order[3] == -1
		plans = make([]*expandedRepo, 0)
	)
	add := func(dst *[]job, js ...job) {
		mu.Lock()
		*dst = append(*dst, js...)
		mu.Unlock()
	}
	g := errgroup.Group{}
	g.SetLimit(e.checkWidth())
	for ti := range tasks {
		t := &tasks[ti]
		for mi := range t.Mappings {
			g.Go(func() error {
				rs, failed, others := e.expandMapping(withTask(ctx, t.Name), run, ti, mi, t)
				add(&repos, rs...)
				add(&jobs, failed...)
				mu.Lock()
				plans = append(plans, others...)
				mu.Unlock()
				return nil
			})
		}
	}
	_ = g.Wait()
	for i := range repos {
		g.Go(func() error {
			js, rp := e.expandRepo(withTask(ctx, repos[i].task.Name), repos[i])
			add(&jobs, js...)
			mu.Lock()
			plans = append(plans, rp)
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	slices.SortFunc(plans, func(a, b *expandedRepo) int { return slices.Compare(a.order[:], b.order[:]) })
	return jobs, plans
}

// expandedRepo is what expansion learnt about one repository of a mapping;
// prune needs it.
type expandedRepo struct {
	order   [3]int // task, mapping, repository
	task    *Task
	mapping *Mapping // the repository's own mapping
	src     registry.Store
	dst     registry.Store
	// srcTags is the source's tag list; listed says it was listed.
	srcTags []string
	listed  bool
	// selected are the target references the repository's jobs write.
	selected []string
	// err is set when expansion failed (the tag listing).
	err error
	// otherShard: the repository belongs to another shard, which copies
	// and prunes it. Only its target is known (its mapping's To); prune
	// leaves a target repository alone that such a repository also
	// writes to, as it cannot know which tags that shard writes.
	otherShard bool
}

// expandMapping resolves a mapping into one job template per repository it
// names, or into a failed job when that cannot be done. With a shard, only
// the repositories the shard owns become jobs; the others are returned as
// otherShard plans.
func (e *Engine) expandMapping(ctx context.Context, run uint64, ti, mi int, t *Task) (repos, failed []job, others []*expandedRepo) {
	m := &t.Mappings[mi]
	base := job{order: [4]int{ti, mi, -1, -1}, task: t, mapping: m}
	fail := func(err error) ([]job, []job, []*expandedRepo) {
		base.preResolved = err
		return nil, []job{base}, nil
	}
	src, err := e.taskStore(t.SourceStore, t.Source)
	if err != nil {
		return fail(fmt.Errorf("source: %w", err))
	}
	var dst registry.Store // none for PullOnly
	if !t.PullOnly {
		if dst, err = e.taskStore(t.TargetStore, t.Target); err != nil {
			return fail(fmt.Errorf("target: %w", err))
		}
	}
	base.src, base.dst = src, dst
	base.srcR, base.dstR = src.Ref(m.From, ""), refOf(dst, m.To, "")
	rm := m.Repos
	if rm == nil {
		var err error
		if rm, err = filter.ParseRepoMap(m.From, m.To); err != nil {
			return fail(fmt.Errorf("%s: %w", mappingName(t, mi), err))
		}
	}

	var listed []string
	var cached bool
	if rm.Discovers() {
		base.srcR, base.dstR = src.String()+"/"+m.From, ""
		if dst != nil {
			base.dstR = dst.String() + "/" + m.To
		}
		l, err := e.listRepos(ctx, run, t, src)
		if err != nil {
			return fail(fmt.Errorf("%s: discovering repositories: %w", mappingName(t, mi), err))
		}
		listed, cached = l.repos, l.cached
	}
	sources := rm.Sources(listed)
	owned := 0
	for _, from := range sources {
		if e.shard.OwnsRepository(t.Name, from) {
			owned++
		}
	}
	if rm.Discovers() {
		// cached: the list came from an earlier listing (this run's or
		// one within lister.cacheDuration), no catalog request was made.
		attrs := []any{"task", t.Name, "source", base.srcR, "listed", len(listed), "matched", len(sources), "cached", cached}
		if e.shard.Count > 1 {
			attrs = append(attrs, "shard", e.shard.String(), "owned", owned)
		}
		if len(sources) == 0 {
			e.log.Warn("no repository matched", attrs...)
		} else {
			e.log.Info("discovered repositories", attrs...)
		}
	}
	for ri, from := range sources {
		to, err := rm.Target(from)
		if !e.shard.OwnsRepository(t.Name, from) {
			if err == nil && dst != nil && checkMapped(from, to, rm.Discovers(), true) == nil {
				other := *m
				other.From, other.To, other.Prune = from, to, false
				others = append(others, &expandedRepo{order: [3]int{ti, mi, ri}, task: t, mapping: &other, src: src, dst: dst, otherShard: true})
			}
			continue
		}
		if err == nil {
			// Both names go into request paths: a catalog entry
			// ("team/../../victim/app") or a rewrite that makes one
			// must not reach outside the mapping.
			err = checkMapped(from, to, rm.Discovers(), dst != nil)
		}
		if err != nil {
			j := base
			j.order[2] = ri
			j.srcR, j.srcRepo = src.Ref(from, ""), from
			j.preResolved = fmt.Errorf("%s: %w", mappingName(t, mi), err)
			failed = append(failed, j)
			continue
		}
		j := base
		j.order[2] = ri
		// The repository's own mapping: every other setting (tags,
		// platform, referrers, ...) as written.
		own := *m
		own.From, own.To, own.Repos = from, to, nil
		j.mapping = &own
		j.srcRepo = from
		if dst != nil {
			j.dstRepo = to
		}
		repos = append(repos, j)
	}
	return repos, failed, others
}

// checkMapped checks a repository a mapping names and where the mapping
// puts it against the distribution grammar: a catalog entry (discovered)
// comes from the source, and a target path may have been made by a regex:
// rewrite of one. (A source path written in a config was checked there; a
// bundle's are checked when it is opened.)
func checkMapped(from, to string, discovered, target bool) error {
	if discovered {
		if err := registry.CheckRepositoryName(strings.TrimPrefix(from, "/")); err != nil {
			return fmt.Errorf("catalog entry: %w", err)
		}
	}
	if target {
		if err := registry.CheckRepositoryName(strings.TrimPrefix(to, "/")); err != nil {
			return fmt.Errorf("target of %q: %w", from, err)
		}
	}
	return nil
}

// mappingName names a mapping for messages: the task and where the mapping
// was written.
func mappingName(t *Task, mi int) string {
	m := &t.Mappings[mi]
	where := m.Origin
	if where == "" {
		where = fmt.Sprintf("mappings[%d]", mi)
	}
	return fmt.Sprintf("task %q, mapping at %s (from %s)", t.Name, where, m.From)
}

// expandRepo lists and filters the tags of one repository into its jobs.
func (e *Engine) expandRepo(ctx context.Context, base job) ([]job, *expandedRepo) {
	t, m, src, dst := base.task, base.mapping, base.src, base.dst
	base.srcR, base.dstR = src.Ref(m.From, ""), refOf(dst, m.To, "")
	rp := &expandedRepo{order: [3]int(base.order[:3]), task: t, mapping: m, src: src, dst: dst}
	fail := func(err error) ([]job, *expandedRepo) {
		base.preResolved = err
		rp.err = err
		return []job{base}, rp
	}
	tags := m.Tags
	if tags == nil {
		tags, _ = filter.ParseTags(nil)
	}
	var available []string
	var err error
	// Prune needs the source's tags even when the filter does not: it
	// deletes only what the source no longer has.
	var targetTags map[string]bool
	if tags.NeedsList() || m.Prune {
		// The target's list is read at the same time: one request per
		// repository instead of a HEAD per tag it lacks. Not of a store
		// the task brings (a bundle being written answers HEADs from
		// its base bundles too, its list only for itself).
		var wg sync.WaitGroup
		if !t.PullOnly && t.TargetStore == nil {
			wg.Go(func() { targetTags = e.targetTags(ctx, dst, m.To) })
		}
		available, err = src.Tags(ctx, m.From)
		wg.Wait()
		if err != nil {
			return fail(err)
		}
		rp.listed = true
		if m.Referrers || m.Verify != nil {
			// Attachment tags travel with their subject, not as
			// images of their own (nor are signatures signed).
			available = slices.DeleteFunc(available, registry.IsAttachmentTag)
		}
	}
	selected := tags.Select(available)
	jobs := make([]job, 0, len(selected))
	inList := make(map[string]bool, len(available))
	for _, a := range available {
		inList[a] = true
	}
	for i, s := range selected {
		j := base
		j.order[3] = i
		// A tag from the source's list that breaks the distribution
		// grammar fails alone, before any request names it.
		j.ref, err = registry.ParseReference(s)
		if err != nil {
			j.preResolved = fmt.Errorf("source %s: %w", base.srcR, err)
			jobs = append(jobs, j)
			continue
		}
		j.listed = inList[s]
		j.targetTags = targetTags
		j.srcR = src.Ref(m.From, j.ref.Source())
		j.dstR = refOf(dst, m.To, j.ref.Target())
		jobs = append(jobs, j)
		rp.selected = append(rp.selected, j.ref.Target())
	}
	rp.srcTags = available
	if len(jobs) == 0 {
		// Name the mapping where it was written: the repository alone
		// does not say which of several mappings selects nothing.
		e.log.Warn("no tags selected", "task", t.Name, "mapping", m.Origin, "source", base.srcR)
	}
	return jobs, rp
}

// targetTags lists the tags of the target repository repo, for the copy
// decision (job.targetTags): an empty set when the repository does not
// exist yet, nil when the list could not be read (the decision then asks
// with HEADs, as it would without it).
func (e *Engine) targetTags(ctx context.Context, dst registry.Store, repo string) map[string]bool {
	tags, err := dst.Tags(ctx, repo)
	if errors.Is(err, registry.ErrNotFound) {
		return map[string]bool{}
	}
	if err != nil {
		e.log.Debug("target tags not listed; asking per tag", "target", dst.Ref(repo, ""), "error", err)
		return nil
	}
	set := make(map[string]bool, len(tags))
	for _, t := range tags {
		set[t] = true
	}
	return set
}

func (e *Engine) runJob(ctx context.Context, j *job) Result {
	ctx = withTask(ctx, j.task.Name)
	start := time.Now()
	r := Result{Task: j.task.Name, Source: j.srcR, Target: j.dstR, Tag: j.ref.String(), Ref: j.ref, mapping: j.mapping}
	r.SourceRepo, r.TargetRepo = j.srcRepo, j.dstRepo
	var err error
	if j.preResolved != nil {
		err = j.preResolved
	} else {
		// The image's own deadline: when it passes, the image failed (the
		// run was not interrupted).
		imgCtx := ctx
		if e.imageTO > 0 {
			var cancel context.CancelFunc
			imgCtx, cancel = context.WithTimeoutCause(ctx, e.imageTO, errImageTimeout)
			defer cancel()
		}
		wait := e.retryWait
		for attempt := 1; ; attempt++ {
			var n int64
			var att int
			// One copy scope per attempt: a blob streamed from a capped
			// registry back into it may ride on its download's slot.
			r.Status, r.Digest, n, att, err = e.syncImage(transport.WithCopyScope(imgCtx), j)
			// Upload URLs and signed blob URLs keep their query out
			// of logs, reports and the daemon's /status.
			err = registry.StripQueries(err)
			r.Bytes += n
			r.Attachments += att
			if err == nil || attempt >= e.attempts || !transport.Retryable(err) || imgCtx.Err() != nil {
				break
			}
			e.log.Warn("retrying", "task", r.Task, "source", r.Source, "target", r.Target, "attempt", attempt+1, "error", err)
			select {
			case <-time.After(wait):
			case <-imgCtx.Done():
			}
			wait *= 2
		}
		if err != nil && ctx.Err() == nil && errors.Is(context.Cause(imgCtx), errImageTimeout) {
			err = fmt.Errorf("%w (%s): %w", errImageTimeout, e.imageTO, err)
		}
	}
	r.Duration = time.Since(start)
	attrs := []any{"task", r.Task, "source", r.Source, "target", r.Target, "tag", r.Tag,
		"digest", r.Digest, "bytes", r.Bytes, "duration", r.Duration.Round(time.Millisecond)}
	if j.mapping.Referrers {
		attrs = append(attrs, "attachments", r.Attachments)
	}
	if err != nil && ctx.Err() != nil && !j.copying {
		// Cancelled while only being checked (checks run wider than
		// copies): nothing was written, the image was not started.
		r.Status, r.Err = NotStarted, nil
		return r
	}
	if err != nil && ctx.Err() != nil {
		// Cut by the run's end, not failed: say so once, without the
		// "context canceled" that would read like a fault.
		r.Status, r.Err = Interrupted, context.Cause(ctx)
		e.log.Warn(string(r.Status), attrs...)
		return r
	}
	if errors.Is(err, transport.ErrUnreachable) {
		// Not attempted: the host is down, said once per host at the
		// end of the run (logUnreachable).
		r.Status, r.Err = Failed, err
		e.log.Debug("failed", append(attrs, "error", err)...)
		return r
	}
	if err != nil {
		r.Status, r.Err, r.Logged = Failed, err, true
		e.log.Error("failed", append(attrs, "error", err)...)
		return r
	}
	e.log.Info(string(r.Status), attrs...)
	return r
}

// errImageTimeout ends an image's copy that took longer than ImageTimeout.
var errImageTimeout = errors.New("gave up on the image after retry: image-timeout")

// syncImage makes the target hold what the source holds for one reference
// and, when the mapping asks for it, what is attached to it. It returns the
// status, the digest now on the target, the bytes written and the number of
// attachments copied.
func (e *Engine) syncImage(ctx context.Context, j *job) (Status, string, int64, int, error) {
	if j.task.PullOnly {
		st, digest, n, err := e.pullImage(ctx, j)
		return st, digest, n, 0, err
	}
	st, digest, n, err := e.syncManifest(ctx, j)
	if err != nil || !j.mapping.Referrers {
		return st, digest, n, 0, err
	}
	// Attachments are checked on every run, also when the image was
	// skipped: a signature may be added to an image that did not change.
	att, an, err := e.syncAttachments(ctx, j, digest)
	n += an
	if err != nil {
		return st, digest, n, att, err
	}
	if att > 0 {
		st = Copied
	}
	return st, digest, n, att, nil
}

// syncManifest makes the target hold what the source holds for one reference.
func (e *Engine) syncManifest(ctx context.Context, j *job) (Status, string, int64, error) {
	d, art, err := e.observe(ctx, j, observeOptions{fetchIndex: true, fetchMissing: true})
	if err != nil {
		return "", "", 0, err
	}
	want := d.SourceDigest
	if d.Verdict == VerdictSkip {
		if d.subset {
			return Skipped, d.TargetDigest, 0, nil // the subset's own digest
		}
		return Skipped, want, 0, nil
	}
	m := j.mapping
	if m.Verify != nil {
		if err := e.verifySignature(ctx, j, d.resolved); err != nil {
			return "", "", 0, err
		}
		// Copy exactly what was verified: read the source by digest,
		// not by a tag that may have moved since.
		if art, err = e.fetchAt(ctx, j, d.resolved); err != nil {
			return "", "", 0, fmt.Errorf("source %s: %w", j.srcR, err)
		}
	}
	if art == nil {
		if art, err = e.fetch(ctx, j); err != nil {
			return "", "", 0, fmt.Errorf("source %s: %w", j.srcR, err)
		}
		if got := art.Desc.Digest.String(); d.subset {
			// A subset has a digest of its own; the source's was
			// checked by fetching it.
			want = got
		} else if got != want {
			// The tag moved between HEAD and GET: copy what was fetched.
			// A pinned digest that the source does not serve is an error.
			if j.ref.Digest != "" && m.Platform == nil {
				return "", "", 0, fmt.Errorf("source %s: served %s, want %s", j.srcR, got, want)
			}
			want = got
		}
	}
	if err := j.copySlot(ctx); err != nil {
		return "", want, 0, fmt.Errorf("copying %s to %s: %w", j.srcR, j.dstR, err)
	}
	n, err := j.dst.Push(ctx, m.To, j.ref.Target(), art)
	if err != nil {
		return "", want, n, fmt.Errorf("copying %s to %s: %w", j.srcR, j.dstR, err)
	}
	return Copied, want, n, nil
}

// refOf renders a reference in s, or "" when there is no store (the target
// of a PullOnly task).
func refOf(s registry.Store, repo, ref string) string {
	if s == nil {
		return ""
	}
	return s.Ref(repo, ref)
}

// pullImage reads one image from the source in full and discards it,
// verifying every digest. It returns the bytes read.
func (e *Engine) pullImage(ctx context.Context, j *job) (Status, string, int64, error) {
	if err := j.copySlot(ctx); err != nil {
		return "", "", 0, fmt.Errorf("pulling %s: %w", j.srcR, err)
	}
	a, err := j.src.Fetch(ctx, j.mapping.From, j.ref.Source())
	if err != nil {
		return "", "", 0, fmt.Errorf("source %s: %w", j.srcR, err)
	}
	digest := a.Desc.Digest.String()
	if j.ref.Digest != "" && digest != j.ref.Digest {
		return "", "", 0, fmt.Errorf("source %s: served %s: %w", j.srcR, digest, registry.ErrDigestMismatch)
	}
	if j.mapping.Platform != nil {
		if a, err = registry.SelectPlatform(a, *j.mapping.Platform); err != nil {
			return "", digest, 0, fmt.Errorf("source %s: %w", j.srcR, err)
		}
	}
	if len(j.mapping.Platforms) > 0 {
		if a, _, err = registry.SelectPlatforms(a, j.mapping.Platforms, j.mapping.PlatformsSkipMissing); err != nil {
			return "", digest, 0, fmt.Errorf("source %s: %w", j.srcR, err)
		}
	}
	n, err := registry.Drain(ctx, a)
	if err != nil {
		return "", digest, n, fmt.Errorf("pulling %s: %w", j.srcR, err)
	}
	return Pulled, digest, n, nil
}
