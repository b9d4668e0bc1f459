package server

import (
	"fmt"
	"time"
)

// Chart is a task's history as bars drawn by an inline SVG: per run, its
// copied and failed images stacked in the upper panel and its bytes in the
// lower one. All numbers are SVG user units, computed here so the template
// has no arithmetic.
type Chart struct {
	Width, Height int
	CountBase     int // y of the upper panel's baseline
	BytesTop      int
	BytesBase     int // y of the lower panel's baseline
	MaxCount      int
	MaxBytes      int64
	Bars          []Bar
}

// Bar is one run, drawn as vertical strokes at X: copied images up from
// the upper baseline, failed images on top of them, bytes up from the
// lower baseline.
type Bar struct {
	X                int
	CopiedH, FailedH int
	FailedY          int // where the failed stroke starts
	BytesH           int
	Failed, Nothing  bool
	Title            string
}

const (
	barStep    = 8 // a bar and its gap; the stroke is 6 wide (style.css)
	countPanel = 60
	panelGap   = 12
	bytesPanel = 36
)

// newChart draws runs into slots for slots runs (the history's bound), so
// a bar is as wide with one run as with fifty.
func newChart(runs []RunRecord, slots int) Chart {
	c := Chart{Width: max(len(runs), slots, 1) * barStep, CountBase: countPanel, BytesTop: countPanel + panelGap}
	c.BytesBase = c.BytesTop + bytesPanel
	c.Height = c.BytesBase + 1
	for _, r := range runs {
		c.MaxCount = max(c.MaxCount, r.Copied+r.Failed)
		c.MaxBytes = max(c.MaxBytes, r.Bytes)
	}
	for i, r := range runs {
		b := Bar{X: i*barStep + barStep/2, Failed: r.Failed > 0,
			Title: fmt.Sprintf("%s %s: %d copied, %d failed, %s", r.Started.UTC().Format("2006-01-02 15:04"), r.Result, r.Copied, r.Failed, humanBytes(r.Bytes))}
		b.CopiedH = scale(int64(r.Copied), int64(c.MaxCount), countPanel)
		b.FailedH = scale(int64(r.Failed), int64(c.MaxCount), countPanel)
		if b.CopiedH+b.FailedH == 0 {
			b.CopiedH, b.Nothing = 1, true // a run with nothing to copy still shows as a bar
		}
		b.FailedY = c.CountBase - b.CopiedH
		b.BytesH = max(scale(r.Bytes, c.MaxBytes, bytesPanel), 1)
		c.Bars = append(c.Bars, b)
	}
	return c
}

// scale maps v of max onto 0..size; anything above 0 gets at least 1.
func scale(v, max int64, size int) int {
	if v <= 0 || max <= 0 {
		return 0
	}
	h := int(float64(v) / float64(max) * float64(size))
	if h < 1 {
		h = 1
	}
	return h
}

// humanBytes is n in B, KB, MB, GB (powers of 1024, as the logs count).
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// humanDuration rounds d for people: 850ms, 12s, 3m05s, 2h10m.
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
