package filter

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const (
	hex64  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	digest = "sha256:" + hex64
)

// Available tag lists from dregsy's documentation examples.
var (
	regexAvail  = strings.Fields("1.10.5 1.11.0 1.11.12 1.11.12-hotfix 1.11.100 1.12.0 v1.11.3 latest 1.11")
	semverAvail = strings.Fields("0.9.0 1.0.0 1.2 1.9.9 1.10.0 1.10.1-rc.1 2.0.0 latest")
)

func TestSelect(t *testing.T) {
	tests := []struct {
		name      string
		available []string
		specs     []string
		want      string // space separated
	}{
		// The worked examples.
		{"regex example", regexAvail, []string{`regex: 1\.11\.(?:[0-9]?[0-9]).*`}, "1.11.0 1.11.100 1.11.12 1.11.12-hotfix"},
		{"verbatim example", regexAvail, []string{"latest"}, "latest"},
		{"semver keep latest example", semverAvail, []string{"semver: >=1.0.0 <1.99.0", "keep: latest 2"}, "1.10.0 1.10.1-rc.1"},
		{"semver example", semverAvail, []string{"semver: >=1.0.0 <1.99.0"}, "1.0.0 1.10.0 1.10.1-rc.1 1.2 1.9.9"},

		{"nil specs select all", []string{"b", "a", "b"}, nil, "a b"},
		{"empty specs select all", []string{"b", "a"}, []string{}, "a b"},
		{"empty available", nil, nil, ""},

		{"regex negation", strings.Fields("1.0 1.1-rc.1 1.1 2.0-rc.2"), []string{"regex: !.*-rc.*"}, "1.0 1.1"},
		{"regex anchored", strings.Fields("1.1 11.1 1.10"), []string{`regex: 1\.1`}, "1.1"},
		{"regex existing anchors kept", strings.Fields("a ab ba"), []string{"regex: ^a.*$"}, "a ab"},
		{"regex spaces trimmed", strings.Fields("a ab"), []string{"  regex:   a  "}, "a"},
		{"negated anchored regex", strings.Fields("a ab ba"), []string{"regex: !^a.*$"}, "ba"},
		{"semver tolerant v prefix", strings.Fields("v1.2 v1.3.0 1.4 x"), []string{"semver: >=1.3.0"}, "1.4 v1.3.0"},

		{"filters ORed", regexAvail, []string{"regex: v.*", "semver: >=1.12.0", "1.10.5"}, "1.10.5 1.12.0 v1.11.3"},
		{"verbatim absent from available", regexAvail, []string{"regex: v.*", "nope"}, "nope v1.11.3"},
		{"verbatim deduped with match", regexAvail, []string{"regex: lat.*", "latest", " latest "}, "latest"},

		{"keep regex prunes", semverAvail, []string{"semver: >=1.0.0", "keep: !.*-rc.*"}, "1.0.0 1.10.0 1.2 1.9.9 2.0.0"},
		{"keep regexes ANDed", semverAvail, []string{"semver: >=1.0.0", `keep: 1\..*`, "keep: !.*-rc.*"}, "1.0.0 1.10.0 1.2 1.9.9"},
		{"keep regex spares verbatim", semverAvail, []string{"semver: >=2.0.0", "0.9.0", "keep: !0\\..*"}, "0.9.0 2.0.0"},
		{"keep only selects all then prunes", semverAvail, []string{"keep: 1\\..*"}, "1.0.0 1.10.0 1.10.1-rc.1 1.2 1.9.9"},
		{"keep regex before latest", semverAvail, []string{"semver: >=1.0.0", "keep: !.*-rc.*", "keep: latest 2"}, "1.10.0 2.0.0"},

		{"latest leaves non-semver alone", semverAvail, []string{"keep: latest 1"}, "2.0.0 latest"},
		{"latest more than available", semverAvail, []string{"regex: (?:1\\.0\\.0|2.*)", "keep: latest 5"}, "1.0.0 2.0.0"},
		// dregsy anchors textually: "^1\.0\.0|2.*$" lets "1.2" in.
		{"regex alternation anchoring quirk", semverAvail, []string{"regex: 1\\.0\\.0|2.*"}, "1.0.0 1.2 2.0.0"},
		{"latest without semver tags", strings.Fields("b a d c"), []string{"keep: latest 2"}, "c d"},
		{"latest without semver keeps verbatim", strings.Fields("b a d c"), []string{"regex: .*", "a", "keep: latest 2"}, "a c d"},
		{"latest without semver verbatim counts", strings.Fields("b a d c"), []string{"regex: .*", "d", "keep: latest 2"}, "c d"},
		{"latest verbatim takes a slot", semverAvail, []string{"semver: >=1.0.0", "2.0.0", "keep: latest 2"}, "1.10.1-rc.1 2.0.0"},
		{"latest verbatim below cut survives", semverAvail, []string{"semver: >=1.0.0", "1.0.0", "keep: latest 1"}, "1.0.0 2.0.0"},
		{"latest ties by string", strings.Fields("1.2 1.2.0 v1.2.0 1.1"), []string{"keep: latest 2"}, "1.2.0 v1.2.0"},
		{"latest only verbatim", nil, []string{"1.0", "2.0", "keep: latest 1"}, "1.0 2.0"},

		{"digest verbatim", regexAvail, []string{digest}, digest},
		{"tag@digest verbatim", regexAvail, []string{"1.0@" + digest, "latest"}, "1.0@" + digest + " latest"},
		{"digest unaffected by keep", regexAvail, []string{digest, "keep: 1.*"}, digest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tags, err := ParseTags(tt.specs)
			if err != nil {
				t.Fatalf("ParseTags(%q): %v", tt.specs, err)
			}
			in := slices.Clone(tt.available)
			got := strings.Join(tags.Select(in), " ")
			if got != tt.want {
				t.Errorf("Select:\n got %q\nwant %q", got, tt.want)
			}
			if !slices.Equal(in, tt.available) {
				t.Errorf("Select modified available: %q", in)
			}
		})
	}
}

func TestParseTagsErrors(t *testing.T) {
	tests := []struct {
		name  string
		specs []string
		index int
		msg   string // substring of the error
	}{
		{"empty spec", []string{"latest", ""}, 1, "empty spec"},
		{"blank spec", []string{"   "}, 0, "empty spec"},
		{"empty regex", []string{"regex:"}, 0, "empty regex"},
		{"blank regex", []string{"regex:   "}, 0, "empty regex"},
		{"bare negation", []string{"regex: !"}, 0, "empty regex"},
		{"bad regex", []string{"a", "regex: (a"}, 1, "bad regex"},
		{"bad negated regex", []string{"regex: !(a"}, 0, "bad regex"},
		{"empty semver", []string{"semver:"}, 0, "empty semver"},
		{"bad semver", []string{"semver: >=1.x.y"}, 0, "bad semver range"},
		{"bad semver word", []string{"semver: latest"}, 0, "bad semver range"},
		{"empty keep", []string{"keep:"}, 0, "empty keep"},
		{"bad keep regex", []string{"keep: [a"}, 0, "bad regex"},
		{"keep latest zero", []string{"keep: latest 0"}, 0, "positive integer"},
		{"keep latest negative", []string{"keep: latest -1"}, 0, "positive integer"},
		{"keep latest word", []string{"keep: latest two"}, 0, "positive integer"},
		{"keep latest float", []string{"keep: latest 1.5"}, 0, "positive integer"},
		{"keep latest overflow", []string{"keep: latest 99999999999999999999"}, 0, "positive integer"},
		{"keep latest no count", []string{"keep: latest"}, 0, "want keep: latest N"},
		{"keep latest extra", []string{"keep: latest 1 2"}, 0, "want keep: latest N"},
		{"keep latest glued", []string{"keep: latest2"}, 0, "want keep: latest N"},
		{"keep latest capital", []string{"keep: Latest 2"}, 0, "want keep: latest N"},
		{"keep latest regex", []string{"keep: latest.*"}, 0, "keep: ^latest.*"},
		{"keep latest misspelt", []string{"keep: lastest 2"}, 0, "is not keep: latest N"},
		{"keep word and count", []string{"keep: newest 3"}, 0, "is not keep: latest N"},
		{"keep latest twice", []string{"keep: latest 1", "x", "keep: latest 2"}, 2, "more than one"},
		{"space in tag", []string{"foo bar"}, 0, "bad tag"},
		{"leading colon", []string{":x"}, 0, "bad tag"},
		{"leading dot", []string{".x"}, 0, "bad tag"},
		{"tag too long", []string{strings.Repeat("a", 129)}, 0, "bad tag"},
		{"short digest", []string{"sha256:abc"}, 0, "bad digest"},
		{"upper digest", []string{"sha256:" + strings.ToUpper(hex64)}, 0, "bad digest"},
		{"bad tag@digest", []string{"1.0@sha256:abc"}, 0, "bad tag@digest"},
		{"bad tag in tag@digest", []string{"-x@" + digest}, 0, "bad tag@digest"},
		{"unknown prefix", []string{"Regex: a"}, 0, `unknown prefix "Regex:"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tags, err := ParseTags(tt.specs)
			if err == nil {
				t.Fatalf("ParseTags(%q) = %v, want error", tt.specs, tags)
			}
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not a *SpecError", err, err)
			}
			if se.Index != tt.index || se.Spec != tt.specs[tt.index] {
				t.Errorf("SpecError at %d %q, want %d %q", se.Index, se.Spec, tt.index, tt.specs[tt.index])
			}
			if se.Err == nil || errors.Unwrap(err) != se.Err {
				t.Errorf("Unwrap = %v, want %v", errors.Unwrap(err), se.Err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
}

func TestSpecErrorFormat(t *testing.T) {
	err := &SpecError{Index: 3, Spec: "foo bar", Err: errors.New("boom")}
	if got, want := err.Error(), `tags[3] "foo bar": boom`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestNeedsList(t *testing.T) {
	tests := []struct {
		specs []string
		want  bool
	}{
		{nil, true},
		{[]string{}, true},
		{[]string{"latest"}, false},
		{[]string{"latest", digest, "keep: latest 1", "keep: v.*"}, false},
		{[]string{"keep: latest 1"}, true},
		{[]string{"keep: v.*"}, true},
		{[]string{"regex: v.*"}, true},
		{[]string{"semver: >=1.0.0"}, true},
		{[]string{"latest", "regex: v.*"}, true},
		{[]string{"latest", "semver: >=1.0.0"}, true},
	}
	for _, tt := range tests {
		tags, err := ParseTags(tt.specs)
		if err != nil {
			t.Fatalf("ParseTags(%q): %v", tt.specs, err)
		}
		if got := tags.NeedsList(); got != tt.want {
			t.Errorf("ParseTags(%q).NeedsList() = %v, want %v", tt.specs, got, tt.want)
		}
	}
}

func TestSpecs(t *testing.T) {
	specs := []string{" b ", "regex: x", "a", "b", "keep: latest 1", digest, "a"}
	tags, err := ParseTags(specs)
	if err != nil {
		t.Fatal(err)
	}
	if got := tags.Specs(); !slices.Equal(got, specs) {
		t.Errorf("Specs() = %q, want %q", got, specs)
	}

	// The results are copies: callers cannot corrupt the compiled list.
	specs[0] = "changed"
	tags.Specs()[1] = "changed"
	if got := tags.Specs(); got[0] != " b " || got[1] != "regex: x" {
		t.Errorf("Specs() changed to %q", got)
	}
}

func TestZeroTagsSelectsAll(t *testing.T) {
	var tags Tags
	if !tags.NeedsList() {
		t.Error("zero Tags does not need the list")
	}
	if got := strings.Join(tags.Select([]string{"b", "a"}), " "); got != "a b" {
		t.Errorf("zero Tags selects %q", got)
	}
}
