package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/regmirror/regmirror/internal/testutil/e2e"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
)

// node helpers: what a person sees of a parsed page.

func parseHTML(t *testing.T, body string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the page is not HTML: %v", err)
	}
	return doc
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	return n.Type == html.ElementNode && strings.Contains(" "+attr(n, "class")+" ", " "+class+" ")
}

// findAll returns the nodes under n that match, in document order.
func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if match(c) {
			out = append(out, c)
		}
		out = append(out, findAll(c, match)...)
	}
	return out
}

func element(tag string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == tag }
}

// text is the visible text under n, whitespace collapsed; <title> of SVG
// is left out, as a person sees it only on hover.
func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data + " ")
		}
		if n.Type == html.ElementNode && (n.Data == "title" || n.Data == "script") {
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// section returns the page's <section id=id>.
func section(t *testing.T, doc *html.Node, id string) *html.Node {
	t.Helper()
	s := findAll(doc, func(n *html.Node) bool {
		return n.Type == html.ElementNode && n.Data == "section" && attr(n, "id") == id
	})
	if len(s) != 1 {
		t.Fatalf("%d sections %q on the page", len(s), id)
	}
	return s[0]
}

// tableRows maps the row header (th scope=row) of each body row of the
// tables under n to the row's cells' texts, the header first.
func tableRows(n *html.Node) map[string][]string {
	out := map[string][]string{}
	for _, tr := range findAll(n, element("tr")) {
		var cells []string
		key := ""
		for c := tr.FirstChild; c != nil; c = c.NextSibling {
			if c.Type != html.ElementNode || (c.Data != "td" && c.Data != "th") {
				continue
			}
			if c.Data == "th" && attr(c, "scope") == "row" {
				key = text(c)
			}
			cells = append(cells, text(c))
		}
		if key != "" {
			out[key] = cells
		}
	}
	return out
}

// headers are the column headers of the first table under n.
func headers(n *html.Node) []string {
	var out []string
	for _, th := range findAll(n, element("th")) {
		if attr(th, "scope") == "col" {
			out = append(out, text(th))
		}
	}
	return out
}

// cell returns the cell of row under the column header col.
func cell(t *testing.T, hdr, row []string, col string) string {
	t.Helper()
	for i, h := range hdr {
		if h == col && i < len(row) {
			return row[i]
		}
	}
	t.Fatalf("no column %q in %v (row %v)", col, hdr, row)
	return ""
}

// rateLimited is a registry that answers every request with 429 and a long
// Retry-After: no real registry does that on demand.
func rateLimited(t *testing.T) (host string, hits *atomic.Int32) {
	hits = &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Header().Set("Retry-After", "600")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), hits
}

type taskJSON struct {
	Task struct {
		Name    string
		State   string
		LastRun *struct{ Copied, Skipped, Failed int }  `json:"last_run"`
		History []struct{ Copied, Skipped, Failed int } `json:"history"`
	}
	Images []struct{ Source, Result, Reason string }
}

func (d *daemon) taskJSON(t *testing.T, name string) taskJSON {
	t.Helper()
	code, body := d.get(t, "/tasks/"+url.PathEscape(name)+".json")
	if code != http.StatusOK {
		t.Fatalf("/tasks/%s.json: %d %s", name, code, body)
	}
	var tj taskJSON
	if err := json.Unmarshal([]byte(body), &tj); err != nil {
		t.Fatalf("/tasks/%s.json: %v\n%s", name, err, body)
	}
	return tj
}

// postRun presses a task's "run now" as a browser on the page would, with
// the token from the page's form and the given Origin.
func (d *daemon) postRun(t *testing.T, doc *html.Node, task, origin string) int {
	t.Helper()
	action := "tasks/" + url.PathEscape(task) + "/run"
	forms := findAll(doc, func(n *html.Node) bool {
		return n.Type == html.ElementNode && n.Data == "form" && attr(n, "action") == action
	})
	if len(forms) != 1 {
		t.Fatalf("%d run-now forms for %s on the page", len(forms), task)
	}
	token := ""
	for _, in := range findAll(forms[0], element("input")) {
		if attr(in, "name") == "csrf" {
			token = attr(in, "value")
		}
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+d.addr+"/"+action, strings.NewReader(url.Values{"csrf": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if origin != "http://"+d.addr {
		req.Header.Set("Sec-Fetch-Site", "cross-site")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestStatusPage runs `regmirror serve` with a task that copies, one that
// fails (its repository does not exist) and one held by a registry's rate
// limit, and reads the page as a person would: each task's name and state,
// the counts, the failing image with its reason, one history bar per run.
// A run-now click adds a run; after a restart with the same --state-dir
// the history is still there. Then a real browser renders the page.
func TestStatusPage(t *testing.T) {
	src, dst := registries(t)
	bin := e2e.BuildRegmirror(t)
	imagegen.Push(t, src.Ref("app:1"), imagegen.Image(1, 1, 4096), remoteOpts(src)...)
	limitedHost, hits := rateLimited(t)
	stateDir := t.TempDir()

	cfg := filepath.Join(t.TempDir(), "serve.yaml")
	target := fmt.Sprintf("{registry: %s, auth: %s, ca-file: %s}", dst.Host, authB64(dst.User, dst.Password), dst.CAFile)
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`tasks:
  - name: copies
    source: {registry: "http://%[1]s"}
    target: %[2]s
    mappings:
      - from: app
        to: mirror/app
  - name: fails
    source: {registry: "http://%[1]s"}
    target: %[2]s
    mappings:
      - from: nothere
        to: mirror/nothere
  - name: limited
    source: {registry: "http://%[3]s"}
    target: %[2]s
    mappings:
      - from: hub/app
        tags: ["1"]
`, src.Host, target, limitedHost)), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--allow-trigger", "--state-dir", stateDir}
	d := startDaemonArgs(t, bin, cfg, args)

	waitFor(t, 60*time.Second, "copies and fails to finish a run, limited to wait", func() bool {
		return d.taskJSON(t, "copies").Task.LastRun != nil && d.taskJSON(t, "fails").Task.LastRun != nil &&
			d.taskJSON(t, "limited").Task.State == "waiting"
	})
	if hits.Load() == 0 {
		t.Fatal("the rate-limited registry was never asked")
	}

	// Run now: refused from another origin, accepted from the page; the
	// second run finds the image current.
	_, body := d.get(t, "/")
	doc := parseHTML(t, body)
	if code := d.postRun(t, doc, "copies", "http://evil.example"); code != http.StatusForbidden {
		t.Errorf("cross-origin run now: %d, want 403", code)
	}
	if code := d.postRun(t, doc, "copies", "http://"+d.addr); code != http.StatusSeeOther {
		t.Fatalf("run now: %d, want 303", code)
	}
	waitFor(t, 60*time.Second, "the second run of copies", func() bool { return len(d.taskJSON(t, "copies").Task.History) == 2 })
	waitFor(t, 10*time.Second, "copies to be idle", func() bool { return d.taskJSON(t, "copies").Task.State == "idle" })

	code, body := d.get(t, "/")
	if code != http.StatusOK {
		t.Fatalf("/: %d", code)
	}
	if len(body) >= 100<<10 {
		t.Errorf("the page is %d bytes, want < 100 KB", len(body))
	}
	for _, secret := range []string{dst.Password, authB64(dst.User, dst.Password)} {
		if strings.Contains(body, secret) {
			t.Errorf("the page shows a credential")
		}
	}
	doc = parseHTML(t, body)
	tasks := section(t, doc, "tasks")
	hdr, rows := headers(tasks), tableRows(tasks)
	for name, want := range map[string]struct{ state, copied, skipped, failed string }{
		"copies":  {"idle", "0", "1", "0"},
		"fails":   {"idle", "0", "0", "1"},
		"limited": {"waiting", "", "", ""},
	} {
		row, ok := rows[name]
		if !ok {
			t.Errorf("task %s not in the tasks table: %v", name, rows)
			continue
		}
		if st := cell(t, hdr, row, "State"); !strings.HasPrefix(st, want.state) {
			t.Errorf("%s: state %q, want %s", name, st, want.state)
		}
		if want.copied == "" {
			if !strings.Contains(strings.Join(row, " "), "no run yet") {
				t.Errorf("%s: %v, want no run yet", name, row)
			}
			continue
		}
		if got := [3]string{cell(t, hdr, row, "Copied"), cell(t, hdr, row, "Skipped"), cell(t, hdr, row, "Failed")}; got != [3]string{want.copied, want.skipped, want.failed} {
			t.Errorf("%s: copied/skipped/failed %v, want %v", name, got, want)
		}
	}
	if st := cell(t, hdr, rows["limited"], "State"); !strings.Contains(st, "waiting on the rate limit of "+limitedHost) {
		t.Errorf("limited: state %q does not say which registry it waits on", st)
	}
	if lr := cell(t, hdr, rows["fails"], "Last run"); !strings.HasPrefix(lr, "failed") {
		t.Errorf("fails: last run %q, want the word failed", lr)
	}

	cur := tableRows(section(t, doc, "current"))
	if row, ok := cur["limited"]; !ok || !strings.Contains(strings.Join(row, " "), "hub/app:1") {
		t.Errorf("current runs: %v, want limited with hub/app:1 in flight", cur)
	}

	failures := text(section(t, doc, "failures"))
	if !strings.Contains(failures, src.Host+"/nothere") || !strings.Contains(failures, "failed") {
		t.Errorf("failures section does not show the failing image:\n%s", failures)
	}
	reason := d.taskJSON(t, "fails").Images
	if len(reason) != 1 || reason[0].Reason == "" || !strings.Contains(failures, reason[0].Reason) {
		t.Errorf("failures section does not show the reason %+v:\n%s", reason, failures)
	}

	regs := tableRows(section(t, doc, "registries"))
	if row, ok := regs[limitedHost]; !ok || !strings.Contains(strings.Join(row, " "), "waiting until") {
		t.Errorf("registries: %v, want %s waiting", regs, limitedHost)
	}
	if _, ok := regs[src.Host]; !ok {
		t.Errorf("registries: %v, want %s", regs, src.Host)
	}

	bars := map[string]int{}
	hist := section(t, doc, "history")
	for _, h3 := range findAll(hist, element("h3")) {
		name := strings.TrimSpace(strings.SplitN(text(h3), ":", 2)[0])
		for n := h3.NextSibling; n != nil && !(n.Type == html.ElementNode && n.Data == "h3"); n = n.NextSibling {
			if n.Type == html.ElementNode && n.Data == "svg" && hasClass(n, "chart") {
				bars[name] = len(findAll(n, func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == "g" && hasClass(n, "run") }))
			}
		}
	}
	if fmt.Sprint(bars) != "map[copies:2 fails:1]" {
		t.Errorf("history bars per task %v, want copies 2, fails 1, limited none", bars)
	}

	cfgText := text(section(t, doc, "config"))
	if !strings.Contains(cfgText, cfg) || !strings.Contains(cfgText, "ok") {
		t.Errorf("config section: %s", cfgText)
	}

	// The task page lists every image of the last run with its result.
	code, body = d.get(t, "/tasks/fails")
	if code != http.StatusOK {
		t.Fatalf("/tasks/fails: %d", code)
	}
	page := text(parseHTML(t, body))
	if !strings.Contains(page, src.Host+"/nothere") || !strings.Contains(page, "failed") || !strings.Contains(page, reason[0].Reason) {
		t.Errorf("/tasks/fails does not show the failed image and reason:\n%s", page)
	}
	code, body = d.get(t, "/tasks/copies")
	if page := text(parseHTML(t, body)); code != http.StatusOK || !strings.Contains(page, src.Host+"/app:1") || !strings.Contains(page, "skipped") {
		t.Errorf("/tasks/copies: %d\n%s", code, page)
	}
	if code, _ := d.get(t, "/tasks/nosuch"); code != http.StatusNotFound {
		t.Errorf("/tasks/nosuch: %d, want 404", code)
	}

	t.Run("browser", func(t *testing.T) { browserCheck(t, "http://"+d.addr+"/") })

	// A restart with the same state directory keeps the history.
	d.stop(t)
	d = startDaemonArgs(t, bin, cfg, args)
	if n := len(d.taskJSON(t, "copies").Task.History); n < 2 {
		t.Errorf("after a restart copies has %d runs in its history, want at least 2", n)
	}
	d.stop(t)
}

// browserCheck renders url in headless chromium at 1280×800 and checks
// that the page logs nothing to the console, that its script ran and its
// stylesheet applied, and that the screenshot is a non-blank PNG of that
// size. The detector is first shown a page with console errors, so the
// check cannot pass because chromium printed nothing at all.
func browserCheck(t *testing.T, pageURL string) {
	chromium := e2e.RequireBinary(t, "chromium")

	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, `<!DOCTYPE html><title>bad</title><script>console.error("deliberate error"); nosuchfunction();</script>`)
	}))
	defer bad.Close()
	if _, logs := screenshot(t, chromium, bad.URL, filepath.Join(t.TempDir(), "bad.png"), false); len(consoleLines(logs)) < 2 {
		t.Fatalf("the console detector missed a page's errors; chromium said:\n%s", logs)
	}

	shot := filepath.Join(t.TempDir(), "status.png")
	dom, logs := screenshot(t, chromium, pageURL, shot, true)
	if lines := consoleLines(logs); len(lines) > 0 {
		t.Errorf("the page wrote to the browser console:\n%s", strings.Join(lines, "\n"))
	}
	// The script unhides the auto-refresh box: it ran under the page's
	// Content-Security-Policy.
	if !strings.Contains(dom, `<label><input type="checkbox" id="autorefresh">`) {
		t.Errorf("the page's script did not run; DOM:\n%.2000s", dom)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 800 {
		t.Errorf("screenshot is %dx%d, want 1280x800", b.Dx(), b.Dy())
	}
	colours, headerGrey := map[uint32]bool{}, 0
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 2 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 2 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[(r>>8)<<16|(g>>8)<<8|b>>8] = true
			if r>>8 == 0xf6 && g>>8 == 0xf8 && b>>8 == 0xfa {
				headerGrey++ // table headers: the stylesheet applied
			}
		}
	}
	if len(colours) < 16 {
		t.Errorf("screenshot has %d colours: blank", len(colours))
	}
	if headerGrey < 500 {
		t.Errorf("screenshot has %d pixels of the table-header grey: the stylesheet did not apply", headerGrey)
	}
	if out := os.Getenv("REGMIRROR_SCREENSHOT"); out != "" {
		b, _ := os.ReadFile(shot)
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Error(err)
		}
	}
}

// screenshot runs chromium headless on pageURL, writing a 1280×800 PNG to
// out, then, with withDOM, again to dump the DOM after scripts ran. It
// returns the DOM and chromium's log (console messages are logged as
// "CONSOLE").
func screenshot(t *testing.T, chromium, pageURL, out string, withDOM bool) (dom, logs string) {
	t.Helper()
	run := func(extra ...string) (string, string) {
		args := []string{"--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
			"--user-data-dir=" + t.TempDir(), "--window-size=1280,800", "--hide-scrollbars",
			"--enable-logging=stderr", "--v=0"}
		if os.Geteuid() == 0 {
			args = append(args, "--no-sandbox") // chromium refuses to run as root with its sandbox
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, chromium, append(append(args, extra...), pageURL)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		// Kill the whole group: chromium's helper processes too.
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", extra, err, stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	_, logs = run("--screenshot=" + out)
	if !withDOM {
		return "", logs
	}
	dom, logs2 := run("--dump-dom")
	return dom, logs + logs2
}

var consoleLine = regexp.MustCompile(`(?m)^.*:CONSOLE(\(\d+\)|:\d+)\].*$`)

func consoleLines(logs string) []string { return consoleLine.FindAllString(logs, -1) }
