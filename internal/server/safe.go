package server

import (
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// urlInText finds URLs in error text: registries' upload locations carry
// state tokens in their query ("?_state=..."), and a URL may carry a
// user:password@ part.
var urlInText = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+`)

// safeText is outside text (a registry's error, a tag) made fit for the
// page: URLs lose their query, fragment and user information, control
// characters become spaces, invalid UTF-8 is replaced and the text is cut
// at max bytes. HTML escaping is left to the template.
func safeText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = urlInText.ReplaceAllStringFunc(s, func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil {
			// Not a URL we can take apart: keep the scheme and host only.
			if i := strings.IndexAny(raw, "?#@"); i >= 0 {
				return raw[:i] + "…"
			}
			return raw
		}
		u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
		return u.String()
	})
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
