// Package imagelist reads image list files: the docker-images.txt a vendor
// ships for offline installs, one image reference per line. It parses each
// line on its own, so one bad line is an error for that line (with its
// number) and never for the file, and it maps a source prefix to a target
// prefix the way the vendors' bash loops do (${IMAGE/$SRC/$DEST}), only
// checked. It is pure: no I/O beyond the reader it is handed, no network.
//
// The format, as users really have it:
//
//   - one reference per line: REPO:TAG, REPO@DIGEST or REPO:TAG@DIGEST
//     (REPO with its registry host, as docker pull takes it; a REPO with
//     neither tag nor digest means :latest, as for docker pull);
//   - blank lines, and comment lines whose first non-blank character is
//     "#"; text after a "#" that follows whitespace is a comment too;
//   - leading and trailing whitespace, CRLF line endings, a UTF-8 byte
//     order mark, and a last line without a newline.
package imagelist

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/regmirror/regmirror/internal/registry"
)

// MaxLineLen bounds one line. A reference is at most a few hundred bytes;
// a longer line is reported as an error for that line, not read on and on.
const MaxLineLen = 4096

// Ref is one parsed image reference.
type Ref struct {
	// Registry is "host[:port]"; Docker Hub is "index.docker.io".
	Registry string
	// Repo is the repository path inside the registry.
	Repo string
	// Tag and Digest: at least one is set.
	Tag    string
	Digest string
}

// Reference is the part after the repository as the engine's tag filters
// take it: "tag", "sha256:..." or "tag@sha256:...".
func (r Ref) Reference() string {
	switch {
	case r.Tag != "" && r.Digest != "":
		return r.Tag + "@" + r.Digest
	case r.Tag != "":
		return r.Tag
	}
	return r.Digest
}

// String renders the reference in full, as docker pull takes it.
func (r Ref) String() string {
	s := r.Registry + "/" + r.Repo
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Entry is one line that names an image (blank and comment lines have no
// entry). Err is set when the line could not be used; Source and Target are
// then empty.
type Entry struct {
	Line   int    // 1-based line number in the file
	Text   string // the reference as written, trimmed, comment removed
	Source Ref
	Target Ref // equal to Source when no prefixes are given
	Err    error
}

// LineError is the error of an Entry, naming the line.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// Errors the parser reports for a line or for the prefixes.
var (
	ErrPrefix    = errors.New("does not start with the source prefix")
	ErrReference = errors.New("not an image reference")
	ErrTooLong   = fmt.Errorf("line longer than %d bytes", MaxLineLen)
)

// Prefixes maps images under From to the same path under To. The zero
// value maps nothing: every image is its own target.
type Prefixes struct {
	From, To string
}

// NewPrefixes checks a SRC_PREFIX / DEST_PREFIX pair. Both or neither must
// be given. A prefix ending in "/" is rejected: the path after the prefix
// already starts with one, so "reg/app/" would make "reg/app//name".
func NewPrefixes(from, to string) (Prefixes, error) {
	if (from == "") != (to == "") {
		return Prefixes{}, errors.New("source and destination prefixes go together: give both or neither")
	}
	if from == "" {
		return Prefixes{}, nil
	}
	for _, p := range []struct{ what, v string }{{"source", from}, {"destination", to}} {
		if strings.HasSuffix(p.v, "/") {
			return Prefixes{}, fmt.Errorf("%s prefix %q must not end with \"/\": the image path is appended after a \"/\" of its own, so it would become %q",
				p.what, p.v, p.v+"/name:tag")
		}
		if strings.ContainsAny(p.v, " \t\r\n@#") || strings.Contains(p.v, "://") {
			return Prefixes{}, fmt.Errorf("%s prefix %q: want a registry host and optional path, such as reg.example.com/team", p.what, p.v)
		}
		if _, err := name.NewRepository(p.v+"/x", name.WeakValidation); err != nil {
			return Prefixes{}, fmt.Errorf("%s prefix %q: %w", p.what, p.v, err)
		}
	}
	return Prefixes{From: from, To: to}, nil
}

// Map returns the target text for a reference written under p.From, or
// ErrPrefix. The prefix must end at a path, tag or digest boundary, so
// "reg/app" does not claim "reg/application/x".
func (p Prefixes) Map(text string) (string, error) {
	if p.From == "" {
		return text, nil
	}
	rest, ok := strings.CutPrefix(text, p.From)
	if !ok || rest == "" || !strings.ContainsRune("/:@", rune(rest[0])) {
		return "", fmt.Errorf("%w %q", ErrPrefix, p.From)
	}
	return p.To + rest, nil
}

// Parse reads a list. It returns an entry for every line that is neither
// blank nor a comment, in file order, with Err set on lines that could not
// be used; the error is non-nil only when r itself fails.
func Parse(r io.Reader, p Prefixes) ([]Entry, error) {
	br := bufio.NewReader(r)
	var out []Entry
	for n := 1; ; n++ {
		line, tooLong, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return out, fmt.Errorf("line %d: %w", n, err)
		}
		eof := errors.Is(err, io.EOF)
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		if tooLong {
			out = append(out, Entry{Line: n, Text: truncate(strings.TrimSpace(line)), Err: &LineError{n, ErrTooLong}})
		} else if text := stripComment(line); text != "" {
			out = append(out, parseEntry(n, text, p))
		}
		if eof {
			return out, nil
		}
	}
}

// readLine returns the next line without its "\n" (or "\r\n"). A line over
// MaxLineLen is consumed to its end and reported as too long. The error is
// io.EOF with the last line, whether or not that line ended in a newline.
func readLine(br *bufio.Reader) (string, bool, error) {
	var sb strings.Builder
	tooLong := false
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			return sb.String(), tooLong, err
		}
		if sb.Len()+len(chunk) > MaxLineLen {
			tooLong = true
		} else {
			sb.Write(chunk)
		}
		if !isPrefix {
			return sb.String(), tooLong, nil
		}
	}
}

// stripComment trims a line and removes a comment: a whole-line comment,
// or "#" after whitespace.
func stripComment(line string) string {
	s := strings.TrimSpace(line)
	if strings.HasPrefix(s, "#") {
		return ""
	}
	for i := 1; i < len(s); i++ {
		if s[i] == '#' && (s[i-1] == ' ' || s[i-1] == '\t') {
			return strings.TrimSpace(s[:i])
		}
	}
	return s
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func parseEntry(n int, text string, p Prefixes) Entry {
	e := Entry{Line: n, Text: text}
	fail := func(err error) Entry {
		e.Err = &LineError{Line: n, Err: err}
		return e
	}
	src, err := ParseRef(text)
	if err != nil {
		return fail(err)
	}
	mapped, err := p.Map(text)
	if err != nil {
		return fail(err)
	}
	dst, err := ParseRef(mapped)
	if err != nil {
		return fail(fmt.Errorf("target %q: %w", mapped, err))
	}
	e.Source, e.Target = src, dst
	return e
}

// ParseRef parses one reference: REPO[:TAG][@DIGEST], with :latest implied
// when neither tag nor digest is given.
func ParseRef(s string) (Ref, error) {
	bad := func(why string, a ...any) (Ref, error) {
		return Ref{}, fmt.Errorf("%w: %q: %s", ErrReference, s, fmt.Sprintf(why, a...))
	}
	if s == "" {
		return bad("empty")
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }); i >= 0 {
		return bad("contains whitespace or a control character")
	}
	if strings.Contains(s, "://") {
		return bad("a reference has no scheme; write it as docker pull takes it")
	}
	base, digest, hasAt := strings.Cut(s, "@")
	if hasAt {
		if strings.Contains(digest, "@") {
			return bad("more than one \"@\"")
		}
		if err := registry.CheckDigest(digest); err != nil {
			return bad("%v", err)
		}
	}
	repoStr, tag := base, ""
	if i := strings.LastIndexByte(base, ':'); i >= 0 && !strings.Contains(base[i+1:], "/") {
		repoStr, tag = base[:i], base[i+1:]
		if tag == "" {
			return bad("empty tag")
		}
	}
	repo, err := name.NewRepository(repoStr, name.WeakValidation)
	if err != nil {
		return bad("%v", err)
	}
	// go-containerregistry checks characters only: "a/../b" and "-x"
	// pass it, and would reach a request path.
	if err := registry.CheckRepository(repo.RepositoryStr()); err != nil {
		return bad("%v", err)
	}
	if tag != "" {
		if err := registry.CheckTag(tag); err != nil {
			return bad("%v", err)
		}
	} else if !hasAt {
		tag = "latest"
	}
	return Ref{Registry: repo.RegistryStr(), Repo: repo.RepositoryStr(), Tag: tag, Digest: digest}, nil
}
