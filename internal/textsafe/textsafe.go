// Package textsafe makes text from outside safe to print on a terminal.
// Lines of an image list, tags and repository names from a registry, a
// registry's error bodies and a bundle's image names are untrusted: an ESC
// sequence among them would drive the user's terminal (colour it, set its
// title, move the cursor, rewrite what was printed), a NUL or a carriage
// return hide what follows. Every such string is passed through Escape
// before it is printed.
package textsafe

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape returns s with every control character (C0, DEL, C1), every
// invisible formatting character (bidirectional overrides, zero-width
// joiners: Unicode category Cf) and every byte that is not UTF-8 written as
// a Go escape (\x1b, \u202e). Printable text, spaces included, is kept as
// it is, so ordinary messages read unchanged.
func Escape(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && unsafeRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return r != ' ' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r))
}

// clean reports whether s needs no escape: the common case, checked
// without allocating.
func clean(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || unsafeRune(r) {
			return false
		}
		i += size
	}
	return true
}

// EscapeLines is Escape for text of several lines (an error joined from
// many): each line is escaped, the newlines between them are kept.
func EscapeLines(s string) string {
	if clean(s) {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = Escape(l)
	}
	return strings.Join(lines, "\n")
}
