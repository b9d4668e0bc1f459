// Package report is the JSON a run leaves behind for CI to archive:
// `sync --report`, `serve --report-dir` and `mirror-list --report` all
// write this one schema (docs/reports.md), through Write.
package report

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"time"

	"github.com/regmirror/regmirror/internal/atomicfile"
	"github.com/regmirror/regmirror/internal/engine"
)

// Report is one run of one command.
type Report struct {
	Command string `json:"command"` // sync, serve or mirror-list
	// Task is the task a serve run ran; File, Mode, From and To describe
	// a mirror-list run.
	Task       string    `json:"task,omitempty"`
	File       string    `json:"file,omitempty"`
	Mode       string    `json:"mode,omitempty"` // mirror-list: "mirror" or "pull-only"
	From       string    `json:"from,omitempty"`
	To         string    `json:"to,omitempty"`
	Started    time.Time `json:"started"`
	DurationMS int64     `json:"duration_ms"`
	Results    []Image   `json:"results"`
	Summary    Summary   `json:"summary"`
}

// Image is the outcome of one image (or, for mirror-list, one line).
type Image struct {
	// Line and Text are the list line a mirror-list result comes from.
	Line      int     `json:"line,omitempty"`
	Text      string  `json:"text,omitempty"`
	Task      string  `json:"task,omitempty"`
	Source    string  `json:"source,omitempty"`
	Target    string  `json:"target,omitempty"`
	Tag       string  `json:"tag,omitempty"`
	Digest    string  `json:"digest,omitempty"`
	Result    string  `json:"result"` // an engine.Status
	Bytes     int64   `json:"bytes"`
	DurationS float64 `json:"duration_s"`
	Error     string  `json:"error,omitempty"`
}

// Summary adds the results up.
type Summary struct {
	Images  int `json:"images"`
	Copied  int `json:"copied"`
	Skipped int `json:"skipped"`
	Pulled  int `json:"pulled"`
	Pruned  int `json:"pruned,omitempty"`
	Failed  int `json:"failed"`
	// A run ended by a signal: images cut short, and never started.
	Interrupted int   `json:"interrupted,omitempty"`
	NotStarted  int   `json:"not_started,omitempty"`
	Bytes       int64 `json:"bytes"`
}

// FromResult is the report entry of one engine result.
func FromResult(r engine.Result) Image {
	im := Image{Task: r.Task, Source: r.Source, Target: r.Target, Tag: r.Tag, Digest: r.Digest,
		Result: string(r.Status), Bytes: r.Bytes, DurationS: r.Duration.Seconds()}
	if r.Err != nil {
		im.Error = r.Err.Error()
	}
	return im
}

// New is the report of an engine run: one entry per result.
func New(command string, started time.Time, rep *engine.Report) *Report {
	r := &Report{Command: command, Started: started.UTC(), DurationMS: time.Since(started).Milliseconds()}
	for _, res := range rep.Results {
		r.Add(FromResult(res))
	}
	return r
}

// Add appends one entry and counts it.
func (r *Report) Add(im Image) {
	r.Results = append(r.Results, im)
	s := &r.Summary
	s.Images++
	s.Bytes += im.Bytes
	switch engine.Status(im.Result) {
	case engine.Copied:
		s.Copied++
	case engine.Skipped:
		s.Skipped++
	case engine.Pulled:
		s.Pulled++
	case engine.Pruned:
		s.Pruned++
	case engine.Interrupted:
		s.Interrupted++
	case engine.NotStarted:
		s.NotStarted++
	default:
		s.Failed++
	}
}

// Write saves the report as indented JSON, replacing path only once the
// file is complete.
func (r *Report) Write(path string) error {
	if r.Results == nil {
		r.Results = []Image{}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if path == "" {
		return errors.New("report: no path")
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}

// RunFile is where serve --report-dir keeps one run of a task:
// DIR/TASK-20060102T150405.000Z.json, the task name reduced to
// [A-Za-z0-9._-] so a name from the config never leaves dir.
func RunFile(dir, task string, started time.Time) string {
	b := []byte(task)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' && i > 0
		if !ok {
			b[i] = '_'
		}
	}
	return filepath.Join(dir, string(b)+"-"+started.UTC().Format("20060102T150405.000Z")+".json")
}
