package engine_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
	"github.com/regmirror/regmirror/internal/verify"
)

func verifyKeys(t *testing.T, keys ...*ecdsa.PrivateKey) *verify.Keys {
	t.Helper()
	var ks []verify.Key
	for i, k := range keys {
		ks = append(ks, verify.Key{Name: []string{"vendor.pub", "other.pub"}[i], Key: k.Public()})
	}
	v, err := verify.NewKeys(ks)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// cosignSign pushes a cosign signature of digest by key in repo's .sig tag,
// payload and signature made with sigstore's code; tamper, if set, edits
// the payload after signing.
func cosignSign(t *testing.T, r *regtest.Registry, repo string, digest v1.Hash, key *ecdsa.PrivateKey, tamper func([]byte) []byte) {
	t.Helper()
	payload := imagegen.CosignPayload(t, r.Ref(repo), digest)
	sig := imagegen.CosignSign(t, imagegen.CosignSigner(t, key), payload)
	if tamper != nil {
		payload = tamper(payload)
	}
	imagegen.Push(t, r.Ref(repo+":"+registry.CosignTags(digest.String())[0]), imagegen.CosignImage(t, payload, sig))
}

// Only images with a signature by a configured key are copied; each
// failure says why and writes nothing. The verified image's signature
// travels with referrers: true, and a warm run sends the source no GET.
func TestVerifyAdmitsOnlySignedImages(t *testing.T) {
	src, dst := regtest.New(t), regtest.New(t)
	vendor, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	imgs := map[string]v1.Image{}
	for i, tag := range []string{"signed", "unsigned", "otherkey", "tampered", "otherdigest", "referrer"} {
		imgs[tag] = imagegen.Image(uint64(80+i), 1, 256)
		imagegen.Push(t, src.Ref("v/app:"+tag), imgs[tag])
	}
	d := func(tag string) v1.Hash { return imagegen.Digest(t, imgs[tag]) }
	cosignSign(t, src, "v/app", d("signed"), vendor, nil)
	cosignSign(t, src, "v/app", d("otherkey"), other, nil)
	cosignSign(t, src, "v/app", d("tampered"), vendor, func(p []byte) []byte {
		return []byte(strings.Replace(string(p), "docker-reference", "docker-referencf", 1))
	})
	// A good signature of the signed image, stored as the signature of
	// another image.
	payload := imagegen.CosignPayload(t, src.Ref("v/app"), d("signed"))
	sig := imagegen.CosignSign(t, imagegen.CosignSigner(t, vendor), payload)
	imagegen.Push(t, src.Ref("v/app:"+registry.CosignTags(d("otherdigest").String())[0]), imagegen.CosignImage(t, payload, sig))
	// The OCI referrer form.
	rp := imagegen.CosignPayload(t, src.Ref("v/app"), d("referrer"))
	mt, _ := imgs["referrer"].MediaType()
	sz, _ := imgs["referrer"].Size()
	imagegen.PushReferrer(t, src.Ref("v/app"), v1.Descriptor{MediaType: mt, Digest: d("referrer"), Size: sz}, verify.SignatureArtifactType,
		static.NewLayer(rp, types.MediaType(verify.SimpleSigningMediaType)),
		map[string]string{verify.SignatureAnnotation: imagegen.CosignSign(t, imagegen.CosignSigner(t, vendor), rp)})

	task := engine.Task{Name: "signed", Source: plain(src), Target: plain(dst), Mappings: []engine.Mapping{
		{From: "v/app", To: "m/app", Verify: verifyKeys(t, vendor), Referrers: true,
			Tags: tags(t, "signed", "unsigned", "otherkey", "tampered", "otherdigest", "referrer")},
	}}
	e := newEngine()
	rep := e.Run(ctx(t), []engine.Task{task})
	got := map[string]engine.Result{}
	for _, r := range rep.Results {
		got[r.Tag] = r
	}
	for tag, want := range map[string]error{"unsigned": verify.ErrUnsigned, "otherkey": verify.ErrNotVerified, "tampered": verify.ErrNotVerified, "otherdigest": verify.ErrOtherDigest} {
		r := got[tag]
		if r.Status != engine.Failed || !errors.Is(r.Err, want) {
			t.Errorf("%s: %s, %v; want failed with %v", tag, r.Status, r.Err, want)
			continue
		}
		if _, err := remote.Head(parse(t, dst.Ref("m/app:"+tag))); err == nil {
			t.Errorf("%s reached the target", tag)
		}
		if _, err := remote.Head(parse(t, dst.Ref("m/app@"+d(tag).String()))); err == nil {
			t.Errorf("%s's manifest reached the target", tag)
		}
	}
	for _, tag := range []string{"signed", "referrer"} {
		if r := got[tag]; r.Status != engine.Copied || r.Digest != d(tag).String() {
			t.Errorf("%s: %+v, want copied", tag, r)
		}
	}
	// The signature travelled (referrers: true) and verifies at the target.
	sigRef := dst.Ref("m/app:" + registry.CosignTags(d("signed").String())[0])
	if _, err := remote.Head(parse(t, sigRef)); err != nil {
		t.Errorf("the signature did not travel: %v", err)
	}

	// Warm: present images are not verified again; no GET at the source
	// for them. Within the engine a verified digest is not re-checked
	// either (the daemon keeps its engine).
	// (referrers: false, whose attachment checks are GETs of their own.)
	task.Mappings[0].Tags = tags(t, "signed", "referrer")
	task.Mappings[0].Referrers = false
	src.Reset()
	rep = e.Run(ctx(t), []engine.Task{task})
	for _, r := range rep.Results {
		if r.Status != engine.Skipped {
			t.Errorf("warm: %s %s", r.Tag, r.Status)
		}
	}
	if n := src.Count(regtest.KindManifestGet) + src.Count(regtest.KindBlobGet); n != 0 {
		t.Errorf("warm run: %d GETs at the source, want 0: %v", n, src.Requests())
	}
	// A copy of a verified digest to a new target repository: copied,
	// the signature not fetched again.
	task.Mappings[0].To = "m/again"
	task.Mappings[0].Tags = tags(t, "signed")
	src.Reset()
	if rep = e.Run(ctx(t), []engine.Task{task}); rep.Results[0].Status != engine.Copied {
		t.Fatalf("again: %+v", rep.Results)
	}
	for _, q := range src.Requests() {
		if q.Kind == regtest.KindManifestGet && strings.Contains(q.Path, ".sig") {
			t.Errorf("the cached verification fetched the signature again: %s", q.Path)
		}
	}
	// Another engine (a new sync) verifies anew: the signature is read.
	src.Reset()
	task.Mappings[0].To = "m/third"
	if rep = run(t, task); rep.Results[0].Status != engine.Copied {
		t.Fatalf("third: %+v", rep.Results)
	}
	if !slices.ContainsFunc(src.Requests(), func(q regtest.Request) bool { return strings.Contains(q.Path, ".sig") }) {
		t.Error("a new engine did not read the signature: the test proves nothing about the cache")
	}
	// Every tag: signature tags are not images to verify or copy.
	task.Mappings[0].Tags, task.Mappings[0].To = nil, "m/all"
	for _, r := range run(t, task).Results {
		if registry.IsAttachmentTag(r.Tag) {
			t.Errorf("the signature tag %s was selected as an image (%s)", r.Tag, r.Status)
		}
	}
}
