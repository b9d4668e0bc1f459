package textsafe

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io/library/busybox:1.36 -> m.io/x (1.2 MB)": "docker.io/library/busybox:1.36 -> m.io/x (1.2 MB)",
		"r.io/a:1\x1b[31m":  `r.io/a:1\x1b[31m`,
		"\x1b]0;title\a":    `\x1b]0;title\x07`,
		"a\x00b":            `a\x00b`,
		"line\r\nnext\ttab": `line\x0d\x0anext\x09tab`,
		"\u009b2J":          `\u009b2J`,
		"\x9b2J":            `\x9b2J`,
		"evil\u202egnp.exe": `evil\u202egnp.exe`,
		"bad\xffutf8":       `bad\xffutf8`,
		"naïve tag é":       "naïve tag é",
		"\x7f":              `\x7f`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEscapeLinesKeepsNewlines(t *testing.T) {
	in := "config.yaml:3: bad\nconfig.yaml:9: tag \x1b[2J\r"
	want := "config.yaml:3: bad\nconfig.yaml:9: tag \\x1b[2J\\x0d"
	if got := EscapeLines(in); got != want {
		t.Errorf("EscapeLines(%q) = %q, want %q", in, got, want)
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"plain", "\x1b[31m", "\xff", "\u202e", "a\x00b\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Escape(%q) = %q is not UTF-8", s, out)
		}
		for _, r := range out {
			if unsafeRune(r) {
				t.Fatalf("Escape(%q) = %q keeps %U", s, out, r)
			}
		}
		if clean(s) != (out == s) {
			t.Fatalf("Escape(%q) = %q: changed a clean string or kept an unclean one", s, out)
		}
		if strings.IndexFunc(s, unicode.IsControl) < 0 && utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Cf, r) }) && out != s {
			t.Fatalf("printable %q changed to %q", s, out)
		}
	})
}
