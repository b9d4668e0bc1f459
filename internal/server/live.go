package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry/transport"
)

// liveRun is the run of a task in flight. Its fields are guarded by the
// State's mutex.
type liveRun struct {
	started  time.Time
	planned  bool
	selected int
	done     int
	bytes    int64
	inFlight map[string]int // source reference -> copies of it going on
}

func (lr *liveRun) finished(r engine.Result) {
	if r.Status == engine.Pruned {
		return // prunes come after the copies and were not selected
	}
	lr.done++
	if n := lr.inFlight[r.Source]; n > 1 {
		lr.inFlight[r.Source] = n - 1
	} else {
		delete(lr.inFlight, r.Source)
	}
}

// Follow marks the start of a run of task and returns the context to run
// it with: its engine hooks and upload progress feed the page's view of
// the run in flight. RunFinished ends it.
func (s *State) Follow(ctx context.Context, task string) context.Context {
	lr := &liveRun{started: s.now(), inFlight: map[string]int{}}
	s.mu.Lock()
	s.live[task] = lr
	s.mu.Unlock()
	ctx = engine.WithRunHooks(ctx, engine.RunHooks{
		Planned: func(n int) {
			s.mu.Lock()
			lr.planned, lr.selected = true, n
			s.mu.Unlock()
		},
		Started: func(source string) {
			s.mu.Lock()
			lr.inFlight[source]++
			s.mu.Unlock()
		},
	})
	return transport.WithProgress(ctx, func(n int64) {
		s.mu.Lock()
		lr.bytes += n
		s.mu.Unlock()
	})
}

// ImageResult is one image's result in a run, as /tasks/NAME shows it.
type ImageResult struct {
	Source     string  `json:"source"`
	Target     string  `json:"target,omitempty"`
	Tag        string  `json:"tag,omitempty"`
	Result     string  `json:"result"`
	Digest     string  `json:"digest,omitempty"`
	Bytes      int64   `json:"bytes"`
	Seconds    float64 `json:"duration_seconds"`
	Reason     string  `json:"reason,omitempty"`
	Persistent bool    `json:"-"`
}

// recordRun keeps a finished run: every image's result for /tasks/NAME,
// and a record in the history, its failures carrying the time each image
// was first seen failing. s.mu is held.
func (s *State) recordRun(task string, rep *engine.Report, rec RunRecord) {
	firstSeen := map[string]time.Time{}
	if prev, ok := s.hist.last(task); ok {
		for _, f := range prev.Failures {
			firstSeen[f.Image] = f.FirstSeen
		}
	}
	images := make([]ImageResult, 0, len(rep.Results))
	for _, r := range rep.Results {
		if r.Task != task {
			continue
		}
		img := ImageResult{Source: imageName(r.Source), Target: imageName(r.Target), Tag: safeText(r.Tag, 300),
			Result: string(r.Status), Digest: r.Digest, Bytes: r.Bytes, Seconds: r.Duration.Seconds()}
		if r.Err != nil {
			img.Reason = safeText(r.Err.Error(), maxReasonLen)
		}
		images = append(images, img)
		if r.Status != engine.Failed {
			continue
		}
		if len(rec.Failures) == maxRecordFailures {
			rec.MoreFailures++
			continue
		}
		seen, ok := firstSeen[img.Source]
		if !ok {
			seen = rec.Started
		}
		rec.Failures = append(rec.Failures, FailureRecord{Image: img.Source, Reason: img.Reason, FirstSeen: seen})
	}
	s.images[task] = images
	if err := s.hist.add(task, rec); err != nil {
		s.log.Warn("history not saved", "task", task, "error", err)
	}
}

// imageName is a result's reference for the page. A result for a whole
// repository (its tags could not be listed) names it with an empty tag,
// "host/repo:"; a tag is never empty, so the colon goes.
func imageName(ref string) string {
	return strings.TrimSuffix(safeText(ref, 1000), ":")
}

// newToken returns a random token for the "run now" forms: a page from
// another origin cannot read it, so it cannot forge the POST.
func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand.Read)
	return hex.EncodeToString(b)
}

// snapshotLive copies the run in flight of task; s.mu is held.
func (lr *liveRun) snapshot() liveRun {
	c := *lr
	c.inFlight = maps.Clone(lr.inFlight)
	return c
}

// inFlightList lists the images being copied, in name order.
func (lr *liveRun) inFlightList() []string {
	return slices.Sorted(maps.Keys(lr.inFlight))
}
