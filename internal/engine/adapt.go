package engine

import "time"

// The adaptive copy limit: how many images are copied at once. A source
// far away needs many copies in flight to hide its round trips; a source
// on the same machine is bound by CPU, where more copies gain nothing. So
// the limit starts at the old fixed default and moves with the measured
// throughput, inside [min, max] (max is --jobs when given).
//
// This file is the rule alone: it is fed events with their times and
// keeps no clock and runs no goroutine, so its tests replay made-up runs.
// copyGate (copygate.go) applies it to a run.
//
// The rule, per sample window (a window closes at the first finished copy
// once `limit` copies finished since it opened and MinWindow passed):
//
//   - Throughput is measured twice: images finished per second and bytes
//     written per second. A window "rose" when one of them rose by more
//     than 10% over the previous window and the other did not fall by more
//     than 10%; it "fell" when one fell by more than 10% and the other did
//     not rise by more than 10%. Images per second alone misjudges a
//     window of large images; bytes alone is blind to small ones (an image
//     whose blobs the target already has writes almost nothing).
//   - A window counts only when the slots were saturated: at half of its
//     finished copies or more, another copy was waiting for a slot. A run
//     short of work (its tail, a check phase slower than the copies) says
//     nothing about the link.
//   - No previous window, or growth resumed after a hold: grow.
//     Rose, and still growing: grow (+50%, at most max).
//     Fell right after a growth: shrink (-25%, at least min) and stop
//     growing: more copies made it worse (a run bound by CPU).
//     Fell otherwise (at the same limit, or after a shrink): nothing. On a
//     link bound by latency fewer copies are slower, so shrinking on a
//     fall that shrinking caused would spiral down to one copy.
//     Otherwise: stop growing (hold where it is).
//   - A 429 or 5xx answer from any registry (the transport's Pushback
//     count moved): halve at once (at least min), stop growing for Hold,
//     and forget the previous window. One halving per window: answers
//     still in flight when it halved are judged when the next one closes.
type adaptive struct {
	min, max, limit int
	// MinWindow is the shortest sample window; Hold how long growth
	// stops after a pushback.
	minWindow, hold time.Duration

	growing   bool
	grew      bool      // the last counted window grew the limit
	holdUntil time.Time // growth stopped by pushback until then
	begun     bool      // a copy started: the first window is open

	// The open window.
	start    time.Time
	done     int    // copies finished in it
	bytes    int64  // bytes they wrote
	busy     int    // of those, how many finished while a copy waited
	pushback uint64 // the pushback count when it opened
	cut      bool   // it opened with a halving

	// The last counted window's throughput; have is false before one.
	have               bool
	prevImgs, prevByts float64
}

// Adaptive limit defaults: a window of at least 200 ms (a few round trips
// of a far link, so one slow answer does not decide), and growth held for
// 10 s after a 429 or 5xx (a registry that said "slow down" is not probed
// again at once; the transport already waits out its Retry-After).
const (
	adaptMinWindow = 200 * time.Millisecond
	adaptHold      = 10 * time.Second
)

// newAdaptive returns a limit in [lo, hi] starting at start (clamped),
// with the transport's pushback count at now; its first window opens at
// the first Begin (or at now).
func newAdaptive(lo, hi, start int, now time.Time, pushback uint64) *adaptive {
	lo = max(lo, 1)
	hi = max(hi, lo)
	return &adaptive{min: lo, max: hi, limit: min(max(start, lo), hi), minWindow: adaptMinWindow, hold: adaptHold,
		growing: true, start: now, pushback: pushback}
}

// Begin records that a copy started at now. The first window opens with
// the first copy, not with the run: listing tags and the first checks
// are not copy time.
func (a *adaptive) Begin(now time.Time) {
	if !a.begun {
		a.begun, a.start = true, now
	}
}

// Limit is how many copies may run now.
func (a *adaptive) Limit() int { return a.limit }

// limitChange is what a Done call changed, for the log line.
type limitChange struct {
	From, To int
	// Why: "grew", "shrank" or "pushback".
	Why string
	// Images and Bytes per second in the window that decided, and in the
	// window before it (Prev*: 0 when there was none).
	PrevImages, Images float64
	PrevBytes, Bytes   float64
}

// Done records one finished copy at now: the bytes it wrote, how many
// copies were waiting for a slot at that moment, and the transport's
// pushback count so far. It returns the change it made, if any.
func (a *adaptive) Done(now time.Time, bytes int64, waiting int, pushback uint64) (limitChange, bool) {
	a.done++
	a.bytes += bytes
	if waiting > 0 {
		a.busy++
	}
	if pushback > a.pushback && !a.cut {
		return a.halve(now, pushback)
	}
	if a.done < a.limit || now.Sub(a.start) < a.minWindow {
		return limitChange{}, false
	}
	secs := now.Sub(a.start).Seconds()
	imgs, byts := float64(a.done)/secs, float64(a.bytes)/secs
	saturated := 2*a.busy >= a.done
	pushed := pushback > a.pushback
	a.open(now, pushback, false)
	if pushed {
		// Answers sent before the last halving, or a registry still
		// saying "slow down": halve again.
		return a.halve(now, pushback)
	}
	if !a.holdUntil.IsZero() && !now.Before(a.holdUntil) {
		// The hold is over: probe upwards again from here.
		a.holdUntil, a.growing, a.have = time.Time{}, true, false
	}
	if !saturated {
		return limitChange{}, false
	}
	ch := limitChange{From: a.limit, Images: imgs, Bytes: byts}
	verdict := 1 // no previous window: grow
	if a.have {
		ch.PrevImages, ch.PrevBytes = a.prevImgs, a.prevByts
		verdict = trend(a.prevImgs, imgs, a.prevByts, byts)
	}
	a.have, a.prevImgs, a.prevByts = true, imgs, byts
	grew := a.grew
	a.grew = false
	switch {
	case verdict > 0 && a.growing && a.holdUntil.IsZero():
		a.limit = min(a.max, a.limit+max(1, a.limit/2))
		a.grew = a.limit > ch.From
		ch.Why = "grew"
	case verdict < 0 && grew:
		// The last growth made things worse (a run bound by CPU
		// thrashes): step back.
		a.growing = false
		a.limit = max(a.min, a.limit-max(1, a.limit/4))
		ch.Why = "shrank"
	case verdict < 0:
		// Slower at the same limit, or after a shrink (fewer copies are
		// slower on a link bound by latency): shrinking on that would
		// spiral down. Only a pushback cuts here.
	default:
		a.growing = false
	}
	ch.To = a.limit
	return ch, ch.To != ch.From
}

// halve answers a pushback: half the limit, no growth for the hold, and
// a fresh window with no previous one to compare with.
func (a *adaptive) halve(now time.Time, pushback uint64) (limitChange, bool) {
	ch := limitChange{From: a.limit, Why: "pushback"}
	a.limit = max(a.min, a.limit/2)
	a.growing, a.grew, a.holdUntil, a.have = false, false, now.Add(a.hold), false
	a.open(now, pushback, true)
	ch.To = a.limit
	return ch, ch.To != ch.From
}

func (a *adaptive) open(now time.Time, pushback uint64, cut bool) {
	a.start, a.done, a.bytes, a.busy, a.pushback, a.cut = now, 0, 0, 0, pushback, cut
}

// trend compares two windows' images and bytes per second: 1 when one
// measure rose clearly (>10%) and the other did not fall clearly, -1 when
// one fell clearly and the other did not rise clearly, else 0.
func trend(prevImgs, imgs, prevByts, byts float64) int {
	i, b := clearly(prevImgs, imgs), clearly(prevByts, byts)
	switch {
	case max(i, b) > 0 && min(i, b) >= 0:
		return 1
	case min(i, b) < 0 && max(i, b) <= 0:
		return -1
	}
	return 0
}

// clearly is 1 when now is more than 10% above before, -1 when more than
// 10% below, else 0 (two zeros are level).
func clearly(before, now float64) int {
	switch {
	case now > before*1.1 && now > 0:
		return 1
	case now < before*0.9:
		return -1
	}
	return 0
}
