package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/regmirror/regmirror/internal/atomicfile"
)

// DefaultHistoryRuns is how many runs per task the history keeps unless
// told otherwise (serve --history).
const DefaultHistoryRuns = 50

// Bounds of one history record, so that a file of DefaultHistoryRuns runs
// stays small whatever a registry answers: a run with thousands of failed
// images keeps the first maxRecordFailures of them (and counts the rest),
// and a reason is cut at maxReasonLen bytes.
const (
	maxRecordFailures = 50
	maxReasonLen      = 400
	// maxHistoryLine bounds a line read back from a history file; longer
	// lines (not written by us) are skipped.
	maxHistoryLine = 64 << 10
)

// RunRecord is one finished run of a task as the history keeps it: one
// JSON line of a task's history file.
type RunRecord struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Result is ok, failed or cancelled.
	Result string `json:"result"`
	counts
	// Failures are the failed images, at most maxRecordFailures;
	// MoreFailures counts those left out.
	Failures     []FailureRecord `json:"failures,omitempty"`
	MoreFailures int             `json:"more_failures,omitempty"`
}

// Duration is how long the run took.
func (r RunRecord) Duration() time.Duration { return r.Finished.Sub(r.Started) }

// FailureRecord is one image that failed in a run. FirstSeen is when this
// image was first seen failing in the unbroken series of runs that ends
// with this one: before the run's start, the failure persists.
type FailureRecord struct {
	Image     string    `json:"image"`
	Reason    string    `json:"reason"`
	FirstSeen time.Time `json:"first_seen"`
}

// history keeps the last runs of every task, in memory and, with a
// directory, in one JSON-lines file per task (rewritten atomically after
// every run, at most limit lines).
type history struct {
	dir   string // "": memory only
	limit int

	mu   sync.Mutex
	runs map[string][]RunRecord // oldest first
}

func newHistory(dir string, limit int) *history {
	if limit <= 0 {
		limit = DefaultHistoryRuns
	}
	return &history{dir: dir, limit: limit, runs: map[string][]RunRecord{}}
}

// historyFile names a task's file. Task names are free text: every byte
// but ASCII letters, digits, '-' and '_' is written as %XX, so a name can
// neither leave the directory nor collide with another's file.
func historyFile(task string) string {
	var b strings.Builder
	for i := 0; i < len(task); i++ {
		c := task[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String() + ".jsonl"
}

// load reads the history of a task from its file, once, when the task
// first appears. A missing file is an empty history; lines that do not
// parse are skipped (a file cut short by a crash loses its last line only).
func (h *history) load(task string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.runs[task]; ok || h.dir == "" {
		if !ok {
			h.runs[task] = nil
		}
		return nil
	}
	h.runs[task] = nil
	path := filepath.Join(h.dir, historyFile(task))
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the history of task %q: %w", task, err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(io.LimitReader(f, int64(h.limit+1)*maxHistoryLine), 64<<10)
	var runs []RunRecord
	for {
		line, err := readLine(r)
		if len(line) > 0 {
			var rec RunRecord
			if json.Unmarshal(line, &rec) == nil && !rec.Started.IsZero() {
				runs = append(runs, rec)
			}
		}
		if err != nil {
			break
		}
	}
	if len(runs) > h.limit {
		runs = runs[len(runs)-h.limit:]
	}
	h.runs[task] = runs
	return nil
}

// readLine reads one line of at most maxHistoryLine bytes; a longer line
// is read to its end and returned empty.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	long := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !long {
			line = append(line, chunk...)
			if len(line) > maxHistoryLine {
				line, long = nil, true
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimSpace(line), err
	}
}

// forget drops a task that is no longer configured from memory; its file
// stays, so a task that comes back finds its history.
func (h *history) forget(task string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.runs, task)
}

// last returns the task's most recent run, if any.
func (h *history) last(task string) (RunRecord, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	runs := h.runs[task]
	if len(runs) == 0 {
		return RunRecord{}, false
	}
	return runs[len(runs)-1], true
}

// list returns a copy of the task's runs, oldest first.
func (h *history) list(task string) []RunRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]RunRecord(nil), h.runs[task]...)
}

// add appends a run and, with a directory, rewrites the task's file.
func (h *history) add(task string, rec RunRecord) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	runs := append(h.runs[task], rec)
	if len(runs) > h.limit {
		runs = append([]RunRecord(nil), runs[len(runs)-h.limit:]...)
	}
	h.runs[task] = runs
	if h.dir == "" {
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range runs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	if err := atomicfile.WriteFile(filepath.Join(h.dir, historyFile(task)), buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("writing the history of task %q: %w", task, err)
	}
	return nil
}
