package main

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// wanProxy is a TCP proxy that makes a loopback registry look like one
// across the internet: every byte reaches the other side half a round trip
// after it was sent, in both directions; a new connection costs one round
// trip before its first byte (the TCP handshake); and all connections
// share one link of limited bandwidth per direction, so eight parallel
// downloads get an eighth of it each, as they would on a real uplink.
//
// Memory is bounded: each direction of a connection holds at most
// wanQueue chunks of wanChunk bytes in flight, and a full queue stops the
// reader (the sender then sees TCP back-pressure).
type wanProxy struct {
	ln      net.Listener
	backend string
	rtt     time.Duration
	clk     clock
	// up carries client→backend bytes, down backend→client bytes.
	up, down *link

	conns atomic.Int64 // connections accepted
	wg    sync.WaitGroup
	mu    sync.Mutex
	open  map[net.Conn]struct{}
}

const (
	wanChunk = 32 << 10
	wanQueue = 64 // 2 MiB per direction and connection: above 50 MB/s × 20 ms
)

// clock is time as the proxy sees it; tests run it virtually.
type clock interface {
	Now() time.Time
	// SleepUntil returns at t or later, or when ctx ends.
	SleepUntil(ctx context.Context, t time.Time)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) SleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}

// link is one direction of a shared line: bytes are serialised onto it at
// bytesPerSec, one chunk after another whichever connection sent them, then
// travel for oneWay. It is pure accounting: reserve says when a chunk
// arrives, the caller waits for that.
type link struct {
	bytesPerSec float64 // 0: unlimited
	oneWay      time.Duration

	mu    sync.Mutex
	free  time.Time // when the line is next idle
	bytes int64     // bytes reserved so far
	busy  time.Duration
}

// reserve books n bytes sent at now and returns when their last byte
// arrives at the other end.
func (l *link) reserve(now time.Time, n int) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bytes += int64(n)
	start := now
	if l.free.After(start) {
		start = l.free
	}
	var tx time.Duration
	if l.bytesPerSec > 0 {
		tx = time.Duration(float64(n) / l.bytesPerSec * float64(time.Second))
	}
	l.free = start.Add(tx)
	l.busy += tx
	return l.free.Add(l.oneWay)
}

// stats returns the bytes carried and how long the line was busy sending
// them (bytes / bandwidth, summed).
func (l *link) stats() (int64, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bytes, l.busy
}

// startWAN listens on a loopback port and forwards to backend.
func startWAN(backend string, rtt time.Duration, bytesPerSec float64, clk clock) (*wanProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if clk == nil {
		clk = realClock{}
	}
	p := &wanProxy{ln: ln, backend: backend, rtt: rtt, clk: clk, open: map[net.Conn]struct{}{},
		up:   &link{bytesPerSec: bytesPerSec, oneWay: rtt / 2},
		down: &link{bytesPerSec: bytesPerSec, oneWay: rtt / 2}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *wanProxy) Addr() string { return p.ln.Addr().String() }

func (p *wanProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.open == nil {
			return false // closed
		}
		p.open[c] = struct{}{}
	} else {
		delete(p.open, c)
	}
	return true
}

func (p *wanProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c, true) {
			_ = c.Close()
			return
		}
		p.conns.Add(1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.track(c, false)
			p.serve(c)
		}()
	}
}

// serve carries one connection. The round trip of the handshake is paid
// before anything is forwarded: the client's first bytes wait for it, as
// they would wait for the SYN-ACK.
func (p *wanProxy) serve(c net.Conn) {
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.clk.SleepUntil(ctx, p.clk.Now().Add(p.rtt))
	b, err := net.Dial("tcp", p.backend)
	if err != nil {
		return
	}
	if !p.track(b, true) {
		_ = b.Close()
		return
	}
	defer p.track(b, false)
	defer b.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(ctx, b, c, p.up) }()
	go func() { defer wg.Done(); p.pipe(ctx, c, b, p.down) }()
	wg.Wait()
}

type chunk struct {
	buf []byte
	at  time.Time // when it may be written
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, wanChunk); return &b }}

// pipe copies src to dst through l: a reader stamps each chunk with its
// arrival time, a writer waits for it. When src ends, dst's write side is
// closed after the last chunk arrives (half-close, as TCP would carry it).
func (p *wanProxy) pipe(ctx context.Context, dst, src net.Conn, l *link) {
	q := make(chan chunk, wanQueue)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ch := range q {
			p.clk.SleepUntil(ctx, ch.at)
			_, err := dst.Write(ch.buf)
			b := ch.buf[:cap(ch.buf)]
			chunkPool.Put(&b)
			if err != nil {
				_ = src.Close()
				for range q { // drain so the reader never blocks
				}
				return
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	for {
		bp := chunkPool.Get().(*[]byte)
		n, err := src.Read(*bp)
		if n > 0 {
			q <- chunk{buf: (*bp)[:n], at: l.reserve(p.clk.Now(), n)}
		} else {
			chunkPool.Put(bp)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				_ = dst.Close()
			}
			break
		}
	}
	close(q)
	<-done
}

// Close stops accepting and cuts every open connection.
func (p *wanProxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.open {
		_ = c.Close()
	}
	p.open = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// reset forgets the links' accounting and the connection count (between
// runs): the line starts idle.
func (p *wanProxy) reset() {
	for _, l := range []*link{p.up, p.down} {
		l.mu.Lock()
		l.free, l.bytes, l.busy = time.Time{}, 0, 0
		l.mu.Unlock()
	}
	p.conns.Store(0)
}
