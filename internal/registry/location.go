package registry

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// The location grammar, parsed here and nowhere else:
//
//	oci:PATH                      an OCI image layout directory
//	[https://]host[:port]         a registry over HTTPS
//	http://host[:port]            a registry that may be spoken to over plain HTTP
//
// A new kind of store (an S3-backed layout, say) is a new entry in kinds
// below and a constructor in registry/stores.

// Kind is what sort of store a location names.
type Kind int

const (
	// KindRegistry is a registry spoken to over the distribution API.
	KindRegistry Kind = iota
	// KindLayout is an OCI image layout directory ("oci:PATH").
	KindLayout
)

// kindInfo is what the rest of regmirror may ask about a kind.
type kindInfo struct {
	name string
	// prefix starts every location of the kind and is kept in
	// Endpoint.Registry; the kind without one is the default.
	prefix string
	// network: reached over HTTP(S), so it has a host, TLS settings,
	// credentials, rate limits, a request cap, and counts pulls.
	network bool
}

var kinds = []kindInfo{
	KindRegistry: {name: "registry", network: true},
	KindLayout:   {name: "OCI layout", prefix: LayoutPrefix},
}

// LayoutPrefix marks an OCI image layout used as a registry.
const LayoutPrefix = "oci:"

// String names the kind in messages: "registry", "OCI layout".
func (k Kind) String() string { return kinds[k].name }

// Network reports whether stores of this kind are reached over HTTP(S).
// Only they have a host, TLS settings and credentials to log in with, rate
// limits, a per-host request cap, and pulls that a registry counts; the
// other kinds are local and take none of those settings.
func (k Kind) Network() bool { return kinds[k].network }

// Kind says what sort of store the endpoint names.
func (e Endpoint) Kind() Kind {
	for k, info := range kinds {
		if info.prefix != "" && strings.HasPrefix(e.Registry, info.prefix) {
			return Kind(k)
		}
	}
	return KindRegistry
}

// LayoutEndpoint is the endpoint of the OCI layout in dir.
func LayoutEndpoint(dir string) Endpoint { return Endpoint{Registry: LayoutPrefix + dir} }

// Path is the directory of a location that names one ("oci:PATH"), else "".
func (e Endpoint) Path() string {
	if p := kinds[e.Kind()].prefix; p != "" {
		return strings.TrimPrefix(e.Registry, p)
	}
	return ""
}

// LocationError says what is wrong with a location as written.
type LocationError struct {
	Location string
	// Problem says what is wrong, for a message that names the location
	// its own way (config adds the file and line).
	Problem string
}

func (e *LocationError) Error() string { return fmt.Sprintf("location %q: %s", e.Location, e.Problem) }

// ParseLocation parses a location as a config or a flag writes it (see the
// grammar above) into an endpoint with Registry and PlainHTTP set:
// Registry is "host[:port]" for a registry, or the location itself for a
// kind with a prefix ("oci:PATH"). On error the endpoint holds what could
// be parsed, so that later checks can still name it.
func ParseLocation(s string) (Endpoint, error) {
	for k, info := range kinds {
		if info.prefix == "" {
			continue
		}
		if path, ok := strings.CutPrefix(s, info.prefix); ok {
			ep := Endpoint{Registry: s}
			if strings.TrimSpace(path) == "" {
				return ep, &LocationError{s, "an " + Kind(k).String() + " needs a directory: " + info.prefix + "PATH"}
			}
			return ep, nil
		}
	}
	host, plain, problem := cutScheme(s)
	host = ecrPublicHost(host)
	ep := Endpoint{Registry: host, PlainHTTP: plain}
	if problem == "" {
		problem = hostProblem(host)
	}
	if problem == "" && ep.Kind() != KindRegistry {
		// "http://oci:5000" would be stored as "oci:5000", which reads
		// as the layout directory 5000: a host may not look like a
		// location of another kind.
		problem = "a registry host must not start with " + kinds[ep.Kind()].prefix + " (write its full name or address)"
	}
	if problem != "" {
		return ep, &LocationError{s, problem}
	}
	return ep, nil
}

// ParseLocationPath parses a registry location followed by an optional
// repository path, as command lines take it:
// "[http://|https://]host[:port][/path]". The path comes back without
// leading or trailing slashes. Layouts are not registry locations here.
func ParseLocationPath(s string) (ep Endpoint, path string, err error) {
	rest, plain, problem := cutScheme(s)
	host, path, _ := strings.Cut(strings.Trim(rest, "/"), "/")
	ep = Endpoint{Registry: ecrPublicHost(host), PlainHTTP: plain}
	if problem == "" {
		if ep.Kind() != KindRegistry {
			problem = "an " + ep.Kind().String() + " is not a registry"
		} else {
			problem = hostProblem(ep.Registry)
		}
	}
	if problem != "" {
		return ep, path, &LocationError{s, problem}
	}
	return ep, path, nil
}

// cutScheme removes http:// (plain HTTP allowed) or https:// from s, in
// any case; another scheme is a problem.
func cutScheme(s string) (rest string, plainHTTP bool, problem string) {
	const httpPrefix, httpsPrefix = "http://", "https://"
	switch lower := strings.ToLower(s); {
	case strings.HasPrefix(lower, httpPrefix):
		return s[len(httpPrefix):], true, ""
	case strings.HasPrefix(lower, httpsPrefix):
		return s[len(httpsPrefix):], false, ""
	case strings.Contains(s, "://"):
		return s, false, "only http:// and https:// may prefix a registry"
	}
	return s, false, ""
}

// ecrPublicHost drops what dregsy puts before Amazon ECR Public's host
// (ACCOUNT[:REGION]@public.ecr.aws): it only served dregsy's own ECR lister.
func ecrPublicHost(host string) string {
	if i := strings.LastIndex(host, "@"); i >= 0 && host[i+1:] == "public.ecr.aws" {
		return host[i+1:]
	}
	return host
}

// hostProblem checks a registry's host[:port], "" when it is fine.
func hostProblem(host string) string {
	switch {
	case host == "":
		return "no host"
	case strings.HasSuffix(host, "/"):
		return "trailing \"/\" is not allowed: write host[:port]"
	case strings.Contains(host, "/"):
		return "must be host[:port] without a path: put the path into the mappings"
	}
	if _, err := name.NewRegistry(host, name.StrictValidation); err != nil {
		return "not a valid host[:port]"
	}
	if u, err := url.Parse("//" + host); err != nil || u.Hostname() == "" {
		return "not a valid host[:port]"
	}
	return ""
}
