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
	Counts   map[string]int
	// TargetCounts is what the target received (BENCH_COUNT_TARGET=1).
	TargetCounts map[string]int
	Load         [2]float64 // 1-minute load average before and after
	Code         int
	// CPU seconds spent by the tool itself, by the source and target
	// docker-registry processes, and by the counting proxy (this process).
	CPU, SrcCPU, DstCPU, ProxyCPU float64
}

type toolResult struct {
	Tool       string
	Cold, Warm run
	Mismatch   int // target tags whose digest differs from the source's
}

type workloadResult struct {
	Name     string
	Images   int
	Bytes    int64
	GenTime  time.Duration
	Copy     time.Duration // cp -r of the source's blobs
	Hash     time.Duration // sha256sum of the same files
	HashConc time.Duration // sha256sum, one process per core
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

// timed runs a command and reports its wall time and peak RSS (the
// ru_maxrss that wait4 returns: what /usr/bin/time -v prints).
func timed(logf io.Writer, bin string, args ...string) (run, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	fmt.Fprintf(logf, "\n$ %s %s\n", bin, strings.Join(args, " "))
	r := run{Load: [2]float64{loadavg()}}
	start := time.Now()
	err := cmd.Run()
	r.Wall = time.Since(start)
	r.Load[1] = loadavg()
	if cmd.ProcessState != nil {
		r.Code = cmd.ProcessState.ExitCode()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.MaxRSSKB = ru.Maxrss
			r.CPU = tvSecs(ru.Utime) + tvSecs(ru.Stime)
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

func main() {
	log.SetFlags(log.Ltime)
	scale, err := strconv.ParseFloat(env("BENCH_SCALE", "1"), 64)
	if err != nil || scale <= 0 {
		log.Fatalf("BENCH_SCALE: want a positive number, got %q", os.Getenv("BENCH_SCALE"))
	}
	dir := os.Getenv("BENCH_DIR")
	if dir == "" {
		if dir, err = os.MkdirTemp("", "regmirror-bench-"); err != nil {
			log.Fatal(err)
		}
	}
	regmirror, err := filepath.Abs(env("REGMIRROR", "regmirror"))
	if err != nil {
		log.Fatal(err)
	}
	want := map[string]bool{}
	for _, w := range strings.Split(env("BENCH_WORKLOADS", "app,big,many"), ",") {
		want[w] = true
	}
	tools := strings.Split(env("BENCH_TOOLS", "skopeo,regmirror"), ",")

	tb := &benchTB{dir: dir}
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
		for _, w := range workloads(scale) {
			if !want[w.name] {
				continue
			}
			results = append(results, benchWorkload(tb, dir, w, tools, regmirror))
		}
	}()
	tb.runCleanups()

	out, _ := json.MarshalIndent(results, "", "  ")
	_ = os.WriteFile(filepath.Join(dir, "results.json"), out, 0o644)
	report(os.Stdout, scale, results)
	log.Printf("logs and results.json in %s", dir)
}

func benchWorkload(tb *benchTB, dir string, w workload, tools []string, regmirror string) workloadResult {
	res := workloadResult{Name: w.name, Images: len(w.images)}
	log.Printf("%s: starting the source registry and generating %d tags", w.name, len(w.images))
	src := e2e.StartRegistry(tb, e2e.Options{Count: true})
	defer func() { src.Stop(); _ = os.RemoveAll(src.Dir) }()
	srcPID := registryPID(src.ConfigFile)
	g := newGenerator(src.BackendHost) // uncounted
	start := time.Now()
	if err := g.push(context.Background(), w); err != nil {
		tb.Fatalf("generating %s: %v", w.name, err)
	}
	res.GenTime, res.Bytes = time.Since(start), g.bytes
	log.Printf("%s: %d MB of blobs generated in %s", w.name, res.Bytes/1e6, res.GenTime.Round(time.Second))
	res.Copy, res.Hash, res.HashConc = floor(tb, dir, src.Dir)

	logf, err := os.Create(filepath.Join(dir, w.name+".log"))
	if err != nil {
		tb.Fatalf("%v", err)
	}
	defer logf.Close()
	for _, tool := range tools {
		countDst := os.Getenv("BENCH_COUNT_TARGET") == "1"
		dst := e2e.StartRegistry(tb, e2e.Options{Count: countDst})
		dstPID := registryPID(dst.ConfigFile)
		tr := toolResult{Tool: tool}
		var args []string
		var bin string
		extra := strings.Fields(tool) // "regmirror --jobs 8": a variant
		switch extra[0] {
		case "skopeo":
			bin = "skopeo"
			cfg := filepath.Join(dir, w.name+"-skopeo.yaml")
			writeSkopeoYAML(tb, cfg, src.Host, w)
			args = []string{"sync", "--all", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false", cfg, dst.Host}
		case "regmirror":
			bin = regmirror
			cfg := filepath.Join(dir, w.name+"-regmirror.yaml")
			writeRegmirrorYAML(tb, cfg, src.Host, dst.Host, w)
			args = append([]string{"sync", "--config", cfg}, strings.Fields(os.Getenv("REGMIRROR_ARGS"))...)
			args = append(args, extra[1:]...)
		default:
			tb.Fatalf("unknown tool %q", tool)
		}
		for i, r := range []*run{&tr.Cold, &tr.Warm} {
			src.ResetCounts()
			log.Printf("%s: %s %s sync", w.name, tool, [...]string{"cold", "warm"}[i])
			s0, d0, p0 := procCPU(srcPID), procCPU(dstPID), selfCPU()
			out, err := timed(logf, bin, args...)
			if err != nil {
				tb.Fatalf("%s %s failed (%v): see %s", tool, w.name, err, logf.Name())
			}
			out.SrcCPU, out.DstCPU, out.ProxyCPU = procCPU(srcPID)-s0, procCPU(dstPID)-d0, selfCPU()-p0
			out.Counts = src.Counts()
			if countDst {
				out.TargetCounts = dst.Counts()
				dst.ResetCounts()
			}
			*r = out
			msg := fmt.Sprintf("%s: %s in %s, peak RSS %d MB, source %v", w.name, tool, out.Wall.Round(time.Millisecond), out.MaxRSSKB>>10, out.Counts)
			if countDst {
				msg += fmt.Sprintf(", target %v", out.TargetCounts)
			}
			log.Print(msg)
		}
		tr.Mismatch = verify(tb, src.BackendHost, dst.BackendHost, w)
		dst.Stop()
		_ = os.RemoveAll(dst.Dir)
		res.Tools = append(res.Tools, tr)
	}
	return res
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

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func report(out io.Writer, scale float64, results []workloadResult) {
	fmt.Fprintf(out, "\n## Results (BENCH_SCALE=%g, %s, %d CPUs)\n\n", scale, time.Now().UTC().Format(time.RFC3339), runtime.NumCPU())
	fmt.Fprintln(out, "| workload | tool | cold | warm | GET manifest cold/warm | GET blob cold/warm | HEAD cold/warm | tag list cold/warm | peak RSS cold/warm | load avg | target ok |")
	fmt.Fprintln(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, w := range results {
		for _, t := range w.Tools {
			c, m := t.Cold.Counts, t.Warm.Counts
			heads := func(x map[string]int) int { return x["manifest HEAD"] + x["blob HEAD"] }
			ok := "yes"
			if t.Mismatch > 0 {
				ok = fmt.Sprintf("%d tags differ", t.Mismatch)
			}
			fmt.Fprintf(out, "| %s | %s | %s | %s | %d / %d | %d / %d | %d / %d | %d / %d | %.1f / %.1f MB | %.2f→%.2f | %s |\n",
				w.Name, t.Tool, secs(t.Cold.Wall), secs(t.Warm.Wall),
				c["manifest GET"], m["manifest GET"], c["blob GET"], m["blob GET"], heads(c), heads(m), c["tags list"], m["tags list"],
				float64(t.Cold.MaxRSSKB)/1024, float64(t.Warm.MaxRSSKB)/1024, t.Cold.Load[0], t.Warm.Load[1], ok)
		}
	}
	fmt.Fprint(out, "\n### Where the time goes: CPU seconds during each run\n\n")
	fmt.Fprintln(out, "| workload | tool | run | wall | tool CPU | source registry CPU | target registry CPU | counting proxy CPU |")
	fmt.Fprintln(out, "|---|---|---|---:|---:|---:|---:|---:|")
	for _, w := range results {
		for _, t := range w.Tools {
			for i, r := range []run{t.Cold, t.Warm} {
				fmt.Fprintf(out, "| %s | %s | %s | %s | %.2f | %.2f | %.2f | %.2f |\n", w.Name, t.Tool, [...]string{"cold", "warm"}[i], secs(r.Wall), r.CPU, r.SrcCPU, r.DstCPU, r.ProxyCPU)
			}
		}
	}
	fmt.Fprintln(out, "\n| workload | images | blob MB | cold ratio regmirror/skopeo (best runs) | warm ratio (best runs) | floor: cp | floor: sha256sum (1 core / all cores) |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|")
	for _, w := range results {
		// With a tool listed more than once (BENCH_TOOLS=skopeo,regmirror,
		// skopeo,regmirror), each side's best run is compared: other work
		// on the machine only ever makes a run slower.
		best := func(tool string, pick func(toolResult) time.Duration) time.Duration {
			var b time.Duration
			for _, t := range w.Tools {
				if d := pick(t); t.Tool == tool && (b == 0 || d < b) {
					b = d
				}
			}
			return b
		}
		coldOf := func(t toolResult) time.Duration { return t.Cold.Wall }
		warmOf := func(t toolResult) time.Duration { return t.Warm.Wall }
		cold, warm := "–", "–"
		if sk, rm := best("skopeo", coldOf), best("regmirror", coldOf); sk > 0 && rm > 0 {
			cold = fmt.Sprintf("%.3f (%s / %s)", rm.Seconds()/sk.Seconds(), secs(rm), secs(sk))
		}
		if sk, rm := best("skopeo", warmOf), best("regmirror", warmOf); sk > 0 && rm > 0 {
			warm = fmt.Sprintf("%.3f (%s / %s)", rm.Seconds()/sk.Seconds(), secs(rm), secs(sk))
		}
		fmt.Fprintf(out, "| %s | %d | %d | %s | %s | %s | %s / %s |\n", w.Name, w.Images, w.Bytes/1e6, cold, warm, secs(w.Copy), secs(w.Hash), secs(w.HashConc))
	}
}
