package config

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzEnv and fuzzReadFile keep the fuzzer off the real environment and
// file system: only the variable PW and the file "pw" exist.
func fuzzEnv(name string) (string, bool) {
	if name == "PW" {
		return "secret", true
	}
	return "", false
}

func fuzzReadFile(path string) ([]byte, error) {
	if path == "pw" {
		return []byte("secret\n"), nil
	}
	return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
}

// FuzzLoad checks that Load never panics, that every error it returns is
// made of *Error values naming the file, and that what it accepts is a
// usable configuration.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"dregsy-spaceone-core.yaml", "dregsy-spaceone-plugin.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		// Broken variants of the fixtures.
		s := string(data)
		f.Add([]byte(strings.Replace(s, "registry: 127.0.0.1:5000", "registry: 127.0.0.1:5000/", 1)))
		f.Add([]byte(strings.Replace(s, "interval: 21600", "interval: 10", 1)))
		f.Add([]byte(strings.Replace(s, "    verbose: true", "    verbos: true", 1)))
		f.Add([]byte(strings.Replace(s, "relay: skopeo", "relay: podman", 1)))
		f.Add([]byte(s[:len(s)/2]))
	}
	f.Add([]byte(""))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("tasks:\n  - name: t\n   bad: [\n"))
	f.Add([]byte(task("    interval: 6h") + "  - name: t\n    source: &s {registry: 'http://h:1', username: u, password: '${PW}'}\n" +
		"    target: {<<: *s, password-file: pw, password: x}\n    mappings: [{from: 'regex:(', to: 'regex:a'}, {from: A, platform: linux}]\n"))
	f.Add([]byte("a: &a [*a]\ntasks: *a\n"))
	f.Add([]byte(task("        tags: ['regex: (', 'semver: >=x', 'keep: latest 0']", "        platform: all")))

	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := load(bytes.NewReader(data), "fuzz.yaml", fuzzEnv, fuzzReadFile)
		if err != nil {
			if cfg != nil {
				t.Fatalf("config returned with error %v", err)
			}
			checkErrorTree(t, err)
			return
		}
		if cfg == nil || cfg.File != "fuzz.yaml" || len(cfg.Tasks) == 0 {
			t.Fatalf("bad config %+v", cfg)
		}
		for _, tk := range cfg.Tasks {
			if tk.Name == "" || tk.Line <= 0 || len(tk.Mappings) == 0 || tk.Source.Registry == "" || tk.Target.Registry == "" {
				t.Fatalf("bad task %+v", tk)
			}
			for _, m := range tk.Mappings {
				if m.From == "" || m.Tags == nil || m.Line <= 0 {
					t.Fatalf("bad mapping %+v", m)
				}
			}
		}
	})
}

// checkErrorTree checks that err is an *Error or a join of them, each with
// a file and a message.
func checkErrorTree(t *testing.T, err error) {
	t.Helper()
	switch e := err.(type) {
	case *Error:
		if e.File == "" || e.Msg == "" || e.Line < 0 {
			t.Fatalf("incomplete error %#v", e)
		}
	case interface{ Unwrap() []error }:
		errs := e.Unwrap()
		if len(errs) == 0 {
			t.Fatalf("empty joined error")
		}
		for _, m := range errs {
			checkErrorTree(t, m)
		}
	default:
		t.Fatalf("error %T %v is not an *Error", err, err)
	}
}
