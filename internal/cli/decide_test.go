package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// decideFixture is a source and a target registry with one image of each
// kind of verdict, a config mirroring them, and a platform cache file that
// every command of a test shares.
type decideFixture struct {
	src, dst *regtest.Registry
	cfg      string
	cache    string
}

func newDecideFixture(t *testing.T, mappings string) *decideFixture {
	t.Helper()
	f := &decideFixture{src: regtest.New(t), dst: regtest.New(t)}
	dir := t.TempDir()
	f.cache = filepath.Join(dir, "platforms.json")
	f.cfg = filepath.Join(dir, "c.yaml")
	cfg := "tasks:\n  - name: t\n    source: {registry: \"" + f.src.Host + "\"}\n    target: {registry: \"" + f.dst.Host + "\"}\n    mappings:\n" + mappings
	if err := os.WriteFile(f.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// run runs one command against the fixture, with the shared platform cache
// and both registries allowed plain HTTP.
func (f *decideFixture) run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append(args, "--config", f.cfg, "--platform-cache", f.cache,
		"--insecure-registry", f.src.Host, "--insecure-registry", f.dst.Host)
	err := Execute(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), ExitCode(err)
}

// plan returns plan's JSON images by target.
func (f *decideFixture) plan(t *testing.T, extra ...string) map[string]planImage {
	t.Helper()
	out, errs, _ := f.run(t, append([]string{"plan", "-o", "json"}, extra...)...)
	var doc planDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("plan: %v\n%s%s", err, out, errs)
	}
	m := map[string]planImage{}
	for _, task := range doc.Tasks {
		for _, im := range task.Images {
			m[im.Target] = im
		}
	}
	return m
}

// check returns check's verdict per target ("" for in sync) and its exit
// code.
func (f *decideFixture) check(t *testing.T) (map[string]string, checkDoc, int) {
	t.Helper()
	out, errs, code := f.run(t, "check", "-o", "json")
	var doc checkDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("check: %v\n%s%s", err, out, errs)
	}
	m := map[string]string{}
	for k, ims := range map[string][]planImage{"missing": doc.Missing, "differ": doc.Differ, "failed": doc.Failed, "unverified": doc.Unverified} {
		for _, im := range ims {
			m[im.Target] = k
		}
	}
	return m, doc, code
}

// sync runs a sync with JSON logs and returns each image's status by
// target.
func (f *decideFixture) sync(t *testing.T) (map[string]string, int) {
	t.Helper()
	_, errs, code := f.run(t, "sync", "--log-format", "json")
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(errs))
	for sc.Scan() {
		var l struct {
			Msg, Target, Tag string
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			t.Fatalf("sync log line is not JSON: %s", sc.Text())
		}
		switch l.Msg {
		case "copied", "skipped", "failed":
			m[l.Target] = l.Msg
		}
	}
	return m, code
}

// plan, check, sync --dry-run and sync reach the same verdict for every
// image, because they ask one function: what plan says is what check
// reports and what a sync then does.
func TestSyncPlanCheckAgree(t *testing.T) {
	f := newDecideFixture(t, `      - {from: a/app, to: m/app, tags: ["1.0", "1.1", "2.0", "9.9"]}
      - {from: a/app, to: m/arm, tags: [multi], platform: linux/arm64}
      - {from: a/app, to: m/amd, tags: [multi], platform: linux/amd64}
      - {from: a/app, to: m/all, tags: [multi]}
`)
	base := imagegen.Layer(1, 2048)
	for i, tag := range []string{"1.0", "1.1", "2.0"} {
		imagegen.Push(t, f.src.Ref("a/app:"+tag), imagegen.Image(uint64(10+i), 1, 512, base))
	}
	imagegen.Push(t, f.src.Ref("a/app:multi"), imagegen.Index(20, []v1.Platform{
		{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}, 1, 512, base))
	imagegen.Push(t, f.dst.Ref("m/app:1.0"), imagegen.Image(10, 1, 512, base)) // current
	imagegen.Push(t, f.dst.Ref("m/app:1.1"), imagegen.Image(99, 1, 512, base)) // stale
	imagegen.Push(t, f.dst.Ref("m/amd:multi"), imagegen.Image(98, 1, 512))     // unverifiable
	tgt := func(repo string) string { return f.dst.Host + "/" + repo }

	// What each command must say per image, before and after a sync.
	type verdict struct{ action, reason, check, sync string }
	first := map[string]verdict{
		tgt("m/app:1.0"):   {"skip", "", "", "skipped"},
		tgt("m/app:1.1"):   {"copy", "digest differs", "differ", "copied"},
		tgt("m/app:2.0"):   {"copy", "missing on target", "missing", "copied"},
		tgt("m/app:9.9"):   {"fail", "", "failed", "failed"},
		tgt("m/arm:multi"): {"copy", "missing on target", "missing", "copied"},
		tgt("m/amd:multi"): {"unknown", "", "unverified", "copied"},
		tgt("m/all:multi"): {"copy", "missing on target", "missing", "copied"},
	}
	then := map[string]verdict{}
	for k, v := range first {
		if v.action == "fail" {
			then[k] = v
			continue
		}
		then[k] = verdict{"skip", "", "", "skipped"}
	}

	for round, want := range []map[string]verdict{first, then} {
		plan := f.plan(t)
		checked, doc, code := f.check(t)
		dry, _, _ := f.run(t, "sync", "--dry-run")
		for target, w := range want {
			im, ok := plan[target]
			if !ok {
				t.Errorf("round %d: plan lacks %s", round, target)
				continue
			}
			if im.Action != w.action || (w.reason != "" && im.Reason != w.reason) {
				t.Errorf("round %d: plan %s: %s (%s), want %s (%s)", round, target, im.Action, im.Reason, w.action, w.reason)
			}
			if checked[target] != w.check {
				t.Errorf("round %d: check %s: %q, want %q", round, target, checked[target], w.check)
			}
			// The dry run prints what plan does, word for word.
			line := "  " + im.Action
			if im.Action != "skip" {
				if !strings.Contains(dry, line) || !strings.Contains(dry, target) {
					t.Errorf("round %d: dry run does not list %s %s:\n%s", round, im.Action, target, dry)
				}
			}
		}
		if len(plan) != len(want) {
			t.Errorf("round %d: plan has %d images, want %d", round, len(plan), len(want))
		}
		// 9.9 fails in both rounds, so check fails in both.
		if code != ExitFailed || doc.InSync {
			t.Errorf("round %d: check exit %d, in sync %v; want 1, false", round, code, doc.InSync)
		}

		synced, code := f.sync(t)
		if code != ExitFailed {
			t.Errorf("round %d: sync exit %d, want 1 (9.9 fails)", round, code)
		}
		for target, w := range want {
			if synced[target] != w.sync {
				t.Errorf("round %d: sync %s: %q, want %q (plan said %s)", round, target, synced[target], w.sync, plan[target].Action)
			}
		}
	}
}

// A platform mapping into a target repository that was never created is
// missing, not "in sync": before any sync, and after a sync that failed
// (the index has no such platform, so the platform cache learnt nothing).
// check exits 1, and plan says copy (missing on target).
func TestCheckPlatformIntoEmptyTargetIsMissing(t *testing.T) {
	f := newDecideFixture(t, `      - {from: a/app, to: m/app, tags: ["1", "2", "3"], platform: linux/arm64/v8}
`)
	for i, tag := range []string{"1", "2", "3"} {
		imagegen.Push(t, f.src.Ref("a/app:"+tag), imagegen.Index(uint64(30+i), []v1.Platform{
			{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}, 1, 256))
	}
	for round := range 2 {
		out, _, code := f.run(t, "check")
		if code != ExitFailed || !strings.Contains(out, "OUT OF SYNC: 3 images, 3 missing, 0 differ, 0 failed, 0 unverified") ||
			!strings.Contains(out, "missing     "+f.dst.Host+"/m/app:1\n") {
			t.Errorf("round %d: check exit %d, want 1 with 3 missing:\n%s", round, code, out)
		}
		for target, im := range f.plan(t) {
			if im.Action != "copy" || im.Reason != "missing on target" {
				t.Errorf("round %d: plan %s: %s (%s), want copy (missing on target)", round, target, im.Action, im.Reason)
			}
		}
		if round == 0 {
			if synced, code := f.sync(t); code != ExitFailed || len(synced) != 3 || synced[f.dst.Host+"/m/app:1"] != "failed" {
				t.Fatalf("sync: exit %d, %v; want every image failed (no linux/arm64/v8 image)", code, synced)
			}
		}
	}
}

// check exits 0 only when every image is verified: a tag the target holds
// that cannot be compared without pulling its index fails the check.
func TestCheckFailsOnUnverified(t *testing.T) {
	f := newDecideFixture(t, `      - {from: a/app, to: m/app, tags: [multi], platform: linux/amd64}
`)
	imagegen.Push(t, f.src.Ref("a/app:multi"), imagegen.Index(40, []v1.Platform{
		{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}, 1, 256))
	imagegen.Push(t, f.dst.Ref("m/app:multi"), imagegen.Image(41, 1, 256))
	out, _, code := f.run(t, "check")
	if code != ExitFailed || !strings.Contains(out, "OUT OF SYNC: 1 images, 0 missing, 0 differ, 0 failed, 1 unverified") {
		t.Errorf("check: exit %d, want 1 with 1 unverified:\n%s", code, out)
	}
	if _, code := f.sync(t); code != 0 {
		t.Fatalf("sync: exit %d", code)
	}
	// The sync filled the platform cache: now check can verify.
	if out, _, code := f.run(t, "check"); code != 0 || !strings.Contains(out, "check: in sync: 1 images, 0 missing, 0 differ, 0 failed, 0 unverified") {
		t.Errorf("check after sync: exit %d:\n%s", code, out)
	}
}
