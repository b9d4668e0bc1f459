package cli

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/regmirror/regmirror/internal/config"
	"github.com/regmirror/regmirror/internal/engine"
)

// taskLevel is the log handler of every command: records at min or above
// pass, and so do debug records of a task whose config says
// "verbose: true" – told by the record's "task" attribute (the engine's
// per-image lines) or by its context (engine.TaskOf: the transport's
// per-request lines).
type taskLevel struct {
	inner   slog.Handler // at debug level
	min     slog.Level
	verbose *atomic.Pointer[map[string]bool]
	task    string // a "task" attribute given by With
}

func newTaskLevel(inner slog.Handler, min slog.Level) *taskLevel {
	return &taskLevel{inner: inner, min: min, verbose: &atomic.Pointer[map[string]bool]{}}
}

func (h *taskLevel) Enabled(ctx context.Context, l slog.Level) bool {
	if l >= h.min {
		return true
	}
	v := h.verbose.Load()
	return v != nil && len(*v) > 0
}

func (h *taskLevel) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= h.min || h.isVerbose(ctx, r) {
		return h.inner.Handle(ctx, r)
	}
	return nil
}

func (h *taskLevel) isVerbose(ctx context.Context, r slog.Record) bool {
	v := h.verbose.Load()
	if v == nil || len(*v) == 0 {
		return false
	}
	if (*v)[h.task] || (*v)[engine.TaskOf(ctx)] {
		return true
	}
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "task" {
			found = (*v)[a.Value.String()]
			return false
		}
		return true
	})
	return found
}

func (h *taskLevel) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.inner = h.inner.WithAttrs(as)
	for _, a := range as {
		if a.Key == "task" {
			c.task = a.Value.String()
		}
	}
	return &c
}

func (h *taskLevel) WithGroup(name string) slog.Handler {
	c := *h
	c.inner = h.inner.WithGroup(name)
	return &c
}

// markVerbose makes log pass the debug records of cfg's tasks that say
// "verbose: true" (a log not built by globals.loggerTo is left as it is).
func markVerbose(log *slog.Logger, cfg *config.Config) {
	h, ok := log.Handler().(*taskLevel)
	if !ok {
		return
	}
	v := map[string]bool{}
	for _, t := range cfg.Tasks {
		if t.Verbose {
			v[t.Name] = true
		}
	}
	h.verbose.Store(&v)
}
