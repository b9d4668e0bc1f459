package schedule

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Clock is the scheduler's source of time; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// At returns a channel that receives once at (or after) t, and a
	// function that releases the timer.
	At(t time.Time) (<-chan time.Time, func())
}

// RealClock is the wall clock.
type RealClock struct{}

// Now implements Clock.
func (RealClock) Now() time.Time { return time.Now() }

// At implements Clock.
func (RealClock) At(t time.Time) (<-chan time.Time, func()) {
	tm := time.NewTimer(time.Until(t))
	return tm.C, func() { tm.Stop() }
}

// Options configure a Scheduler.
type Options struct {
	// Clock defaults to RealClock.
	Clock Clock
	// Logger defaults to discarding.
	Logger *slog.Logger
	// OnSkip, if set, is called when a run is skipped because the
	// previous run of the task is still going (the daemon counts these).
	OnSkip func(task string)
	// StopGrace bounds how long Run waits for cancelled runs to return
	// when it stops (default 8s, inside the 10s a supervisor usually
	// allows between SIGTERM and SIGKILL).
	StopGrace time.Duration
}

// Scheduler runs a Plan against a Clock: it starts each run in its own
// goroutine with a context of its own, and cancels the runs of tasks that
// are changed or removed by Update, and all runs when it stops.
type Scheduler struct {
	clock  Clock
	log    *slog.Logger
	onSkip func(string)
	grace  time.Duration

	mu      sync.Mutex
	plan    *Plan
	cancels map[string]context.CancelFunc
	started bool
	stopped bool
	wg      sync.WaitGroup
	wake    chan struct{}
}

// New returns a Scheduler with no jobs.
func New(o Options) *Scheduler {
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 8 * time.Second
	}
	return &Scheduler{clock: o.Clock, log: o.Logger, onSkip: o.OnSkip, grace: o.StopGrace,
		plan: NewPlan(), cancels: map[string]context.CancelFunc{}, wake: make(chan struct{}, 1)}
}

// Update replaces the jobs (see Plan.Update) and cancels the runs in flight
// of tasks that were changed or removed. It may be called before or while
// Run runs.
func (s *Scheduler) Update(jobs []Job) []Change {
	s.mu.Lock()
	changes := s.plan.Update(s.clock.Now(), jobs)
	for _, c := range changes {
		if c.Running && (c.Kind == Changed || c.Kind == Removed) {
			if cancel := s.cancels[c.Name]; cancel != nil {
				cancel()
			}
		}
	}
	s.mu.Unlock()
	s.poke()
	return changes
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Running reports whether Run is scheduling (started and not stopped).
func (s *Scheduler) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started && !s.stopped
}

// States lists every task with its next run.
func (s *Scheduler) States() []TaskState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.plan.States()
}

// Trigger queues a run of the named task now, outside its schedule (see
// Plan.Trigger): ErrRunning while a run of it is going or queued.
func (s *Scheduler) Trigger(name string) error {
	s.mu.Lock()
	err := s.plan.Trigger(name)
	s.mu.Unlock()
	if err == nil {
		s.poke()
	}
	return err
}

// Run schedules until ctx ends. Then it starts nothing more, cancels the
// runs in flight and waits for them (at most StopGrace) before returning.
func (s *Scheduler) Run(ctx context.Context) {
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	for {
		s.mu.Lock()
		for _, a := range s.plan.Due(s.clock.Now()) {
			switch a.Kind {
			case Start:
				s.start(ctx, a.Job)
			case Skip:
				s.log.Warn("run skipped: the previous run of this task is still going", "task", a.Job.Name, "planned", a.Planned)
				if s.onSkip != nil {
					s.onSkip(a.Job.Name)
				}
			}
		}
		wake := s.plan.Wake()
		s.mu.Unlock()

		var timer <-chan time.Time
		release := func() {}
		if !wake.IsZero() {
			timer, release = s.clock.At(wake)
		}
		select {
		case <-ctx.Done():
			release()
			s.stop()
			return
		case <-timer:
		case <-s.wake:
		}
		release()
	}
}

// start runs a job in its own goroutine; s.mu is held.
func (s *Scheduler) start(ctx context.Context, j Job) {
	runCtx, cancel := context.WithCancel(ctx)
	s.cancels[j.Name] = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		j.Run(runCtx)
		s.mu.Lock()
		s.plan.Done(j.Name)
		delete(s.cancels, j.Name)
		s.mu.Unlock()
		s.poke()
	}()
}

func (s *Scheduler) stop() {
	s.mu.Lock()
	s.stopped = true
	n := len(s.cancels)
	for _, cancel := range s.cancels {
		cancel()
	}
	s.mu.Unlock()
	if n > 0 {
		s.log.Info("stopping: cancelling runs in flight", "runs", n)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	grace, release := s.clock.At(s.clock.Now().Add(s.grace))
	defer release()
	select {
	case <-done:
	case <-grace:
		s.log.Warn("stopping although runs have not returned yet", "after", s.grace)
	}
}
