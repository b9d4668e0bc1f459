package main

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// TestLinkSerialisesSharedBytes: the link is one line, so chunks sent at the
// same moment by different connections queue behind each other, and each
// arrives its transmission time plus the one-way delay after the line was
// free for it.
func TestLinkSerialisesSharedBytes(t *testing.T) {
	l := &link{bytesPerSec: 1e6, oneWay: 20 * time.Millisecond}
	a := l.reserve(t0, 500_000) // connection A: 0.5 s on the line
	b := l.reserve(t0, 250_000) // connection B, same instant: queued behind A
	if want := t0.Add(500*time.Millisecond + 20*time.Millisecond); !a.Equal(want) {
		t.Errorf("first chunk arrives at +%s, want +%s", a.Sub(t0), want.Sub(t0))
	}
	if want := t0.Add(750*time.Millisecond + 20*time.Millisecond); !b.Equal(want) {
		t.Errorf("second chunk arrives at +%s, want +%s (behind the first)", b.Sub(t0), want.Sub(t0))
	}
	// After the line went idle, a chunk pays only its own time and the delay.
	c := l.reserve(t0.Add(10*time.Second), 1000)
	if want := t0.Add(10*time.Second + time.Millisecond + 20*time.Millisecond); !c.Equal(want) {
		t.Errorf("chunk on an idle line arrives at +%s, want +%s", c.Sub(t0), want.Sub(t0))
	}
	n, busy := l.stats()
	if n != 751_000 || busy != 751*time.Millisecond {
		t.Errorf("stats: %d bytes, busy %s; want 751000 bytes, 751ms", n, busy)
	}
	// Unlimited bandwidth: only the delay.
	u := &link{oneWay: 5 * time.Millisecond}
	if got := u.reserve(t0, 1<<30); !got.Equal(t0.Add(5 * time.Millisecond)) {
		t.Errorf("unlimited link: arrives at +%s, want +5ms", got.Sub(t0))
	}
}

// virtualClock never sleeps: SleepUntil moves its time forward. It records
// every wait so a test can see what the proxy asked for.
type virtualClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration // how far ahead of now each wait was
}

func (c *virtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *virtualClock) SleepUntil(_ context.Context, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, t.Sub(c.now))
	if t.After(c.now) {
		c.now = t
	}
}

// echoServer answers every connection by sending back what it reads.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestWANProxyAccountsEveryByte sends 3 MiB through the proxy to an echo
// server on a virtual clock: every byte comes back intact, both directions
// carried exactly those bytes, the connection paid one round trip before
// its first byte, and the virtual time covers at least the bytes at the
// bandwidth plus a one-way delay.
func TestWANProxyAccountsEveryByte(t *testing.T) {
	const (
		rtt  = 40 * time.Millisecond
		bw   = 50e6
		size = 3 << 20
	)
	clk := &virtualClock{now: t0}
	p, err := startWAN(echoServer(t), rtt, bw, clk)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // a bound, not a measurement
	want := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range want {
		want[i] = byte(r.Uint32())
	}
	go func() {
		_, _ = c.Write(want)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echo: got %d bytes back, want the %d sent, unchanged", len(got), len(want))
	}
	upN, upBusy := p.up.stats()
	downN, downBusy := p.down.stats()
	if upN != size || downN != size {
		t.Errorf("link carried %d up, %d down; want %d each", upN, downN, size)
	}
	line := time.Duration(size * 1e9 / bw) // 62914560 ns
	for _, b := range []time.Duration{upBusy, downBusy} {
		// Each chunk's time is rounded down to the nanosecond.
		if d := line - b; d < 0 || d > time.Duration(size/1024) {
			t.Errorf("line busy %s for %d bytes, want %s", b, size, line)
		}
	}
	clk.mu.Lock()
	first, end := clk.sleeps[0], clk.now
	clk.mu.Unlock()
	if first != rtt {
		t.Errorf("first wait %s, want the handshake's round trip %s", first, rtt)
	}
	if min := rtt + line + rtt/2; end.Sub(t0) < min {
		t.Errorf("virtual time at the end +%s, want at least +%s (handshake, bytes at %g B/s, one way)", end.Sub(t0), min, bw)
	}
	if p.conns.Load() != 1 {
		t.Errorf("%d connections accepted, want 1", p.conns.Load())
	}
}

// TestWANProxySharesBandwidth: two connections sending at once share the
// line, so together they keep it busy for both payloads' time.
func TestWANProxySharesBandwidth(t *testing.T) {
	const bw, size = 10e6, 1 << 20
	clk := &virtualClock{now: t0}
	p, err := startWAN(echoServer(t), 0, bw, clk)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", p.Addr())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			go func() {
				_, _ = c.Write(make([]byte, size))
				_ = c.(*net.TCPConn).CloseWrite()
			}()
			n, _ := io.Copy(io.Discard, c)
			if n != size {
				t.Errorf("got %d bytes back, want %d", n, size)
			}
		}()
	}
	wg.Wait()
	n, busy := p.down.stats()
	if n != 2*size {
		t.Errorf("down link carried %d bytes, want %d", n, 2*size)
	}
	want := time.Duration(2 * size * 1e9 / bw)
	if busy < want-time.Millisecond || busy > want {
		t.Errorf("down link busy %s, want %s (both payloads on one line)", busy, want)
	}
	if end := clk.Now().Sub(t0); end < want {
		t.Errorf("virtual time +%s: the two payloads cannot be through before +%s", end, want)
	}
}
