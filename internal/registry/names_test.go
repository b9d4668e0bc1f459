package registry_test

import (
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/regmirror/regmirror/internal/registry"
)

func TestCheckRepository(t *testing.T) {
	for _, ok := range []string{"a", "library/busybox", "team/app-1", "a__b", "a--b/c.d", "x_y/z9", strings.Repeat("a", 255)} {
		if err := registry.CheckRepository(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "..", ".", "a/..", "team/../../victim/app2", "a//b", "/a", "a/", "A", "a b", "a.", "-a", "a___b",
		"a/./b", "a\x1b[31m", "a%2f..", "a:b", "a@b", strings.Repeat("a", 256)} {
		err := registry.CheckRepository(bad)
		if !errors.Is(err, registry.ErrInvalidName) {
			t.Errorf("%q accepted (%v)", bad, err)
		}
	}
}

func TestCheckTag(t *testing.T) {
	for _, ok := range []string{"1", "ok1", "latest", "_x", "1.2.3-rc.1", "A_b-C.d", strings.Repeat("t", 128)} {
		if err := registry.CheckTag(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "..", ".", "-x", "a/b", "x y", strings.Repeat("t", 129), strings.Repeat("t", 200),
		"../../../victim/app/manifests/latest", "a:b", "a@b", "x\x00", "\x1b]0;title\a", "é"} {
		err := registry.CheckTag(bad)
		if !errors.Is(err, registry.ErrInvalidName) {
			t.Errorf("%q accepted (%v)", bad, err)
		}
	}
}

func TestCheckDigest(t *testing.T) {
	good := "sha256:" + strings.Repeat("a", 64)
	if err := registry.CheckDigest(good); err != nil {
		t.Error(err)
	}
	if err := registry.CheckDigest("sha512:" + strings.Repeat("0", 128)); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "sha256:", "sha256:" + strings.Repeat("a", 63), "sha256:" + strings.Repeat("A", 64),
		"sha256:" + strings.Repeat("a", 65), "md5:" + strings.Repeat("a", 32), "sha256:../" + strings.Repeat("a", 61), good + "/.."} {
		if err := registry.CheckDigest(bad); !errors.Is(err, registry.ErrInvalidName) {
			t.Errorf("%q accepted (%v)", bad, err)
		}
	}
}

func TestNameErrorQuotesAndSaysWhy(t *testing.T) {
	err := registry.CheckTag("\x1b[31mred\x00")
	msg := err.Error()
	if strings.ContainsAny(msg, "\x1b\x00") {
		t.Errorf("control characters in %q", msg)
	}
	if !strings.Contains(msg, `"\x1b[31mred\x00"`) || !strings.Contains(msg, "breaks the distribution grammar") {
		t.Errorf("message %q does not quote the tag or name the grammar", msg)
	}
}

func TestParseImageName(t *testing.T) {
	d := "sha256:" + strings.Repeat("b", 64)
	for _, tc := range []struct {
		in                        string
		domain, path, tag, digest string
	}{
		{"docker.io/library/busybox:1.36", "docker.io", "library/busybox", "1.36", ""},
		{"localhost:5000/a/b", "localhost:5000", "a/b", "", ""},
		{"localhost/a", "localhost", "a", "", ""},
		{"busybox", "", "busybox", "", ""},
		{"team/app:1@" + d, "", "team/app", "1", d},
		{"127.0.0.1:5000/x@" + d, "127.0.0.1:5000", "x", "", d},
		{"[::1]:5000/x:y", "[::1]:5000", "x", "y", ""},
	} {
		n, err := registry.ParseImageName(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if n.Domain != tc.domain || n.Path != tc.path || n.Tag != tc.tag || n.Digest != tc.digest {
			t.Errorf("%q: got %+v", tc.in, n)
		}
	}
	for _, bad := range []string{"docker.io/library/../../victim/app3:1", "docker.io/../x", "x:..", "x:-x", "x@sha256:1",
		"ex ample.com/x", "a.b/c:x y", "", "docker.io/", ":1"} {
		if _, err := registry.ParseImageName(bad); !errors.Is(err, registry.ErrInvalidName) {
			t.Errorf("%q accepted (%v)", bad, err)
		}
	}
}

// FuzzNames checks the validators' promise: whatever they accept is safe to
// put into a URL path as it is. No dot segment, no character a URL would
// escape, no control character; and a valid tag or repository stays one
// piece (or, for a repository, its own components) after path cleaning.
func FuzzNames(f *testing.F) {
	for _, s := range []string{"library/busybox", "1.36", "..", "a/../b", "-x", "x y", "sha256:" + strings.Repeat("a", 64),
		"docker.io/library/../../victim/app3:1", "localhost:5000/a:b", "a__b--c.d", "\x1b[31m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		safe := func(kind string) {
			if !utf8.ValidString(s) || strings.ContainsAny(s, " %?#\\\x00\x7f") {
				t.Fatalf("%s %q accepted with an unsafe character", kind, s)
			}
			for _, seg := range strings.Split(s, "/") {
				if seg == "" || seg == "." || seg == ".." {
					t.Fatalf("%s %q accepted with segment %q", kind, s, seg)
				}
			}
			if (&url.URL{Path: "/v2/" + s}).EscapedPath() != "/v2/"+s {
				t.Fatalf("%s %q needs escaping in a URL", kind, s)
			}
			if path.Clean("/v2/"+s) != "/v2/"+s {
				t.Fatalf("%s %q changes when a proxy cleans the path", kind, s)
			}
		}
		if registry.CheckRepository(s) == nil {
			safe("repository")
			if len(s) > registry.MaxRepositoryLength {
				t.Fatalf("repository of %d characters accepted", len(s))
			}
		}
		if registry.CheckTag(s) == nil {
			safe("tag")
			if strings.Contains(s, "/") || len(s) > 128 || s[0] == '.' || s[0] == '-' {
				t.Fatalf("tag %q accepted", s)
			}
		}
		if registry.CheckDigest(s) == nil {
			safe("digest")
		}
		if n, err := registry.ParseImageName(s); err == nil {
			if registry.CheckRepository(n.Path) != nil || (n.Tag != "" && registry.CheckTag(n.Tag) != nil) ||
				(n.Digest != "" && registry.CheckDigest(n.Digest) != nil) {
				t.Fatalf("image name %q parsed into an invalid %+v", s, n)
			}
		} else if !errors.Is(err, registry.ErrInvalidName) {
			t.Fatalf("image name %q: error %v does not wrap ErrInvalidName", s, err)
		}
	})
}
