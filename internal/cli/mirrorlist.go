package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/filter"
	"github.com/regmirror/regmirror/internal/imagelist"
	"github.com/regmirror/regmirror/internal/progress"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/report"
	"github.com/regmirror/regmirror/internal/textsafe"
)

func newMirrorListCmd(g *globals) *cobra.Command {
	var (
		from, to   string
		pullOnly   bool
		jobs       int
		transfers  int
		reportPath string
		maxReqs    int
	)
	cmd := &cobra.Command{
		Use:   "mirror-list --from SRC_PREFIX --to DEST_PREFIX FILE",
		Short: "Copy every image named in a list file (docker-images.txt), or pre-pull them through a proxy",
		Long: `mirror-list copies every image listed in FILE ("-" reads standard input):
an image under SRC_PREFIX goes to the same path under DEST_PREFIX. It
replaces the docker pull / tag / push loop of offline-install guides and
needs no Docker daemon.

FILE holds one reference per line: REPO:TAG, REPO@DIGEST or
REPO:TAG@DIGEST (REPO alone means :latest, as for docker pull). Blank
lines and lines starting with # are ignored, as is text after " #";
surrounding whitespace, CRLF line endings and a missing final newline are
fine. A line that is not a reference, or does not start with SRC_PREFIX,
fails on its own, named by its line number; the other lines still run.

Copies work as in 'regmirror sync': an image the target already holds is
skipped after HEAD requests only, multi-arch indexes are copied whole, and
digests are preserved. Credentials come from docker's config.json (see
'regmirror login'); --insecure-registry allows plain HTTP.

With --pull-only nothing is written anywhere: every image (mapped to
--to PROXY_PREFIX when the prefixes are given) is read through the
registry, manifests and blobs, each checked against its digest, and
thrown away. That warms a pull-through cache such as a Nexus docker
proxy; one image at a time by default, since Nexus breaks on parallel
pulls.

Each line's result (copied, skipped, pulled or failed with the reason) is
printed to standard output, followed by a summary; --report FILE writes
the same as JSON. Exit codes: 0 every line succeeded; 1 at least one line
failed (all others were still attempted); 2 usage error, nothing done.`,
		Example: `  # mirror the vendor's images into your registry
  regmirror mirror-list --from europe-west1-docker.pkg.dev/appcircle/docker-registry \
    --to reg.example.com/appcircle docker-images.txt

  # warm a Nexus pull-through proxy, one image at a time
  regmirror mirror-list --pull-only --from europe-west1-docker.pkg.dev/appcircle/docker-registry \
    --to nexus.example.com:8443/appcircle/docker-registry docker-images.txt

  # a plain-HTTP target, results as JSON for a script
  regmirror mirror-list --insecure-registry reg.local:5000 --from src.io/team --to reg.local:5000/team \
    --report result.json images.txt`,
		Args: positional("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("log-level") && os.Getenv("LOG_LEVEL") == "" {
				// The per-line results go to stdout; the log keeps
				// warnings and errors unless asked for more.
				g.logLevel = "warn"
			}
			// On a terminal, a status line (images, bytes, rate, ETA)
			// below the log; in a pipe only the log and the results.
			bar := progress.New(g.stderr, "mirror-list")
			log, err := g.loggerTo(bar.Writer(), "text")
			if err != nil {
				return err
			}
			// http://HOST/PATH, as the plain-HTTP hint suggests,
			// marks that registry as plain HTTP.
			plain := map[string]bool{}
			from, to = cutPlainHTTP(from, plain), cutPlainHTTP(to, plain)
			prefixes, err := imagelist.NewPrefixes(from, to)
			if err != nil {
				return usageErr("--from/--to: %v", err)
			}
			if !pullOnly && prefixes.From == "" {
				return usageErr("--from and --to are required (without them only --pull-only makes sense)")
			}
			if !cmd.Flags().Changed("jobs") && pullOnly {
				jobs = 1
			}
			if maxReqs < 0 {
				return usageErr("--max-requests must be 0 (no cap) or more")
			}
			// No configuration: its defaults apply (retry, transfers).
			es, err := g.assemble(cmd, nil, engineFlags{jobs: jobs, transfers: transfers, platformCache: defaultPlatformCache()}, log)
			if err != nil {
				return err
			}
			file := args[0]
			entries, err := readList(file, g.stdin, prefixes)
			if err != nil {
				return err
			}
			tasks, lines := listTasks(file, entries, pullOnly, plain, es)
			for i := range tasks {
				tasks[i].Source.MaxConcurrentRequests = maxReqs
				tasks[i].Target.MaxConcurrentRequests = maxReqs
			}

			e := es.engine(runHooks{
				onPlanned: func(n int) { bar.SetTotal(n, 0) },
				onBytes:   bar.AddBytes,
				onResult:  func(engine.Result) { bar.ItemDone() },
			})
			start := time.Now()
			bar.Start(250 * time.Millisecond)
			rep := e.Run(cmd.Context(), tasks)
			bar.Stop()
			lr := newListReport(file, prefixes, pullOnly, entries, rep, lines, start)
			lr.print(g.stdout)
			logPulls(log, es.hosts)
			if reportPath != "" {
				if err := lr.Write(reportPath); err != nil {
					return fmt.Errorf("writing --report: %w", err)
				}
			}
			if err := reportInterrupt(cmd.Context(), log, rep); err != nil {
				return err
			}
			if lr.Summary.Failed > 0 {
				return fmt.Errorf("%w: %d of %d lines failed", ErrSyncFailed, lr.Summary.Failed, lr.Summary.Images)
			}
			return cmd.Context().Err()
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "SRC_PREFIX: registry and path every listed image starts with")
	f.StringVar(&to, "to", "", "DEST_PREFIX (or PROXY_PREFIX with --pull-only): the same paths go under it; must not end with /")
	f.BoolVar(&pullOnly, "pull-only", false, "read every image through the registry (a pull-through proxy) and keep nothing")
	f.IntVarP(&jobs, "jobs", "j", 4, "images copied in parallel; with --pull-only 1 unless given")
	f.IntVar(&transfers, "transfers", 0, "blob transfers in flight across all images (default 8)")
	f.IntVar(&maxReqs, "max-requests", 0, "at most N HTTP requests in flight to each registry (0: no cap; 1 for a Nexus proxy when --jobs is raised)")
	f.StringVar(&reportPath, "report", "", "also write the results as JSON to this file (schema in docs/mirror-list.md)")
	return cmd
}

// cutPlainHTTP removes an http:// scheme from a prefix and records its
// registry host in plain.
func cutPlainHTTP(prefix string, plain map[string]bool) string {
	rest, ok := strings.CutPrefix(prefix, "http://")
	if !ok {
		return prefix
	}
	host, _, _ := strings.Cut(rest, "/")
	plain[host] = true
	return rest
}

// readList reads and parses the list; "-" is standard input. A file that
// cannot be read or lists no image is a usage error.
func readList(file string, stdin io.Reader, p imagelist.Prefixes) ([]imagelist.Entry, error) {
	var r io.Reader = stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, usageErr("image list: %v", err)
		}
		defer f.Close()
		r = f
	}
	entries, err := imagelist.Parse(r, p)
	if err != nil {
		return nil, usageErr("image list %s: %v", file, err)
	}
	if len(entries) == 0 {
		return nil, usageErr("image list %s names no image (only blank or comment lines)", file)
	}
	return entries, nil
}

// listTasks makes one engine task per usable line, named FILE:LINE so logs
// point at the line, and returns the line number of each task name.
func listTasks(file string, entries []imagelist.Entry, pullOnly bool, plain map[string]bool, es *engineSetup) ([]engine.Task, map[string]int) {
	base := filepath.Base(file)
	if file == "-" {
		base = "stdin"
	}
	lines := map[string]int{}
	var tasks []engine.Task
	for _, en := range entries {
		if en.Err != nil {
			continue
		}
		tags, err := filter.ParseTags([]string{en.Source.Reference()})
		if err != nil {
			// The parser already checked tag and digest syntax; a
			// disagreement is a bug, reported on the line.
			tags, _ = filter.ParseTags(nil)
			es.log.Error("internal: tag filter rejects a parsed reference", "tag", en.Source.Reference(), "error", err)
		}
		name := fmt.Sprintf("%s:%d", base, en.Line)
		lines[name] = en.Line
		src := es.mark(registry.Endpoint{Registry: en.Source.Registry, PlainHTTP: plain[en.Source.Registry]})
		dst := es.mark(registry.Endpoint{Registry: en.Target.Registry, PlainHTTP: plain[en.Target.Registry]})
		t := engine.Task{Name: name, Source: src, Target: dst,
			Mappings: []engine.Mapping{{From: en.Source.Repo, To: en.Target.Repo, Tags: tags}}}
		if pullOnly {
			// Pull what the line names under the proxy prefix.
			t = engine.Task{Name: name, Source: dst, PullOnly: true,
				Mappings: []engine.Mapping{{From: en.Target.Repo, Tags: tags}}}
		}
		tasks = append(tasks, t)
	}
	return tasks, lines
}

// listReport is what --report writes (report's schema, documented in
// docs/mirror-list.md): one entry per line of the list.
type listReport struct{ *report.Report }

func newListReport(file string, p imagelist.Prefixes, pullOnly bool, entries []imagelist.Entry, rep *engine.Report, lines map[string]int, started time.Time) *listReport {
	lr := &listReport{&report.Report{Command: "mirror-list", File: file, Mode: "mirror", From: p.From, To: p.To,
		Started: started.UTC(), DurationMS: time.Since(started).Milliseconds()}}
	if pullOnly {
		lr.Mode = "pull-only"
	}
	byLine := map[int]engine.Result{}
	for _, r := range rep.Results {
		byLine[lines[r.Task]] = r
	}
	for _, en := range entries {
		var im report.Image
		if en.Err != nil {
			im = report.Image{Result: string(engine.Failed), Error: errors.Unwrap(en.Err).Error()}
		} else if r, ok := byLine[en.Line]; ok {
			im = report.FromResult(r)
			im.Task = "" // the line number names it
		} else {
			// The run was cancelled before planning reached the line.
			im = report.Image{Result: string(engine.NotStarted)}
		}
		im.Line, im.Text = en.Line, en.Text
		lr.Add(im)
	}
	return lr
}

// print writes one line per result and the summary: LINE: STATUS ...
func (lr *listReport) print(w io.Writer) {
	// Lines, names and errors come from the list and the registries:
	// escaped, so none of them drives the terminal.
	esc := textsafe.Escape
	name := esc(lr.File)
	for _, r := range lr.Results {
		switch {
		case r.Result == string(engine.Failed):
			fmt.Fprintf(w, "%s:%d: failed %s: %s\n", name, r.Line, esc(r.Text), esc(r.Error))
		case r.Result == string(engine.Interrupted), r.Result == string(engine.NotStarted):
			fmt.Fprintf(w, "%s:%d: %s %s\n", name, r.Line, r.Result, esc(r.Text))
		case r.Result == string(engine.Copied):
			fmt.Fprintf(w, "%s:%d: %s %s -> %s %s (%s)\n", name, r.Line, r.Result, esc(r.Source), esc(r.Target), esc(r.Digest), progress.Bytes(r.Bytes))
		case r.Target != "":
			fmt.Fprintf(w, "%s:%d: %s %s -> %s %s\n", name, r.Line, r.Result, esc(r.Source), esc(r.Target), esc(r.Digest))
		default:
			fmt.Fprintf(w, "%s:%d: %s %s %s (%s)\n", name, r.Line, r.Result, esc(r.Source), esc(r.Digest), progress.Bytes(r.Bytes))
		}
	}
	s := lr.Summary
	var parts []string
	if lr.Mode == "pull-only" {
		parts = append(parts, fmt.Sprintf("%d pulled", s.Pulled))
	} else {
		parts = append(parts, fmt.Sprintf("%d copied", s.Copied), fmt.Sprintf("%d skipped", s.Skipped))
	}
	parts = append(parts, fmt.Sprintf("%d failed", s.Failed))
	if s.Interrupted+s.NotStarted > 0 {
		parts = append(parts, fmt.Sprintf("%d interrupted", s.Interrupted), fmt.Sprintf("%d not started", s.NotStarted))
	}
	verb := "written"
	if lr.Mode == "pull-only" {
		verb = "read"
	}
	fmt.Fprintf(w, "summary: %d images: %s; %s %s in %s\n", s.Images, strings.Join(parts, ", "), progress.Bytes(s.Bytes), verb,
		(time.Duration(lr.DurationMS) * time.Millisecond).String())
}
