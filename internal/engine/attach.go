package engine

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/regmirror/regmirror/internal/registry"
)

// attachment is one manifest attached to a copied image: an OCI referrer
// (ref is its digest) or a cosign tag (ref is the tag).
type attachment struct {
	ref  string
	want string // digest at the source
}

// syncAttachments copies what is attached to digest at the source and is
// not yet on the target: OCI referrers and cosign's tags. Like images, each
// is asked for with a HEAD at the target first, so a run where nothing
// changed copies nothing. It returns how many were copied and the bytes
// written. Attachments of attachments are not followed.
func (e *Engine) syncAttachments(ctx context.Context, j *job, digest string) (int, int64, error) {
	m := j.mapping
	// The referrers listing and the three cosign HEADs are independent
	// round trips: ask them at once, so a warm run pays one round trip per
	// image for its attachments, not four.
	tags := registry.CosignTags(digest)
	byTag := make([]*attachment, len(tags))
	var referrers []attachment
	g, gctx := errgroup.WithContext(ctx)
	if rl, ok := j.src.(registry.ReferrerLister); ok {
		g.Go(func() error {
			ds, err := rl.Referrers(gctx, m.From, digest)
			if err != nil {
				return fmt.Errorf("source %s: %w", j.src.Ref(m.From, digest), err)
			}
			for _, d := range ds {
				referrers = append(referrers, attachment{ref: d.Digest.String(), want: d.Digest.String()})
			}
			return nil
		})
	}
	for i, tag := range tags {
		g.Go(func() error {
			d, err := j.src.Head(gctx, m.From, tag)
			switch {
			case errors.Is(err, registry.ErrNotFound):
				return nil
			case err != nil:
				return fmt.Errorf("source %s: %w", j.src.Ref(m.From, tag), err)
			}
			byTag[i] = &attachment{ref: tag, want: d.Digest.String()}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	found := referrers
	for _, a := range byTag {
		if a != nil {
			found = append(found, *a)
		}
	}

	copied := 0
	var bytes int64
	for _, a := range found {
		srcR, dstR := j.src.Ref(m.From, a.ref), j.dst.Ref(m.To, a.ref)
		td, err := j.dst.Head(ctx, m.To, a.ref)
		switch {
		case err == nil && td.Digest.String() == a.want:
			continue
		case err != nil && !errors.Is(err, registry.ErrNotFound):
			return copied, bytes, fmt.Errorf("target %s: %w", dstR, err)
		}
		art, err := j.src.Fetch(ctx, m.From, a.ref)
		if err != nil {
			return copied, bytes, fmt.Errorf("source %s: %w", srcR, err)
		}
		n, err := j.dst.Push(ctx, m.To, a.ref, art)
		bytes += n
		if err != nil {
			return copied, bytes, fmt.Errorf("copying attachment %s to %s: %w", srcR, dstR, err)
		}
		copied++
		e.log.Debug("copied attachment", "task", j.task.Name, "source", srcR, "target", dstR,
			"digest", art.Desc.Digest.String(), "bytes", n)
	}
	return copied, bytes, nil
}
