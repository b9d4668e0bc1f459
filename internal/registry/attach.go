package registry

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Attachments are manifests that say something about another manifest, the
// subject: cosign signatures, in-toto attestations, SBOMs. They are found in
// two ways, and a mirror that copies signatures has to look in both:
//
//   - The OCI 1.1 referrers API, GET /v2/<name>/referrers/<digest>, listing
//     every manifest whose `subject` is the digest. Registries without the
//     API (distribution v3 among them) are read through the spec's
//     fallback: an index tagged sha256-<hex> that pushers keep up to date.
//     go-containerregistry implements both, reading and writing.
//   - cosign's tag convention, still cosign's default: the signature of
//     sha256:<hex> is tagged sha256-<hex>.sig, attestations .att and SBOMs
//     .sbom, in the subject's repository.

// ReferrerLister is implemented by stores that can list OCI referrers
// (remote registries; OCI layouts do not).
type ReferrerLister interface {
	// Referrers returns the descriptors of the manifests whose subject is
	// digest in repo: from the referrers API, or from the fallback tag when
	// the registry lacks the API. No referrers is an empty list, not an
	// error.
	Referrers(ctx context.Context, repo, digest string) ([]v1.Descriptor, error)
}

// cosignSuffixes are the tags cosign attaches to a digest, in the order
// they are copied.
var cosignSuffixes = []string{".sig", ".att", ".sbom"}

// CosignTags returns the tags under which cosign stores the signature,
// attestations and SBOM of digest ("sha256:<hex>" → "sha256-<hex>.sig",
// ...).
func CosignTags(digest string) []string {
	base := strings.Replace(digest, ":", "-", 1)
	out := make([]string, len(cosignSuffixes))
	for i, s := range cosignSuffixes {
		out[i] = base + s
	}
	return out
}

// attachmentTagRE matches the tags that hold attachments rather than
// images: the referrers fallback index (sha256-<hex>) and cosign's tags.
var attachmentTagRE = regexp.MustCompile(`^sha256-[0-9a-f]{64}(?:\.sig|\.att|\.sbom)?$`)

// IsAttachmentTag reports whether tag is a referrers fallback tag or a
// cosign signature, attestation or SBOM tag. When attachments are copied
// with their subject, such tags are not mirrored as images of their own.
func IsAttachmentTag(tag string) bool { return attachmentTagRE.MatchString(tag) }

func (s *remoteStore) Referrers(ctx context.Context, repo, digest string) ([]v1.Descriptor, error) {
	r, err := s.repo(repo)
	if err != nil {
		return nil, err
	}
	if _, err := v1.NewHash(digest); err != nil {
		return nil, fmt.Errorf("referrers of %q: %w", digest, err)
	}
	// Reuse shares the puller's transport, credentials and token cache.
	idx, err := remote.Referrers(r.Digest(digest), remote.Reuse(s.puller), remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s@%s: %w", r, digest, explain(s.host, err))
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s@%s: %w", r, digest, err)
	}
	return im.Manifests, nil
}
