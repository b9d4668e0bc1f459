package schedule

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// t0 is 12:00:03, so that cron times and start times differ.
var t0 = time.Date(2026, 11, 23, 12, 0, 3, 0, time.UTC)

func every(name string, d time.Duration) Job {
	return Job{Name: name, Spec: Spec{Interval: d}, Fingerprint: "every " + d.String()}
}

func cronJob(t *testing.T, name, expr string) Job {
	c, err := ParseCron(expr)
	if err != nil {
		t.Fatal(err)
	}
	return Job{Name: name, Spec: Spec{Cron: &c}, Fingerprint: "cron " + expr}
}

func withFP(j Job, fp string) Job { j.Fingerprint = fp; return j }

// step is one call on a Plan at t0+at. For "update" want lists changes
// ("a added", "b changed running"), for "due" the actions ("start a",
// "skip a"); wake is checked after every step (-1: nothing planned).
type step struct {
	at   time.Duration
	op   string // update, due, done
	jobs []Job
	name string
	want string
	wake time.Duration
}

func TestPlan(t *testing.T) {
	const none = -1
	a1m := every("a", time.Minute)
	cases := []struct {
		name  string
		steps func(t *testing.T) []step
	}{
		{"interval runs at start then every interval", func(*testing.T) []step {
			return []step{
				{at: 0, op: "update", jobs: []Job{a1m}, want: "a added", wake: 0},
				{at: 0, op: "due", want: "start a", wake: time.Minute},
				{at: 30 * time.Second, op: "due", want: "", wake: time.Minute},
				{at: 40 * time.Second, op: "done", name: "a", wake: time.Minute},
				{at: time.Minute, op: "due", want: "start a", wake: 2 * time.Minute},
			}
		}},
		{"interval 0 runs once", func(*testing.T) []step {
			return []step{
				{at: 0, op: "update", jobs: []Job{every("b", 0)}, want: "b added", wake: 0},
				{at: 0, op: "due", want: "start b", wake: none},
				{at: time.Second, op: "done", name: "b", wake: none},
				{at: time.Hour, op: "due", want: "", wake: none},
			}
		}},
		{"a run that would overlap the previous one is skipped", func(*testing.T) []step {
			return []step{
				{at: 0, op: "update", jobs: []Job{a1m}, want: "a added", wake: 0},
				{at: 0, op: "due", want: "start a", wake: time.Minute},
				{at: time.Minute, op: "due", want: "skip a", wake: 2 * time.Minute},
				{at: 90 * time.Second, op: "done", name: "a", wake: 2 * time.Minute},
				{at: 2 * time.Minute, op: "due", want: "start a", wake: 3 * time.Minute},
			}
		}},
		{"missed ticks collapse into one run and keep the rhythm", func(*testing.T) []step {
			return []step{
				{at: 0, op: "update", jobs: []Job{a1m}, want: "a added", wake: 0},
				{at: 0, op: "due", want: "start a", wake: time.Minute},
				{at: 5 * time.Second, op: "done", name: "a", wake: time.Minute},
				{at: 3*time.Minute + 30*time.Second, op: "due", want: "start a", wake: 4 * time.Minute},
			}
		}},
		{"cron runs at its times, not at start", func(t *testing.T) []step {
			c := cronJob(t, "c", "*/10 * * * * *")
			return []step{
				{at: 0, op: "update", jobs: []Job{c}, want: "c added", wake: 7 * time.Second},
				{at: 0, op: "due", want: "", wake: 7 * time.Second},
				{at: 7 * time.Second, op: "due", want: "start c", wake: 17 * time.Second},
				{at: 8 * time.Second, op: "done", name: "c", wake: 17 * time.Second},
				{at: 17 * time.Second, op: "due", want: "start c", wake: 27 * time.Second},
				{at: 27 * time.Second, op: "due", want: "skip c", wake: 37 * time.Second},
			}
		}},
		{"five-field cron with a time zone", func(t *testing.T) []step {
			// 13:00 in Berlin (UTC+1 in November) is 12:00 UTC.
			c := cronJob(t, "c", "CRON_TZ=Europe/Berlin 0 13 * * *")
			return []step{
				{at: 0, op: "update", jobs: []Job{c}, want: "c added", wake: 24*time.Hour - 3*time.Second},
			}
		}},
		{"an unchanged task keeps its schedule on reload", func(*testing.T) []step {
			return []step{
				{at: 0, op: "update", jobs: []Job{a1m, every("b", 0)}, want: "a added, b added", wake: 0},
				{at: 0, op: "due", want: "start a, start b", wake: time.Minute},
				{at: time.Second, op: "done", name: "a", wake: time.Minute},
				{at: 30 * time.Second, op: "update", jobs: []Job{a1m, every("b", 0)}, want: "a unchanged, b unchanged running", wake: time.Minute},
				{at: 30 * time.Second, op: "due", want: "", wake: time.Minute},
			}
		}},
		{"a changed task runs anew, after its previous version's run", func(*testing.T) []step {
			return []step{
				{at: 0, op: "update", jobs: []Job{a1m}, want: "a added", wake: 0},
				{at: 0, op: "due", want: "start a", wake: time.Minute},
				{at: 30 * time.Second, op: "update", jobs: []Job{withFP(a1m, "other mappings")}, want: "a changed running", wake: none},
				{at: 30 * time.Second, op: "due", want: "", wake: none},
				{at: 31 * time.Second, op: "done", name: "a", wake: 30 * time.Second},
				// The new version's rhythm starts when the change was made.
				{at: 31 * time.Second, op: "due", want: "start a", wake: 90 * time.Second},
			}
		}},
		{"a changed interval becomes a cron", func(t *testing.T) []step {
			return []step{
				{at: 0, op: "update", jobs: []Job{a1m}, want: "a added", wake: 0},
				{at: 0, op: "due", want: "start a", wake: time.Minute},
				{at: time.Second, op: "done", name: "a", wake: time.Minute},
				{at: 2 * time.Second, op: "update", jobs: []Job{cronJob(t, "a", "@every 1h")}, want: "a changed", wake: time.Hour + 2*time.Second},
			}
		}},
		{"a removed task is dropped, even while it runs", func(*testing.T) []step {
			return []step{
				{at: 0, op: "update", jobs: []Job{a1m, every("b", time.Hour)}, want: "a added, b added", wake: 0},
				{at: 0, op: "due", want: "start a, start b", wake: time.Minute},
				{at: time.Second, op: "update", jobs: []Job{every("b", time.Hour)}, want: "a removed running, b unchanged running", wake: time.Hour},
				{at: time.Minute, op: "due", want: "", wake: time.Hour},
			}
		}},
		{"a task removed and re-added does not overlap its old run", func(*testing.T) []step {
			return []step{
				{at: 0, op: "update", jobs: []Job{a1m}, want: "a added", wake: 0},
				{at: 0, op: "due", want: "start a", wake: time.Minute},
				{at: time.Second, op: "update", jobs: nil, want: "a removed running", wake: none},
				{at: 2 * time.Second, op: "update", jobs: []Job{a1m}, want: "a added running", wake: none},
				{at: 2 * time.Second, op: "due", want: "", wake: none},
				{at: 3 * time.Second, op: "done", name: "a", wake: 2 * time.Second},
				{at: 3 * time.Second, op: "due", want: "start a", wake: 62 * time.Second},
			}
		}},
		{"a trigger runs now, never beside a run, and keeps the schedule", func(*testing.T) []step {
			return []step{
				{at: 0, op: "update", jobs: []Job{a1m, every("b", 0)}, want: "a added, b added", wake: 0},
				{at: 0, op: "due", want: "start a, start b", wake: time.Minute},
				{at: time.Second, op: "trigger", name: "a", want: ErrRunning.Error(), wake: time.Minute},
				{at: 2 * time.Second, op: "done", name: "a", wake: time.Minute},
				{at: 2 * time.Second, op: "done", name: "b", wake: time.Minute},
				{at: 3 * time.Second, op: "trigger", name: "a", want: "ok", wake: time.Minute},
				{at: 3 * time.Second, op: "trigger", name: "a", want: ErrRunning.Error(), wake: time.Minute},
				{at: 3 * time.Second, op: "trigger", name: "b", want: "ok", wake: time.Minute},
				{at: 3 * time.Second, op: "trigger", name: "zz", want: ErrUnknownTask.Error(), wake: time.Minute},
				{at: 4 * time.Second, op: "due", want: "start a, start b", wake: time.Minute},
				{at: 5 * time.Second, op: "trigger", name: "b", want: ErrRunning.Error(), wake: time.Minute},
				{at: 6 * time.Second, op: "done", name: "a", wake: time.Minute},
				{at: 6 * time.Second, op: "done", name: "b", wake: time.Minute},
				{at: time.Minute, op: "due", want: "start a", wake: 2 * time.Minute},
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPlan()
			for i, s := range tc.steps(t) {
				now := t0.Add(s.at)
				var got string
				switch s.op {
				case "update":
					var parts []string
					for _, c := range p.Update(now, s.jobs) {
						part := c.Name + " " + string(c.Kind)
						if c.Running {
							part += " running"
						}
						parts = append(parts, part)
					}
					got = strings.Join(parts, ", ")
				case "due":
					var parts []string
					for _, a := range p.Due(now) {
						parts = append(parts, string(a.Kind)+" "+a.Job.Name)
					}
					got = strings.Join(parts, ", ")
				case "done":
					p.Done(s.name)
					got = s.want
				case "trigger":
					got = "ok"
					if err := p.Trigger(s.name); err != nil {
						got = err.Error()
					}
				}
				if got != s.want {
					t.Errorf("step %d (%s at +%s): got %q, want %q", i, s.op, s.at, got, s.want)
				}
				wake := p.Wake()
				gotWake := time.Duration(none)
				if !wake.IsZero() {
					gotWake = wake.Sub(t0)
				}
				if gotWake != s.wake {
					t.Errorf("step %d (%s at +%s): wake at +%s, want +%s", i, s.op, s.at, gotWake, s.wake)
				}
			}
		})
	}
}

func TestPlanStates(t *testing.T) {
	p := NewPlan()
	c, _ := ParseCron("0 3 * * *")
	p.Update(t0, []Job{every("b", 0), every("a", time.Hour), {Name: "c", Spec: Spec{Cron: &c}}})
	p.Due(t0)
	got := fmt.Sprint(p.States())
	want := fmt.Sprint([]TaskState{
		{Name: "a", Spec: "every 1h0m0s", Next: t0.Add(time.Hour), Running: true},
		{Name: "b", Spec: "once", Running: true},
		{Name: "c", Spec: "cron 0 3 * * *", Next: time.Date(2026, 11, 24, 3, 0, 0, 0, time.Local)},
	})
	if got != want {
		t.Errorf("States:\n got %s\nwant %s", got, want)
	}
}

func TestParseCron(t *testing.T) {
	for _, tc := range []struct {
		expr string
		ok   bool
	}{
		{"0 3 * * *", true},
		{"*/2 * * * * *", true},
		{"@hourly", true},
		{"@every 90s", true},
		{"CRON_TZ=UTC 0 3 * * 1-5", true},
		{"", false},
		{"0 3 * *", false},
		{"61 * * * *", false},
		{"0 0 30 2 *", false}, // never fires
		{"@every banana", false},
		{"CRON_TZ=Nowhere/Land 0 3 * * *", false},
		{"CRON_TZ=UTC", false}, // panics inside robfig/cron v3.0.1
		{"TZ=", false},
		{"@every 0s", false},
		{"@every -5m", false},
		{"CRON_TZ=UTC @every 500ms", false},
		{"CRON_TZ=UTC @every 2s", true},
	} {
		_, err := ParseCron(tc.expr)
		if (err == nil) != tc.ok {
			t.Errorf("ParseCron(%q): err %v, want ok=%v", tc.expr, err, tc.ok)
		}
	}
}

// FuzzParseCron: any expression is either an error or a schedule whose
// next time lies after the time asked about; never a panic.
func FuzzParseCron(f *testing.F) {
	for _, s := range []string{"0 3 * * *", "*/2 * * * * *", "@every 90s", "CRON_TZ=UTC 0 3 * * 1-5", "TZ=", "0 0 30 2 *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		c, err := ParseCron(expr)
		if err != nil {
			return
		}
		if next := c.Next(t0); !next.After(t0) {
			t.Errorf("%q: next after %s is %s", expr, t0, next)
		}
	})
}
