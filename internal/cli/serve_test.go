package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/regmirror/regmirror/internal/config"
	"github.com/regmirror/regmirror/internal/schedule"
)

// TestFingerprint: a reload keeps a task's schedule only when nothing about
// it changed, credentials and tag filters included.
func TestFingerprint(t *testing.T) {
	const base = `tasks:
  - name: t
    interval: 1h
    source: {registry: src.example.com}
    target: {registry: dst.example.com, username: bob, password: hunter2}
    mappings:
      - from: a/b
        tags: ['semver: >=1.0.0']
`
	fp := func(doc string) string {
		t.Helper()
		cfg, err := config.Load(strings.NewReader(doc), "cfg.yaml")
		if err != nil {
			t.Fatal(err)
		}
		tasks, err := engineTasks(cfg.Tasks)
		if err != nil {
			t.Fatal(err)
		}
		return fingerprint(tasks[0], schedule.Spec{Interval: cfg.Tasks[0].Interval})
	}
	ref := fp(base)
	if fp("# a comment\n"+base) != ref {
		t.Error("a comment changed the fingerprint")
	}
	if strings.Contains(ref, "hunter2") {
		t.Error("the fingerprint holds the password")
	}
	for name, doc := range map[string]string{
		"password": strings.Replace(base, "hunter2", "hunter3", 1),
		"tags":     strings.Replace(base, ">=1.0.0", ">=1.1.0", 1),
		"to":       strings.Replace(base, "from: a/b", "from: a/b\n        to: c/d", 1),
		"platform": strings.Replace(base, "from: a/b", "from: a/b\n        platform: linux/amd64", 1),
		"target":   strings.Replace(base, "dst.example.com", "dst2.example.com", 1),
	} {
		if fp(doc) == ref {
			t.Errorf("changing the %s keeps the fingerprint", name)
		}
	}
	cfg, _ := config.Load(strings.NewReader(base), "cfg.yaml")
	tasks, _ := engineTasks(cfg.Tasks)
	if fingerprint(tasks[0], schedule.Spec{Interval: 2 * time.Hour}) == ref {
		t.Error("changing the interval keeps the fingerprint")
	}
}
