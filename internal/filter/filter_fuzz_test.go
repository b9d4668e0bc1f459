package filter

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// fuzzAvail mixes versions, pre-releases, tolerant forms and plain names so
// every rule has something to bite on.
var fuzzAvail = strings.Fields("0.9.0 1.0.0 1.2 1.2.0 v1.2.0 1.9.9 1.10.0 1.10.1-rc.1 1.11.12-hotfix 2.0.0 latest stable a b 1.0@" + digest + " " + digest)

// FuzzParseTags feeds a newline-separated spec list to ParseTags and checks
// Select's invariants on whatever parses.
func FuzzParseTags(f *testing.F) {
	for _, seed := range []string{
		`regex: 1\.11\.(?:[0-9]?[0-9]).*`,
		"latest",
		"semver: >=1.0.0 <1.99.0\nkeep: latest 2",
		"semver: >=1.0.0 <1.99.0",
		"regex: !.*-rc.*\nkeep: latest 1",
		"2.0.0\nkeep: !2.*\nkeep: latest 1",
		digest + "\n1.0@" + digest,
		"keep: latest 3",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		specs := strings.Split(in, "\n")
		tags, err := ParseTags(specs)
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) || se.Index < 0 || se.Index >= len(specs) || se.Spec != specs[se.Index] {
				t.Fatalf("ParseTags(%q): bad error %v (%T)", specs, err, err)
			}
			return
		}
		got := tags.Select(slices.Clone(fuzzAvail))
		if !slices.IsSorted(got) {
			t.Fatalf("Select not sorted: %q", got)
		}
		if len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("Select has duplicates: %q", got)
		}
		for _, v := range tags.verbatim {
			if _, found := slices.BinarySearch(got, v); !found {
				t.Fatalf("Select %q lacks verbatim %q", got, v)
			}
		}
	})
}
