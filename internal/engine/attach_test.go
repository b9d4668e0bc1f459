package engine_test

import (
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/stores"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// TestReferrersCopiedOnceAndVerifiable signs an image with a cosign-style
// signature under its .sig tag, attaches an SPDX SBOM with a subject (the
// OCI 1.1 way; distribution v3 has no referrers API, so the fallback tag
// sha256-<hex> lists it), and checks that a mapping with Referrers copies
// both, that the signature still verifies on the target, that the target's
// referrers list names the SBOM, and that a second run copies nothing.
func TestReferrersCopiedOnceAndVerifiable(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	img := imagegen.Image(40, 1, 512)
	imagegen.Push(t, src.Ref("team/app:1.0"), img)
	imagegen.Push(t, src.Ref("team/app:2.0"), imagegen.Image(41, 1, 512)) // unsigned
	digest := imagegen.Digest(t, img)
	desc := v1.Descriptor{MediaType: mustMT(t, img), Digest: digest, Size: mustSize(t, img)}

	key := imagegen.NewSigningKey(t)
	sigTag := registry.CosignTags(digest.String())[0]
	sig := imagegen.Signature(t, key, src.Ref("team/app"), digest)
	imagegen.Push(t, src.Ref("team/app:"+sigTag), sig)
	sbom := imagegen.PushSBOM(t, src.Ref("team/app"), desc, `{"spdxVersion":"SPDX-2.3","name":"app"}`)

	task := engine.Task{Name: "signed", Source: plain(src), Target: plain(dst),
		Mappings: []engine.Mapping{{From: "team/app", To: "mirror/app", Referrers: true}}}

	rep := run(t, task)
	if rep.Failed() != 0 {
		t.Fatalf("failures: %+v", rep.Results)
	}
	// The attachment tags are not mirrored as images of their own: only
	// the two image tags are results.
	var got []string
	att := map[string]int{}
	for _, r := range rep.Results {
		got = append(got, r.Tag)
		att[r.Tag] = r.Attachments
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"1.0", "2.0"}) {
		t.Fatalf("results for %v, want 1.0 and 2.0 only", got)
	}
	if att["1.0"] != 2 || att["2.0"] != 0 {
		t.Errorf("attachments copied = %v, want 1.0:2 (signature, SBOM) 2.0:0", att)
	}

	// The signature is on the target under the same tag and verifies.
	tsig, err := remote.Image(parse(t, dst.Ref("mirror/app:"+sigTag)))
	if err != nil {
		t.Fatalf("signature not on the target: %v", err)
	}
	if why := imagegen.VerifySignature(tsig, &key.PublicKey, digest.String()); why != "" {
		t.Errorf("target signature: %s", why)
	}
	if d, _ := tsig.Digest(); d != imagegen.Digest(t, sig) {
		t.Errorf("target signature digest %s, source %s", d, imagegen.Digest(t, sig))
	}
	// The SBOM is on the target by digest, and the target's referrers
	// (its fallback tag, kept by the push) list it with its artifactType.
	digestOf(t, dst.Ref("mirror/app@"+sbom.Digest.String()))
	refs := referrersOf(t, dst.Ref("mirror/app@"+digest.String()))
	if len(refs) != 1 || refs[0].Digest != sbom.Digest || refs[0].ArtifactType != imagegen.SPDXArtifactType {
		t.Errorf("target referrers = %+v, want the SBOM %s", refs, sbom.Digest)
	}

	// Second run, nothing changed: HEADs and listings only. Nothing is
	// written to the target and no blob or image manifest is read from
	// the source.
	src.Reset()
	dst.Reset()
	rep = run(t, task)
	for _, r := range rep.Results {
		if r.Status != engine.Skipped || r.Attachments != 0 {
			t.Errorf("warm run %s: %s with %d attachments, want skipped with 0", r.Tag, r.Status, r.Attachments)
		}
	}
	for _, k := range []regtest.Kind{regtest.KindManifestPut, regtest.KindBlobUpload, regtest.KindBlobMount} {
		if n := dst.Count(k); n != 0 {
			t.Errorf("warm run: %d %s requests on the target, want 0", n, k)
		}
	}
	if n := src.Count(regtest.KindBlobGet); n != 0 {
		t.Errorf("warm run: %d blob GETs on the source, want 0", n)
	}
	// The only manifest GETs are the referrers fallback index, one per
	// image (it is how a registry without the API lists referrers).
	for _, q := range src.Requests() {
		if q.Kind == regtest.KindManifestGet && !registry.IsAttachmentTag(q.Ref) {
			t.Errorf("warm run: source manifest GET %s, want only referrers fallback tags", q.Ref)
		}
	}
	t.Logf("warm run requests: source %v, target %v", kinds(src), kinds(dst))
	if n := src.Count(regtest.KindManifestGet); n > 2 {
		t.Errorf("warm run: %d manifest GETs on the source, want at most 2 (one fallback index per image)", n)
	}

	// A new attestation on the unchanged image is picked up by the next
	// run, alone.
	attTag := registry.CosignTags(digest.String())[1]
	imagegen.Push(t, src.Ref("team/app:"+attTag), imagegen.Image(42, 1, 128))
	dst.Reset()
	rep = run(t, task)
	for _, r := range rep.Results {
		want := map[string]int{"1.0": 1, "2.0": 0}[r.Tag]
		if r.Attachments != want {
			t.Errorf("third run %s: %d attachments copied, want %d", r.Tag, r.Attachments, want)
		}
	}
	if n := dst.Count(regtest.KindManifestPut); n != 1 {
		t.Errorf("third run: %d manifest PUTs on the target, want 1 (the attestation)", n)
	}
	digestOf(t, dst.Ref("mirror/app:"+attTag))
}

// TestReferrersOff: without referrers, the
// mapping mirrors what its tag filter selects, cosign tags included (as
// skopeo sync does), and looks for nothing else.
func TestReferrersOff(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	img := imagegen.Image(43, 1, 256)
	imagegen.Push(t, src.Ref("team/app:1.0"), img)
	digest := imagegen.Digest(t, img)
	desc := v1.Descriptor{MediaType: mustMT(t, img), Digest: digest, Size: mustSize(t, img)}
	imagegen.PushSBOM(t, src.Ref("team/app"), desc, `{}`)
	src.Reset()
	task := engine.Task{Name: "plain", Source: plain(src), Target: plain(dst),
		Mappings: []engine.Mapping{{From: "team/app", To: "mirror/app", Tags: tags(t, "1.0")}}}
	rep := run(t, task)
	if rep.Failed() != 0 || len(rep.Results) != 1 {
		t.Fatalf("results %+v", rep.Results)
	}
	if n := src.Count(regtest.KindReferrers); n != 0 {
		t.Errorf("%d referrers requests without referrers: true", n)
	}
	if refs := referrersOf(t, dst.Ref("mirror/app@"+digest.String())); len(refs) != 0 {
		t.Errorf("target referrers %+v, want none", refs)
	}
}

func referrersOf(t *testing.T, ref string) []v1.Descriptor {
	t.Helper()
	d, err := name.NewDigest(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(d)
	if err != nil {
		t.Fatalf("referrers of %s: %v", ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return im.Manifests
}

func mustMT(t *testing.T, img v1.Image) types.MediaType {
	t.Helper()
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	return mt
}

func mustSize(t *testing.T, img v1.Image) int64 {
	t.Helper()
	n, err := img.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func kinds(r *regtest.Registry) map[regtest.Kind]int {
	m := map[regtest.Kind]int{}
	for _, q := range r.Requests() {
		m[q.Kind]++
	}
	return m
}

// TestReferrersIntoLayout: attachments reach an OCI layout target too (by
// tag for cosign's, by digest for referrers), and a second run skips them.
func TestReferrersIntoLayout(t *testing.T) {
	src := regtest.New(t)
	img := imagegen.Image(44, 1, 256)
	imagegen.Push(t, src.Ref("team/app:1.0"), img)
	digest := imagegen.Digest(t, img)
	desc := v1.Descriptor{MediaType: mustMT(t, img), Digest: digest, Size: mustSize(t, img)}
	key := imagegen.NewSigningKey(t)
	sigTag := registry.CosignTags(digest.String())[0]
	imagegen.Push(t, src.Ref("team/app:"+sigTag), imagegen.Signature(t, key, src.Ref("team/app"), digest))
	sbom := imagegen.PushSBOM(t, src.Ref("team/app"), desc, `{"spdxVersion":"SPDX-2.3"}`)

	dir := t.TempDir()
	dst := registry.LayoutEndpoint(dir)
	task := engine.Task{Name: "layout", Source: plain(src), Target: dst,
		Mappings: []engine.Mapping{{From: "team/app", To: "mirror/app", Referrers: true}}}
	rep := run(t, task)
	if rep.Failed() != 0 || len(rep.Results) != 1 || rep.Results[0].Attachments != 2 {
		t.Fatalf("results %+v, want 1.0 copied with 2 attachments", rep.Results)
	}
	st, err := stores.Open(dst, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{sigTag, sbom.Digest.String()} {
		if _, err := st.Head(ctx(t), "mirror/app", ref); err != nil {
			t.Errorf("layout lacks %s: %v", ref, err)
		}
	}
	rep = run(t, task)
	if r := rep.Results[0]; r.Status != engine.Skipped || r.Attachments != 0 {
		t.Errorf("second run: %s with %d attachments, want skipped with 0", r.Status, r.Attachments)
	}
}
