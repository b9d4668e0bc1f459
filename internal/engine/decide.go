package engine

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regmirror/regmirror/internal/registry"
)

// The copy decision: does the target need this image? Sync, plan, check
// and the daemon all ask decide, so a dry run cannot disagree with the run
// it predicts. The questions are asked by observe (HEADs, the platform
// cache, at most one index fetch); decide itself is pure.

// Verdict is what the target needs for one image.
type Verdict string

const (
	// VerdictSkip: the target holds the digest the source has.
	VerdictSkip Verdict = "skip"
	// VerdictCopy: the target holds another digest.
	VerdictCopy Verdict = "copy"
	// VerdictMissing: the target does not have the reference at all (it
	// answered 404), whatever else is or is not known.
	VerdictMissing Verdict = "missing"
	// VerdictUnknown: the target holds an image, but which image it should
	// hold is in an index manifest nobody read (a platform mapping whose
	// index is not in the platform cache). Only a plan, which does not
	// fetch, gets this verdict; a sync fetches the index and knows.
	VerdictUnknown Verdict = "unknown"
)

// sourceView is what was learnt about the source's side of one image.
type sourceView struct {
	// pinned is the reference's digest ("" for a tag).
	pinned string
	// head is the source's HEAD answer, when it was asked (always for a
	// tag; for a pinned digest only by a plan, to learn its media type).
	head    *v1.Descriptor
	headErr error
	// platformImage is the digest of the mapping's platform image in the
	// index, from the platform cache or a fetched index ("" unknown);
	// fetchErr is why fetching the index failed.
	platformImage string
	fetchErr      error
}

// targetView is the target's HEAD answer for the image's reference.
type targetView struct {
	desc v1.Descriptor
	err  error
	// index is the target's index manifest, read (a GET at the target,
	// which costs no source pull) for a mapping with Platforms when the
	// target holds an index: its annotations say which source index and
	// platform list it was cut for.
	index *v1.IndexManifest
}

// decision is decide's answer.
type decision struct {
	Verdict Verdict
	// Reason says why, for people: "missing on target", "digest differs".
	Reason string
	// SourceDigest is what the target should hold ("" when unknown);
	// TargetDigest what it holds ("" when it has nothing).
	SourceDigest, TargetDigest string
	// Pulls is the number of manifest GETs a sync sends to the source for
	// the image; a lower bound unless PullsExact.
	Pulls      int
	PullsExact bool
	// resolved is the digest the source reference stands for (a tag's
	// HEAD answer, or the pinned digest): the index for platform and
	// subset mappings. It is what a signature must vouch for.
	resolved string
	// platform says the image is a platform's image out of an index, and
	// index that the source reference is an index; subset that the
	// target gets an index of the mapping's Platforms cut from it.
	platform, index, subset bool
}

// decide is the copy decision for one image of mapping m, from what
// observe learnt. An error says the image cannot be synced (the source or
// the target could not be read); it names the side.
func decide(s sourceView, t targetView, m *Mapping) (decision, error) {
	var d decision
	want := s.pinned
	if s.head != nil {
		d.index = s.head.MediaType.IsIndex()
		if want == "" {
			want = s.head.Digest.String()
		}
	} else if want == "" {
		// A tag always has a source HEAD; without one it has failed.
		return d, s.headErr
	}
	if s.fetchErr != nil {
		return d, s.fetchErr
	}
	d.resolved = want
	// A platform mapping copies one image out of an index; a plain image
	// under a platform mapping is copied as it is.
	d.platform = m.Platform != nil && (d.index || s.pinned != "")
	if d.platform {
		want = s.platformImage
	}
	// A subset is current when the target's index was cut from this
	// source index for this platform list (its digest is its own).
	d.subset = len(m.Platforms) > 0 && d.index
	if t.err != nil && !errors.Is(t.err, registry.ErrNotFound) {
		return d, t.err
	}
	d.SourceDigest = want
	if t.err == nil {
		d.TargetDigest = t.desc.Digest.String()
		current := want != "" && d.TargetDigest == want
		if d.subset {
			current = registry.SubsetCurrent(t.index, want, m.Platforms)
		}
		if current {
			d.Verdict, d.PullsExact = VerdictSkip, true
			return d, nil
		}
	}
	// The target needs the image, or may: a pinned digest the source did
	// not answer for cannot be copied.
	if s.headErr != nil {
		return d, s.headErr
	}
	switch {
	case t.err != nil:
		d.Verdict, d.Reason = VerdictMissing, "missing on target"
	case want == "":
		d.Verdict, d.Pulls = VerdictUnknown, 1
		d.Reason = "the platform image's digest is only in the index manifest, which is not in the platform cache; a sync spends 1 pull to learn it (plan --bytes fetches it)"
		return d, nil
	case d.subset && t.index != nil && t.index.Annotations[registry.AnnotationSourceDigest] == want:
		d.Verdict, d.Reason = VerdictCopy, "platform list changed"
	case d.subset:
		d.Verdict, d.Reason = VerdictCopy, "source index changed"
	default:
		d.Verdict, d.Reason = VerdictCopy, "digest differs"
	}
	switch {
	case d.platform && d.index:
		d.Pulls, d.PullsExact = 2, true // the index, then the platform's image
	case d.index:
		d.Pulls = 1 // and one per platform image the target lacks
	default:
		d.Pulls, d.PullsExact = 1, true
	}
	return d, nil
}

// observeOptions say what observe may ask beyond the HEADs.
type observeOptions struct {
	// headPinned also asks the source about a pinned digest (a plan: the
	// HEAD costs nothing and says whether it is an index). A sync does
	// not, a pinned digest names its content.
	headPinned bool
	// fetchIndex fetches the index of a platform mapping that is not in
	// the platform cache (a pull): a sync must, a plan only with Bytes.
	fetchIndex bool
	// fetchMissing (a sync) asks the target first about a tag the
	// source's tag list named, and when the target lacks it fetches the
	// source's manifest straight away: the source's HEAD would only say
	// what the GET is about to say. (A tag named in the configuration
	// but never listed may not exist: its HEAD costs no pull, a GET
	// would, on every run.)
	fetchMissing bool
}

// observe asks the target and the source what decide needs to know about
// j, and decides. It returns what it fetched for a platform mapping (the
// platform's image, to copy or measure), or nil.
func (e *Engine) observe(ctx context.Context, j *job, o observeOptions) (decision, *registry.Artifact, error) {
	m := j.mapping
	// The target's tag list, when read, answers for the tags it lacks.
	known := j.targetTags != nil && !registry.IsDigest(j.ref.Target())
	absent := known && !j.targetTags[j.ref.Target()]
	headTarget := func() targetView {
		if absent {
			return targetView{err: registry.ErrNotFound}
		}
		d, err := j.dst.Head(ctx, m.To, j.ref.Target())
		if err != nil && !errors.Is(err, registry.ErrNotFound) {
			err = fmt.Errorf("target %s: %w", j.dstR, err)
		}
		tv := targetView{desc: d, err: err}
		if err == nil && len(m.Platforms) > 0 && d.MediaType.IsIndex() {
			tv.index, tv.err = targetIndex(ctx, j)
		}
		return tv
	}
	s := sourceView{pinned: j.ref.Digest}
	target := make(chan targetView, 1)
	if o.fetchMissing && j.listed && s.pinned == "" && m.Platform == nil && len(m.Platforms) == 0 && (!known || absent) {
		// A sync of a tag asks the target first (usually the near side).
		// A tag it lacks costs the source one GET and no HEAD. (When the
		// target's list names the tag, both ends are asked at once
		// below: the image is most likely current.)
		t := headTarget()
		if errors.Is(t.err, registry.ErrNotFound) {
			art, err := e.fetch(ctx, j)
			if err != nil {
				s.headErr = fmt.Errorf("source %s: %w", j.srcR, err)
			} else {
				s.head = &art.Desc
			}
			d, err := decide(s, t, m)
			return d, art, err
		}
		target <- t
	} else {
		// The target is asked at once, alongside the source: a plan
		// with nothing to do is two HEADs per tag, and this halves its
		// latency.
		go func() { target <- headTarget() }()
	}

	// A subset mapping asks about a pinned digest too: only the source
	// says whether it is an index, to cut, or an image, to copy as is.
	if s.pinned == "" || o.headPinned || len(m.Platforms) > 0 {
		d, err := j.src.Head(ctx, m.From, j.ref.Source())
		if err != nil {
			s.headErr = fmt.Errorf("source %s: %w", j.srcR, err)
		} else {
			s.head = &d
		}
	}
	var art *registry.Artifact
	if m.Platform != nil && s.headErr == nil && (s.pinned != "" || s.head.MediaType.IsIndex()) {
		index := s.pinned
		if index == "" {
			index = s.head.Digest.String()
		}
		if cached, ok := e.platforms.get(index, m.Platform.String()); ok {
			s.platformImage = cached
		} else if o.fetchIndex {
			// The platform's own digest is only in the index manifest,
			// so it has to be fetched (once: then it is cached).
			var err error
			if art, err = e.fetch(ctx, j); err != nil {
				s.fetchErr = fmt.Errorf("source %s: %w", j.srcR, err)
			} else {
				s.platformImage = art.Desc.Digest.String()
			}
		}
	}
	d, err := decide(s, <-target, m)
	return d, art, err
}

// targetIndex reads the index manifest the target holds for j.
func targetIndex(ctx context.Context, j *job) (*v1.IndexManifest, error) {
	a, err := j.dst.Fetch(ctx, j.mapping.To, j.ref.Target())
	if err == nil && a.Index == nil {
		return nil, nil // replaced by an image since the HEAD
	}
	var im *v1.IndexManifest
	if err == nil {
		im, err = a.Index.IndexManifest()
	}
	if err != nil {
		return nil, fmt.Errorf("target %s: reading its index: %w", j.dstR, err)
	}
	return im, nil
}

// fetch fetches what a sync of j copies: the manifest behind the source
// reference or, for a platform mapping, that platform's image out of the
// index (remembered in the platform cache), or for a mapping with
// Platforms the index of those platforms.
func (e *Engine) fetch(ctx context.Context, j *job) (*registry.Artifact, error) {
	return e.fetchAt(ctx, j, j.ref.Source())
}

// fetchAt is fetch reading the source at ref (a tag or a digest).
func (e *Engine) fetchAt(ctx context.Context, j *job, ref string) (*registry.Artifact, error) {
	m := j.mapping
	a, err := j.src.Fetch(ctx, m.From, ref)
	if err != nil {
		return a, err
	}
	if len(m.Platforms) > 0 {
		sub, missing, err := registry.SelectPlatforms(a, m.Platforms, m.PlatformsSkipMissing)
		if err == nil && len(missing) > 0 {
			e.log.Warn("platforms missing from the source index; copying the others (platforms-missing: skip)",
				"task", j.task.Name, "source", j.srcR, "digest", a.Desc.Digest.String(), "missing", missing)
		}
		return sub, err
	}
	if m.Platform == nil {
		return a, nil
	}
	img, err := registry.SelectPlatform(a, *m.Platform)
	if err == nil && a.Index != nil {
		e.platforms.put(a.Desc.Digest.String(), m.Platform.String(), img.Desc.Digest.String())
	}
	return img, err
}
