package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestRender(t *testing.T) {
	for _, c := range []struct {
		s    Snapshot
		want string
	}{
		{Snapshot{Label: "import", TotalItems: 10, TotalBytes: 120e6}, "import: 0/10 images, 0 B/120.0 MB"},
		{Snapshot{Label: "import", DoneItems: 3, TotalItems: 10, DoneBytes: 30e6, TotalBytes: 120e6, Elapsed: 10 * time.Second},
			"import: 3/10 images, 30.0 MB/120.0 MB, 3.0 MB/s, ETA 30s"},
		// Unknown byte total: the time left comes from items.
		{Snapshot{Label: "export", DoneItems: 1, TotalItems: 4, DoneBytes: 1500, Elapsed: 2 * time.Second},
			"export: 1/4 images, 1.5 kB, 750 B/s, ETA 6s"},
		{Snapshot{Label: "export", DoneItems: 2}, "export: 2 images, 0 B"},
		// Every image done: nothing left to estimate, whatever the bytes.
		{Snapshot{Label: "import", DoneItems: 4, TotalItems: 4, DoneBytes: 610, TotalBytes: 4900, Elapsed: time.Second},
			"import: 4/4 images, 610 B/4.9 kB, 610 B/s"},
	} {
		if got := Render(c.s); got != c.want {
			t.Errorf("Render(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 2_500_000: "2.5 MB", 12e9: "12.0 GB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// Without a terminal nothing is drawn and log lines pass through as they
// are.
func TestNotATerminalDrawsNothing(t *testing.T) {
	var out bytes.Buffer
	b := New(&out, "import")
	if b.Active() {
		t.Fatal("a buffer is not a terminal")
	}
	b.SetTotal(2, 10)
	b.Start(time.Millisecond)
	b.AddBytes(5)
	b.ItemDone()
	b.Writer().Write([]byte("level=INFO msg=copied\n"))
	b.Stop()
	if got := out.String(); got != "level=INFO msg=copied\n" {
		t.Fatalf("output %q", got)
	}
}

// On a terminal a log line clears the status line and redraws it after.
func TestLogWriterRedraws(t *testing.T) {
	var out bytes.Buffer
	t0 := time.Unix(1000, 0)
	b := &Bar{label: "import", out: &out, tty: true, now: func() time.Time { return t0.Add(4 * time.Second) }, start: t0}
	b.SetTotal(2, 0)
	b.ItemDone()
	b.mu.Lock()
	b.drawLocked()
	b.mu.Unlock()
	b.Writer().Write([]byte("copied\n"))
	got := out.String()
	line := "import: 1/2 images, 0 B, ETA 4s"
	want := "\r\033[K" + line + "\r\033[Kcopied\n" + line
	if !strings.HasPrefix(got, want) {
		t.Fatalf("output %q, want prefix %q", got, want)
	}
}

func TestNilBar(t *testing.T) {
	var b *Bar
	b.SetTotal(1, 1)
	b.AddBytes(1)
	b.ItemDone()
	b.Start(time.Millisecond)
	b.Stop()
	if b.Active() {
		t.Fatal("nil bar active")
	}
}
