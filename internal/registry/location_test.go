package registry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/regmirror/regmirror/internal/registry"
)

func TestParseLocation(t *testing.T) {
	for _, c := range []struct {
		in       string
		registry string
		plain    bool
		kind     registry.Kind
		path     string
		problem  string // a word of the problem; "" for none
	}{
		{in: "reg.example:5000", registry: "reg.example:5000", kind: registry.KindRegistry},
		{in: "https://reg.example", registry: "reg.example", kind: registry.KindRegistry},
		{in: "HTTP://127.0.0.1:5000", registry: "127.0.0.1:5000", plain: true, kind: registry.KindRegistry},
		{in: "123456789012:eu-west-1@public.ecr.aws", registry: "public.ecr.aws", kind: registry.KindRegistry},
		{in: "oci:/srv/layout", registry: "oci:/srv/layout", kind: registry.KindLayout, path: "/srv/layout"},
		{in: "oci:", registry: "oci:", kind: registry.KindLayout, problem: "oci:PATH"},
		{in: "docker://reg", problem: "only http:// and https://"},
		{in: "https://", problem: "no host"},
		{in: "reg.example/", problem: "trailing"},
		{in: "reg.example/library", problem: "without a path"},
		{in: "reg example", problem: "not a valid host"},
		{in: "http://oci:5000", problem: "must not start with oci:"},
	} {
		ep, err := registry.ParseLocation(c.in)
		if c.problem != "" {
			var le *registry.LocationError
			if !errors.As(err, &le) || !strings.Contains(le.Problem, c.problem) || le.Location != c.in {
				t.Errorf("ParseLocation(%q): %v, want a LocationError saying %q", c.in, err, c.problem)
			}
			if c.registry != "" && ep.Registry != c.registry {
				t.Errorf("ParseLocation(%q) kept %q, want %q for later messages", c.in, ep.Registry, c.registry)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseLocation(%q): %v", c.in, err)
			continue
		}
		if ep.Registry != c.registry || ep.PlainHTTP != c.plain || ep.Kind() != c.kind || ep.Path() != c.path {
			t.Errorf("ParseLocation(%q) = %q plain=%v kind=%v path=%q; want %q %v %v %q",
				c.in, ep.Registry, ep.PlainHTTP, ep.Kind(), ep.Path(), c.registry, c.plain, c.kind, c.path)
		}
	}
}

func TestKindCapabilities(t *testing.T) {
	if !registry.KindRegistry.Network() || registry.KindLayout.Network() {
		t.Error("a registry is reached over the network, a layout is not")
	}
	if got := registry.LayoutEndpoint("/x").Kind(); got != registry.KindLayout {
		t.Errorf("LayoutEndpoint is a %v", got)
	}
	if got := (registry.Endpoint{Registry: "index.docker.io"}).Kind(); got != registry.KindRegistry {
		t.Errorf("a host is a %v", got)
	}
}

func TestParseLocationPath(t *testing.T) {
	for in, want := range map[string]string{
		"reg:5000":              "reg:5000 false ",
		"http://reg:5000/a/b/":  "reg:5000 true a/b",
		"https://reg.example/m": "reg.example false m",
	} {
		ep, path, err := registry.ParseLocationPath(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got := ep.Registry + " " + map[bool]string{true: "true", false: "false"}[ep.PlainHTTP] + " " + path; got != want {
			t.Errorf("ParseLocationPath(%q) = %q, want %q", in, got, want)
		}
	}
	for _, in := range []string{"docker://x", "oci:/dir", ""} {
		if _, _, err := registry.ParseLocationPath(in); err == nil {
			t.Errorf("ParseLocationPath(%q) accepted", in)
		}
	}
}
