// Package storetest is the contract every registry.Store implementation
// passes, as restic's backend test suite is for its backends: one function
// that takes a constructor and exercises the Store interface through it.
// Stores that cannot be written (a bundle read as a source) pass the read
// half and must refuse a push without changing what they hold.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
)

// Image is one fixture a store holds before the suite runs.
type Image struct {
	Repo, Tag string
	Artifact  *registry.Artifact
}

// Harness says how to make the store under test.
type Harness struct {
	// New returns a store holding images, written however this kind of
	// store is written (pushed, exported). Repository names in the store
	// are prefix + Image.Repo (a bundle names images by their source
	// registry).
	New func(t *testing.T, images []Image) (s registry.Store, prefix string)
	// Writable: Push is part of the contract. Otherwise Push must fail
	// and leave the store as it was.
	Writable bool
}

// Fixtures are the images every store starts with: one image under two
// tags and a multi-platform index.
func Fixtures(t *testing.T) []Image {
	img := imagegen.Image(101, 2, 1024)
	idx := imagegen.Index(102, []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}, 1, 512)
	return []Image{
		{Repo: "team/app", Tag: "1", Artifact: artifact(t, img)},
		{Repo: "team/app", Tag: "2", Artifact: artifact(t, img)},
		{Repo: "team/multi", Tag: "v1", Artifact: artifact(t, idx)},
	}
}

// artifact wraps an image or an index with its descriptor.
func artifact(t *testing.T, x any) *registry.Artifact {
	t.Helper()
	a := &registry.Artifact{}
	var raw []byte
	var err error
	switch x := x.(type) {
	case v1.Image:
		a.Image = x
		raw, err = x.RawManifest()
		if err == nil {
			a.Desc.MediaType, err = x.MediaType()
		}
	case v1.ImageIndex:
		a.Index = x
		raw, err = x.RawManifest()
		if err == nil {
			a.Desc.MediaType, err = x.MediaType()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	a.Desc.Digest, a.Desc.Size = h, int64(len(raw))
	return a
}

// PushAll pushes images to s: how a writable store under test gets its
// fixtures.
func PushAll(t *testing.T, s registry.Store, images []Image) {
	t.Helper()
	for _, im := range images {
		if _, err := s.Push(context.Background(), im.Repo, im.Tag, im.Artifact); err != nil {
			t.Fatalf("pushing fixture %s:%s: %v", im.Repo, im.Tag, err)
		}
	}
}

// Run exercises the Store contract on stores made by h.
func Run(t *testing.T, h Harness) {
	fx := Fixtures(t)
	s, prefix := h.New(t, fx)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	repo := func(r string) string { return prefix + r }

	t.Run("String and Ref name the store and the image", func(t *testing.T) {
		if s.String() == "" {
			t.Error("String is empty")
		}
		dg := fx[0].Artifact.Desc.Digest.String()
		for ref, want := range map[string]string{"1": ":1", dg: "@" + dg} {
			if got := s.Ref(repo("team/app"), ref); !strings.Contains(got, repo("team/app")) || !strings.Contains(got, want) {
				t.Errorf("Ref(%q, %q) = %q, want it to name the repository and %q", repo("team/app"), ref, got, want)
			}
		}
	})

	t.Run("Head resolves tags and digests to the fixture's descriptor", func(t *testing.T) {
		for _, im := range fx {
			want := im.Artifact.Desc
			for _, ref := range []string{im.Tag, want.Digest.String()} {
				d, err := s.Head(ctx, repo(im.Repo), ref)
				if err != nil {
					t.Errorf("Head %s %s: %v", im.Repo, ref, err)
					continue
				}
				if d.Digest != want.Digest || d.Size != want.Size || d.MediaType != want.MediaType {
					t.Errorf("Head %s %s = %s %d %s, want %s %d %s", im.Repo, ref, d.Digest, d.Size, d.MediaType, want.Digest, want.Size, want.MediaType)
				}
			}
		}
	})

	t.Run("Fetch preserves digests of manifests and every blob", func(t *testing.T) {
		for _, im := range fx {
			checkFetch(ctx, t, s, repo(im.Repo), im.Tag, im.Artifact)
		}
	})

	t.Run("Tags lists exactly the tags of a repository", func(t *testing.T) {
		for r, want := range map[string][]string{"team/app": {"1", "2"}, "team/multi": {"v1"}} {
			got, err := s.Tags(ctx, repo(r))
			if err != nil {
				t.Errorf("Tags %s: %v", r, err)
				continue
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("Tags %s = %v, want %v", r, got, want)
			}
		}
	})

	t.Run("Catalog lists the repositories", func(t *testing.T) {
		got, truncated, err := s.Catalog(ctx, 0)
		if err != nil {
			t.Fatalf("Catalog: %v", err)
		}
		for _, r := range []string{"team/app", "team/multi"} {
			if !slices.Contains(got, repo(r)) {
				t.Errorf("Catalog = %v, want it to hold %s", got, repo(r))
			}
		}
		if truncated {
			t.Error("Catalog without a limit says it was cut")
		}
		if got, truncated, err := s.Catalog(ctx, 1); err != nil || len(got) != 1 || !truncated {
			t.Errorf("Catalog(1) = %v, %v, %v; want one repository, cut", got, truncated, err)
		}
	})

	t.Run("what is missing is ErrNotFound", func(t *testing.T) {
		absent := "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		if _, err := s.Head(ctx, repo("team/app"), "no-such-tag"); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Head of a missing tag: %v, want ErrNotFound", err)
		}
		if _, err := s.Head(ctx, repo("team/app"), absent); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Head of a missing digest: %v, want ErrNotFound", err)
		}
		if _, err := s.Fetch(ctx, repo("team/app"), "no-such-tag"); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Fetch of a missing tag: %v, want ErrNotFound", err)
		}
		if _, err := s.Tags(ctx, repo("no/such-repo")); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Tags of a missing repository: %v, want ErrNotFound", err)
		}
	})

	if bc, ok := s.(registry.BlobChecker); ok {
		t.Run("HasBlob tells held blobs from missing ones", func(t *testing.T) {
			layers, err := fx[0].Artifact.Image.Layers()
			if err != nil {
				t.Fatal(err)
			}
			dg, err := layers[0].Digest()
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := bc.HasBlob(ctx, repo("team/app"), dg.String()); err != nil || !ok {
				t.Errorf("HasBlob of a held layer: %v, %v", ok, err)
			}
			missing := "sha256:" + "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
			if ok, err := bc.HasBlob(ctx, repo("team/app"), missing); err != nil || ok {
				t.Errorf("HasBlob of a missing blob: %v, %v", ok, err)
			}
		})
	}

	extra := artifact(t, imagegen.Image(103, 1, 700))
	if !h.Writable {
		t.Run("a read-only store refuses a push and holds what it held", func(t *testing.T) {
			if _, err := s.Push(ctx, repo("team/new"), "1", extra); err == nil {
				t.Error("Push succeeded")
			}
			if _, err := s.Head(ctx, repo("team/new"), "1"); !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("after a refused push, Head: %v, want ErrNotFound", err)
			}
		})
		return
	}

	t.Run("Push writes an image and an index, by tag and by digest, digests kept", func(t *testing.T) {
		n, err := s.Push(ctx, repo("team/new"), "1", extra)
		if err != nil {
			t.Fatalf("Push: %v", err)
		}
		if n <= 0 {
			t.Errorf("Push of a new image wrote %d bytes", n)
		}
		checkFetch(ctx, t, s, repo("team/new"), "1", extra)
		idx := fx[2].Artifact
		if _, err := s.Push(ctx, repo("team/new"), idx.Desc.Digest.String(), idx); err != nil {
			t.Fatalf("Push by digest: %v", err)
		}
		checkFetch(ctx, t, s, repo("team/new"), idx.Desc.Digest.String(), idx)
		if tags, err := s.Tags(ctx, repo("team/new")); err != nil || !slices.Equal(tags, []string{"1"}) {
			t.Errorf("Tags after a push by digest = %v, %v; want only [1]", tags, err)
		}
	})

	t.Run("Push moves a tag to other content", func(t *testing.T) {
		idx := fx[2].Artifact
		if _, err := s.Push(ctx, repo("team/new"), "1", idx); err != nil {
			t.Fatalf("Push: %v", err)
		}
		d, err := s.Head(ctx, repo("team/new"), "1")
		if err != nil || d.Digest != idx.Desc.Digest {
			t.Errorf("after re-tagging, Head = %s, %v; want %s", d.Digest, err, idx.Desc.Digest)
		}
	})

	if del, ok := s.(registry.Deleter); ok {
		t.Run("Delete removes a manifest and its tags", func(t *testing.T) {
			dg := fx[2].Artifact.Desc.Digest.String()
			if err := del.Delete(ctx, repo("team/new"), dg); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, err := s.Head(ctx, repo("team/new"), "1"); !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("Head of a deleted tag: %v, want ErrNotFound", err)
			}
			if err := del.Delete(ctx, repo("team/new"), dg); err != nil {
				t.Errorf("deleting what is gone: %v, want no error", err)
			}
			if d, err := s.Head(ctx, repo("team/multi"), "v1"); err != nil || d.Digest.String() != dg {
				t.Errorf("the same digest in another repository: %v, %v; want it kept", d.Digest, err)
			}
		})
	}
}

// checkFetch fetches repo:ref and checks that the manifest is the one
// pushed, byte for byte, and that every blob it references reads back with
// its digest (registry.Drain checks each).
func checkFetch(ctx context.Context, t *testing.T, s registry.Store, repo, ref string, want *registry.Artifact) {
	t.Helper()
	a, err := s.Fetch(ctx, repo, ref)
	if err != nil {
		t.Errorf("Fetch %s %s: %v", repo, ref, err)
		return
	}
	if a.Desc.Digest != want.Desc.Digest || a.Desc.MediaType != want.Desc.MediaType {
		t.Errorf("Fetch %s %s = %s %s, want %s %s", repo, ref, a.Desc.Digest, a.Desc.MediaType, want.Desc.Digest, want.Desc.MediaType)
	}
	if (a.Index != nil) != (want.Index != nil) || (a.Image != nil) != (want.Image != nil) {
		t.Fatalf("Fetch %s %s: index %v image %v, want index %v image %v", repo, ref, a.Index != nil, a.Image != nil, want.Index != nil, want.Image != nil)
	}
	var raw []byte
	if a.Index != nil {
		raw, err = a.Index.RawManifest()
	} else {
		raw, err = a.Image.RawManifest()
	}
	if err != nil {
		t.Fatalf("Fetch %s %s: reading the manifest: %v", repo, ref, err)
	}
	if h, _, _ := v1.SHA256(bytes.NewReader(raw)); h != want.Desc.Digest {
		t.Errorf("Fetch %s %s: the manifest hashes to %s, want %s: not carried byte for byte", repo, ref, h, want.Desc.Digest)
	}
	n, err := registry.Drain(ctx, a)
	if err != nil {
		t.Errorf("Fetch %s %s: reading every blob: %v", repo, ref, err)
	}
	wantN, err := registry.Drain(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if n != wantN {
		t.Errorf("Fetch %s %s: %d bytes of blobs read back, want %d", repo, ref, n, wantN)
	}
}
