package registry

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/regmirror/regmirror/internal/registry/transport"
)

// The names regmirror puts into request paths and layout annotations come
// from outside: a source's tag list and catalog, a bundle, an image list, a
// config. Each is checked here against the distribution spec's grammar
// before it is used, so that nothing with a dot segment ("..", "."), a
// slash inside a tag, a space or a control character ever reaches a URL: a
// reverse proxy in front of a registry would resolve "a/../../b" into
// another repository. This is the one place the grammar is written down.

// ErrInvalidName is wrapped by every error for a name that breaks the
// distribution grammar.
var ErrInvalidName = errors.New("breaks the distribution grammar")

// NameError is a repository, tag, digest or image name that breaks the
// distribution grammar. Its message quotes the name with %q, so control
// characters in a hostile name reach no terminal.
type NameError struct {
	Kind string // "repository", "tag", "digest", "image name"
	Name string
	Rule string // the grammar, or what in it was broken
}

func (e *NameError) Error() string {
	return fmt.Sprintf("%s %q %s: %s", e.Kind, e.Name, ErrInvalidName, e.Rule)
}

func (e *NameError) Unwrap() error { return ErrInvalidName }

const (
	// MaxRepositoryLength is distribution's limit on a repository name.
	MaxRepositoryLength = 255

	componentGrammar = `[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*`
	tagGrammar       = `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`

	repositoryRule = "path components [a-z0-9]+((.|_|__|-+)[a-z0-9]+)* joined by \"/\", at most 255 characters"
	tagRule        = "a tag is [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"
	digestRule     = "a digest is sha256:<64 lowercase hex> or sha512:<128 lowercase hex>"
)

var (
	repositoryRE = regexp.MustCompile(`^` + componentGrammar + `(?:/` + componentGrammar + `)*$`)
	tagRE        = regexp.MustCompile(`^` + tagGrammar + `$`)
	// domainRE is a registry host with an optional port: DNS labels
	// joined by ".", or a bracketed IPv6 address.
	domainRE = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$`)
)

// MaxManifestSize is the largest manifest read anywhere, from a registry
// (the transport's bound) or a bundle.
const MaxManifestSize = transport.MaxManifestSize

// digestHexLen are the algorithms accepted, with the length of their hex.
var digestHexLen = map[string]int{"sha256": 64, "sha512": 128}

// CheckRepository checks a repository path (without registry host):
// "library/busybox", "team/app".
func CheckRepository(repo string) error {
	if len(repo) > MaxRepositoryLength || !repositoryRE.MatchString(repo) {
		return &NameError{Kind: "repository", Name: repo, Rule: repositoryRule}
	}
	return nil
}

// CheckTag checks a tag.
func CheckTag(tag string) error {
	if !tagRE.MatchString(tag) {
		return &NameError{Kind: "tag", Name: tag, Rule: tagRule}
	}
	return nil
}

// CheckDigest checks a digest: a known algorithm and hex of its length.
func CheckDigest(d string) error {
	alg, hex, ok := strings.Cut(d, ":")
	n, known := digestHexLen[alg]
	if !ok || !known || len(hex) != n || !isLowerHex(hex) {
		return &NameError{Kind: "digest", Name: d, Rule: digestRule}
	}
	return nil
}

// IsDigest reports whether ref is a valid digest (rather than a tag).
func IsDigest(ref string) bool { return CheckDigest(ref) == nil }

// CheckRef checks a reference within a repository: a tag or a digest. A
// reference with a ":" can only be a digest, as no tag holds one.
func CheckRef(ref string) error {
	if strings.Contains(ref, ":") {
		return CheckDigest(ref)
	}
	return CheckTag(ref)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ImageName is a parsed image reference: "[host[:port]/]path[:tag][@digest]".
type ImageName struct {
	// Domain is the registry host ("docker.io", "localhost:5000"), "" when
	// the name has none.
	Domain string
	// Path is the repository path within the registry.
	Path   string
	Tag    string
	Digest string
}

// Repository is the domain and path: the name without tag and digest.
func (n ImageName) Repository() string {
	if n.Domain == "" {
		return n.Path
	}
	return n.Domain + "/" + n.Path
}

// ParseImageName parses and checks an image name as written in a bundle
// manifest, an OCI layout's io.containerd.image.name annotation or an image
// list. The first component is the registry host when it has a "." or ":"
// or is "localhost", as docker decides. Neither tag nor digest is required.
func ParseImageName(s string) (ImageName, error) {
	var n ImageName
	rest := s
	if r, d, ok := strings.Cut(rest, "@"); ok {
		rest, n.Digest = r, d
		if err := CheckDigest(d); err != nil {
			return ImageName{}, imageNameErr(s, err)
		}
	}
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		rest, n.Tag = rest[:i], rest[i+1:]
		if err := CheckTag(n.Tag); err != nil {
			return ImageName{}, imageNameErr(s, err)
		}
	}
	if first, path, ok := strings.Cut(rest, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		if !domainRE.MatchString(first) {
			return ImageName{}, &NameError{Kind: "image name", Name: s, Rule: "the registry host " + fmt.Sprintf("%q", first) + " is not a host name with an optional port"}
		}
		n.Domain, rest = first, path
	}
	if err := CheckRepository(rest); err != nil {
		return ImageName{}, imageNameErr(s, err)
	}
	n.Path = rest
	return n, nil
}

// CheckRepositoryName checks a repository that may carry its registry host
// in front, as an OCI layout or a bundle names the repositories of its
// images ("127.0.0.1:5000/app/web"): ParseImageName without a tag or
// digest. A store that speaks the distribution API checks its paths with
// CheckRepository, where no host is allowed.
func CheckRepositoryName(s string) error {
	n, err := ParseImageName(s)
	if err != nil {
		var ne *NameError
		if errors.As(err, &ne) {
			ne.Kind = "repository"
		}
		return err
	}
	if n.Tag != "" || n.Digest != "" {
		return &NameError{Kind: "repository", Name: s, Rule: "a repository takes no tag or digest"}
	}
	return nil
}

// imageNameErr says which part of image name s broke the grammar.
func imageNameErr(s string, err error) error {
	var ne *NameError
	if errors.As(err, &ne) {
		return &NameError{Kind: "image name", Name: s, Rule: fmt.Sprintf("its %s %q: %s", ne.Kind, ne.Name, ne.Rule)}
	}
	return err
}
