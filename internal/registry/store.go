// Package registry is the Store API of regmirror, the one abstraction the
// engine copies through: the Store interface and its optional capabilities
// (Deleter, BlobChecker, ReferrerLister), artifacts, references, endpoints,
// Walk (the one walk over an artifact tree, each digest once) and the
// errors callers test with errors.Is. It speaks no protocol itself;
// its subpackages do, and only they speak it:
//
//   - registry/remote: the Store of a registry (distribution API over HTTP,
//     go-containerregistry underneath), logins;
//   - registry/layout: the Store of an OCI image layout ("oci:PATH"), the one
//     OCI-layout reader and writer;
//   - registry/transport: the HTTP transport stack, one RoundTripper per
//     concern (TLS, plain-HTTP guard, request caps, 429s and rate limits,
//     size bounds, byte counting), the retry policy and Retryable;
//   - registry/auth: credentials from docker's config.json and the cloud
//     keychains, refreshed on a schedule;
//   - registry/stores: Open, which picks the Store for an endpoint.
//
// The root package imports only registry/transport (for the policy types
// in Options and Endpoint); everything else imports the root. The engine
// works in repository paths and references ("tag", "sha256:..."), never in
// URLs, and moves artifacts as go-containerregistry images and indexes so
// manifests are carried byte for byte.
package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ErrNotFound is returned (wrapped) when a manifest, tag or repository does
// not exist.
var ErrNotFound = errors.New("not found")

// ErrNoCatalog is returned (wrapped) when a registry does not let us list its
// repositories.
var ErrNoCatalog = errors.New("no catalog")

// Store is one registry or OCI layout, seen through the operations a mirror
// needs. Implementations are safe for concurrent use.
type Store interface {
	// String names the store for messages: "host:port" or "oci:PATH".
	String() string
	// Ref renders repo and reference as a user would write them.
	Ref(repo, ref string) string
	// Tags lists every tag of repo, following pagination.
	Tags(ctx context.Context, repo string) ([]string, error)
	// Catalog lists the repositories the store holds (a registry's
	// /v2/_catalog, following pagination), stopping once max names are
	// gathered (max <= 0: no limit). It reports whether the list was cut
	// at max. A registry that offers no catalog (Docker Hub, or one that
	// answers 401, 403, 404 or UNSUPPORTED) gives an error wrapping
	// ErrNoCatalog.
	Catalog(ctx context.Context, max int) (repos []string, truncated bool, err error)
	// Head resolves a tag or digest to a descriptor without fetching the
	// manifest body (a HEAD request for registries: it costs no Docker Hub
	// pull).
	Head(ctx context.Context, repo, ref string) (v1.Descriptor, error)
	// Fetch returns the artifact behind a tag or digest. Blobs are read
	// lazily, when the artifact is pushed.
	Fetch(ctx context.Context, repo, ref string) (*Artifact, error)
	// Push writes an artifact: blobs first, then child manifests, then the
	// manifest itself under ref (a tag or the artifact's digest), so a tag
	// never points at incomplete content. It returns the bytes written.
	Push(ctx context.Context, repo, ref string, a *Artifact) (int64, error)
}

// FormatRef renders repo and a tag or digest reference as a user writes
// them: "repo:tag" or "repo@sha256:...".
func FormatRef(repo, ref string) string {
	if ref == "" { // the repository itself, before any tag is known
		return repo
	}
	if _, err := v1.NewHash(ref); err == nil {
		return repo + "@" + ref
	}
	return repo + ":" + ref
}

// Artifact is a manifest with everything it references: exactly one of Index
// and Image is set. Manifests are kept as fetched, so digests are preserved.
type Artifact struct {
	Desc  v1.Descriptor
	Index v1.ImageIndex
	Image v1.Image
}

// Reference is a parsed mapping entry: what to read at the source and what
// to write at the target.
type Reference struct {
	// Tag is the tag to write at the target, if any.
	Tag string
	// Digest pins the source content, if given ("sha256:...").
	Digest string
}

// ParseReference parses "tag", "sha256:<hex>" or "tag@sha256:<hex>". Both
// parts are checked against the distribution grammar (CheckTag,
// CheckDigest): a reference comes from a config, a flag or a source's tag
// list, and goes into a request path.
func ParseReference(s string) (Reference, error) {
	var r Reference
	switch {
	case strings.Contains(s, "@"):
		r.Tag, r.Digest, _ = strings.Cut(s, "@")
		if r.Tag == "" {
			return Reference{}, fmt.Errorf("invalid reference %q: no tag before \"@\"", s)
		}
	case strings.Contains(s, ":"):
		r.Digest = s
	default:
		r.Tag = s
	}
	if r.Tag != "" || r.Digest == "" {
		if err := CheckTag(r.Tag); err != nil {
			return Reference{}, err
		}
	}
	if r.Digest != "" {
		if err := CheckDigest(r.Digest); err != nil {
			return Reference{}, err
		}
	}
	return r, nil
}

// Source is the reference to read: the digest when pinned, else the tag.
func (r Reference) Source() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

// Target is the reference to write: the tag when given, else the digest.
func (r Reference) Target() string {
	if r.Tag != "" {
		return r.Tag
	}
	return r.Digest
}

// String renders the reference as written in a config.
func (r Reference) String() string {
	switch {
	case r.Tag != "" && r.Digest != "":
		return r.Tag + "@" + r.Digest
	case r.Tag != "":
		return r.Tag
	}
	return r.Digest
}

// SelectPlatform returns the image for platform p out of an index artifact.
// A single image is returned as it is: a tag that is not multi-arch has only
// one platform to offer.
func SelectPlatform(a *Artifact, p v1.Platform) (*Artifact, error) {
	if a.Index == nil {
		return a, nil
	}
	im, err := a.Index.IndexManifest()
	if err != nil {
		return nil, err
	}
	d, ok := PlatformDescriptor(im, p)
	if !ok {
		return nil, fmt.Errorf("no image for platform %s in index %s: %w", p.String(), a.Desc.Digest, ErrNotFound)
	}
	img, err := a.Index.Image(d.Digest)
	if err != nil {
		return nil, err
	}
	return &Artifact{Desc: d, Image: img}, nil
}

// PlatformDescriptor finds platform p's image in an index manifest.
func PlatformDescriptor(im *v1.IndexManifest, p v1.Platform) (v1.Descriptor, bool) {
	for _, d := range im.Manifests {
		if d.Platform != nil && d.MediaType.IsImage() && d.Platform.Satisfies(p) {
			return d, true
		}
	}
	return v1.Descriptor{}, false
}
