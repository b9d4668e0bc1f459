package registry

import (
	"regexp"
	"strings"
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
