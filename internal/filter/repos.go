package filter

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// RepoMap is a compiled mapping's from/to pair: which source repositories a
// mapping names and where each one goes on the target. The rules are
// dregsy's (its "image matching"):
//
//   - from "PATH" names one repository; from "regex:RE" names every listed
//     repository (a catalog, see the registry package) that RE matches in
//     full. RE is anchored like a tag regex: "^" and "$" are added unless
//     present.
//   - to "" keeps each source path.
//   - to "PATH" is the target path for a plain from, and a prefix for a
//     regex from: "mirror" puts team/app at mirror/team/app.
//   - to "regex:RE,REPLACEMENT" rewrites each source path with
//     regexp.ReplaceAllString. As in dregsy the path it rewrites starts with
//     "/" (dregsy keeps paths that way), so "regex:^/team/,mirror/" and
//     "regex:team/,mirror/" both turn team/app into mirror/app; a leading
//     "/" of the result is dropped. RE is not anchored; it may be used with
//     a plain from too.
type RepoMap struct {
	from   string
	fromRE *regexp.Regexp
	to     string
	toRE   *regexp.Regexp
	toRepl string
}

// ParseRepoMap compiles a mapping's from and to, written as in a dregsy
// config (a leading "/" on a path is dropped).
func ParseRepoMap(from, to string) (*RepoMap, error) {
	m := &RepoMap{}
	from = strings.TrimSpace(from)
	if expr, ok := strings.CutPrefix(from, regexPrefix); ok {
		expr = strings.TrimSpace(expr)
		switch {
		case expr == "":
			return nil, fmt.Errorf("from %q: empty regular expression", from)
		case strings.HasPrefix(expr, "!"):
			// A negated repository match would select a whole catalog.
			return nil, fmt.Errorf("from %q: a repository regex cannot be negated with \"!\"", from)
		}
		re, err := anchor(expr)
		if err != nil {
			return nil, fmt.Errorf("from %q: %w", from, err)
		}
		m.fromRE = re
	} else {
		m.from = strings.TrimPrefix(from, "/")
		if m.from == "" {
			return nil, errors.New("from: empty repository path")
		}
		if strings.HasPrefix(m.from, "/") || strings.HasSuffix(m.from, "/") || strings.Contains(m.from, "//") {
			return nil, fmt.Errorf("from %q: empty path component", from)
		}
	}

	to = strings.TrimSpace(to)
	if spec, ok := strings.CutPrefix(to, regexPrefix); ok {
		expr, repl, found := strings.Cut(spec, ",")
		if !found {
			return nil, fmt.Errorf("to %q: replacement missing: want regex:EXPRESSION,REPLACEMENT", to)
		}
		expr = strings.TrimSpace(expr)
		if expr == "" {
			return nil, fmt.Errorf("to %q: empty regular expression", to)
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("to %q: %w", to, err)
		}
		m.toRE, m.toRepl = re, repl
	} else {
		m.to = strings.TrimPrefix(to, "/")
	}
	return m, nil
}

func anchor(expr string) (*regexp.Regexp, error) {
	if !strings.HasPrefix(expr, "^") {
		expr = "^" + expr
	}
	if !strings.HasSuffix(expr, "$") {
		expr += "$"
	}
	return regexp.Compile(expr)
}

// Discovers reports whether from is a regex: the source's repositories must
// be listed to know what the mapping names.
func (m *RepoMap) Discovers() bool { return m.fromRE != nil }

// Sources returns the source repositories the mapping names out of the
// listed ones, in the order listed, without duplicates. A plain from names
// its own path whatever is listed.
func (m *RepoMap) Sources(listed []string) []string {
	if m.fromRE == nil {
		return []string{m.from}
	}
	var out []string
	seen := map[string]bool{}
	for _, r := range listed {
		r = strings.TrimPrefix(r, "/")
		if seen[r] || !m.fromRE.MatchString(r) {
			continue
		}
		seen[r] = true
		out = append(out, r)
	}
	return out
}

// Target returns the target path for source path src. It fails when a
// rewrite leaves no path, or one with empty components.
func (m *RepoMap) Target(src string) (string, error) {
	src = strings.TrimPrefix(src, "/")
	var t string
	switch {
	case m.toRE != nil:
		t = strings.TrimPrefix(m.toRE.ReplaceAllString("/"+src, m.toRepl), "/")
	case m.to == "":
		t = src
	case m.fromRE != nil:
		t = m.to + "/" + src
	default:
		t = m.to
	}
	if t == "" || strings.HasPrefix(t, "/") || strings.HasSuffix(t, "/") || strings.Contains(t, "//") {
		return "", fmt.Errorf("target path %q for %s is not a repository path", t, src)
	}
	return t, nil
}
