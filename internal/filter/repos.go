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

// IsRepoRegex reports whether a mapping's from or to is written as dregsy's
// "regex:..." form. It is the one place that grammar is recognised.
func IsRepoRegex(s string) bool {
	_, ok := strings.CutPrefix(strings.TrimSpace(s), regexPrefix)
	return ok
}

// RepoMapError is a from or to that does not compile. Key is "from" or
// "to", Value the text as written.
type RepoMapError struct {
	Key, Value string
	Err        error
}

func (e *RepoMapError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %v", e.Key, e.Err)
	}
	return fmt.Sprintf("%s %q: %v", e.Key, e.Value, e.Err)
}

func (e *RepoMapError) Unwrap() error { return e.Err }

// ParseRepoMap compiles a mapping's from and to, written as in a dregsy
// config (a leading "/" on a path is dropped). Both are checked: the error
// is a *RepoMapError, or two joined with errors.Join.
func ParseRepoMap(from, to string) (*RepoMap, error) {
	m := &RepoMap{}
	fromErr := m.parseFrom(from)
	toErr := m.parseTo(to)
	if fromErr != nil || toErr != nil {
		return nil, errors.Join(fromErr, toErr)
	}
	return m, nil
}

func (m *RepoMap) parseFrom(from string) error {
	bad := func(err error) error { return &RepoMapError{Key: "from", Value: from, Err: err} }
	trimmed := strings.TrimSpace(from)
	if expr, ok := strings.CutPrefix(trimmed, regexPrefix); ok {
		expr = strings.TrimSpace(expr)
		switch {
		case expr == "":
			return bad(errors.New("empty regular expression"))
		case strings.HasPrefix(expr, "!"):
			// dregsy negates tag regexes only; a negated repository
			// match would select a whole catalog.
			return bad(errors.New("a repository regex cannot be negated with \"!\""))
		}
		re, err := anchor(expr)
		if err != nil {
			return bad(err)
		}
		m.fromRE = re
		return nil
	}
	m.from = strings.TrimPrefix(trimmed, "/")
	switch {
	case m.from == "":
		return &RepoMapError{Key: "from", Err: errors.New("empty repository path")}
	case strings.HasPrefix(m.from, "/") || strings.HasSuffix(m.from, "/") || strings.Contains(m.from, "//"):
		return bad(errors.New("empty path component"))
	}
	return nil
}

func (m *RepoMap) parseTo(to string) error {
	bad := func(err error) error { return &RepoMapError{Key: "to", Value: to, Err: err} }
	trimmed := strings.TrimSpace(to)
	spec, ok := strings.CutPrefix(trimmed, regexPrefix)
	if !ok {
		m.to = strings.TrimPrefix(trimmed, "/")
		return nil
	}
	expr, repl, found := strings.Cut(spec, ",")
	if !found {
		return bad(errors.New("replacement missing: want regex:EXPRESSION,REPLACEMENT"))
	}
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return bad(errors.New("empty regular expression"))
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return bad(err)
	}
	m.toRE, m.toRepl = re, repl
	return nil
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
