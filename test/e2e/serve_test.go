package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/server"
	"github.com/regmirror/regmirror/internal/testutil/e2e"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/promtext"
)

// daemon is a running `regmirror serve`.
type daemon struct {
	cmd    *exec.Cmd
	addr   string
	logs   *lockedBuffer
	exited chan struct{}
	code   int
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDaemon runs `regmirror serve` on a free loopback port and waits
// until it says where it listens. The process is killed at the end of the
// test if it is still running.
func startDaemon(t *testing.T, bin, cfg string, env ...string) *daemon {
	t.Helper()
	return startDaemonArgs(t, bin, cfg, nil, env...)
}

// startDaemonArgs is startDaemon with more serve flags.
func startDaemonArgs(t *testing.T, bin, cfg string, args []string, env ...string) *daemon {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--config", cfg, "--listen", "127.0.0.1:0", "--platform-cache", ""}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	d := &daemon{cmd: cmd, logs: &lockedBuffer{}, exited: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			d.logs.Write([]byte(line + "\n"))
			var rec struct{ Msg, Listen string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" {
				addr <- rec.Listen
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		d.code = cmd.ProcessState.ExitCode()
		if err != nil && d.code == 0 {
			d.code = -1
		}
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-d.exited
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.logs.String())
		}
	})
	select {
	case d.addr = <-addr:
	case <-d.exited:
		t.Fatalf("daemon exited with %d before serving:\n%s", d.code, d.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not start serving:\n%s", d.logs.String())
	}
	return d
}

func (d *daemon) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// freeze stops the daemon's process (SIGSTOP) and waits until the kernel
// reports it stopped, so that it sends nothing until thaw.
func (d *daemon) freeze(t *testing.T) {
	t.Helper()
	d.signal(t, syscall.SIGSTOP)
	stat := fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid)
	waitFor(t, 10*time.Second, "the daemon stopped", func() bool {
		b, err := os.ReadFile(stat)
		if err != nil {
			t.Fatalf("reading %s: %v", stat, err)
		}
		// pid (comm) STATE ...; comm may hold spaces, so read after the last ')'.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		return len(f) > 0 && f[0] == "T"
	})
}

// thaw resumes a frozen daemon.
func (d *daemon) thaw(t *testing.T) {
	t.Helper()
	d.signal(t, syscall.SIGCONT)
}

// stop sends SIGTERM and requires exit code 0 within 10 seconds.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	d.signal(t, syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("daemon still running 10s after SIGTERM")
	}
	if d.code != 0 {
		t.Fatalf("daemon exited with %d after SIGTERM, want 0", d.code)
	}
}

func (d *daemon) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + d.addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (d *daemon) status(t *testing.T) server.Status {
	t.Helper()
	code, body := d.get(t, "/status")
	if code != http.StatusOK {
		t.Fatalf("/status: %d %s", code, body)
	}
	var s server.Status
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("/status is not JSON: %v\n%s", err, body)
	}
	return s
}

func (d *daemon) metrics(t *testing.T) promtext.Families {
	t.Helper()
	code, body := d.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	return promtext.Parse(t, body)
}

// waitFor polls cond every 100ms for at most timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func hasTag(t *testing.T, r *e2e.Registry, repo, tag string) bool {
	return slices.Contains(listTags(t, r, repo), tag)
}

// writeFileAtomically saves like vim or an IDE: a new file renamed over
// the old one.
func writeFileAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// blobBytes is what a copy of img uploads: every blob except those in
// skip, plus the manifest.
func blobBytes(t *testing.T, img v1.Image, skip map[v1.Hash]bool) int64 {
	t.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		if !skip[l.Digest] {
			n += l.Size
		}
	}
	return n
}

// TestServePicksUpNewTagAndMetricsMatch: a daemon whose task runs every
// second (a six-field cron schedule) copies a tag pushed after it started,
// and its /metrics, parsed as the Prometheus text format, count what the
// registries saw.
func TestServePicksUpNewTagAndMetricsMatch(t *testing.T) {
	src, dst := registries(t)
	bin := e2e.BuildRegmirror(t)
	base := imagegen.Layer(7, 4096)
	img1 := imagegen.Image(1, 1, 2048, base)
	img2 := imagegen.Image(2, 1, 2048, base)
	imagegen.Push(t, src.Ref("app:1.0"), img1, remoteOpts(src)...)

	cfg := filepath.Join(t.TempDir(), "serve.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`tasks:
  - name: mirror
    schedule: "* * * * * *"   # every second
    source: {registry: "http://%[1]s"}
    target: {registry: %[2]s, auth: %[3]s, ca-file: %[4]s}
    mappings:
      - from: app
        to: mirror/app
  - name: once
    interval: 0
    source: {registry: "http://%[1]s"}
    target: {registry: %[2]s, auth: %[3]s, ca-file: %[4]s}
    mappings:
      - from: app
        tags: [missing]
`, src.Host, dst.Host, authB64(dst.User, dst.Password), dst.CAFile)), 0o600)

	d := startDaemon(t, bin, cfg)
	if code, _ := d.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	waitFor(t, 30*time.Second, "mirror/app:1.0 on the target", func() bool { return hasTag(t, dst, "mirror/app", "1.0") })
	if code, _ := d.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: %d", code)
	}

	// Pushed after the daemon started: the next run copies it. The
	// daemon is frozen while the tag is pushed: docker-registry lists a
	// tag a moment before a HEAD of it answers (a push writes the tag's
	// index link before its current link), so a run listing in that
	// moment would count the tag as failed. Frozen, the daemon sends no
	// request; a tag list it asked for before the freeze is read after
	// the thaw, when the tag already answers.
	d.freeze(t)
	imagegen.Push(t, src.Ref("app:2.0"), img2, remoteOpts(src)...)
	ref2, err := name.ParseReference(src.Ref("app:2.0"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(ref2, remoteOpts(src)...); err != nil {
		t.Fatalf("HEAD of the pushed app:2.0: %v", err)
	}
	d.thaw(t)
	waitFor(t, 30*time.Second, "mirror/app:2.0 on the target", func() bool { return hasTag(t, dst, "mirror/app", "2.0") })
	// Wait for one more finished run after the copy, so that the
	// counters below have seen a run that skipped both tags.
	waitFor(t, 30*time.Second, "a run finding both tags current", func() bool {
		for _, ts := range d.status(t).Tasks {
			if ts.Name == "mirror" && ts.LastRun != nil && ts.LastRun.Skipped == 2 {
				return true
			}
		}
		return false
	})

	fams := d.metrics(t)
	// Copied exactly once each, never again.
	fams.Want(t, 2, "regmirror_images_total", "result", "copied", "task", "mirror")
	fams.Want(t, 0, "regmirror_images_total", "result", "failed", "task", "mirror")
	if n, _ := fams.Value("regmirror_images_total", "result", "skipped", "task", "mirror"); n < 2 {
		t.Errorf("mirror skipped %v images, want at least 2", n)
	}
	// The once task ran once, and its one image failed.
	fams.Want(t, 1, "regmirror_images_total", "result", "failed", "task", "once")
	fams.Want(t, 0, "regmirror_images_total", "result", "copied", "task", "once")
	fams.Want(t, 1, "regmirror_runs_total", "result", "failed", "task", "once")
	fams.Want(t, 1, "regmirror_run_duration_seconds", "task", "once")
	if _, ok := fams.Value("regmirror_last_success_timestamp_seconds", "task", "once"); ok {
		t.Error("the failed once task has a last success")
	}
	if ts, ok := fams.Value("regmirror_last_success_timestamp_seconds", "task", "mirror"); !ok || ts < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("mirror last success %v (present %v)", ts, ok)
	}
	ok, _ := fams.Value("regmirror_runs_total", "result", "ok", "task", "mirror")
	failed, _ := fams.Value("regmirror_runs_total", "result", "failed", "task", "mirror")
	cancelled, _ := fams.Value("regmirror_runs_total", "result", "cancelled", "task", "mirror")
	if ok < 3 || failed != 0 || cancelled != 0 {
		t.Errorf("mirror runs: ok %v failed %v cancelled %v, want >= 3 ok only", ok, failed, cancelled)
	}
	// What the registries saw: one manifest GET per copy (the pulls), one
	// manifest PUT per copy, and the bytes uploaded: both images' blobs
	// and manifests, the shared base layer once.
	fams.Want(t, float64(src.Counts()["manifest GET"]), "regmirror_pulls_total", "registry", src.Host)
	fams.Want(t, 2, "regmirror_pulls_total", "registry", src.Host)
	if n := dst.Counts()["manifest PUT"]; n != 2 {
		t.Errorf("target saw %d manifest PUTs, want 2", n)
	}
	baseDigest, _ := base.Digest()
	wantBytes := blobBytes(t, img1, nil) + blobBytes(t, img2, map[v1.Hash]bool{baseDigest: true})
	fams.Want(t, float64(wantBytes), "regmirror_bytes_copied_total", "task", "mirror")
	fams.Want(t, 0, "regmirror_config_reload_failures_total")
	fams.Want(t, 1, "regmirror_config_last_reload_successful")
	// docker-registry sends no rate-limit headers: no reading, no series.
	if f := fams["regmirror_ratelimit_remaining"]; f != nil && len(f.Metric) > 0 {
		t.Errorf("rate-limit readings from a registry that sends none: %v", f)
	}

	// Checked with skopeo, an independent client (after the counts above:
	// its GET counts too).
	if s, d := e2e.SkopeoRawDigest(t, src, "app:2.0"), e2e.SkopeoRawDigest(t, dst, "mirror/app:2.0"); s != d {
		t.Errorf("mirror/app:2.0 digest %s, source %s", d, s)
	}

	st := d.status(t)
	if len(st.Tasks) != 2 || st.Tasks[0].Name != "mirror" || st.Tasks[0].NextRun == nil || st.Tasks[0].Totals.Copied != 2 {
		t.Errorf("/status tasks: %+v", st.Tasks)
	}
	if once := st.Tasks[1]; once.NextRun != nil || once.Runs != 1 || len(once.LastErrors) != 1 || once.LastErrors[0].Tag != "missing" {
		t.Errorf("/status of the once task: %+v", once)
	}
	_, body := d.get(t, "/status")
	if strings.Contains(body, dst.Password) || strings.Contains(body, authB64(dst.User, dst.Password)) {
		t.Errorf("/status shows the target's credentials:\n%s", body)
	}
	d.stop(t)
	if logs := d.logs.String(); strings.Contains(logs, dst.Password) || strings.Contains(logs, authB64(dst.User, dst.Password)) {
		t.Error("the log shows the target's credentials")
	}
}

// TestServeReloads: an edit that adds a mapping takes effect without a
// restart and leaves the other task's schedule alone; a broken edit keeps
// the last good configuration running and is reported in /status and the
// metrics; SIGHUP reloads even when watching is off.
func TestServeReloads(t *testing.T) {
	src, dst := registries(t)
	bin := e2e.BuildRegmirror(t)
	for i, repo := range []string{"one", "two", "three"} {
		imagegen.Push(t, src.Ref(repo+":1"), imagegen.Image(uint64(10+i), 1, 512), remoteOpts(src)...)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "dregsy.yaml")
	conf := func(watch bool, tasks ...string) string {
		s := fmt.Sprintf("watch: %v\ntasks:\n", watch)
		for _, t := range tasks {
			s += t
		}
		return s
	}
	task := func(name string, repos ...string) string {
		s := fmt.Sprintf(`  - name: %s
    interval: 1h
    source: {registry: "http://%s"}
    target: {registry: %s, username: "${DST_USER}", password: "${DST_PASS}", ca-file: %s}
    mappings:
`, name, src.Host, dst.Host, dst.CAFile)
		for _, r := range repos {
			s += fmt.Sprintf("      - {from: %s, to: mirror/%s}\n", r, r)
		}
		return s
	}
	taskA, taskB := task("a", "one"), task("b", "two")
	os.WriteFile(cfg, []byte(conf(true, taskA, taskB)), 0o600)
	d := startDaemon(t, bin, cfg, "DST_USER="+dst.User, "DST_PASS="+dst.Password)

	byName := func(s server.Status) map[string]int {
		m := map[string]int{}
		for i, ts := range s.Tasks {
			m[ts.Name] = i
		}
		return m
	}
	runs := func(name string) int {
		s := d.status(t)
		if i, ok := byName(s)[name]; ok {
			return s.Tasks[i].Runs
		}
		return -1
	}
	waitFor(t, 30*time.Second, "the first runs", func() bool { return runs("a") == 1 && runs("b") == 1 })
	st := d.status(t)
	nextA := *st.Tasks[byName(st)["a"]].NextRun

	// An editor's save (write a new file, rename it over the old one)
	// that adds a mapping to task b.
	taskB2 := task("b", "two", "three")
	writeFileAtomically(t, cfg, conf(true, taskA, taskB2))
	waitFor(t, 30*time.Second, "mirror/three:1 on the target", func() bool { return hasTag(t, dst, "mirror/three", "1") })
	waitFor(t, 30*time.Second, "the changed task's run to end", func() bool { return runs("b") == 2 })
	st = d.status(t)
	if a := st.Tasks[byName(st)["a"]]; a.Runs != 1 || !a.NextRun.Equal(nextA) {
		t.Errorf("unchanged task a: %d runs, next %v; want 1 run, next %v (its schedule kept)", a.Runs, a.NextRun, nextA)
	}

	// A broken edit, written in place: line 4 has a typo.
	broken := strings.Replace(conf(true, taskA, taskB2), "    interval: 1h", "    intervall: 1h", 1)
	if err := os.WriteFile(cfg, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the failed reload in /status", func() bool { return d.status(t).Config.ReloadFailures == 1 })
	st = d.status(t)
	if lr := st.Config.LastReload; lr == nil || lr.OK || !strings.Contains(lr.Error, cfg+":4:") || !strings.Contains(lr.Error, "intervall") {
		t.Errorf("last reload %+v, want the error at %s:4", lr, cfg)
	}
	if len(st.Tasks) != 2 || !st.Ready {
		t.Fatalf("after a broken edit: ready %v, tasks %+v", st.Ready, st.Tasks)
	}
	// The last good configuration goes on as it was: no task re-planned
	// or re-run.
	if a, b := st.Tasks[byName(st)["a"]], st.Tasks[byName(st)["b"]]; !a.NextRun.Equal(nextA) || a.Runs != 1 || b.Runs != 2 {
		t.Errorf("after a broken edit: a next %v runs %d, b runs %d; want next %v, 1 and 2 runs", a.NextRun, a.Runs, b.Runs, nextA)
	}
	if code, _ := d.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after a broken edit: %d, want 200 (the last good config runs)", code)
	}
	fams := d.metrics(t)
	fams.Want(t, 1, "regmirror_config_reload_failures_total")
	fams.Want(t, 0, "regmirror_config_last_reload_successful")
	if !strings.Contains(d.logs.String(), cfg+":4:") {
		t.Error("the log does not name file:line of the broken edit")
	}

	// Fixed, with watch off and task a removed: picked up by the watcher
	// (watch was on when the file changed).
	writeFileAtomically(t, cfg, conf(false, taskB2))
	waitFor(t, 30*time.Second, "task a to go", func() bool { return runs("a") == -1 })
	fams = d.metrics(t)
	fams.Want(t, 1, "regmirror_config_last_reload_successful")
	if _, ok := fams.Value("regmirror_images_total", "result", "copied", "task", "a"); ok {
		t.Error("removed task a still has metrics")
	}
	// With watching off, SIGHUP reloads: task c appears and runs.
	writeFileAtomically(t, cfg, conf(false, taskB2, task("c", "one")))
	d.signal(t, syscall.SIGHUP)
	waitFor(t, 30*time.Second, "task c's run after SIGHUP", func() bool { return runs("c") == 1 })
	if st := d.status(t); st.Tasks[byName(st)["b"]].Runs != 2 {
		t.Errorf("task b ran again on a reload that did not change it")
	}
	d.stop(t)
	if strings.Contains(d.logs.String(), dst.Password) {
		t.Error("the log shows the password")
	}
}

// throttle is a reverse proxy in front of the source registry that serves
// blob bodies larger than 1 MiB at a slow rate, so that a large copy is
// reliably in flight when the test stops the daemon (a slow link, which
// no registry produces on demand). bigBytes counts what it served of them.
type throttle struct {
	srv      *httptest.Server
	bigBytes atomic.Int64
}

func newThrottle(t *testing.T, backend string, bytesPerSec int) *throttle {
	u, _ := url.Parse("http://" + backend)
	th := &throttle{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method == http.MethodGet && strings.Contains(resp.Request.URL.Path, "/blobs/sha256:") && resp.ContentLength > 1<<20 {
			resp.Body = &slowBody{ReadCloser: resp.Body, ctx: resp.Request.Context(), rate: bytesPerSec, n: &th.bigBytes}
		}
		return nil
	}
	th.srv = httptest.NewServer(rp)
	t.Cleanup(th.srv.Close)
	return th
}

type slowBody struct {
	io.ReadCloser
	ctx  context.Context
	rate int
	n    *atomic.Int64
}

func (b *slowBody) Read(p []byte) (int, error) {
	const chunk = 32 << 10
	if len(p) > chunk {
		p = p[:chunk]
	}
	select {
	case <-time.After(time.Duration(len(p)) * time.Second / time.Duration(b.rate)):
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	}
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// TestServeSIGTERMDuringLargeCopy stops the daemon while it copies a
// 36 MB image: it exits 0 within 10 seconds, and afterwards every tag on
// the target has its manifests and blobs (the interrupted image has no
// tag at all).
func TestServeSIGTERMDuringLargeCopy(t *testing.T) {
	e2e.RequireBinary(t, e2e.RegistryBinary)
	src := e2e.StartRegistry(t, e2e.Options{})
	dst := e2e.StartRegistry(t, e2e.Options{Count: true, TLS: true, User: "mirror", Password: "p@ss word"})
	bin := e2e.BuildRegmirror(t)
	const layerSize = 12 << 20
	big := imagegen.Image(100, 3, layerSize)
	imagegen.Push(t, src.Ref("big:1"), big, remoteOpts(src)...)
	imagegen.Push(t, src.Ref("small:1"), imagegen.Image(101, 2, 1024), remoteOpts(src)...)
	imagegen.Push(t, src.Ref("small:2"), imagegen.Index(102, []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}, 1, 1024), remoteOpts(src)...)
	th := newThrottle(t, src.Host, 2<<20) // 2 MiB/s per blob: 6 s per big layer

	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`tasks:
  - name: large
    source: {registry: "%s"}
    target: {registry: %s, auth: %s, ca-file: %s}
    mappings:
      - {from: big}
      - {from: small}
`, th.srv.URL, dst.Host, authB64(dst.User, dst.Password), dst.CAFile)), 0o600)

	d := startDaemon(t, bin, cfg)
	waitFor(t, 60*time.Second, "the small images on the target and the big copy under way", func() bool {
		return th.bigBytes.Load() > 1<<20 && len(listTags(t, dst, "small")) == 2
	})
	stopped := time.Now()
	d.stop(t) // exit 0 within 10 s
	t.Logf("exited %s after SIGTERM, %d MiB of the big layers served", time.Since(stopped).Round(time.Millisecond), th.bigBytes.Load()>>20)
	if !strings.Contains(d.logs.String(), "run cancelled") {
		t.Errorf("the log does not say the run was cancelled")
	}

	if tags := listTags(t, dst, "big"); len(tags) != 0 {
		t.Errorf("the interrupted image has tags on the target: %v", tags)
	}
	walked := walkCatalog(t, dst)
	if walked < 2 {
		t.Errorf("walked %d tags on the target, want at least the 2 small ones", walked)
	}
}

// walkCatalog checks, with crash_test.go's checkTag, that every tag of
// every repository of the target resolves to a manifest whose child
// manifests, config and layers all exist. It returns the number of tags
// walked.
func walkCatalog(t *testing.T, r *e2e.Registry) int {
	t.Helper()
	reg, err := name.NewRegistry(r.Host)
	if err != nil {
		t.Fatal(err)
	}
	opts := remoteOpts(r)
	repos, err := remote.Catalog(context.Background(), reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, repo := range repos {
		for _, tag := range listTags(t, r, repo) {
			n++
			ref, err := name.NewTag(r.Ref(repo + ":" + tag))
			if err != nil {
				t.Fatal(err)
			}
			checkTag(t, ref, false, opts)
		}
	}
	return n
}
