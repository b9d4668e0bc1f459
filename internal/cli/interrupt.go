package cli

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"syscall"

	"github.com/regmirror/regmirror/internal/engine"
)

// Interrupted is the cause of the command's context when a signal ended
// the run (cmd/regmirror cancels it so). A one-shot command that returns
// an error after it exits 128 + the signal's number, as a shell reports a
// process killed by it: 130 for SIGINT, 143 for SIGTERM. A command that
// finishes cleanly after the signal (the daemon's graceful stop) exits 0.
type Interrupted struct {
	Signal os.Signal
	// reported: the command has said how the run ended.
	reported bool
}

func (e *Interrupted) Error() string { return "interrupted by " + signalName(e.Signal) }

func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// code is the exit code for the signal.
func (e *Interrupted) code() int {
	if s, ok := e.Signal.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 128 + int(syscall.SIGINT)
}

// interruption returns the signal that ended ctx, nil when none did.
func interruption(ctx context.Context) *Interrupted {
	var in *Interrupted
	if errors.As(context.Cause(ctx), &in) {
		return in
	}
	return nil
}

// reportInterrupt logs the one line that says a signal ended the run and
// what it got done, and returns the error that sets the exit code; nil
// when no signal ended the run. Images never started are counted, not
// listed: they did not fail, and a new run starts them.
func reportInterrupt(ctx context.Context, log *slog.Logger, rep *engine.Report, attrs ...any) error {
	in := interruption(ctx)
	if in == nil {
		return nil
	}
	done := 0
	if rep != nil {
		done = rep.Count(engine.Copied) + rep.Count(engine.Skipped) + rep.Count(engine.Pulled)
	}
	a := []any{"signal", signalName(in.Signal), "done", done}
	if rep != nil {
		a = append(a, "cut", rep.Count(engine.Interrupted), "not_started", rep.Count(engine.NotStarted), "failed", rep.Failed())
	}
	log.Warn("interrupted: no new image was started; a new run continues where this one stopped", append(a, attrs...)...)
	return &Interrupted{Signal: in.Signal, reported: true}
}
