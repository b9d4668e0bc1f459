package config

import (
	"errors"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.yaml.in/yaml/v3"

	"github.com/regmirror/regmirror/internal/filter"
	"github.com/regmirror/regmirror/internal/registry"
)

// mapping reads mappings[i].
func (l *loader) mapping(item *yaml.Node, i int) (Mapping, *yaml.Node, bool) {
	n := l.resolve(item)
	if n == nil {
		return Mapping{}, nil, false
	}
	m := Mapping{Line: n.Line}
	if isNull(n) || n.Kind != yaml.MappingNode {
		l.errorf(n.Line, "mappings[%d] must be a mapping with from (and to, tags, platform or platforms, referrers, prune), not %s", i, kindName(n))
		return m, nil, false
	}
	nerrs := len(l.errs)

	const what = "mapping"
	var from, to, platform str
	var tagsKey, tagsVal, platformsKey *yaml.Node
	printed := l.fields(n, what, map[string]field{
		"from":     func(key, val *yaml.Node) { from = l.str(key, val, what) },
		"to":       func(key, val *yaml.Node) { to = l.str(key, val, what) },
		"platform": func(key, val *yaml.Node) { platform = l.str(key, val, what) },
		// Ours: an index of only these platforms.
		"platforms":         func(key, val *yaml.Node) { platformsKey, m.Platforms = key, l.platforms(key, val) },
		"platforms-missing": func(key, val *yaml.Node) { m.PlatformsMissing, m.missingLine = l.platformsMissing(key, val), key.Line },
		// Ours: copy only images signed with one of these keys.
		"verify": func(key, val *yaml.Node) { m.Verify = l.verify(key, val) },
		"tags":   func(key, val *yaml.Node) { tagsKey, tagsVal = key, val; l.printLater() },
		// Ours: also copy what is attached to each image (signatures,
		// attestations, SBOMs).
		"referrers": func(key, val *yaml.Node) { m.Referrers = l.boolean(key, val, what) },
		// Ours: delete target tags the source no longer has.
		"prune": func(key, val *yaml.Node) { m.Prune = l.boolean(key, val, what) },
	})

	// from and to. The regex: grammar is filter's (one parser for the
	// loader, the engine, import and export); plain paths are checked
	// against the distribution grammar here.
	fromRegex, toRegex := filter.IsRepoRegex(from.val), filter.IsRepoRegex(to.val)
	switch {
	case !from.set || from.val == "":
		l.errorf(m.Line, "mappings[%d] has no \"from\": the source repository is required", i)
	case fromRegex:
		// Kept verbatim: repositories are discovered and matched later.
		m.From = from.val
	default:
		m.From = strings.TrimPrefix(from.val, "/")
		if problem := checkRepoPath(m.From); problem != "" {
			l.errorf(from.line, "from %s: %s", quote(from.val), problem)
		}
	}
	switch {
	case !to.set || to.val == "":
		if !fromRegex {
			m.To = m.From
		}
	case toRegex:
		m.To = to.val
	default:
		m.To = strings.TrimPrefix(to.val, "/")
		if problem := checkRepoPath(m.To); problem != "" {
			l.errorf(to.line, "to %s: %s", quote(to.val), problem)
		}
	}
	if m.From != "" {
		rm, err := filter.ParseRepoMap(m.From, m.To)
		for _, e := range joined(err) {
			var re *filter.RepoMapError
			switch {
			case !errors.As(e, &re):
				l.errorf(m.Line, "%v", e)
			case re.Key == "from" && fromRegex:
				l.errorf(from.line, "from %s: %v", quote(from.val), re.Err)
			case re.Key == "to" && toRegex:
				l.errorf(to.line, "to %s: %v", quote(to.val), re.Err)
			}
			// A plain path's problems were reported above, in the
			// distribution grammar's words.
		}
		m.Repos = rm
	}

	// platform
	if platform.set && platform.val != "" {
		m.platformText = platform.val
		if problem := checkPlatform(platform.val); problem != "" {
			l.errorf(platform.line, "platform %s: %s", quote(platform.val), problem)
		} else if platform.val != "all" {
			m.Platform, _ = v1.ParsePlatform(platform.val) // checked just above
		}
		if platformsKey != nil {
			l.errorf(platformsKey.Line, "platform and platforms cannot both be set: platform copies one platform's image, platforms an index of several")
		}
	}

	var pt *yaml.Node
	m.Tags, pt = l.tags(tagsKey, tagsVal)
	setPrinted(printed, "tags", pt)
	return m, printed, len(l.errs) == nerrs
}

// checkRepoPath checks a repository path (without registry) against the
// distribution grammar, as every other name regmirror sends is checked.
func checkRepoPath(p string) string {
	switch {
	case p == "":
		return "empty repository path"
	case strings.ContainsAny(p, "@:"):
		return "a repository path takes no tag or digest: select tags with \"tags\""
	}
	if err := registry.CheckRepository(p); err != nil {
		var ne *registry.NameError
		if errors.As(err, &ne) {
			return "invalid repository path: it " + registry.ErrInvalidName.Error() + ": " + ne.Rule
		}
		return err.Error()
	}
	return ""
}

// checkPlatform checks a mapping's platform: "all" or os/arch[/variant].
func checkPlatform(s string) string {
	if s == "all" {
		return ""
	}
	if strings.TrimSpace(s) != s || strings.ContainsAny(s, " \t") {
		return "must not contain spaces"
	}
	p, err := v1.ParsePlatform(s)
	if err != nil {
		return err.Error()
	}
	if p.OS == "" || p.Architecture == "" {
		return "want \"all\" or os/arch[/variant], such as linux/amd64 or linux/arm64/v8"
	}
	return ""
}

// platforms reads a `platforms:` list: at least one os/arch[/variant],
// each once. Errors name the entry's line.
func (l *loader) platforms(key, val *yaml.Node) []string {
	seq := l.resolve(val)
	switch {
	case seq == nil:
		return nil
	case isNull(seq) || seq.Kind == yaml.SequenceNode && len(seq.Content) == 0:
		l.errorf(key.Line, "platforms is empty: list at least one os/arch[/variant], or remove it to copy every platform")
		return nil
	case seq.Kind != yaml.SequenceNode:
		l.errorf(seq.Line, "\"platforms\" must be a list such as [linux/amd64, linux/arm64], not %s", kindName(seq))
		return nil
	}
	var out []string
	seen := map[string]int{}
	for i, item := range seq.Content {
		v := l.resolve(item)
		if v == nil {
			return nil
		}
		if isNull(v) || v.Kind != yaml.ScalarNode {
			l.errorf(v.Line, "platforms[%d] must be os/arch[/variant], not %s", i, kindName(v))
			continue
		}
		problem := strings.Replace(checkPlatform(v.Value), `want "all" or os/arch`, "want os/arch", 1)
		if v.Value == "all" {
			problem = "\"all\" is not a platform: remove platforms to copy every platform"
		}
		if problem != "" {
			l.errorf(v.Line, "platforms[%d] %s: %s", i, quote(v.Value), problem)
			continue
		}
		p, _ := v1.ParsePlatform(v.Value)
		canon := p.String()
		if first, dup := seen[canon]; dup {
			l.errorf(v.Line, "platforms[%d] %s: already listed as platforms[%d]", i, quote(v.Value), first)
			continue
		}
		seen[canon] = i
		out = append(out, canon)
	}
	return out
}

// platformsMissing reads `platforms-missing:`: fail (the default) or skip.
func (l *loader) platformsMissing(key, val *yaml.Node) string {
	s := l.str(key, val, "platforms-missing")
	if !s.set {
		return ""
	}
	switch s.val {
	case "fail", "skip":
		return s.val
	}
	l.errorf(s.line, "platforms-missing %s: want fail (the image fails when a listed platform is not in its index) or skip (copy the platforms it has)", quote(s.val))
	return ""
}

// mappingDefaults gives a task's mappings its verify:, platforms: and
// platforms-missing: unless they set their own (a mapping's platform: is
// its own setting too), then checks that platforms-missing goes with a
// platforms list.
func (l *loader) mappingDefaults(t *Task, platforms []string, missing string) {
	for i := range t.Mappings {
		m := &t.Mappings[i]
		if m.Verify == nil {
			m.Verify = t.verify
		}
		if len(m.Platforms) == 0 && m.platformText == "" {
			m.Platforms = platforms
		}
		if m.PlatformsMissing == "" && len(m.Platforms) > 0 {
			m.PlatformsMissing = missing
		}
		if m.PlatformsMissing != "" && len(m.Platforms) == 0 {
			copies := "every platform"
			if m.platformText != "" {
				copies = "one platform (platform: " + m.platformText + ")"
			}
			l.errorf(m.missingLine, "platforms-missing goes with platforms: this mapping copies %s", copies)
		}
	}
}

// tags compiles a mapping's tags list. No list (or an empty one) selects
// every tag; the result is never nil when there is no error. The second
// result is the list as `config print` writes it.
func (l *loader) tags(key, val *yaml.Node) (*filter.Tags, *yaml.Node) {
	var specs []string
	var lines []int
	printed := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	if key != nil {
		seq := l.resolve(val)
		switch {
		case seq == nil:
			return nil, nil
		case isNull(seq):
		case seq.Kind != yaml.SequenceNode:
			l.errorf(seq.Line, "\"tags\" must be a list, not %s", kindName(seq))
			return nil, nil
		default:
			ok := true
			for i, item := range seq.Content {
				v := l.resolve(item)
				if v == nil {
					return nil, nil
				}
				if isNull(v) || v.Kind != yaml.ScalarNode {
					l.errorf(v.Line, "tags[%d] must be a tag or filter, not %s", i, kindName(v))
					ok = false
					continue
				}
				specs = append(specs, v.Value)
				lines = append(lines, v.Line)
				printed.Content = append(printed.Content, l.asWritten(v))
			}
			if !ok {
				return nil, nil
			}
		}
	}

	tags, err := filter.ParseTags(specs)
	if err == nil {
		return tags, printed
	}
	// ParseTags stops at the first bad spec: carry on after it so that
	// every bad spec is reported.
	for off := 0; err != nil; {
		var se *filter.SpecError
		if !errors.As(err, &se) || se.Index < 0 || off+se.Index >= len(specs) {
			line := 0
			if key != nil {
				line = key.Line
			}
			l.errorf(line, "tags: %v", err)
			return nil, nil
		}
		i := off + se.Index
		l.errorf(lines[i], "tags[%d] %s: %v", i, quote(se.Spec), se.Err)
		off = i + 1
		_, err = filter.ParseTags(specs[off:])
	}
	return nil, nil
}

// joined returns the errors in err: its members when it is an
// errors.Join, err alone otherwise, none for nil.
func joined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}
