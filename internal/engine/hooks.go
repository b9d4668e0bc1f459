package engine

import "context"

// RunHooks follow one Run as it goes, for a display of the run in flight
// (the daemon's status page). Unlike Options.OnPlanned they belong to one
// Run, so runs of different tasks sharing an Engine are told apart. Each
// may be nil; Started and Finished are called from several goroutines at
// once.
type RunHooks struct {
	// Planned is called once with the number of images selected, before
	// any is copied.
	Planned func(images int)
	// Started is called when an image's copy begins, with its source
	// reference; the same reference is the Source of the Result that
	// ends it.
	Started func(source string)
}

type hooksKey struct{}

// WithRunHooks returns a context whose Runs report to h.
func WithRunHooks(ctx context.Context, h RunHooks) context.Context {
	return context.WithValue(ctx, hooksKey{}, h)
}

func runHooks(ctx context.Context) RunHooks {
	h, _ := ctx.Value(hooksKey{}).(RunHooks)
	return h
}
