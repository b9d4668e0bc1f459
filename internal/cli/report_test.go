package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regmirror/regmirror/internal/report"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
)

func readRunReport(t *testing.T, path string) report.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r report.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
	return r
}

// sync --report writes one object per image with its verdict and the
// source's digest, failures with their reason.
func TestSyncReportOneObjectPerImage(t *testing.T) {
	f := newDecideFixture(t, `      - {from: a/app, to: m/app, tags: ["1.0", "2.0", "9.9"]}
`)
	want := map[string]string{} // tag -> digest
	for i, tag := range []string{"1.0", "2.0"} {
		img := imagegen.Image(uint64(50+i), 1, 512)
		imagegen.Push(t, f.src.Ref("a/app:"+tag), img)
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		want[tag] = d.String()
	}
	imagegen.Push(t, f.dst.Ref("m/app:1.0"), imagegen.Image(50, 1, 512)) // current
	path := filepath.Join(t.TempDir(), "run.json")
	_, errs, code := f.run(t, "sync", "--report", path)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (9.9 is missing)\n%s", code, errs)
	}
	rep := readRunReport(t, path)
	if rep.Command != "sync" || len(rep.Results) != 3 {
		t.Fatalf("report: %+v", rep)
	}
	results := map[string]report.Image{}
	for _, im := range rep.Results {
		results[im.Tag] = im
	}
	for tag, res := range map[string]string{"1.0": "skipped", "2.0": "copied", "9.9": "failed"} {
		im := results[tag]
		if im.Result != res {
			t.Errorf("%s: result %q, want %q (%+v)", tag, im.Result, res, im)
		}
		if im.Source != f.src.Host+"/a/app:"+tag || im.Target != f.dst.Host+"/m/app:"+tag {
			t.Errorf("%s: source %q target %q", tag, im.Source, im.Target)
		}
		if im.Digest != want[tag] {
			t.Errorf("%s: digest %q, want %q", tag, im.Digest, want[tag])
		}
	}
	if results["2.0"].Bytes == 0 || results["1.0"].Bytes != 0 {
		t.Errorf("bytes: copied %d, skipped %d", results["2.0"].Bytes, results["1.0"].Bytes)
	}
	if results["9.9"].Error == "" || results["2.0"].Error != "" {
		t.Errorf("errors: %+v", results)
	}
	s := rep.Summary
	if s.Images != 3 || s.Copied != 1 || s.Skipped != 1 || s.Failed != 1 || s.Bytes != results["2.0"].Bytes {
		t.Errorf("summary %+v", s)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("report dir holds %d files, want only the report (no temp left)", len(entries))
	}
}

// A task name from the config never leaves the report directory.
func TestRunFileStaysInDir(t *testing.T) {
	dir := t.TempDir()
	for _, task := range []string{"web", "../../etc/x", "a/b", ".hidden"} {
		p := report.RunFile(dir, task, time.Now())
		if filepath.Dir(p) != dir {
			t.Errorf("%q -> %s, outside %s", task, p, dir)
		}
	}
}

// serve --report-dir writes one file per run in the same schema.
func TestServeReportDirOneFilePerRun(t *testing.T) {
	f := newDecideFixture(t, `      - {from: a/app, to: m/app, tags: ["1.0"]}
`)
	img := imagegen.Image(60, 1, 512)
	imagegen.Push(t, f.src.Ref("a/app:1.0"), img)
	d, _ := img.Digest()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out, errb bytes.Buffer
	go func() {
		done <- Execute(ctx, []string{"serve", "--config", f.cfg, "--listen", "127.0.0.1:0", "--report-dir", dir,
			"--platform-cache", "", "--insecure-registry", f.src.Host, "--insecure-registry", f.dst.Host},
			strings.NewReader(""), &out, &errb)
	}()
	var files []os.DirEntry
	for i := 0; i < 600 && len(files) == 0; i++ { // at most 30s
		select {
		case err := <-done:
			t.Fatalf("serve ended early: %v\n%s", err, errb.String())
		case <-time.After(50 * time.Millisecond):
		}
		files = reportFiles(t, dir)
	}
	cancel()
	<-done
	files = reportFiles(t, dir)
	if len(files) != 1 || !strings.HasPrefix(files[0].Name(), "t-") || filepath.Ext(files[0].Name()) != ".json" {
		t.Fatalf("report dir: %v\n%s", files, errb.String())
	}
	rep := readRunReport(t, filepath.Join(dir, files[0].Name()))
	if rep.Command != "serve" || rep.Task != "t" || len(rep.Results) != 1 {
		t.Fatalf("report: %+v", rep)
	}
	if im := rep.Results[0]; im.Result != "copied" || im.Digest != d.String() || im.Tag != "1.0" || im.Bytes == 0 {
		t.Errorf("result %+v, want copied %s", im, d)
	}
}

// reportFiles lists dir's finished reports (not atomicfile's temp files).
func reportFiles(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	all, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []os.DirEntry
	for _, e := range all {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e)
		}
	}
	return out
}
