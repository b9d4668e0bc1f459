package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults and limits, as dregsy has them.
const (
	defaultListerItems = 100
	defaultListerCache = time.Hour
	minTaskInterval    = 30 * time.Second
	minAuthRefresh     = time.Hour
)

// Limits of our own.
const (
	maxErrors            = 100      // errors reported before giving up
	maxConfigSize        = 16 << 20 // bytes
	unnamedConfiguration = "<config>"
)

// Load reads, strictly decodes and validates a configuration. name is the
// file name used in messages ("name:line: ..."). ${NAME} references in
// username, password and password-file are expanded from the environment,
// password-file and ca-file are read: Load touches the local file system
// and the environment but never the network.
//
// On failure the error is an *Error, or several joined with errors.Join;
// every problem found is reported, not only the first.
func Load(r io.Reader, name string) (*Config, error) {
	return load(r, name, os.LookupEnv, readSmallFile)
}

// LoadFile is Load on the file at path.
func LoadFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, ReadError(path, err)
	}
	defer f.Close()
	return load(f, path, os.LookupEnv, readSmallFile)
}

// LoadFileSourcesOnly is LoadFile for a command that never reaches the
// targets (export writes an air-gap bundle instead): the targets' syntax is
// still checked, but their credentials, password files, environment
// references and CA files are not resolved, because they belong to the far
// side of the gap and need not exist here. The targets of the result carry
// no credentials.
func LoadFileSourcesOnly(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, ReadError(path, err)
	}
	defer f.Close()
	return load(f, path, os.LookupEnv, readSmallFile, func(l *loader) { l.sourcesOnly = true })
}

// ReadError is the error for a configuration file that cannot be read:
// the file is named once, the path an *fs.PathError repeats is dropped.
func ReadError(path string, err error) error {
	return &Error{File: path, Msg: "cannot read configuration: " + ioErrText(err), err: err}
}

// maxSideFile bounds the files a configuration names (password-file,
// ca-file).
const maxSideFile = 1 << 20

// readSmallFile reads a regular file of at most maxSideFile bytes: a
// configuration naming /dev/zero or a FIFO must fail, not hang.
func readSmallFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSideFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSideFile {
		return nil, fmt.Errorf("larger than %d KiB", maxSideFile>>10)
	}
	return data, nil
}

// ioErrText is the text of err without the path an *fs.PathError repeats.
func ioErrText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// loader holds the state of one Load.
type loader struct {
	file      string
	lookupEnv func(string) (string, bool)
	readFile  func(string) ([]byte, error)
	// sourcesOnly leaves the targets' secrets and files unresolved
	// (LoadFileSourcesOnly).
	sourcesOnly bool

	errs   []error
	visits int
	tooBig bool

	// printed is the printed value of the key being read (see fields).
	printed *yaml.Node
	// schema, when not nil, collects the keys each kind of mapping
	// knows: what -> key (tests only).
	schema map[string]map[string]bool
}

func (l *loader) errorf(line int, format string, args ...any) {
	switch {
	case len(l.errs) < maxErrors:
		l.errs = append(l.errs, &Error{File: l.file, Line: line, Msg: fmt.Sprintf(format, args...)})
	case len(l.errs) == maxErrors:
		l.errs = append(l.errs, &Error{File: l.file, Msg: "too many errors, giving up"})
		l.tooBig = true
		l.visits = maxVisits // stop walking
	}
}

// err returns the problems found, nil if none, in line order (problems
// with the whole file first).
func (l *loader) err() error {
	sort.SliceStable(l.errs, func(i, j int) bool {
		return l.errs[i].(*Error).Line < l.errs[j].(*Error).Line
	})
	switch len(l.errs) {
	case 0:
		return nil
	case 1:
		return l.errs[0]
	default:
		return errors.Join(l.errs...)
	}
}

// load is Load with the environment and the file system injected.
func load(r io.Reader, name string, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error), opts ...func(*loader)) (*Config, error) {
	if name == "" {
		name = unnamedConfiguration
	}
	l := &loader{file: name, lookupEnv: lookupEnv, readFile: readFile}
	for _, o := range opts {
		o(l)
	}

	data, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
	if err != nil {
		return nil, &Error{File: name, Msg: "cannot read configuration: " + ioErrText(err), err: err}
	}
	if len(data) > maxConfigSize {
		return nil, &Error{File: name, Msg: fmt.Sprintf("configuration is larger than %d MiB", maxConfigSize>>20)}
	}

	root := l.parse(data)
	if root == nil {
		return nil, l.err()
	}
	cfg := l.config(root)
	if err := l.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// yamlLineRE picks the line out of a yaml.v3 syntax error.
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError reports a yaml.v3 parse error. yaml.v3 reports the line of
// the enclosing block rather than of the problem for most parser errors
// (and counts it from 0), and no line at all for some, so the line is
// found by parsing prefixes of the file: the problem is on the first line
// whose prefix fails with the same message. A prefix that cuts a
// multi-line construct fails with another message, so the search is a
// binary search on "fails the same way", which holds from the problem line
// on; yaml.v3's own line is the fallback.
func (l *loader) syntaxError(data []byte, err error) {
	_, msg := splitYAMLError(err)
	lines := bytes.SplitAfter(data, []byte("\n"))
	// fails(i) reports whether lines 1..i+1 fail the same way; it holds
	// for the whole file, i = len(lines)-1.
	fails := func(i int) bool {
		perr := parseAll(bytes.Join(lines[:i+1], nil))
		if perr == nil {
			return false
		}
		_, pmsg := splitYAMLError(perr)
		return pmsg == msg
	}
	i := min(sort.Search(len(lines), fails), len(lines)-1)
	if i > 0 && len(lines[i]) == 0 {
		i-- // the empty remainder after a final newline
	}
	l.errorf(i+1, "invalid YAML: %s", msg)
}

// splitYAMLError splits a yaml.v3 error into its line (0 if none) and
// message.
func splitYAMLError(err error) (int, string) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return line, m[2]
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}

// parseAll parses every document in data into nodes.
func parseAll(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// parse parses data into a node tree and returns the root mapping, or nil
// after reporting why there is none. The file must hold exactly one
// document; empty documents after it (a trailing "---") are tolerated.
func (l *loader) parse(data []byte) *yaml.Node {
	if len(bytes.TrimSpace(data)) == 0 {
		l.errorf(0, "configuration is empty")
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.errorf(0, "configuration is empty")
		} else {
			l.syntaxError(data, err)
		}
		return nil
	}
	for {
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			l.syntaxError(data, err)
			return nil
		}
		if len(extra.Content) > 0 && !isNull(extra.Content[0]) {
			l.errorf(extra.Line, "more than one YAML document: put all tasks into one document")
			return nil
		}
	}
	if len(doc.Content) == 0 {
		l.errorf(0, "configuration is empty")
		return nil
	}
	root := l.resolve(doc.Content[0])
	if isNull(root) {
		l.errorf(0, "configuration is empty")
		return nil
	}
	if root.Kind != yaml.MappingNode {
		l.errorf(root.Line, "top level must be a mapping with keys such as relay and tasks, not %s", kindName(root))
		return nil
	}
	return root
}
