// Package filter owns tag selection: it compiles a dregsy `tags:` list and
// picks, from the tags a source repository offers, the ones to mirror.
// It is pure (functions over []string): no I/O, no network, no logging.
//
// The rules are dregsy's. Each spec is trimmed of surrounding whitespace and
// classified by its prefix; the text after a prefix is trimmed again.
//
//   - "regex: RE" selects every available tag that RE matches in full. RE is
//     anchored the way dregsy does it: "^" is prepended unless RE starts with
//     "^", "$" is appended unless RE ends with "$". A leading "!" negates the
//     match and is removed before anchoring. Because the anchors are added
//     textually, an alternation such as "a|b" becomes "^a|b$"; wrap it in a
//     group ("(?:a|b)") to anchor every branch.
//   - "semver: RANGE" selects every available tag that
//     semver.ParseTolerant (github.com/blang/semver/v4) reads as a version
//     inside RANGE (semver.ParseRange syntax). ParseTolerant reads "v1.2" and
//     "1.2" as 1.2.0. Pre-releases are not excluded: ">=1.0.0 <1.99.0"
//     accepts 1.10.1-rc.1.
//   - "keep: RE" prunes the selection: a selected tag survives only if it
//     matches every keep regex (anchored and negated like regex:). Verbatim
//     entries are never pruned.
//   - "keep: latest N", N a positive integer, at most once per list, is
//     applied after the keep regexes. Of the selected tags that
//     semver.ParseTolerant can read, only the N highest survive (equal
//     versions such as "1.2" and "1.2.0" are ordered by string, the higher
//     string ranking higher); tags it cannot read are left alone. When it
//     can read none of them, the last N in sort.Strings order survive.
//     Verbatim entries take a slot when they rank among the N but are never
//     removed. A keep spec whose first word starts with "latest" (in any
//     case) is always this form, so "keep: latest" without a count,
//     "keep: latest2" and "keep: Latest 2" are errors; to keep a tag named
//     latest by regex write "keep: ^latest$". A keep spec of a word and a
//     number ("keep: lastest 2") is an error too: it is a misspelt latest
//     N, and as a regex it could match no tag.
//   - Anything else is a verbatim entry: a tag
//     ([A-Za-z0-9_][A-Za-z0-9._-]{0,127}), a digest (sha256: and 64
//     lowercase hex digits) or tag@digest. Verbatim entries are selected
//     even when they are not among the available tags, because dregsy
//     copies them without listing (and the copy fails if they are missing).
//
// Empty specs, a prefix with nothing after it, and a negated regex with no
// expression ("regex: !") are errors.
//
// regex: and semver: filters are OR-ed. The selection is the available tags
// matching any of them, plus the verbatim entries; when the list has neither
// filters nor verbatim entries (an empty list, or keep: entries only) every
// available tag is selected. Keep rules then prune that selection.
package filter

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/blang/semver/v4"
)

// Spec prefixes, compared after trimming.
const (
	regexPrefix  = "regex:"
	semverPrefix = "semver:"
	keepPrefix   = "keep:"
)

var (
	tagRE          = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
	digestRE       = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	taggedDigestRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}@sha256:[0-9a-f]{64}$`)
	// unknownPrefixRE spots a misspelt prefix ("Regex:", "semvar:") so the
	// error can say so instead of complaining about tag syntax.
	unknownPrefixRE = regexp.MustCompile(`^[A-Za-z]+:`)
)

// Tags is a compiled dregsy `tags:` list. The zero value selects every tag.
type Tags struct {
	specs    []string
	verbatim []string
	regexes  []matcher
	ranges   []semver.Range
	keeps    []matcher
	latest   int // 0: no "keep: latest N"
}

// matcher is an anchored, possibly negated regex.
type matcher struct {
	re     *regexp.Regexp
	negate bool
}

func (m matcher) match(tag string) bool { return m.re.MatchString(tag) != m.negate }

// SpecError reports the spec of a `tags:` list that could not be compiled.
type SpecError struct {
	Index int    // position in the list
	Spec  string // the spec as given
	Err   error
}

func (e *SpecError) Error() string { return fmt.Sprintf("tags[%d] %q: %v", e.Index, e.Spec, e.Err) }

func (e *SpecError) Unwrap() error { return e.Err }

// ParseTags compiles specs. A nil or empty list selects every tag. Errors
// are *SpecError and name the first bad spec.
func ParseTags(specs []string) (*Tags, error) {
	t := &Tags{specs: slices.Clone(specs)}
	for i, spec := range specs {
		if err := t.add(strings.TrimSpace(spec)); err != nil {
			return nil, &SpecError{Index: i, Spec: spec, Err: err}
		}
	}
	return t, nil
}

// add compiles one trimmed spec into t.
func (t *Tags) add(s string) error {
	if s == "" {
		return errors.New("empty spec")
	}
	if expr, ok := cutPrefix(s, regexPrefix); ok {
		m, err := compileMatcher(expr)
		if err != nil {
			return err
		}
		t.regexes = append(t.regexes, m)
		return nil
	}
	if expr, ok := cutPrefix(s, semverPrefix); ok {
		if expr == "" {
			return errors.New("empty semver range")
		}
		r, err := semver.ParseRange(expr)
		if err != nil {
			return fmt.Errorf("bad semver range: %v", err)
		}
		t.ranges = append(t.ranges, r)
		return nil
	}
	if expr, ok := cutPrefix(s, keepPrefix); ok {
		return t.addKeep(expr)
	}
	if err := checkVerbatim(s); err != nil {
		return err
	}
	if !slices.Contains(t.verbatim, s) {
		t.verbatim = append(t.verbatim, s)
	}
	return nil
}

// cutPrefix is strings.CutPrefix with the rest trimmed.
func cutPrefix(s, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(s, prefix)
	return strings.TrimSpace(rest), ok
}

func (t *Tags) addKeep(expr string) error {
	if expr == "" {
		return errors.New("empty keep rule")
	}
	fields := strings.Fields(expr)
	if !strings.HasPrefix(strings.ToLower(fields[0]), "latest") {
		// "lastest 2": a word and a count is a misspelt latest N.
		// As a regex it would keep nothing, for tags have no spaces.
		if len(fields) == 2 && isCount(fields[1]) {
			return fmt.Errorf("%q is not keep: latest N, and as a regex it matches no tag (tags have no spaces)", expr)
		}
		m, err := compileMatcher(expr)
		if err != nil {
			return err
		}
		t.keeps = append(t.keeps, m)
		return nil
	}
	if t.latest > 0 {
		return errors.New("more than one keep: latest")
	}
	if fields[0] != "latest" || len(fields) != 2 {
		// "latest2", "Latest 2", "latest 2 3"
		return fmt.Errorf("%q: want keep: latest N (a number after a space); a regex must start with ^ here (keep: ^%s)", expr, expr)
	}
	n, err := strconv.Atoi(fields[1])
	if err != nil || n <= 0 {
		return fmt.Errorf("keep: latest wants a positive integer, got %q", fields[1])
	}
	t.latest = n
	return nil
}

// isCount reports whether s is a decimal number.
func isCount(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

// compileMatcher compiles a regex: or keep: expression with dregsy's
// negation and anchoring rules.
func compileMatcher(expr string) (matcher, error) {
	if expr == "" {
		return matcher{}, errors.New("empty regex")
	}
	var m matcher
	if rest, ok := strings.CutPrefix(expr, "!"); ok {
		if rest == "" {
			return matcher{}, errors.New("empty regex after !")
		}
		m.negate, expr = true, rest
	}
	if !strings.HasPrefix(expr, "^") {
		expr = "^" + expr
	}
	if !strings.HasSuffix(expr, "$") {
		expr += "$"
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return matcher{}, fmt.Errorf("bad regex: %v", err)
	}
	m.re = re
	return m, nil
}

// checkVerbatim says why s is not a tag, digest or tag@digest.
func checkVerbatim(s string) error {
	switch {
	case tagRE.MatchString(s), digestRE.MatchString(s), taggedDigestRE.MatchString(s):
		return nil
	case strings.HasPrefix(s, "sha256:"):
		return errors.New("bad digest: want sha256: and 64 lowercase hex digits")
	case strings.Contains(s, "@"):
		return errors.New("bad tag@digest: want a tag, @sha256: and 64 lowercase hex digits")
	case unknownPrefixRE.MatchString(s):
		return fmt.Errorf("unknown prefix %q: want regex:, semver: or keep:, or a plain tag", s[:strings.Index(s, ":")+1])
	default:
		return errors.New("bad tag: want [A-Za-z0-9_][A-Za-z0-9._-]{0,127}, a digest or tag@digest")
	}
}

// NeedsList reports whether Select needs the source's tag list: true when
// any regex: or semver: filter is given, or when there are no verbatim
// entries (so every tag is selected). With only verbatim entries (and keep:
// rules) the verbatim entries are the whole selection.
func (t *Tags) NeedsList() bool {
	return len(t.regexes) > 0 || len(t.ranges) > 0 || len(t.verbatim) == 0
}

// Specs returns the specs as given to ParseTags.
func (t *Tags) Specs() []string { return slices.Clone(t.specs) }

// Select returns the tags to mirror out of available, deduplicated and
// sorted with sort.Strings. available is not modified.
func (t *Tags) Select(available []string) []string {
	verbatim := make(map[string]bool, len(t.verbatim))
	for _, v := range t.verbatim {
		verbatim[v] = true
	}

	all := len(t.regexes) == 0 && len(t.ranges) == 0 && len(t.verbatim) == 0
	selected := make(map[string]bool)
	for _, tag := range available {
		if all || t.matches(tag) {
			selected[tag] = true
		}
	}
	for _, v := range t.verbatim {
		selected[v] = true
	}

	var out []string
	for tag := range selected {
		if verbatim[tag] || t.kept(tag) {
			out = append(out, tag)
		}
	}
	sort.Strings(out)
	if t.latest > 0 {
		out = keepLatest(out, t.latest, verbatim)
	}
	return out
}

// Owns reports whether tag is one this list would select if the source had
// it, ignoring "keep: latest N" (a window over versions that moves as new
// ones arrive, so a tag that left it was still the mapping's): a verbatim
// entry, or, when the list selects every tag or the tag passes a regex: or
// semver: filter, a tag that passes every keep: rule. Prune deletes only
// tags their mapping owns.
func (t *Tags) Owns(tag string) bool {
	if slices.Contains(t.verbatim, tag) {
		return true
	}
	all := len(t.regexes) == 0 && len(t.ranges) == 0 && len(t.verbatim) == 0
	return (all || t.matches(tag)) && t.kept(tag)
}

// matches reports whether tag passes any regex: or semver: filter.
func (t *Tags) matches(tag string) bool {
	for _, m := range t.regexes {
		if m.match(tag) {
			return true
		}
	}
	if len(t.ranges) == 0 {
		return false
	}
	v, err := semver.ParseTolerant(tag)
	if err != nil {
		return false
	}
	for _, r := range t.ranges {
		if r(v) {
			return true
		}
	}
	return false
}

// kept reports whether tag passes every keep: regex.
func (t *Tags) kept(tag string) bool {
	for _, m := range t.keeps {
		if !m.match(tag) {
			return false
		}
	}
	return true
}

// keepLatest applies "keep: latest n" to tags, which are sorted and
// deduplicated; the result stays sorted. Verbatim tags always survive.
func keepLatest(tags []string, n int, verbatim map[string]bool) []string {
	type version struct {
		tag string
		v   semver.Version
	}
	var versions []version
	for _, tag := range tags {
		if v, err := semver.ParseTolerant(tag); err == nil {
			versions = append(versions, version{tag, v})
		}
	}

	drop := make(map[string]bool)
	if len(versions) == 0 {
		// Nothing reads as a version: string order is the best guess at
		// age, and tags is already in it.
		for _, tag := range tags[:max(len(tags)-n, 0)] {
			drop[tag] = true
		}
	} else {
		// Highest first; equal versions ("1.2", "1.2.0") by string so the
		// outcome does not depend on the input order.
		slices.SortFunc(versions, func(a, b version) int {
			if c := b.v.Compare(a.v); c != 0 {
				return c
			}
			return strings.Compare(b.tag, a.tag)
		})
		for _, v := range versions[min(n, len(versions)):] {
			drop[v.tag] = true
		}
	}

	return slices.DeleteFunc(tags, func(tag string) bool { return drop[tag] && !verbatim[tag] })
}
