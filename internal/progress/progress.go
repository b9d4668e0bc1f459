// Package progress draws a one-line progress display on a terminal: items
// done, bytes moved, rate and the estimated time left. When the output is
// not a terminal it draws nothing, so logs stay plain lines; callers keep
// logging one line per item either way.
//
// Log lines and the display share the terminal: write logs through
// Bar.Writer, which clears the line before a log line and redraws after.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// Bar counts items and bytes and, on a terminal, redraws a status line.
// All methods are safe for concurrent use; a nil *Bar does nothing.
type Bar struct {
	label string
	out   io.Writer
	tty   bool
	now   func() time.Time

	totalItems, doneItems atomic.Int64
	totalBytes, doneBytes atomic.Int64

	mu      sync.Mutex // serialises writes to out
	drawn   bool
	start   time.Time
	stop    chan struct{}
	stopped chan struct{}
}

// IsTerminal reports whether w is a terminal. /dev/null is a character
// device but not a terminal, hence the ioctl rather than a mode check.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// New returns a Bar drawing to out when out is a terminal. label starts the
// line ("export", "import").
func New(out io.Writer, label string) *Bar {
	return &Bar{label: label, out: out, tty: IsTerminal(out), now: time.Now, start: time.Now()}
}

// Active reports whether the Bar draws anything.
func (b *Bar) Active() bool { return b != nil && b.tty }

// SetTotal sets the expected number of items and bytes (0: unknown).
func (b *Bar) SetTotal(items int, bytes int64) {
	if b == nil {
		return
	}
	b.totalItems.Store(int64(items))
	b.totalBytes.Store(bytes)
}

// AddBytes counts n more bytes moved.
func (b *Bar) AddBytes(n int64) {
	if b != nil {
		b.doneBytes.Add(n)
	}
}

// ItemDone counts one more item finished (copied, skipped or failed).
func (b *Bar) ItemDone() {
	if b != nil {
		b.doneItems.Add(1)
	}
}

// Start redraws the line every interval until Stop. It does nothing when
// the output is not a terminal.
func (b *Bar) Start(interval time.Duration) {
	if !b.Active() {
		return
	}
	b.start = b.now()
	b.stop, b.stopped = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(b.stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.mu.Lock()
				b.drawLocked()
				b.mu.Unlock()
			case <-b.stop:
				return
			}
		}
	}()
}

// Stop draws the final state, ends the line and stops redrawing.
func (b *Bar) Stop() {
	if !b.Active() || b.stop == nil {
		return
	}
	close(b.stop)
	<-b.stopped
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drawLocked()
	fmt.Fprintln(b.out)
	b.drawn = false
}

func (b *Bar) drawLocked() {
	fmt.Fprint(b.out, "\r\033[K"+b.Line())
	b.drawn = true
}

// Writer returns a writer for log lines that keeps the status line below
// them. Without a terminal it is out itself.
func (b *Bar) Writer() io.Writer {
	if !b.Active() {
		if b == nil {
			return io.Discard
		}
		return b.out
	}
	return logWriter{b}
}

type logWriter struct{ b *Bar }

func (w logWriter) Write(p []byte) (int, error) {
	w.b.mu.Lock()
	defer w.b.mu.Unlock()
	if w.b.drawn {
		fmt.Fprint(w.b.out, "\r\033[K")
	}
	n, err := w.b.out.Write(p)
	if w.b.drawn {
		fmt.Fprint(w.b.out, w.b.Line())
	}
	return n, err
}

// Snapshot is the state a line is drawn from.
type Snapshot struct {
	Label                 string
	DoneItems, TotalItems int64
	DoneBytes, TotalBytes int64
	Elapsed               time.Duration
}

// Line renders the current state.
func (b *Bar) Line() string {
	return Render(Snapshot{Label: b.label,
		DoneItems: b.doneItems.Load(), TotalItems: b.totalItems.Load(),
		DoneBytes: b.doneBytes.Load(), TotalBytes: b.totalBytes.Load(),
		Elapsed: b.now().Sub(b.start)})
}

// Render formats a snapshot: "import: 3/10 images, 12.0 MB/120.0 MB,
// 4.0 MB/s, ETA 27s". The time left comes from bytes when their total is
// known, else from items; it is left out until there is a rate to go by.
func Render(s Snapshot) string {
	line := s.Label + ": "
	if s.TotalItems > 0 {
		line += fmt.Sprintf("%d/%d images", s.DoneItems, s.TotalItems)
	} else {
		line += fmt.Sprintf("%d images", s.DoneItems)
	}
	line += ", " + Bytes(s.DoneBytes)
	if s.TotalBytes > 0 {
		line += "/" + Bytes(s.TotalBytes)
	}
	secs := s.Elapsed.Seconds()
	if secs > 0 && s.DoneBytes > 0 {
		line += ", " + Bytes(int64(float64(s.DoneBytes)/secs)) + "/s"
	}
	if s.TotalItems > 0 && s.DoneItems >= s.TotalItems {
		return line // done: no time left to estimate
	}
	var left time.Duration
	switch {
	case s.TotalBytes > 0 && s.DoneBytes > 0 && s.DoneBytes <= s.TotalBytes:
		left = time.Duration(float64(s.Elapsed) * float64(s.TotalBytes-s.DoneBytes) / float64(s.DoneBytes))
	case s.TotalItems > 0 && s.DoneItems > 0 && s.DoneItems <= s.TotalItems:
		left = time.Duration(float64(s.Elapsed) * float64(s.TotalItems-s.DoneItems) / float64(s.DoneItems))
	default:
		return line
	}
	return line + ", ETA " + left.Round(time.Second).String()
}

// Bytes formats n in decimal units (kB, MB, GB), as registries and
// docker report sizes.
func Bytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
