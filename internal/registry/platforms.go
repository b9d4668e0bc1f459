package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Platform subsets: a mapping with `platforms:` copies an index that holds
// only the listed platforms' images. The children and their blobs are the
// source's, byte for byte; the index itself is new (its digest differs
// from the source's), keeps the source's annotations, and records which
// source index it was cut from and for which platforms, so that a later run
// can tell from the target alone (no GET at the source) whether it is
// current.
const (
	// AnnotationSourceDigest is the digest of the source index a subset
	// was cut from.
	AnnotationSourceDigest = "io.regmirror.source.digest"
	// AnnotationPlatforms is the platform list a subset was cut for, as
	// PlatformsKey renders it.
	AnnotationPlatforms = "io.regmirror.platforms"
)

// ErrPlatformMissing is returned (wrapped) when a listed platform is not in
// the source index, or a single-platform image is for another platform.
var ErrPlatformMissing = errors.New("platform not in the source")

// PlatformsKey renders a platform list the way AnnotationPlatforms records
// it: sorted and comma-separated, so that reordering the list in the
// configuration (which does not change the subset, kept in source order)
// does not count as a change.
func PlatformsKey(ps []v1.Platform) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	slices.Sort(s)
	return strings.Join(slices.Compact(s), ",")
}

// SubsetCurrent reports whether an index manifest on the target is the
// subset of sourceDigest for ps.
func SubsetCurrent(im *v1.IndexManifest, sourceDigest string, ps []v1.Platform) bool {
	return im != nil && im.Annotations[AnnotationSourceDigest] == sourceDigest && im.Annotations[AnnotationPlatforms] == PlatformsKey(ps)
}

// SelectPlatforms returns what a mapping with `platforms: ps` copies of a:
// for an index, a new index of the images of the listed platforms (the
// first image satisfying each, in the source's order; with Docker's
// attestation manifests of those images), the source's annotations, and
// the two annotations above. A single-platform image is returned as it is
// when its platform is listed (this reads its config blob). A listed
// platform the index lacks is an error wrapping ErrPlatformMissing unless
// skipMissing; an index with none of them, or an image of another
// platform, always is. missing names the platforms left out.
func SelectPlatforms(a *Artifact, ps []v1.Platform, skipMissing bool) (out *Artifact, missing []string, err error) {
	if a.Index == nil {
		cf, err := a.Image.ConfigFile()
		if err != nil {
			return nil, nil, fmt.Errorf("reading the image's platform: %w", err)
		}
		have := cf.Platform()
		if have != nil {
			for _, p := range ps {
				if have.Satisfies(p) {
					return a, nil, nil
				}
			}
		}
		return nil, nil, fmt.Errorf("%s is a single-platform image for %s, not one of the listed platforms %s: %w", a.Desc.Digest, platformName(have), PlatformsKey(ps), ErrPlatformMissing)
	}
	im, err := a.Index.IndexManifest()
	if err != nil {
		return nil, nil, err
	}
	keep := map[int]bool{}
	images := map[string]bool{}
	for _, p := range ps {
		found := false
		for i, d := range im.Manifests {
			if d.Platform != nil && d.MediaType.IsImage() && d.Platform.Satisfies(p) {
				keep[i], images[d.Digest.String()], found = true, true, true
				break
			}
		}
		if !found {
			missing = append(missing, p.String())
		}
	}
	if len(keep) == 0 || len(missing) > 0 && !skipMissing {
		var has []string
		for _, d := range im.Manifests {
			if d.Platform != nil && d.MediaType.IsImage() {
				has = append(has, d.Platform.String())
			}
		}
		hint := "; set platforms-missing: skip to copy the listed platforms it has"
		if len(keep) == 0 {
			hint = ""
		}
		return nil, missing, fmt.Errorf("index %s has no image for %s (it has %s)%s: %w",
			a.Desc.Digest, strings.Join(missing, ", "), strings.Join(has, ", "), hint, ErrPlatformMissing)
	}
	sub := *im
	sub.Manifests = nil
	for i, d := range im.Manifests {
		// buildx attaches provenance and SBOMs as "unknown/unknown"
		// manifests naming their image: they go with it.
		if keep[i] || d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" && images[d.Annotations["vnd.docker.reference.digest"]] {
			sub.Manifests = append(sub.Manifests, d)
		}
	}
	sub.Annotations = maps.Clone(im.Annotations)
	if sub.Annotations == nil {
		sub.Annotations = map[string]string{}
	}
	sub.Annotations[AnnotationSourceDigest] = a.Desc.Digest.String()
	sub.Annotations[AnnotationPlatforms] = PlatformsKey(ps)
	raw, err := json.Marshal(sub)
	if err != nil {
		return nil, nil, err
	}
	mt := a.Desc.MediaType
	if mt == "" {
		mt = im.MediaType
	}
	idx := &subsetIndex{index: a.Index, raw: raw, mt: mt}
	h, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, err
	}
	return &Artifact{Desc: v1.Descriptor{MediaType: mt, Size: size, Digest: h}, Index: idx}, missing, nil
}

func platformName(p *v1.Platform) string {
	if p == nil || p.OS == "" {
		return "no platform"
	}
	return p.String()
}

// index is v1.ImageIndex under another name, so subsetIndex can embed it
// and still have its own ImageIndex method.
type index = v1.ImageIndex

// subsetIndex is a new index manifest over the children of a source
// index: everything but the manifest itself is the source's.
type subsetIndex struct {
	index // the source: Image and ImageIndex of the children
	raw   []byte
	mt    types.MediaType
}

func (s *subsetIndex) MediaType() (types.MediaType, error) { return s.mt, nil }
func (s *subsetIndex) RawManifest() ([]byte, error)        { return s.raw, nil }
func (s *subsetIndex) Size() (int64, error)                { return int64(len(s.raw)), nil }

func (s *subsetIndex) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(s.raw))
	return h, err
}

func (s *subsetIndex) IndexManifest() (*v1.IndexManifest, error) {
	var im v1.IndexManifest
	if err := json.Unmarshal(s.raw, &im); err != nil {
		return nil, err
	}
	return &im, nil
}
