package config

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The file is parsed into a yaml.Node tree and walked by hand rather than
// decoded into structs: yaml.v3 only rejects unknown keys for a Decoder with
// KnownFields(true), and that strictness is lost under any custom
// UnmarshalYAML that calls node.Decode, which is exactly where we would need
// line numbers. Walking the tree keeps every key strict, puts the right line
// on every error, reports every problem rather than the first, and never
// echoes a secret in a type error. Only scalars are handed to node.Decode.

// maxVisits bounds the work done on one file. Aliases make a small document
// expand into a huge tree ("billion laughs"); no real configuration comes
// near this.
const maxVisits = 1 << 20

// keyVal is one entry of a mapping.
type keyVal struct{ key, val *yaml.Node }

// field handles the value of one known key.
type field func(key, val *yaml.Node)

// resolve follows aliases. It returns nil once the visit budget is spent,
// after reporting that once.
func (l *loader) resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	l.visits++
	if l.visits > maxVisits {
		if !l.tooBig {
			l.tooBig = true
			l.errorf(0, "document is too large or uses too many aliases")
		}
		return nil
	}
	return n
}

// isNull reports whether n is absent or a YAML null ("key:", "~", "null").
func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// kindName says what a node is, for messages.
func kindName(n *yaml.Node) string {
	if isNull(n) {
		return "empty"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar"
	default:
		return "empty"
	}
}

// pairs returns the entries of mapping n in document order, with YAML merge
// keys ("<<: *base") expanded: explicit keys win over merged ones, and
// earlier merges over later ones, as YAML specifies. Repeated keys are
// reported.
func (l *loader) pairs(n *yaml.Node, what string) []keyVal {
	var out []keyVal
	seen := map[string]int{} // key -> line
	var merged [][]keyVal
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := l.resolve(n.Content[i]), n.Content[i+1]
		if k == nil {
			return nil
		}
		if k.Kind != yaml.ScalarNode {
			l.errorf(k.Line, "%s: keys must be plain strings, not %s", what, kindName(k))
			continue
		}
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			merged = append(merged, l.merge(v, what, map[*yaml.Node]bool{n: true})...)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			l.errorf(k.Line, "duplicate key %q %s (first at line %d)", k.Value, in(what), first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, keyVal{k, v})
	}
	for _, m := range merged {
		for _, kv := range m {
			if _, ok := seen[kv.key.Value]; !ok {
				seen[kv.key.Value] = kv.key.Line
				out = append(out, kv)
			}
		}
	}
	return out
}

// merge returns the entries a merge key brings in: one mapping or a list of
// mappings, each possibly merging further. active guards against a mapping
// that merges itself.
func (l *loader) merge(v *yaml.Node, what string, active map[*yaml.Node]bool) [][]keyVal {
	v = l.resolve(v)
	if v == nil {
		return nil
	}
	var maps []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		maps = []*yaml.Node{v}
	case yaml.SequenceNode:
		for _, c := range v.Content {
			if c = l.resolve(c); c == nil {
				return nil
			}
			maps = append(maps, c)
		}
	}
	var out [][]keyVal
	for _, m := range maps {
		if m.Kind != yaml.MappingNode {
			l.errorf(m.Line, "%s: \"<<\" must merge a mapping or a list of mappings", what)
			continue
		}
		if active[m] {
			l.errorf(m.Line, "%s: \"<<\" merges a mapping into itself", what)
			continue
		}
		active[m] = true
		var entries []keyVal
		var nested [][]keyVal
		seen := map[string]bool{}
		for i := 0; i+1 < len(m.Content); i += 2 {
			k := l.resolve(m.Content[i])
			if k == nil {
				return nil
			}
			if k.Kind != yaml.ScalarNode {
				l.errorf(k.Line, "%s: keys must be plain strings, not %s", what, kindName(k))
				continue
			}
			if k.Value == "<<" && k.ShortTag() == "!!merge" {
				nested = append(nested, l.merge(m.Content[i+1], what, active)...)
				continue
			}
			if !seen[k.Value] {
				seen[k.Value] = true
				entries = append(entries, keyVal{k, m.Content[i+1]})
			}
		}
		delete(active, m)
		out = append(out, entries)
		out = append(out, nested...)
	}
	return out
}

// fields walks mapping n (already resolved), calling the handler of every
// known key and reporting unknown ones. what names the mapping in messages
// ("task", "source").
//
// It returns the mapping as `config print` writes it: every known key the
// file set, in the file's order (merge keys expanded), with its value as
// written, or as the handler set it with l.printAs (a secret, a nested
// section). Keys whose value is read later (a task's source, its
// mappings) get theirs with setPrinted. Because the printed form comes
// from the same walk as the loaded one, no key can be loaded and then left
// out of the print.
func (l *loader) fields(n *yaml.Node, what string, known map[string]field) *yaml.Node {
	l.noteSchema(what, known)
	out := &yaml.Node{Kind: yaml.MappingNode}
	for _, kv := range l.pairs(n, what) {
		f, ok := known[kv.key.Value]
		if !ok {
			l.errorf(kv.key.Line, "unknown key %q %s%s", kv.key.Value, in(what), suggest(kv.key.Value, known))
			continue
		}
		outer := l.printed
		l.printed = nil
		f(kv.key, kv.val)
		v := l.printed
		l.printed = outer
		if v == nil {
			v = l.asWritten(kv.val)
		}
		out.Content = append(out.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: kv.key.Value}, v)
	}
	return out
}

// printAs sets the printed value of the key whose handler is running.
func (l *loader) printAs(v *yaml.Node) { l.printed = v }

// printLater leaves the printed value of the key whose handler is running
// to setPrinted, once the value has been read (tasks, a task's source and
// target, its mappings, their tags): copying it as written first would be
// wasted work, and quadratic for aliases.
func (l *loader) printLater() {
	l.printed = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
}

// asWritten is a value's printed form: as written, aliases resolved, with
// each scalar's tag and quoting kept (so "1.10" stays a string). Handlers
// of secrets and sections set theirs with printAs instead.
func (l *loader) asWritten(val *yaml.Node) *yaml.Node {
	v := l.resolve(val)
	if v == nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	}
	out := &yaml.Node{Kind: v.Kind, Tag: v.Tag, Value: v.Value, Style: v.Style &^ yaml.TaggedStyle}
	if v.Kind != yaml.ScalarNode && v.Kind != yaml.SequenceNode && v.Kind != yaml.MappingNode {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	}
	for _, c := range v.Content {
		if out.Content = append(out.Content, l.asWritten(c)); l.tooBig {
			break
		}
	}
	return out
}

// setPrinted sets the printed value of key in the printed mapping out.
func setPrinted(out *yaml.Node, key string, v *yaml.Node) {
	if out == nil || v == nil {
		return
	}
	for i := 0; i+1 < len(out.Content); i += 2 {
		if out.Content[i].Value == key {
			out.Content[i+1] = v
			return
		}
	}
}

// noteSchema records the keys a mapping kind knows (for the test that
// every key of the schema survives `config print`).
func (l *loader) noteSchema(what string, known map[string]field) {
	if l.schema == nil {
		return
	}
	if l.schema[what] == nil {
		l.schema[what] = map[string]bool{}
	}
	for k := range known {
		l.schema[what][k] = true
	}
}

// suggest returns ` (did you mean "x"?)` for the known key closest to a
// misspelt one, or "".
func suggest(key string, known map[string]field) string {
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	sort.Strings(names)
	best, bestDist := "", 3 // at most two edits
	for _, k := range names {
		if d := editDistance(strings.ToLower(key), strings.ToLower(k)); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// topLevel names the top-level mapping in messages.
const topLevel = "top level"

// in says where a key is: "in task", "at top level".
func in(what string) string {
	if what == topLevel {
		return "at " + what
	}
	return "in " + what
}

// str is a string-valued key: its value, its line and whether it was given.
type str struct {
	val  string
	line int
	set  bool
}

// scalar returns the resolved scalar value of key, or nil when the value is
// null. Anything else is reported. The value is never quoted in the
// message: it may be a secret.
func (l *loader) scalar(key, val *yaml.Node, what string) *yaml.Node {
	v := l.resolve(val)
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.ScalarNode {
		l.errorf(v.Line, "%q %s must be a single value, not %s", key.Value, in(what), kindName(v))
		return nil
	}
	return v
}

// str reads a string-valued key. Any scalar is taken as written ("1.10"
// stays "1.10"), as yaml.v2 did for dregsy.
func (l *loader) str(key, val *yaml.Node, what string) str {
	v := l.scalar(key, val, what)
	if v == nil {
		return str{line: key.Line}
	}
	return str{val: v.Value, line: v.Line, set: true}
}

// boolean reads a boolean key; YAML 1.1 spellings (yes, on, ...) are
// accepted as yaml.v2 accepted them for dregsy.
func (l *loader) boolean(key, val *yaml.Node, what string) bool {
	v := l.scalar(key, val, what)
	if v == nil {
		return false
	}
	var b bool
	if err := v.Decode(&b); err != nil {
		l.errorf(v.Line, "%q %s must be true or false, not %s", key.Value, in(what), quote(v.Value))
		return false
	}
	return b
}

// integer reads an integer key. A quoted number is accepted too: dregsy's
// location lister settings are a map of strings.
func (l *loader) integer(key, val *yaml.Node, what string) (int, bool) {
	v := l.scalar(key, val, what)
	if v == nil {
		return 0, false
	}
	var n int
	if err := v.Decode(&n); err != nil {
		var perr error
		if n, perr = strconv.Atoi(strings.TrimSpace(v.Value)); perr != nil {
			l.errorf(v.Line, "%q %s must be an integer, not %s", key.Value, in(what), quote(v.Value))
			return 0, false
		}
	}
	return n, true
}

// duration reads a duration key: a Go duration string ("90m", "2h") or,
// for compatibility with dregsy, a bare integer, which counts NANOSECONDS:
// dregsy decodes these keys into time.Duration with yaml.v2, which takes an
// integer as the Duration's int64 value.
func (l *loader) duration(key, val *yaml.Node, what string) (time.Duration, bool) {
	v := l.scalar(key, val, what)
	if v == nil {
		return 0, false
	}
	if v.ShortTag() == "!!int" {
		var n int64
		if err := v.Decode(&n); err == nil {
			return time.Duration(n), true
		}
	}
	d, err := time.ParseDuration(strings.TrimSpace(v.Value))
	if err != nil {
		l.errorf(v.Line, "%q %s must be a duration such as \"90m\" or \"2h\", not %s", key.Value, in(what), quote(v.Value))
		return 0, false
	}
	return d, true
}

// quote quotes s for a message, leaving backslashes alone when it can so
// that regular expressions read as written.
func quote(s string) string {
	if strconv.CanBackquote(s) && !strings.ContainsAny(s, "\"`") {
		return `"` + s + `"`
	}
	return strconv.Quote(s)
}

// rateRE is a transfer rate: a number of bytes per second with an
// optional unit ("1024", "1KiB", "512 KB/s", "1MiB/s").
var rateRE = regexp.MustCompile(`^([0-9]+)\s*(B|KB|KiB|MB|MiB)?(/s)?$`)

var rateUnits = map[string]int64{"": 1, "B": 1, "KB": 1000, "KiB": 1 << 10, "MB": 1000 * 1000, "MiB": 1 << 20}

// rate reads a transfer rate key (bytes per second); 0 is allowed.
func (l *loader) rate(key, val *yaml.Node, what string) int64 {
	v := l.scalar(key, val, what)
	if v == nil {
		return 0
	}
	m := rateRE.FindStringSubmatch(strings.TrimSpace(v.Value))
	if m == nil {
		l.errorf(v.Line, "%q %s must be bytes per second such as 1024, \"1KiB\" or \"1MiB/s\", not %s", key.Value, in(what), quote(v.Value))
		return 0
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > (1<<50)/rateUnits[m[2]] {
		l.errorf(v.Line, "%q %s: %s is too large", key.Value, in(what), quote(v.Value))
		return 0
	}
	return n * rateUnits[m[2]]
}
