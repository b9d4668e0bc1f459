package engine_test

import (
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/logbuf"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// A target that refuses connections costs the retries of the first few
// images, not of all 60: after one request's retries the host's breaker
// opens and the other images fail without a request, named once. The
// requests are counted from the debug log of every request that reached
// the network ("connection refused" comes from the kernel), not from the
// breaker's own counters. The next run asks the host again (half-open).
func TestDeadTargetCostsTheRetriesOfTheFirstImagesOnly(t *testing.T) {
	src := regtest.New(t)
	const images = 60
	var tags []string
	for i := range images {
		tag := fmt.Sprintf("v%d", i)
		imagegen.Push(t, src.Ref("team/app:"+tag), imagegen.Image(uint64(900+i), 1, 64))
		tags = append(tags, tag)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused

	var logs logbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hosts := transport.DefaultHosts()
	hosts.Logger = log
	const jobs, attempts, requestAttempts = 4, 3, 3
	e := engine.New(engine.Options{Logger: log, Jobs: jobs, Attempts: attempts, RetryWait: time.Millisecond,
		Registry: registry.Options{Hosts: hosts, Retry: &transport.Retry{Attempts: requestAttempts, Wait: time.Millisecond, Factor: 1}}})
	task := engine.Task{Name: "t", Source: plain(src), Target: registry.Endpoint{Registry: dead, PlainHTTP: true},
		Mappings: []engine.Mapping{{From: "team/app", To: "mirror/app"}}}

	rep := e.Run(ctx(t), []engine.Task{task})
	if rep.Failed() != images {
		t.Fatalf("%d failed, want %d", rep.Failed(), images)
	}
	refused := logs.Lines("msg=http", dead, "connect: connection refused")
	// Without the breaker every image pays its copy attempts and request
	// retries: 270 refused requests here (BreakAfter 0). With it, at most
	// the images in flight when it opens pay them.
	budget := jobs * attempts * requestAttempts
	t.Logf("dead target, %d images: %d requests reached the network (budget %d)", images, refused, budget)
	if refused == 0 || refused > budget {
		t.Errorf("%d refused requests, want 1..%d", refused, budget)
	}
	if n := logs.Lines("unreachable (connection refused)", "images not attempted"); n != 1 {
		t.Errorf("%d 'unreachable ... not attempted' lines, want 1:\n%s", n, logs.String())
	}
	if n := logs.Lines("level=ERROR", "msg=failed"); n > jobs*2 {
		t.Errorf("%d per-image failure lines, want only those of the images attempted", n)
	}
	st := hosts.Breakers()[dead]
	if !st.Open || st.Cause != "connection refused" || st.Rejected == 0 {
		t.Errorf("breaker state %+v, want open, connection refused, rejections", st)
	}

	// The next run (the daemon's next interval) asks the host again, and
	// one failure opens the breaker again.
	before := refused
	rep = e.Run(ctx(t), []engine.Task{task})
	again := logs.Lines("msg=http", dead, "connect: connection refused") - before
	t.Logf("next run: %d requests reached the network", again)
	if again == 0 || again > jobs*requestAttempts {
		t.Errorf("next run: %d refused requests, want 1..%d (half-open)", again, jobs*requestAttempts)
	}
	if rep.Failed() != images || !hosts.Breakers()[dead].Open {
		t.Errorf("next run: %d failed, breaker %+v", rep.Failed(), hosts.Breakers()[dead])
	}
}
