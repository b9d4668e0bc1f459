// Command bench is regmirror's side-by-side benchmark: it starts local Debian
// docker-registry processes, generates three workloads (app, big, many) into
// a source registry behind a request-counting proxy, and times `regmirror
// sync` and `skopeo sync --all` copying them into a freshly wiped target,
// cold and then warm. It prints a Markdown report. Run it through
// bench/run.sh; it is never part of `go test ./...` or CI.
//
// Environment: BENCH_SCALE (layer-size factor, default 1), BENCH_DIR (work
// directory, default a fresh one under $TMPDIR), BENCH_WORKLOADS
// (comma-separated, default app,big,many), BENCH_TOOLS (default
// skopeo,regmirror; "regmirror --jobs 8" adds a variant with extra flags),
// REGMIRROR (the binary), REGMIRROR_ARGS (extra sync flags for every
// regmirror run), BENCH_COUNT_TARGET=1 (a counting proxy in front of the
// targets too: diagnostics, it costs CPU).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"golang.org/x/sync/errgroup"

	"github.com/regmirror/regmirror/internal/testutil/e2e"
)

// benchTB lets the e2e test harness (docker-registry processes, the
// counting proxy) run outside a test: failures end the benchmark.
type benchTB struct {
	testing.TB
	dir      string
	n        int
	cleanups []func()
}

type fatal struct{ msg string }

func (b *benchTB) Helper()                   {}
func (b *benchTB) Name() string              { return "bench" }
func (b *benchTB) Logf(f string, a ...any)   { log.Printf(f, a...) }
func (b *benchTB) Fatalf(f string, a ...any) { panic(fatal{fmt.Sprintf(f, a...)}) }
func (b *benchTB) Fatal(a ...any)            { panic(fatal{fmt.Sprint(a...)}) }
func (b *benchTB) Skipf(f string, a ...any)  { panic(fatal{fmt.Sprintf(f, a...)}) }
func (b *benchTB) Cleanup(f func())          { b.cleanups = append(b.cleanups, f) }
func (b *benchTB) TempDir() string {
	b.n++
	d := filepath.Join(b.dir, fmt.Sprintf("tmp%03d", b.n))
	if err := os.MkdirAll(d, 0o700); err != nil {
		b.Fatalf("%v", err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func (b *benchTB) runCleanups() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
	b.cleanups = nil
}

// run is one timed process.
type run struct {
	Wall     time.Duration
	MaxRSSKB int64
	// RSSExact: MaxRSSKB is the command's own (GNU time measured it),
	// not wait4's upper bound.
	RSSExact bool
	Counts   map[string]int
	// TargetCounts is what the target received (BENCH_COUNT_TARGET=1).
	TargetCounts map[string]int
	Load         [2]float64 // 1-minute load average before and after
	Code         int
	// CPU seconds spent by the tool itself, by the source and target
	// docker-registry processes, and by the proxies (this process).
	CPU, SrcCPU, DstCPU, ProxyCPU float64
	// InFlight samples the requests the source's counting proxy was
	// forwarding, every sampleEvery.
	InFlight []int
	// WANBytes and WANConns are what the WAN proxy carried towards the
	// tool and how many connections it accepted (WAN profile only).
	WANBytes int64
	WANConns int64
}

type toolResult struct {
	Tool       string
	Cold, Warm run
	Mismatch   int // target tags whose digest differs from the source's
}

type workloadResult struct {
	Name     string
	Profile  string // "lan" or "wan"
	Images   int
	Bytes    int64
	GenTime  time.Duration
	Copy     time.Duration // cp -r of the source's blobs
	Hash     time.Duration // sha256sum of the same files
	HashConc time.Duration // sha256sum, one process per core
	// Upload is the target registry's own floor: the bench uploading the
	// same blob files straight into a fresh target, uploadJobs at once.
	Upload time.Duration
	// WANFloor is Bytes at the WAN profile's bandwidth (WAN only).
	WANFloor time.Duration
	Tools    []toolResult
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func loadavg() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f, _ := strconv.ParseFloat(strings.Fields(string(b) + " 0")[0], 64)
	return f
}

const sampleEvery = 50 * time.Millisecond

// gnuTime is GNU time's path ("" when there is none): see timed.
var gnuTime = func() string {
	p := env("BENCH_TIME", "/usr/bin/time")
	if out, err := exec.Command(p, "-f", "%M", "true").CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) == 0 {
		return ""
	}
	return p
}()

// timed runs a command and reports its wall time and peak RSS. inflight,
// if set, is sampled while it runs.
//
// Peak RSS is the command's own ru_maxrss, taken by GNU time (BENCH_TIME,
// default /usr/bin/time) running it: a child forked by this Go process
// would report this process's resident size instead, since Go starts
// children with CLONE_VM and Linux keeps the old address space's
// high-water mark across exec. time forks its child from its own small
// address space, so what it prints is the command's (for a shell script,
// its largest child's). Without GNU time the figure is wait4's, an upper
// bound, and the report says so.
func timed(logf io.Writer, inflight func() int, bin string, args ...string) (run, error) {
	rssFile := ""
	if gnuTime != "" {
		f, err := os.CreateTemp("", "bench-rss-*")
		if err != nil {
			return run{}, err
		}
		rssFile = f.Name()
		f.Close()
		defer os.Remove(rssFile)
		args = append([]string{"-f", "%M", "-o", rssFile, bin}, args...)
		bin = gnuTime
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	fmt.Fprintf(logf, "\n$ %s %s\n", bin, strings.Join(args, " "))
	r := run{Load: [2]float64{loadavg()}}
	stop := make(chan struct{})
	sampled := make(chan []int)
	go func() {
		var s []int
		tk := time.NewTicker(sampleEvery)
		defer tk.Stop()
		for {
			select {
			case <-tk.C:
				if inflight != nil {
					s = append(s, inflight())
				}
			case <-stop:
				sampled <- s
				return
			}
		}
	}()
	start := time.Now()
	err := cmd.Run()
	r.Wall = time.Since(start)
	close(stop)
	r.InFlight = <-sampled
	r.Load[1] = loadavg()
	if cmd.ProcessState != nil {
		r.Code = cmd.ProcessState.ExitCode()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.MaxRSSKB = ru.Maxrss
			r.CPU = tvSecs(ru.Utime) + tvSecs(ru.Stime)
		}
	}
	if rssFile != "" {
		b, _ := os.ReadFile(rssFile)
		// GNU time prints "Command exited with non-zero status N" first
		// when the command fails; the figure is the last line.
		lines := strings.Fields(string(b))
		if len(lines) > 0 {
			if kb, err := strconv.ParseInt(lines[len(lines)-1], 10, 64); err == nil {
				r.MaxRSSKB = kb
				r.RSSExact = true
			}
		}
	}
	fmt.Fprintf(logf, "# exit %d, %s, maxrss %d KiB\n", r.Code, r.Wall.Round(time.Millisecond), r.MaxRSSKB)
	return r, err
}

func tvSecs(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// selfCPU is this process's CPU time: the counting proxy's, mostly.
func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return tvSecs(ru.Utime) + tvSecs(ru.Stime)
}

// registryPID finds the docker-registry process serving a config file.
func registryPID(configFile string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmdline), configFile) {
			return pid
		}
	}
	return 0
}

// procCPU is a process's CPU seconds so far (utime+stime, in USER_HZ=100).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100
}

// config is what the environment asks for.
type config struct {
	scale      float64
	dir        string
	regmirror  string
	bin        string // where regsync and crane are (BENCH_BIN), else $PATH
	tools      []string
	profiles   []string
	rtt        time.Duration
	bandwidth  float64 // bytes per second of the WAN link
	countDst   bool
	uploadJobs int
}

func main() {
	log.SetFlags(log.Ltime)
	var c config
	var err error
	c.scale, err = strconv.ParseFloat(env("BENCH_SCALE", "1"), 64)
	if err != nil || c.scale <= 0 {
		log.Fatalf("BENCH_SCALE: want a positive number, got %q", os.Getenv("BENCH_SCALE"))
	}
	if c.rtt, err = time.ParseDuration(env("BENCH_RTT", "40ms")); err != nil || c.rtt < 0 {
		log.Fatalf("BENCH_RTT: want a duration such as 40ms, got %q", os.Getenv("BENCH_RTT"))
	}
	mibps, err := strconv.ParseFloat(env("BENCH_BANDWIDTH", "50"), 64)
	if err != nil || mibps <= 0 {
		log.Fatalf("BENCH_BANDWIDTH: want MiB/s, a positive number, got %q", os.Getenv("BENCH_BANDWIDTH"))
	}
	c.bandwidth = mibps * mb
	c.dir = os.Getenv("BENCH_DIR")
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "regmirror-bench-"); err != nil {
			log.Fatal(err)
		}
	}
	if c.regmirror, err = filepath.Abs(env("REGMIRROR", "regmirror")); err != nil {
		log.Fatal(err)
	}
	c.bin = os.Getenv("BENCH_BIN")
	c.countDst = os.Getenv("BENCH_COUNT_TARGET") == "1"
	c.uploadJobs = 8
	want := map[string]bool{}
	for _, w := range strings.Split(env("BENCH_WORKLOADS", "app,big,many"), ",") {
		want[w] = true
	}
	c.tools = strings.Split(env("BENCH_TOOLS", "regmirror,regsync,crane,skopeo"), ",")
	c.profiles = strings.Split(env("BENCH_PROFILES", "lan,wan"), ",")
	for _, p := range c.profiles {
		if p != "lan" && p != "wan" {
			log.Fatalf("BENCH_PROFILES: unknown profile %q (lan, wan)", p)
		}
	}

	tb := &benchTB{dir: c.dir}
	var results []workloadResult
	func() {
		defer func() {
			if p := recover(); p != nil {
				tb.runCleanups()
				if f, ok := p.(fatal); ok {
					log.Fatal(f.msg)
				}
				panic(p)
			}
		}()
		for _, w := range workloads(c.scale) {
			if !want[w.name] {
				continue
			}
			results = append(results, benchWorkload(tb, c, w)...)
			// What is done so far, in case a long run is stopped.
			save(c, results)
		}
	}()
	tb.runCleanups()

	save(c, results)
	report(os.Stdout, c, results)
	log.Printf("logs and results.json in %s", c.dir)
}

// save writes results.json and report.md into the work directory.
func save(c config, results []workloadResult) {
	out, _ := json.MarshalIndent(results, "", "  ")
	_ = os.WriteFile(filepath.Join(c.dir, "results.json"), out, 0o644)
	if f, err := os.Create(filepath.Join(c.dir, "report.md")); err == nil {
		report(f, c, results)
		_ = f.Close()
	}
}

// benchWorkload generates one workload into a source registry and runs
// every tool against it, once per profile: the source read directly (lan)
// and through the WAN proxy (wan).
func benchWorkload(tb *benchTB, c config, w workload) []workloadResult {
	base := workloadResult{Name: w.name, Images: len(w.images)}
	log.Printf("%s: starting the source registry and generating %d tags", w.name, len(w.images))
	src := e2e.StartRegistry(tb, e2e.Options{Count: true})
	defer func() { src.Stop(); _ = os.RemoveAll(src.Dir) }()
	srcPID := registryPID(src.ConfigFile)
	g := newGenerator(src.BackendHost) // uncounted
	start := time.Now()
	if err := g.push(context.Background(), w); err != nil {
		tb.Fatalf("generating %s: %v", w.name, err)
	}
	base.GenTime, base.Bytes = time.Since(start), g.bytes
	log.Printf("%s: %d MB of blobs generated in %s", w.name, base.Bytes/1e6, base.GenTime.Round(time.Second))
	base.Copy, base.Hash, base.HashConc = floor(tb, c.dir, src.Dir)
	base.Upload = uploadFloor(tb, src.Dir, c.uploadJobs)
	log.Printf("%s: floors: cp %s, sha256sum %s / %s, direct upload to a target %s", w.name, secs(base.Copy), secs(base.Hash), secs(base.HashConc), secs(base.Upload))

	var out []workloadResult
	for _, profile := range c.profiles {
		res := base
		res.Profile = profile
		srcHost := src.Host
		var wan *wanProxy
		if profile == "wan" {
			var err error
			if wan, err = startWAN(src.Host, c.rtt, c.bandwidth, nil); err != nil {
				tb.Fatalf("WAN proxy: %v", err)
			}
			srcHost = wan.Addr()
			res.WANFloor = time.Duration(float64(res.Bytes) / c.bandwidth * float64(time.Second))
		}
		logf, err := os.Create(filepath.Join(c.dir, w.name+"-"+profile+".log"))
		if err != nil {
			tb.Fatalf("%v", err)
		}
		for _, tool := range c.tools {
			res.Tools = append(res.Tools, benchTool(tb, c, w, profile, tool, src, srcPID, srcHost, wan, logf))
		}
		_ = logf.Close()
		if wan != nil {
			wan.Close()
		}
		out = append(out, res)
	}
	return out
}

// benchTool runs one tool cold then warm into a fresh target and checks
// the target.
func benchTool(tb *benchTB, c config, w workload, profile, tool string, src *e2e.Registry, srcPID int, srcHost string, wan *wanProxy, logf *os.File) toolResult {
	dst := e2e.StartRegistry(tb, e2e.Options{Count: c.countDst})
	defer func() { dst.Stop(); _ = os.RemoveAll(dst.Dir) }()
	dstPID := registryPID(dst.ConfigFile)
	tr := toolResult{Tool: tool}
	bin, args := toolCommand(tb, c, w, profile, tool, srcHost, dst.Host)
	for i, r := range []*run{&tr.Cold, &tr.Warm} {
		src.ResetCounts()
		if wan != nil {
			wan.reset()
		}
		log.Printf("%s/%s: %s %s sync", w.name, profile, tool, [...]string{"cold", "warm"}[i])
		s0, d0, p0 := procCPU(srcPID), procCPU(dstPID), selfCPU()
		out, err := timed(logf, src.InFlight, bin, args...)
		if err != nil {
			tb.Fatalf("%s %s (%s) failed (%v): see %s", tool, w.name, profile, err, logf.Name())
		}
		out.SrcCPU, out.DstCPU, out.ProxyCPU = procCPU(srcPID)-s0, procCPU(dstPID)-d0, selfCPU()-p0
		out.Counts = src.Counts()
		if c.countDst {
			out.TargetCounts = dst.Counts()
			dst.ResetCounts()
		}
		if wan != nil {
			out.WANBytes, _ = wan.down.stats()
			out.WANConns = wan.conns.Load()
		}
		*r = out
		msg := fmt.Sprintf("%s/%s: %s in %s, peak RSS %d MB, load %.2f→%.2f, source %v", w.name, profile, tool, out.Wall.Round(time.Millisecond), out.MaxRSSKB>>10, out.Load[0], out.Load[1], out.Counts)
		if c.countDst {
			msg += fmt.Sprintf(", target %v", out.TargetCounts)
		}
		log.Print(msg)
	}
	tr.Mismatch = verify(tb, src.BackendHost, dst.BackendHost, w)
	return tr
}

// toolCommand is how each tool is asked to copy the workload, with the
// settings that suit it best.
func toolCommand(tb *benchTB, c config, w workload, profile, tool, srcHost, dstHost string) (string, []string) {
	extra := strings.Fields(tool) // "regmirror --jobs 8": a variant
	cfg := filepath.Join(c.dir, w.name+"-"+profile+"-"+extra[0])
	switch extra[0] {
	case "skopeo":
		writeSkopeoYAML(tb, cfg+".yaml", srcHost, w)
		return "skopeo", []string{"sync", "--all", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false", cfg + ".yaml", dstHost}
	case "regmirror":
		writeRegmirrorYAML(tb, cfg+".yaml", srcHost, dstHost, w)
		args := append([]string{"sync", "--config", cfg + ".yaml"}, strings.Fields(os.Getenv("REGMIRROR_ARGS"))...)
		return c.regmirror, append(args, extra[1:]...)
	case "regsync":
		writeRegsyncYAML(tb, cfg+".yaml", srcHost, dstHost, w)
		return peer(tb, c, "regsync"), append([]string{"once", "-c", cfg + ".yaml"}, extra[1:]...)
	case "crane":
		// crane copies one repository per command: a script runs them one
		// after another, as a user would.
		var b strings.Builder
		b.WriteString("set -e\n")
		crane := strings.Join(append([]string{peer(tb, c, "crane"), "copy", "--insecure", "--all-tags", "-j", "8"}, extra[1:]...), " ")
		for _, r := range w.repos() {
			fmt.Fprintf(&b, "%s %s/%s %s/%s\n", crane, srcHost, r, dstHost, path.Base(r))
		}
		writeFile(tb, cfg+".sh", b.String())
		return "sh", []string{cfg + ".sh"}
	}
	tb.Fatalf("unknown tool %q (regmirror, regsync, crane, skopeo)", tool)
	return "", nil
}

// peer finds regsync or crane: in BENCH_BIN (where run.sh installs them),
// else on $PATH.
func peer(tb *benchTB, c config, name string) string {
	if c.bin != "" {
		p := filepath.Join(c.bin, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("%s not found in BENCH_BIN (%q) or $PATH: run bench/run.sh, which installs it", name, c.bin)
	}
	return p
}

// verify compares every tag's digest at the target with the source's
// (skopeo sync names the target repository after the source's last path
// element; regmirror is told to do the same).
func verify(tb *benchTB, srcHost, dstHost string, w workload) int {
	bad := 0
	for _, im := range w.images {
		var s, d *v1.Descriptor
		sr, err1 := name.ParseReference(srcHost + "/" + im.repo + ":" + im.tag)
		if err1 == nil {
			s, err1 = remote.Head(sr)
		}
		dr, err2 := name.ParseReference(dstHost + "/" + path.Base(im.repo) + ":" + im.tag)
		if err2 == nil {
			d, err2 = remote.Head(dr)
		}
		if err1 != nil || err2 != nil || s.Digest != d.Digest {
			bad++
			if bad <= 3 {
				log.Printf("target differs for %s:%s: %v %v", im.repo, im.tag, err1, err2)
			}
		}
	}
	return bad
}

// floor measures the physical floor on this machine: copying the source's
// blob files with cp, and hashing them with sha256sum (once in one
// process, once split across every core).
func floor(tb *benchTB, dir, storage string) (cp, hash, hashConc time.Duration) {
	blobs := filepath.Join(storage, "docker", "registry", "v2", "blobs")
	to := filepath.Join(dir, "floor-copy")
	_ = os.RemoveAll(to)
	defer os.RemoveAll(to)
	start := time.Now()
	if out, err := exec.Command("cp", "-r", blobs, to).CombinedOutput(); err != nil {
		tb.Fatalf("cp: %v: %s", err, out)
	}
	cp = time.Since(start)
	var files []string
	_ = filepath.Walk(blobs, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	start = time.Now()
	if out, err := exec.Command("sha256sum", files...).CombinedOutput(); err != nil {
		tb.Fatalf("sha256sum: %v: %s", err, out)
	}
	hash = time.Since(start)
	start = time.Now()
	n := runtime.NumCPU()
	var cmds []*exec.Cmd
	for i := 0; i < n; i++ {
		var part []string
		for j := i; j < len(files); j += n {
			part = append(part, files[j])
		}
		if len(part) == 0 {
			continue
		}
		c := exec.Command("sha256sum", part...)
		c.Stdout = io.Discard
		if err := c.Start(); err != nil {
			tb.Fatalf("sha256sum: %v", err)
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		_ = c.Wait()
	}
	hashConc = time.Since(start)
	return cp, hash, hashConc
}

func writeFile(tb *benchTB, path, s string) {
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		tb.Fatalf("%v", err)
	}
}

// writeSkopeoYAML lists every repository with all its tags ([]).
func writeSkopeoYAML(tb *benchTB, file, srcHost string, w workload) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n  tls-verify: false\n  images:\n", srcHost)
	for _, r := range w.repos() {
		fmt.Fprintf(&b, "    %s: []\n", r)
	}
	writeFile(tb, file, b.String())
}

// writeRegmirrorYAML is a dregsy config with one mapping per repository
// (no tags: every tag), into the same repositories skopeo sync writes:
// the last path element of the source repository.
func writeRegmirrorYAML(tb *benchTB, file, srcHost, dstHost string, w workload) {
	var b strings.Builder
	fmt.Fprintf(&b, "tasks:\n  - name: %s\n    source: {registry: http://%s}\n    target: {registry: http://%s}\n    mappings:\n", w.name, srcHost, dstHost)
	for _, r := range w.repos() {
		fmt.Fprintf(&b, "      - {from: %s, to: %s}\n", r, path.Base(r))
	}
	writeFile(tb, file, b.String())
}

// writeRegsyncYAML is a regsync config with one repository sync per
// source repository, 8 images in parallel and 8 requests in flight per
// registry (its default is 3), TLS off on both loopback registries.
func writeRegsyncYAML(tb *benchTB, file, srcHost, dstHost string, w workload) {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\ncreds:\n")
	for _, h := range []string{srcHost, dstHost} {
		fmt.Fprintf(&b, "  - registry: %s\n    tls: disabled\n    reqConcurrent: 8\n", h)
	}
	fmt.Fprintf(&b, "defaults:\n  parallel: 8\n  skipDockerConfig: true\nsync:\n")
	for _, r := range w.repos() {
		fmt.Fprintf(&b, "  - source: %s/%s\n    target: %s/%s\n    type: repository\n", srcHost, r, dstHost, path.Base(r))
	}
	writeFile(tb, file, b.String())
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// uploadFloor is the target registry's floor: a fresh docker-registry
// receives every blob file of the source's storage straight from this
// process, jobs at once, each as one monolithic upload (POST, then a PUT
// carrying the file). No tool can copy the workload into such a registry
// faster than it hashes and writes these bytes.
func uploadFloor(tb *benchTB, storage string, jobs int) time.Duration {
	var files []string
	_ = filepath.Walk(filepath.Join(storage, "docker", "registry", "v2", "blobs"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Name() == "data" {
			files = append(files, p)
		}
		return nil
	})
	dst := e2e.StartRegistry(tb, e2e.Options{})
	defer func() { dst.Stop(); _ = os.RemoveAll(dst.Dir) }()
	g := newGenerator(dst.Host)
	start := time.Now()
	eg, ctx := errgroup.WithContext(context.Background())
	eg.SetLimit(jobs)
	for _, f := range files {
		eg.Go(func() error { return g.putFile(ctx, "floor/blobs", f, "sha256:"+filepath.Base(filepath.Dir(f))) })
	}
	if err := eg.Wait(); err != nil {
		tb.Fatalf("direct upload: %v", err)
	}
	return time.Since(start)
}
