package engine

import (
	"slices"
	"testing"
	"time"
)

// sim replays a run against the adaptive limit: copies finish one after
// the other at the rate a made-up link gives the current limit.
type sim struct {
	a        *adaptive
	now      time.Time
	pushback uint64
	limits   []int // the limit after each change, the start first
}

func newSim(lo, hi int) *sim {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := newAdaptive(lo, hi, StartJobs, t0, 0)
	return &sim{a: a, now: t0, limits: []int{a.Limit()}}
}

// finish makes n copies finish, each of size bytes, at rate(limit) copies
// a second, with waiting copies queued behind them.
func (s *sim) finish(n int, rate func(limit int) float64, bytes int64, waiting int) {
	for range n {
		s.now = s.now.Add(time.Duration(float64(time.Second) / rate(s.a.Limit())))
		ch, ok := s.a.Done(s.now, bytes, waiting, s.pushback)
		if ok {
			if ch.From != s.limits[len(s.limits)-1] || ch.To != s.a.Limit() {
				panic("change does not match the limit")
			}
			s.limits = append(s.limits, ch.To)
		}
		if l := s.a.Limit(); l < s.a.min || l > s.a.max {
			panic("limit out of bounds")
		}
	}
}

// plateau is a link where each copy takes 100 ms whatever the number in
// flight, up to top at once (then the far end is the bottleneck).
func plateau(top int) func(int) float64 {
	return func(l int) float64 { return float64(min(l, top)) * 10 }
}

func TestAdaptiveGrowsWhileThroughputRisesThenHolds(t *testing.T) {
	s := newSim(1, 64)
	s.finish(400, plateau(16), 1<<20, 10)
	// 8 (80/s) → 12 (120/s, +50%) → 18 (160/s, +33%) → 27 (160/s: no
	// gain, so it holds there; one step past the plateau is the price of
	// seeing it).
	if want := []int{8, 12, 18, 27}; !slices.Equal(s.limits, want) {
		t.Fatalf("limits %v, want %v", s.limits, want)
	}
}

func TestAdaptiveNeverAboveTheCap(t *testing.T) {
	s := newSim(1, 10)
	s.finish(400, plateau(1000), 0, 10)
	if want := []int{8, 10}; !slices.Equal(s.limits, want) {
		t.Fatalf("limits %v, want %v", s.limits, want)
	}
	// A cap below the start starts there and stays.
	s = newSim(1, 3)
	s.finish(100, plateau(1000), 0, 10)
	if want := []int{3}; !slices.Equal(s.limits, want) {
		t.Fatalf("cap 3: limits %v, want %v", s.limits, want)
	}
}

func TestAdaptivePushbackHalvesAndHoldsGrowth(t *testing.T) {
	s := newSim(1, 64)
	s.finish(80, plateau(1000), 0, 10) // 8 → 12 → 18 → 27
	if got := s.a.Limit(); got != 27 {
		t.Fatalf("limit %d before the 429, want 27 (limits %v)", got, s.limits)
	}
	s.pushback++ // a 429
	s.finish(1, plateau(1000), 0, 10)
	if got := s.a.Limit(); got != 13 {
		t.Fatalf("limit %d after a 429, want 13 (halved from 27)", got)
	}
	// Throughput keeps rising with the limit, but growth waits out the
	// hold: 10 s at 130 copies a second.
	s.finish(1000, plateau(1000), 0, 10)
	if got := s.a.Limit(); got != 13 {
		t.Fatalf("limit %d during the hold, want 13 (limits %v)", got, s.limits)
	}
	s.finish(600, plateau(1000), 0, 10)
	if got := s.a.Limit(); got <= 13 {
		t.Fatalf("limit %d after the hold, want growth again (limits %v)", got, s.limits)
	}
}

func TestAdaptivePushbackHalvesOncePerWindow(t *testing.T) {
	s := newSim(1, 64)
	s.finish(80, plateau(1000), 0, 10) // 27
	// A burst: every copy in flight got a 429.
	for range 5 {
		s.pushback++
		s.finish(1, plateau(1000), 0, 10)
	}
	if got := s.a.Limit(); got != 13 {
		t.Fatalf("limit %d after one burst of 429s, want 13 (halved once): %v", got, s.limits)
	}
	// The window that closes next saw more: halve again, once.
	s.finish(30, plateau(1000), 0, 10)
	if got := s.a.Limit(); got != 6 {
		t.Fatalf("limit %d after the window with more 429s closed, want 6: %v", got, s.limits)
	}
}

func TestAdaptiveMinRespected(t *testing.T) {
	s := newSim(2, 64)
	for range 10 {
		s.pushback++
		s.finish(40, plateau(1000), 0, 10)
	}
	if got := s.a.Limit(); got != 2 {
		t.Fatalf("limit %d after ten 429s, want the minimum 2: %v", got, s.limits)
	}
}

func TestAdaptiveShrinksWhenThroughputFalls(t *testing.T) {
	// More than 8 copies at once thrash (a loopback run bound by CPU):
	// 12 at once is slower than 8.
	s := newSim(1, 64)
	s.finish(200, func(l int) float64 {
		if l > 8 {
			return 60
		}
		return 80
	}, 0, 10)
	if want := []int{8, 12, 9}; !slices.Equal(s.limits, want) {
		t.Fatalf("limits %v, want %v", s.limits, want)
	}
}

func TestAdaptiveIdleSlotsDecideNothing(t *testing.T) {
	// No copy ever waits for a slot: throughput is the work's, not the
	// link's.
	s := newSim(1, 64)
	s.finish(200, plateau(1000), 1<<20, 0)
	if want := []int{8}; !slices.Equal(s.limits, want) {
		t.Fatalf("limits %v, want %v", s.limits, want)
	}
}

func TestAdaptiveWindowLastsMinWindow(t *testing.T) {
	// 8 copies finish within 100 ms: the window closes only once 200 ms
	// passed, at the 16th copy.
	s := newSim(1, 64)
	s.finish(15, plateau(1000), 0, 10)
	if got := s.a.Limit(); got != 8 {
		t.Fatalf("limit %d after 187 ms, want 8", got)
	}
	s.finish(1, plateau(1000), 0, 10)
	if got := s.a.Limit(); got != 12 {
		t.Fatalf("limit %d after 200 ms, want 12", got)
	}
}

func TestAdaptiveTrend(t *testing.T) {
	for _, c := range []struct {
		pi, i, pb, b float64
		want         int
	}{
		{10, 12, 0, 0, 1},      // images rose, no bytes
		{10, 10.5, 0, 0, 0},    // within 10%
		{10, 8, 0, 0, -1},      // images fell
		{10, 10, 100, 150, 1},  // same images, more bytes: larger images got through
		{10, 12, 100, 80, 0},   // mixed: hold
		{10, 8, 100, 120, 0},   // mixed
		{10, 8.5, 100, 95, -1}, // images fell, bytes level
		{0, 0, 0, 0, 0},
	} {
		if got := trend(c.pi, c.i, c.pb, c.b); got != c.want {
			t.Errorf("trend(%v→%v images/s, %v→%v B/s) = %d, want %d", c.pi, c.i, c.pb, c.b, got, c.want)
		}
	}
}

func TestAdaptiveNoSpiralOnANoisyLink(t *testing.T) {
	// A link bound by latency, its throughput swinging by 20% from one
	// window to the next: at the cap (no growth to undo) nothing moves,
	// and a limit that may grow never falls below where it started.
	var n int
	noisy := func(l int) float64 {
		n++
		if (n/16)%2 == 1 {
			return float64(l) * 8
		}
		return float64(l) * 10
	}
	s := newSim(1, 8)
	s.finish(800, noisy, 0, 10)
	if want := []int{8}; !slices.Equal(s.limits, want) {
		t.Fatalf("at the cap: limits %v, want %v", s.limits, want)
	}
	n = 0
	s = newSim(1, 64)
	s.finish(800, noisy, 0, 10)
	if l := s.a.Limit(); l < StartJobs {
		t.Fatalf("limit %d below the start %d: %v", l, StartJobs, s.limits)
	}
	t.Logf("limits %v", s.limits)
}
