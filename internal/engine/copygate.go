package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// copyGate holds a run's copy slots: at most the adaptive limit's current
// value of images copy at once, and waiting copies are served in the order
// they came. A finished copy tells the limit (adapt.go), which may move.
type copyGate struct {
	mu       sync.Mutex
	ctl      *adaptive
	inUse    int
	queue    []*copyWaiter
	now      func() time.Time
	pushback func() uint64
	log      *slog.Logger
}

type copyWaiter struct {
	granted chan struct{} // closed when the slot is the waiter's
	ok      bool          // set with granted, under the gate's lock
}

func newCopyGate(ctl *adaptive, now func() time.Time, pushback func() uint64, log *slog.Logger) *copyGate {
	return &copyGate{ctl: ctl, now: now, pushback: pushback, log: log}
}

// acquire waits for a slot, or for ctx to end.
func (g *copyGate) acquire(ctx context.Context) error {
	g.mu.Lock()
	g.ctl.Begin(g.now())
	if len(g.queue) == 0 && g.inUse < g.ctl.Limit() {
		g.inUse++
		g.mu.Unlock()
		return nil
	}
	w := &copyWaiter{granted: make(chan struct{})}
	g.queue = append(g.queue, w)
	g.mu.Unlock()
	select {
	case <-w.granted:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		defer g.mu.Unlock()
		if w.ok {
			// Granted as ctx ended: give the slot on.
			g.inUse--
			g.grant()
			return ctx.Err()
		}
		for i, q := range g.queue {
			if q == w {
				g.queue = append(g.queue[:i], g.queue[i+1:]...)
				break
			}
		}
		return ctx.Err()
	}
}

// release gives a slot back. A copy that finished (copied or pulled, not
// failed) reports the bytes it wrote to the limit.
func (g *copyGate) release(finished bool, bytes int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inUse--
	if finished {
		if ch, ok := g.ctl.Done(g.now(), bytes, len(g.queue), g.pushback()); ok {
			g.log.Debug(fmt.Sprintf("copy concurrency %d → %d (%s)", ch.From, ch.To, describe(ch)), "from", ch.From, "to", ch.To, "reason", ch.Why)
		}
	}
	g.grant()
}

// grant hands free slots to the waiters at the head of the queue.
func (g *copyGate) grant() {
	for len(g.queue) > 0 && g.inUse < g.ctl.Limit() {
		w := g.queue[0]
		g.queue = g.queue[1:]
		g.inUse++
		w.ok = true
		close(w.granted)
	}
}

// describe says why the limit moved, for the debug line.
func describe(ch limitChange) string {
	const mib = 1 << 20
	switch {
	case ch.Why == "pushback":
		return "pushback: a registry answered 429 or 5xx"
	case ch.PrevImages == 0 && ch.PrevBytes == 0:
		return fmt.Sprintf("%s; first window %.1f images/s, %.1f MiB/s", ch.Why, ch.Images, ch.Bytes/mib)
	}
	return fmt.Sprintf("%s; throughput %.1f → %.1f images/s, %.1f → %.1f MiB/s", ch.Why, ch.PrevImages, ch.Images, ch.PrevBytes/mib, ch.Bytes/mib)
}
