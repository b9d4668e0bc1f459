package imagelist

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseList feeds arbitrary files to Parse under a fixed prefix pair and
// checks the invariants the CLI relies on: no panic, entries in strictly
// increasing line order within the file's line count, every entry either
// an error naming its own line or a pair of references that re-parse to
// themselves, with the target under the destination prefix.
func FuzzParseList(f *testing.F) {
	f.Add("r.io/src/a:1\n")
	f.Add("\uFEFF# c\r\n\r\n  r.io/src/a:1  \r\nr.io/src/b@" + dgA + "\r\nr.io/src/c:2@" + dgA)
	f.Add("r.io/src/x:1 # comment\nq.io/other:1\nr.io/src/bad name\n")
	f.Add("r.io/src:1\nr.io/srcx/a:1\n\n\n#\n")
	f.Add(strings.Repeat("y", MaxLineLen+1) + "\nr.io/src/a")
	p, err := NewPrefixes("r.io/src", "m.io/dst")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		es, err := Parse(strings.NewReader(in), p)
		if err != nil {
			t.Fatalf("a string reader failed: %v", err)
		}
		lines := strings.Count(in, "\n") + 1
		prev := 0
		for _, e := range es {
			if e.Line <= prev || e.Line > lines {
				t.Fatalf("line %d after %d (file has %d lines)", e.Line, prev, lines)
			}
			prev = e.Line
			if e.Text == "" || strings.HasPrefix(e.Text, "#") {
				t.Fatalf("line %d: blank or comment text %q became an entry", e.Line, e.Text)
			}
			if e.Err != nil {
				var le *LineError
				if !errors.As(e.Err, &le) || le.Line != e.Line {
					t.Fatalf("line %d: error %v does not name the line", e.Line, e.Err)
				}
				continue
			}
			if !strings.HasPrefix(e.Text, "r.io/src") {
				t.Fatalf("line %d: %q accepted outside the source prefix", e.Line, e.Text)
			}
			for _, r := range []Ref{e.Source, e.Target} {
				again, err := ParseRef(r.String())
				if err != nil || again != r {
					t.Fatalf("line %d: %s does not re-parse to itself: %+v %v", e.Line, r, again, err)
				}
			}
			if e.Target.Registry != "m.io" || !strings.HasPrefix(e.Target.Repo, "dst") {
				t.Fatalf("line %d: target %s not under m.io/dst", e.Line, e.Target)
			}
			if e.Source.Reference() != e.Target.Reference() {
				t.Fatalf("line %d: tag or digest changed: %s -> %s", e.Line, e.Source, e.Target)
			}
		}
	})
}
