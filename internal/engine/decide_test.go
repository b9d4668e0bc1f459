package engine

import (
	"errors"
	"fmt"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regmirror/regmirror/internal/registry"
)

// decide's table: every verdict, and which side's error wins.
func TestDecide(t *testing.T) {
	hash := func(c byte) string { return fmt.Sprintf("sha256:%064x", c) }
	desc := func(c byte, mt types.MediaType) *v1.Descriptor {
		h, _ := v1.NewHash(hash(c))
		return &v1.Descriptor{Digest: h, MediaType: mt}
	}
	has := func(c byte) targetView { return targetView{desc: *desc(c, types.OCIManifestSchema1)} }
	lacks := targetView{err: fmt.Errorf("target: %w", registry.ErrNotFound)}
	image := func(c byte) *v1.Descriptor { return desc(c, types.OCIManifestSchema1) }
	index := func(c byte) *v1.Descriptor { return desc(c, types.OCIImageIndex) }
	srcErr, dstErr, fetchErr := errors.New("source down"), errors.New("target down"), errors.New("fetch failed")
	plain, platform := &Mapping{}, &Mapping{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}

	for _, c := range []struct {
		name    string
		s       sourceView
		t       targetView
		m       *Mapping
		verdict Verdict
		err     error
		pulls   int
		exact   bool
	}{
		{"same digest", sourceView{head: image(1)}, has(1), plain, VerdictSkip, nil, 0, true},
		{"other digest", sourceView{head: image(1)}, has(2), plain, VerdictCopy, nil, 1, true},
		{"absent", sourceView{head: image(1)}, lacks, plain, VerdictMissing, nil, 1, true},
		{"index absent", sourceView{head: index(1)}, lacks, plain, VerdictMissing, nil, 1, false},
		{"source fails", sourceView{headErr: srcErr}, has(1), plain, "", srcErr, 0, false},
		{"target fails", sourceView{head: image(1)}, targetView{err: dstErr}, plain, "", dstErr, 0, false},
		{"pinned, not asked, present", sourceView{pinned: hash(1)}, has(1), plain, VerdictSkip, nil, 0, true},
		// A pinned digest on the target needs nothing from the source,
		// so a source that cannot say is no failure (as in a sync).
		{"pinned, source fails, present", sourceView{pinned: hash(1), headErr: srcErr}, has(1), plain, VerdictSkip, nil, 0, true},
		{"pinned, source fails, absent", sourceView{pinned: hash(1), headErr: srcErr}, lacks, plain, "", srcErr, 0, false},
		{"platform cached, current", sourceView{head: index(1), platformImage: hash(3)}, has(3), platform, VerdictSkip, nil, 0, true},
		{"platform cached, stale", sourceView{head: index(1), platformImage: hash(3)}, has(4), platform, VerdictCopy, nil, 2, true},
		{"platform unknown, present", sourceView{head: index(1)}, has(4), platform, VerdictUnknown, nil, 1, false},
		// A 404 means missing, whatever the platform cache holds.
		{"platform unknown, absent", sourceView{head: index(1)}, lacks, platform, VerdictMissing, nil, 2, true},
		{"platform fetch fails", sourceView{head: index(1), fetchErr: fetchErr}, lacks, platform, "", fetchErr, 0, false},
		{"platform mapping, plain image", sourceView{head: image(1)}, has(1), platform, VerdictSkip, nil, 0, true},
	} {
		d, err := decide(c.s, c.t, c.m)
		if !errors.Is(err, c.err) || (c.err == nil && err != nil) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		if d.Verdict != c.verdict || d.Pulls != c.pulls || d.PullsExact != c.exact {
			t.Errorf("%s: %s, %d pulls (exact %v); want %s, %d (exact %v)", c.name, d.Verdict, d.Pulls, d.PullsExact, c.verdict, c.pulls, c.exact)
		}
	}
}
