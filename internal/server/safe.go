package server

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/regmirror/regmirror/internal/registry"
)

// safeText is outside text (a registry's error, a tag) made fit for the
// page: URLs lose their query, fragment and user information (the same
// rule as errors and logs, registry.StripURLQueries), control characters
// become spaces, invalid UTF-8 is replaced and the text is cut at max
// bytes. HTML escaping is left to the template.
func safeText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = registry.StripURLQueries(s)
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
