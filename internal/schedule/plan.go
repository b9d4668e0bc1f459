package schedule

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Job is a task as the scheduler sees it.
type Job struct {
	Name string
	Spec Spec
	// Fingerprint identifies the task's settings: an Update that brings a
	// job with the same name and fingerprint keeps its schedule; a
	// different fingerprint makes it a changed task.
	Fingerprint string
	// Run runs the task once; it must return soon after ctx ends.
	Run func(ctx context.Context)
}

// ChangeKind says what an Update did to a task.
type ChangeKind string

const (
	Added   ChangeKind = "added"
	Changed ChangeKind = "changed"
	Removed ChangeKind = "removed"
	Kept    ChangeKind = "unchanged"
)

// Change is what an Update did to one task. Running is true when a run of
// the task was in flight: a changed or removed task's run is cancelled.
type Change struct {
	Name    string
	Kind    ChangeKind
	Running bool
}

// ActionKind is what Due asks the caller to do.
type ActionKind string

const (
	// Start the job's run now.
	Start ActionKind = "start"
	// Skip: the run planned at Planned is dropped because the previous run
	// of the task is still going.
	Skip ActionKind = "skip"
)

// Action is one decision of Due.
type Action struct {
	Kind    ActionKind
	Job     Job
	Planned time.Time
}

type entry struct {
	job  Job
	next time.Time // zero: no more runs
	// initial marks the first run of a new or changed task: it waits for
	// a run of the task's previous version to end instead of being
	// skipped, so a change always takes effect.
	initial bool
	// triggered: a run was asked for now (Trigger), besides the schedule.
	triggered bool
}

// Plan is the scheduler's state machine: which tasks exist, when each runs
// next and which are running. It does no I/O and reads no clock: every
// method is given the time, so tables of times test it completely.
type Plan struct {
	entries map[string]*entry
	// running is keyed by name, not entry: a run of a removed or changed
	// task is still in flight until Done, and no run of the same name may
	// overlap it.
	running map[string]bool
}

// NewPlan returns an empty plan.
func NewPlan() *Plan {
	return &Plan{entries: map[string]*entry{}, running: map[string]bool{}}
}

// Update replaces the set of jobs at time now. New jobs and jobs whose
// fingerprint changed are planned afresh (interval and one-off jobs run
// now, cron jobs at their next time); unchanged jobs keep their next run;
// jobs that are gone are dropped. The result lists every job of the old and
// new set, by name.
func (p *Plan) Update(now time.Time, jobs []Job) []Change {
	var out []Change
	seen := map[string]bool{}
	for _, j := range jobs {
		seen[j.Name] = true
		e, ok := p.entries[j.Name]
		switch {
		case !ok:
			p.entries[j.Name] = &entry{job: j, next: j.Spec.first(now), initial: true}
			out = append(out, Change{Name: j.Name, Kind: Added, Running: p.running[j.Name]})
		case e.job.Fingerprint != j.Fingerprint:
			p.entries[j.Name] = &entry{job: j, next: j.Spec.first(now), initial: true}
			out = append(out, Change{Name: j.Name, Kind: Changed, Running: p.running[j.Name]})
		default:
			// Same settings: keep the schedule, but call the new Run
			// (it may close over fresher state).
			e.job.Run = j.Run
			out = append(out, Change{Name: j.Name, Kind: Kept, Running: p.running[j.Name]})
		}
	}
	for name := range p.entries {
		if !seen[name] {
			delete(p.entries, name)
			out = append(out, Change{Name: name, Kind: Removed, Running: p.running[name]})
		}
	}
	slices.SortFunc(out, func(a, b Change) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Due returns what is to be done at time now, in name order: runs to start
// (now marked running) and runs skipped because the previous run of the
// same task is still going. Each job's next run moves on.
func (p *Plan) Due(now time.Time) []Action {
	var out []Action
	for _, name := range p.names() {
		e := p.entries[name]
		if e.triggered && !p.running[name] {
			out = append(out, Action{Kind: Start, Job: e.job, Planned: now})
			p.running[name] = true
			e.triggered, e.initial = false, false
			if !e.next.IsZero() && !e.next.After(now) {
				e.next = e.job.Spec.after(e.next, now) // this run is also the one planned
			}
			continue
		}
		if e.next.IsZero() || e.next.After(now) {
			continue
		}
		if p.running[name] {
			if e.initial {
				continue // waits for the previous version's run
			}
			out = append(out, Action{Kind: Skip, Job: e.job, Planned: e.next})
			e.next = e.job.Spec.after(e.next, now)
			continue
		}
		out = append(out, Action{Kind: Start, Job: e.job, Planned: e.next})
		p.running[name] = true
		e.initial = false
		e.next = e.job.Spec.after(e.next, now)
	}
	return out
}

// ErrUnknownTask and ErrRunning are the refusals of Trigger.
var (
	ErrUnknownTask = errors.New("no such task")
	ErrRunning     = errors.New("a run of this task is already going or queued")
)

// Trigger asks for a run of the named task at the next Due, outside its
// schedule, which it leaves as it is. Like a planned run it never overlaps
// a run of the same task: while one is going or already queued it is
// refused with ErrRunning.
func (p *Plan) Trigger(name string) error {
	e, ok := p.entries[name]
	switch {
	case !ok:
		return ErrUnknownTask
	case p.running[name] || e.triggered:
		return ErrRunning
	}
	e.triggered = true
	return nil
}

// Done records that the run of the named task ended.
func (p *Plan) Done(name string) { delete(p.running, name) }

// Wake returns when Due next has something to do; zero when nothing is
// planned (a run waiting for its predecessor is woken by Done).
func (p *Plan) Wake() time.Time {
	var w time.Time
	for name, e := range p.entries {
		if e.next.IsZero() || (e.initial && p.running[name]) {
			continue
		}
		if w.IsZero() || e.next.Before(w) {
			w = e.next
		}
	}
	return w
}

// TaskState is what the plan knows of one task.
type TaskState struct {
	Name    string
	Spec    string
	Next    time.Time // zero: no further run planned
	Running bool
}

// States lists every task in name order.
func (p *Plan) States() []TaskState {
	out := make([]TaskState, 0, len(p.entries))
	for _, name := range p.names() {
		e := p.entries[name]
		out = append(out, TaskState{Name: name, Spec: e.job.Spec.String(), Next: e.next, Running: p.running[name]})
	}
	return out
}

func (p *Plan) names() []string {
	names := make([]string, 0, len(p.entries))
	for n := range p.entries {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
