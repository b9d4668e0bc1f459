package schedule

import (
	"context"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock moves only when told to. A timer whose time has come fires at
// once, so there is no race between arming a timer and advancing.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]bool
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0, timers: map[*fakeTimer]bool{}} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) At(t time.Time) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ft := &fakeTimer{at: t, c: make(chan time.Time, 1)}
	if !t.After(c.now) {
		ft.c <- c.now
	} else {
		c.timers[ft] = true
	}
	return ft.c, func() {
		c.mu.Lock()
		delete(c.timers, ft)
		c.mu.Unlock()
	}
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for ft := range c.timers {
		if !ft.at.After(c.now) {
			ft.c <- c.now
			delete(c.timers, ft)
		}
	}
}

// recv waits (boundedly) for one value; the bound only catches a hang.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
		var zero T
		return zero
	}
}

// waitUntil polls cond (yielding, no fake time passes) for at most 10s of
// real time; the bound only catches a hang.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

func none[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %v", what, v)
	default:
	}
}

// TestSchedulerRunsSkipsAndStops drives a Scheduler through a fake clock:
// a run at start, a skipped tick while it still runs, the next tick, and a
// stop that cancels the run in flight.
func TestSchedulerRunsSkipsAndStops(t *testing.T) {
	clk := newFakeClock()
	skipped := make(chan string, 10)
	var logs lockedLog
	s := New(Options{Clock: clk, OnSkip: func(task string) { skipped <- task }, StopGrace: time.Hour,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	type run struct {
		at      time.Time
		release chan struct{}
		ctx     context.Context
	}
	runs := make(chan run, 10)
	finished := make(chan error, 10)
	job := every("a", time.Minute)
	job.Run = func(ctx context.Context) {
		r := run{at: clk.Now(), release: make(chan struct{}), ctx: ctx}
		runs <- r
		select {
		case <-r.release:
			finished <- nil
		case <-ctx.Done():
			finished <- ctx.Err()
		}
	}
	s.Update([]Job{job})

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { s.Run(ctx); close(stopped) }()

	r1 := recv(t, runs, "run at start")
	if !r1.at.Equal(t0) {
		t.Errorf("first run at %s, want %s", r1.at, t0)
	}
	clk.Advance(time.Minute) // r1 still runs: this tick is skipped
	if got := recv(t, skipped, "skip"); got != "a" {
		t.Errorf("skipped %q", got)
	}
	none(t, runs, "run while the previous one runs")
	if l := logs.String(); !strings.Contains(l, "run skipped: the previous run of this task is still going") || !strings.Contains(l, "task=a") {
		t.Errorf("the skip is not logged with the task:\n%s", l)
	}
	close(r1.release)
	if err := recv(t, finished, "end of run 1"); err != nil {
		t.Fatal(err)
	}
	// The run function has returned; wait until the scheduler has
	// recorded that, or the next tick would (rightly) be skipped.
	waitUntil(t, "run 1 recorded as done", func() bool { return !s.States()[0].Running })
	clk.Advance(time.Minute)
	r2 := recv(t, runs, "run at +2m")
	if want := t0.Add(2 * time.Minute); !r2.at.Equal(want) {
		t.Errorf("second run at %s, want %s", r2.at, want)
	}
	if st := s.States(); len(st) != 1 || !st[0].Running || !st[0].Next.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("States = %+v", st)
	}
	if !s.Running() {
		t.Error("Running() = false while scheduling")
	}

	// A changed task cancels the run in flight and runs anew after it.
	changed := withFP(job, "new mappings")
	s.Update([]Job{changed})
	if err := recv(t, finished, "end of the changed task's run"); err != context.Canceled {
		t.Fatalf("run of the changed task ended with %v, want cancelled", err)
	}
	r3 := recv(t, runs, "run of the changed task")

	cancel()
	if err := recv(t, finished, "end of run 3"); err != context.Canceled {
		t.Errorf("run in flight at stop ended with %v, want cancelled", err)
	}
	recv(t, stopped, "Run to return")
	if r3.ctx.Err() == nil {
		t.Error("run context not cancelled")
	}
	if s.Running() {
		t.Error("Running() = true after stop")
	}
	clk.Advance(time.Hour)
	none(t, runs, "run after stop")
}

// TestSchedulerStopGrace: a run that ignores cancellation does not keep
// Run from returning past the grace period.
func TestSchedulerStopGrace(t *testing.T) {
	clk := newFakeClock()
	s := New(Options{Clock: clk, StopGrace: 5 * time.Second})
	started := make(chan struct{})
	block := make(chan struct{})
	defer close(block)
	job := every("stuck", 0)
	job.Run = func(context.Context) { close(started); <-block }
	s.Update([]Job{job})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { s.Run(ctx); close(stopped) }()
	recv(t, started, "run")
	cancel()
	none(t, stopped, "return before the grace period")
	// Advance until the grace timer (armed after cancel) has fired.
	for i := 0; i < 1000; i++ {
		clk.Advance(time.Second)
		select {
		case <-stopped:
			if elapsed := clk.Now().Sub(t0); elapsed < 5*time.Second {
				t.Errorf("returned after %s of fake time, want >= 5s", elapsed)
			}
			return
		case <-time.After(time.Millisecond):
		}
	}
	t.Fatal("Run did not return after the grace period")
}

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
