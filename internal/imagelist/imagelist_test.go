package imagelist

import (
	"errors"
	"strings"
	"testing"
)

const (
	gar = "europe-west1-docker.pkg.dev/appcircle/docker-registry"
	dst = "reg.appcircle.spacetech.com/appcircle"
	dgA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)

func mustPrefixes(t *testing.T, from, to string) Prefixes {
	t.Helper()
	p, err := NewPrefixes(from, to)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestParseMessyFile is the file users really have: a BOM, comments, CRLF,
// blanks, indentation, an inline comment and no final newline.
func TestParseMessyFile(t *testing.T) {
	in := "\uFEFF# Appcircle images\r\n" +
		"\r\n" +
		"  " + gar + "/ac-web:v3.1.0  \r\n" +
		"\t# indented comment\r\n" +
		gar + "/redis@" + dgA + "\r\n" +
		gar + "/nginx:1.25@" + dgA + " # pinned\n" +
		"docker.io/library/busybox:1\n" +
		gar + "/bad name:1\n" +
		gar + "/Upper:1\n" +
		gar + "/plain"
	entries, err := Parse(strings.NewReader(in), mustPrefixes(t, gar, dst))
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		line     int
		src, dst string
		ref      string
		errIs    error
	}
	wants := []want{
		{line: 3, src: gar + "/ac-web:v3.1.0", dst: dst + "/ac-web:v3.1.0", ref: "v3.1.0"},
		{line: 5, src: gar + "/redis@" + dgA, dst: dst + "/redis@" + dgA, ref: dgA},
		{line: 6, src: gar + "/nginx:1.25@" + dgA, dst: dst + "/nginx:1.25@" + dgA, ref: "1.25@" + dgA},
		{line: 7, errIs: ErrPrefix},
		{line: 8, errIs: ErrReference},
		{line: 9, errIs: ErrReference},
		{line: 10, src: gar + "/plain:latest", dst: dst + "/plain:latest", ref: "latest"},
	}
	if len(entries) != len(wants) {
		t.Fatalf("got %d entries, want %d: %+v", len(entries), len(wants), entries)
	}
	for i, w := range wants {
		e := entries[i]
		if e.Line != w.line {
			t.Errorf("entry %d: line %d, want %d", i, e.Line, w.line)
		}
		if w.errIs != nil {
			if !errors.Is(e.Err, w.errIs) {
				t.Errorf("line %d: err %v, want %v", e.Line, e.Err, w.errIs)
			}
			var le *LineError
			if !errors.As(e.Err, &le) || le.Line != w.line || !strings.HasPrefix(e.Err.Error(), "line ") {
				t.Errorf("line %d: error %q does not name its line", e.Line, e.Err)
			}
			continue
		}
		if e.Err != nil {
			t.Errorf("line %d: %v", e.Line, e.Err)
			continue
		}
		if got := e.Source.String(); got != w.src {
			t.Errorf("line %d: source %s, want %s", e.Line, got, w.src)
		}
		if got := e.Target.String(); got != w.dst {
			t.Errorf("line %d: target %s, want %s", e.Line, got, w.dst)
		}
		if got := e.Source.Reference(); got != w.ref {
			t.Errorf("line %d: reference %s, want %s", e.Line, got, w.ref)
		}
	}
	if e := entries[0]; e.Source.Registry != "europe-west1-docker.pkg.dev" || e.Source.Repo != "appcircle/docker-registry/ac-web" ||
		e.Target.Registry != "reg.appcircle.spacetech.com" || e.Target.Repo != "appcircle/ac-web" {
		t.Errorf("split wrong: %+v", e)
	}
}

func TestParseRef(t *testing.T) {
	cases := []struct {
		in   string
		want Ref
		bad  bool
	}{
		{in: "nginx", want: Ref{"index.docker.io", "library/nginx", "latest", ""}},
		{in: "docker.io/library/nginx:1.25", want: Ref{"index.docker.io", "library/nginx", "1.25", ""}},
		{in: "127.0.0.1:5000/a/b:c", want: Ref{"127.0.0.1:5000", "a/b", "c", ""}},
		{in: "127.0.0.1:5000/a/b", want: Ref{"127.0.0.1:5000", "a/b", "latest", ""}},
		{in: "localhost:5000/a@" + dgA, want: Ref{"localhost:5000", "a", "", dgA}},
		{in: "r.io/a:t@" + dgA, want: Ref{"r.io", "a", "t", dgA}},
		{in: "r.io/a:", bad: true},
		{in: "r.io/a@sha256:abc", bad: true},
		{in: "r.io/a@" + strings.ToUpper(dgA), bad: true},
		{in: "r.io/a@" + dgA + "@" + dgA, bad: true},
		{in: "https://r.io/a:1", bad: true},
		{in: "r.io/a b", bad: true},
		{in: "r.io/A:1", bad: true},
		{in: "r.io/a:-x", bad: true},
		{in: "docker.io/library/../../victim/app3:1", bad: true},
		{in: "r.io/a/./b:1", bad: true},
		{in: "r.io/a:..", bad: true},
		{in: "r.io/a__b--c.d/e:1", want: Ref{"r.io", "a__b--c.d/e", "1", ""}},
		{in: "r.io/a:" + strings.Repeat("x", 129), bad: true},
		{in: "docker pull r.io/a:1", bad: true},
		{in: "", bad: true},
	}
	for _, c := range cases {
		got, err := ParseRef(c.in)
		if c.bad {
			if err == nil || !errors.Is(err, ErrReference) {
				t.Errorf("ParseRef(%q) = %+v, %v; want ErrReference", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestNewPrefixes(t *testing.T) {
	cases := []struct {
		from, to string
		errHas   string
	}{
		{from: gar, to: dst},
		{from: "", to: ""},
		{from: gar, to: "127.0.0.1:5000"},
		{from: gar, to: dst + "/", errHas: `must not end with "/"`},
		{from: gar + "/", to: dst, errHas: `must not end with "/"`},
		{from: gar, to: "", errHas: "give both or neither"},
		{from: "", to: dst, errHas: "give both or neither"},
		{from: gar, to: "http://" + dst, errHas: "want a registry host"},
		{from: gar, to: "reg/App", errHas: "destination prefix"},
	}
	for _, c := range cases {
		_, err := NewPrefixes(c.from, c.to)
		if c.errHas == "" {
			if err != nil {
				t.Errorf("NewPrefixes(%q, %q): %v", c.from, c.to, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.errHas) {
			t.Errorf("NewPrefixes(%q, %q) = %v; want error containing %q", c.from, c.to, err, c.errHas)
		}
	}
}

func TestPrefixBoundary(t *testing.T) {
	p := mustPrefixes(t, "r.io/app", "m.io/x")
	for in, want := range map[string]string{
		"r.io/app/a:1":       "m.io/x/a:1",
		"r.io/app:1":         "m.io/x:1",
		"r.io/app@" + dgA:    "m.io/x@" + dgA,
		"r.io/application:1": "",
		"r.io/ap:1":          "",
		"q.io/app/a:1":       "",
	} {
		got, err := p.Map(in)
		if want == "" {
			if !errors.Is(err, ErrPrefix) {
				t.Errorf("Map(%q) = %q, %v; want ErrPrefix", in, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("Map(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParseLineEdges(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		lines []int
		bad   []int
	}{
		{name: "empty", in: ""},
		{name: "only comments", in: "# a\r\n#b\n   \n"},
		{name: "lone CR line", in: "r.io/a:1\r\n\r\nr.io/b:2\r\n", lines: []int{1, 3}},
		{name: "no final newline", in: "r.io/a:1\nr.io/b:2", lines: []int{1, 2}},
		{name: "too long", in: "r.io/a:1\n" + strings.Repeat("x", MaxLineLen+10) + "\nr.io/b:2\n", lines: []int{1, 2, 3}, bad: []int{2}},
		{name: "two refs on a line", in: "r.io/a:1 r.io/b:2\n", lines: []int{1}, bad: []int{1}},
		{name: "hash inside a ref", in: "r.io/a#b:1\n", lines: []int{1}, bad: []int{1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es, err := Parse(strings.NewReader(c.in), Prefixes{})
			if err != nil {
				t.Fatal(err)
			}
			var lines, bad []int
			for _, e := range es {
				lines = append(lines, e.Line)
				if e.Err != nil {
					bad = append(bad, e.Line)
				}
			}
			if !equal(lines, c.lines) || !equal(bad, c.bad) {
				t.Errorf("lines %v bad %v; want %v bad %v (%+v)", lines, bad, c.lines, c.bad, es)
			}
		})
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		f.n++
		return copy(p, "r.io/a:1\n"), nil
	}
	return 0, errors.New("disk on fire")
}

func TestParseReadError(t *testing.T) {
	es, err := Parse(&failingReader{}, Prefixes{})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v", err)
	}
	if len(es) != 1 || es[0].Err != nil {
		t.Fatalf("entries before the error: %+v", es)
	}
}
