package engine_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/testutil/faultproxy"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// A source that drips a blob at a byte every few milliseconds is never idle
// long enough for the idle timeout, and would take minutes to finish. The
// progress deadline (here a floor of 4 KiB/s over 200ms of reading instead
// of 1 KiB/s over a minute) fails that image naming the blob, the bytes
// received and the rate; the others are copied, the run ends, and the next
// run (the daemon's next tick) copies the image once the source is healthy.
func TestSlowDripBlobFailsOnTheProgressDeadline(t *testing.T) {
	r := newRig(t)
	layer := r.layer(t, "a")
	rule := r.sp.Inject(faultproxy.Match{Kind: regtest.KindBlobGet, Ref: layer}, 0, r.sp.Drip(5*time.Millisecond))
	r.manners.IdleTimeout = time.Second // a byte comes every 5ms: never idle
	r.manners.MinRate, r.manners.MinRateWindow = 4<<10, 200*time.Millisecond

	rep := r.run(t)
	mustHit(t, r.sp, rule, 1)
	res := r.check(t, rep, "a")
	err := res["a"].Err
	if !errors.Is(err, transport.ErrTooSlow) {
		t.Fatalf("a failed with %v, want the progress deadline", err)
	}
	t.Logf("a: %v", err)
	// The drip fails the upload's PATCH, whose URL carries the target's
	// signed upload state in its query: not in the message.
	if strings.Contains(err.Error(), "_state") || strings.Contains(err.Error(), "?") {
		t.Errorf("error %q carries a URL query", err)
	}
	for _, want := range []string{"blob " + layer, "bytes received", "B/s over the last", "below the floor of 4096 B/s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// The next run is not blocked: with the source healthy again, a
	// is copied.
	r.sp.Remove(rule)
	rep = r.run(t)
	r.check(t, rep)
}

// The image deadline bounds the whole copy, retries included, when no single
// read is slow enough for the progress deadline.
func TestImageTimeoutEndsASlowImage(t *testing.T) {
	r := newRig(t)
	// a would take 40 minutes at a byte every 50ms; b and c take well
	// under the deadline even on a loaded machine.
	rule := r.sp.Inject(faultproxy.Match{Kind: regtest.KindBlobGet, Ref: r.layer(t, "a")}, 0, r.sp.Drip(50*time.Millisecond))
	r.manners.IdleTimeout = 5 * time.Second
	r.manners.MinRate = 0 // only the image deadline
	task := engine.Task{Name: "t", Source: r.srcEP, Target: r.dstEP}
	for _, repo := range rigRepos {
		task.Mappings = append(task.Mappings, engine.Mapping{From: repo, To: repo, Tags: tags(t, "1")})
	}
	e := engine.New(engine.Options{Jobs: 3, Attempts: 3, RetryWait: time.Millisecond, ImageTimeout: 10 * time.Second,
		Registry: registry.Options{Retry: &transport.Retry{Attempts: 3, Wait: time.Millisecond, Factor: 1}, Hosts: r.manners}})
	rep := e.Run(ctx(t), []engine.Task{task})
	mustHit(t, r.sp, rule, 1)
	res := r.check(t, rep, "a")
	if err := res["a"].Err; err == nil || !strings.Contains(err.Error(), "image-timeout") {
		t.Errorf("a failed with %v, want the image deadline", err)
	}
}
