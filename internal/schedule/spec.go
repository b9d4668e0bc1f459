// Package schedule decides when the daemon's tasks run: at start and then
// every interval (dregsy's `interval`), once at start (interval 0), or at
// the times of a cron expression (our `schedule:`). It never starts a run of
// a task while the previous run of the same task is still going, says so in
// the log, and stops cleanly: no new runs once its context ends, runs in
// flight cancelled and waited for.
//
// The package knows nothing of the engine or the configuration: a Job is a
// name, a Spec, a fingerprint and a function to call. The decisions are made
// by Plan, a pure state machine driven by the times it is given, so they are
// tested with tables and no sleeping; Scheduler runs a Plan against a Clock.
package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// cronParser accepts the usual five fields, an optional leading seconds
// field (six fields), descriptors such as @hourly and @every 5m, and a
// CRON_TZ=Zone prefix.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Cron is a parsed cron expression.
type Cron struct {
	expr  string
	sched cron.Schedule
}

// ParseCron parses a cron expression: five fields (minute hour
// day-of-month month day-of-week), six with a leading seconds field, or a
// descriptor (@yearly, @monthly, @weekly, @daily, @hourly, @every DURATION);
// "CRON_TZ=Europe/Berlin " in front selects a time zone (default: the
// process's local time zone).
func ParseCron(expr string) (c Cron, err error) {
	// robfig/cron v3.0.1 panics on a time-zone prefix with nothing after
	// it ("CRON_TZ=UTC"); a configuration file must get an error instead.
	defer func() {
		if r := recover(); r != nil {
			c, err = Cron{}, fmt.Errorf("cannot parse %q", expr)
		}
	}()
	s, err := cronParser.Parse(expr)
	if err != nil {
		return Cron{}, err
	}
	// The parser turns "@every 0s" and "@every -5m" into every second.
	if f := strings.Fields(expr); len(f) >= 2 && f[len(f)-2] == "@every" {
		if d, perr := time.ParseDuration(f[len(f)-1]); perr != nil || d < time.Second {
			return Cron{}, fmt.Errorf("%q: @every needs a duration of at least 1s", expr)
		}
	}
	// A schedule that never fires (30 February) would leave a task that
	// silently never runs.
	if s.Next(time.Unix(0, 0)).IsZero() {
		return Cron{}, fmt.Errorf("%q never fires", expr)
	}
	return Cron{expr: expr, sched: s}, nil
}

// String returns the expression as written.
func (c Cron) String() string { return c.expr }

// Next returns the first time after t that the expression matches.
func (c Cron) Next(t time.Time) time.Time { return c.sched.Next(t) }

// Spec says when a task runs. The zero Spec runs once, at start.
type Spec struct {
	// Interval > 0: at start, then every Interval.
	Interval time.Duration
	// Cron, when set, runs at the times it matches (and not at start).
	Cron *Cron
}

// String describes the spec for logs and /status.
func (s Spec) String() string {
	switch {
	case s.Cron != nil:
		return "cron " + s.Cron.String()
	case s.Interval > 0:
		return "every " + s.Interval.String()
	default:
		return "once"
	}
}

// first is the first run of a task that appears at now.
func (s Spec) first(now time.Time) time.Time {
	if s.Cron != nil {
		return s.Cron.Next(now)
	}
	return now
}

// after is the run that follows the one planned at planned, given that it
// is now now; the zero time means no more runs. Interval runs keep their
// rhythm (planned + k*Interval); runs missed while the process was busy
// or asleep collapse into one.
func (s Spec) after(planned, now time.Time) time.Time {
	switch {
	case s.Cron != nil:
		return s.Cron.Next(now)
	case s.Interval > 0:
		next := planned.Add(s.Interval)
		if !next.After(now) {
			missed := now.Sub(next)/s.Interval + 1
			next = next.Add(missed * s.Interval)
		}
		return next
	default:
		return time.Time{}
	}
}
