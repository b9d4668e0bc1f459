package engine

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

func testGate(limit int) *copyGate {
	now := time.Now()
	return newCopyGate(newAdaptive(1, limit, limit, now, 0), time.Now, func() uint64 { return 0 }, slog.New(slog.DiscardHandler))
}

// queued waits (bounded) until n copies wait at g.
func queued(t *testing.T, g *copyGate, n int) {
	t.Helper()
	for range 5000 {
		g.mu.Lock()
		l := len(g.queue)
		g.mu.Unlock()
		if l == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d copies never queued", n)
}

func granted(t *testing.T, ch <-chan error, who string) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never got a slot", who)
	}
}

func TestCopyGateServesInOrder(t *testing.T) {
	g := testGate(1)
	if err := g.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, c := make(chan error, 1), make(chan error, 1)
	go func() { b <- g.acquire(context.Background()) }()
	queued(t, g, 1)
	go func() { c <- g.acquire(context.Background()) }()
	queued(t, g, 2)
	g.release(true, 0)
	granted(t, b, "the first waiter")
	select {
	case <-c:
		t.Fatal("the second waiter got a slot while the only one was the first's")
	default:
	}
	g.release(true, 0)
	granted(t, c, "the second waiter")
}

func TestCopyGateCancelledWaiterLeavesNoTrace(t *testing.T) {
	g := testGate(1)
	if err := g.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := make(chan error, 1)
	go func() { b <- g.acquire(ctx) }()
	queued(t, g, 1)
	cancel()
	select {
	case err := <-b:
		if err == nil {
			t.Fatal("a cancelled waiter got a slot")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled waiter kept waiting")
	}
	queued(t, g, 0)
	g.release(false, 0)
	// The slot is free again, not handed to the cancelled waiter.
	c := make(chan error, 1)
	go func() { c <- g.acquire(context.Background()) }()
	granted(t, c, "a waiter after the cancelled one")
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inUse != 1 {
		t.Fatalf("%d slots in use, want 1", g.inUse)
	}
}
