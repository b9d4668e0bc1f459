package cli

import (
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/regmirror/regmirror/internal/progress"
)

// Log values are shaped here, once, for every command: the text handler
// is read by people (short digests, 1.2s, 45.3 MB), the JSON handler by
// programs (full digests, durations as seconds in KEY_s). Both drop the
// registry library's noise from errors.

var (
	fullDigest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	// go-containerregistry appends these to errors; they say nothing to
	// the reader: a hint meant for its own callers, and the registry's
	// error detail printed as a Go map.
	headHint  = regexp.MustCompile(` ?\(HEAD responses have no body, use GET for details\)`)
	goMapTail = regexp.MustCompile(`;? ?map\[[^\]\n]*\]`)
)

// cleanMessage removes the library noise from an error or message text.
func cleanMessage(s string) string {
	s = headHint.ReplaceAllString(s, "")
	return goMapTail.ReplaceAllString(s, "")
}

// textAttr is the text handler's ReplaceAttr.
func textAttr(_ []string, a slog.Attr) slog.Attr {
	v := a.Value
	switch v.Kind() {
	case slog.KindDuration:
		return slog.String(a.Key, humanDuration(v.Duration()))
	case slog.KindInt64:
		if isBytesKey(a.Key) {
			return slog.String(a.Key, progress.Bytes(v.Int64()))
		}
	case slog.KindString:
		s := v.String()
		if fullDigest.MatchString(s) {
			return slog.String(a.Key, s[:len("sha256:")+12])
		}
		if a.Key == slog.MessageKey || a.Key == "error" {
			return slog.String(a.Key, cleanMessage(s))
		}
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, cleanMessage(err.Error()))
		}
	}
	return a
}

// jsonAttr is the JSON handler's ReplaceAttr.
func jsonAttr(_ []string, a slog.Attr) slog.Attr {
	v := a.Value
	switch v.Kind() {
	case slog.KindDuration:
		return slog.Float64(a.Key+"_s", v.Duration().Seconds())
	case slog.KindString:
		if a.Key == slog.MessageKey || a.Key == "error" {
			return slog.String(a.Key, cleanMessage(v.String()))
		}
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, cleanMessage(err.Error()))
		}
	}
	return a
}

func isBytesKey(k string) bool { return k == "bytes" || strings.HasSuffix(k, "_bytes") }

// humanDuration is d as a person reads it: 340ms, 1.2s, 2m5s.
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}
