package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/regmirror/regmirror/internal/filter"
	"github.com/regmirror/regmirror/internal/registry"
)

// Prune deletes from a mapping's target repository the tags the source no
// longer has. What it may touch is deliberately narrow:
//
//   - only the mapping's own target repository (`to`);
//   - only tags the mapping owns: tags its filter would select if the source
//     had them, ignoring `keep: latest N` (filter.Tags.Owns); a tag pushed
//     to the mirror by hand that the filter does not match is never touched;
//   - only tags absent from the source's list, and written by no mapping of
//     the run (two mappings may share a target repository);
//   - never attachment tags of a mapping that copies attachments (they go
//     with their subject);
//   - never a tag whose digest a tag that stays also points at: the
//     distribution API deletes manifests by digest, which would take the
//     staying tag with it.
//
// And only when it is safe to conclude anything: the source was listed, it
// listed at least one tag (an empty list is more likely a broken upstream
// than a deliberate wipe), and every image of the mapping synced.

// PruneItem is one target tag prune deletes (or, in a plan, would delete),
// or keeps for a reason worth showing.
type PruneItem struct {
	Task   string
	Target string // the target repository reference, with the tag
	Tag    string
	Digest string
	// Kept is set, with Reason, for a tag prune would otherwise delete.
	Kept   bool
	Reason string
}

// pruneCandidates works out what prune would delete from mp's target.
// A non-nil error means prune must not run for the mapping.
func (e *Engine) pruneCandidates(ctx context.Context, mp *expandedRepo, written writtenTags) ([]PruneItem, error) {
	m := mp.mapping
	switch {
	case mp.err != nil:
		return nil, fmt.Errorf("not pruning: planning failed: %w", mp.err)
	case !mp.listed:
		return nil, errors.New("not pruning: the source's tags were not listed")
	case len(mp.srcTags) == 0:
		return nil, fmt.Errorf("not pruning: the source %s lists no tags", mp.src.Ref(m.From, ""))
	}
	if written.unknown(mp.dst, m.To) {
		return nil, fmt.Errorf("not pruning: another mapping writing to %s could not list its tags", mp.dst.Ref(m.To, ""))
	}
	if from, ok := written.otherShard(mp.dst, m.To); ok {
		return nil, fmt.Errorf("not pruning: %s is written to by the source repository %s too, which another shard copies (prune such a target unsharded or with --shard-by task)", mp.dst.Ref(m.To, ""), from)
	}
	if _, ok := mp.dst.(registry.Deleter); !ok {
		return nil, fmt.Errorf("not pruning: %s cannot delete", mp.dst)
	}
	dstTags, err := mp.dst.Tags(ctx, m.To)
	if errors.Is(err, registry.ErrNotFound) {
		return nil, nil // nothing mirrored yet
	}
	if err != nil {
		return nil, fmt.Errorf("not pruning: %w", err)
	}
	tags := m.Tags
	if tags == nil {
		tags, _ = filter.ParseTags(nil)
	}
	keep := map[string]bool{}
	for _, t := range mp.srcTags {
		keep[t] = true
	}
	for _, t := range mp.selected {
		keep[t] = true
	}
	var candidates, stays []string
	for _, t := range dstTags {
		if keep[t] || written.has(mp.dst, m.To, t) || !tags.Owns(t) || ((m.Referrers || m.Verify != nil) && registry.IsAttachmentTag(t)) {
			stays = append(stays, t)
			continue
		}
		candidates = append(candidates, t)
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	// Digests of every tag of the repository (HEADs, only when there is
	// something to prune): a digest shared with a staying tag is kept.
	digests := map[string]string{}
	for _, t := range dstTags {
		d, err := mp.dst.Head(ctx, m.To, t)
		if errors.Is(err, registry.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("not pruning: %s: %w", mp.dst.Ref(m.To, t), err)
		}
		digests[t] = d.Digest.String()
	}
	stayingDigest := map[string]string{}
	for _, t := range stays {
		if d, ok := digests[t]; ok {
			stayingDigest[d] = t
		}
	}
	slices.Sort(candidates)
	var out []PruneItem
	for _, t := range candidates {
		d, ok := digests[t]
		if !ok {
			continue
		}
		it := PruneItem{Task: mp.task.Name, Target: mp.dst.Ref(m.To, t), Tag: t, Digest: d}
		if other, shared := stayingDigest[d]; shared {
			it.Kept, it.Reason = true, fmt.Sprintf("same digest as tag %s, which stays (deleting by digest would delete both)", other)
		}
		out = append(out, it)
	}
	return out, nil
}

// writtenTags are the target tags every repository of a run selects, by
// target store and repository. Values are "" except for a repository
// another shard writes to, whose value names that shard's source.
type writtenTags map[string]string

func newWrittenTags(repos []*expandedRepo) writtenTags {
	w := writtenTags{}
	for _, rp := range repos {
		if rp.dst == nil {
			continue
		}
		if rp.otherShard {
			w["\x01"+rp.dst.String()+"\x00"+rp.mapping.To] = rp.src.Ref(rp.mapping.From, "")
			continue
		}
		if rp.err != nil {
			// Its tags are unknown: no prune of that repository.
			w[rp.dst.String()+"\x00"+rp.mapping.To] = ""
		}
		for _, t := range rp.selected {
			w[rp.dst.String()+"\x00"+rp.mapping.To+"\x00"+t] = ""
		}
	}
	return w
}

// unknown reports whether a repository of the run that writes to repo
// could not be planned.
func (w writtenTags) unknown(dst registry.Store, repo string) bool {
	_, ok := w[dst.String()+"\x00"+repo]
	return ok
}

// otherShard returns the source of a repository another shard copies to
// repo, if there is one.
func (w writtenTags) otherShard(dst registry.Store, repo string) (string, bool) {
	from, ok := w["\x01"+dst.String()+"\x00"+repo]
	return from, ok
}

func (w writtenTags) has(dst registry.Store, repo, tag string) bool {
	_, ok := w[dst.String()+"\x00"+repo+"\x00"+tag]
	return ok
}

// pruneAll prunes every mapping that asks for it and whose images all
// synced, and reports one result per deleted tag (or a failure).
func (e *Engine) pruneAll(ctx context.Context, repos []*expandedRepo, results []Result) []Result {
	failed := map[*Mapping]int{}
	for _, r := range results {
		if r.Status == Failed && r.mapping != nil {
			failed[r.mapping]++
		}
	}
	written := newWrittenTags(repos)
	var out []Result
	for _, mp := range repos {
		m := mp.mapping
		if !m.Prune || mp.dst == nil || ctx.Err() != nil { // no target to prune: PullOnly
			continue
		}
		target := ""
		if mp.dst != nil {
			target = mp.dst.Ref(m.To, "")
		}
		if n := failed[m]; n > 0 {
			e.log.Warn("not pruning: images of the mapping failed", "task", mp.task.Name, "target", target, "failed", n)
			continue
		}
		if mp.err != nil {
			continue // reported as a failed result already
		}
		items, err := e.pruneCandidates(ctx, mp, written)
		if err != nil {
			r := Result{Task: mp.task.Name, Source: mp.src.Ref(m.From, ""), Target: target, SourceRepo: m.From, TargetRepo: m.To, Status: Failed, Err: err, Logged: true, mapping: m}
			e.log.Error("failed", "task", r.Task, "source", r.Source, "target", r.Target, "error", err)
			out = append(out, r)
			continue
		}
		out = append(out, e.prune(ctx, mp, items)...)
	}
	return out
}

// prune deletes the items' digests, once each.
func (e *Engine) prune(ctx context.Context, mp *expandedRepo, items []PruneItem) []Result {
	del := mp.dst.(registry.Deleter)
	done := map[string]error{}
	var out []Result
	for _, it := range items {
		if it.Kept {
			e.log.Info("not pruned", "task", it.Task, "target", it.Target, "tag", it.Tag, "digest", it.Digest, "reason", it.Reason)
			continue
		}
		start := time.Now()
		err, ok := done[it.Digest]
		if !ok {
			err = del.Delete(ctx, mp.mapping.To, it.Digest)
			done[it.Digest] = err
		}
		r := Result{Task: it.Task, Source: mp.src.Ref(mp.mapping.From, it.Tag), Target: it.Target, Tag: it.Tag, Digest: it.Digest,
			SourceRepo: mp.mapping.From, TargetRepo: mp.mapping.To, Ref: registry.Reference{Tag: it.Tag},
			Status: Pruned, Duration: time.Since(start), mapping: mp.mapping}
		attrs := []any{"task", r.Task, "target", r.Target, "tag", r.Tag, "digest", r.Digest}
		if err != nil {
			r.Status, r.Err, r.Logged = Failed, fmt.Errorf("pruning %s: %w", it.Target, err), true
			e.log.Error("failed", append(attrs, "error", r.Err)...)
			out = append(out, r)
			if errors.Is(err, registry.ErrDeleteRefused) {
				break // every other delete would be refused the same way
			}
			continue
		}
		e.log.Info(string(Pruned), attrs...)
		out = append(out, r)
	}
	return out
}
