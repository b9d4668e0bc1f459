package registry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/regmirror/regmirror/internal/registry"
)

// FuzzParseLocation: a location is untrusted input (a config, a flag).
// Whatever it is, ParseLocation returns an endpoint or a LocationError, and
// an endpoint it accepts is stable: written back the way a config writes
// it, it parses to the same endpoint.
func FuzzParseLocation(f *testing.F) {
	for _, s := range []string{"reg:5000", "http://127.0.0.1:5000", "HTTPS://reg.example", "oci:/srv/x", "oci:",
		"docker://x", "a@public.ecr.aws", "[::1]:5000", "reg/path", "", "http://", "oci:http://x", "http://oci:5000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ep, err := registry.ParseLocation(s)
		if err != nil {
			var le *registry.LocationError
			if !errors.As(err, &le) || le.Problem == "" {
				t.Fatalf("ParseLocation(%q): %v is not a LocationError with a problem", s, err)
			}
			return
		}
		written := ep.Registry
		if ep.Kind() == registry.KindRegistry {
			if strings.Contains(ep.Registry, "/") || strings.Contains(ep.Registry, "://") || ep.Registry == "" {
				t.Fatalf("ParseLocation(%q) accepted registry %q", s, ep.Registry)
			}
			if ep.PlainHTTP {
				written = "http://" + written
			}
		} else if ep.Path() == "" {
			t.Fatalf("ParseLocation(%q) accepted a %v without a path", s, ep.Kind())
		}
		again, err := registry.ParseLocation(written)
		if err != nil || again != ep {
			t.Fatalf("ParseLocation(%q) = %+v, but %q parses to %+v, %v", s, ep, written, again, err)
		}
	})
}
