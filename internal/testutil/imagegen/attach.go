package imagegen

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types and annotations of cosign's signature format ("simple
// signing"), as cosign writes them.
const (
	SimpleSigningMediaType = types.MediaType("application/vnd.dev.cosign.simplesigning.v1+json")
	CosignSignatureAnn     = "dev.cosignproject.cosign/signature"
	EmptyJSONMediaType     = types.MediaType("application/vnd.oci.empty.v1+json")
	SPDXArtifactType       = "application/spdx+json"
)

// SimpleSigningPayload is the payload cosign signs for an image: the
// docker reference and the manifest digest it vouches for.
type SimpleSigningPayload struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// NewSigningKey returns a fresh ECDSA P-256 key, cosign's default.
func NewSigningKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Signature builds a cosign signature image for digest the way `cosign
// sign --key` stores it: one simple-signing layer holding the payload, with
// the base64 ASN.1 ECDSA signature of the payload's SHA-256 in the
// dev.cosignproject.cosign/signature annotation. It is pushed under
// registry.CosignTags(digest)[0] (sha256-<hex>.sig).
func Signature(t testing.TB, key *ecdsa.PrivateKey, repo string, digest v1.Hash) v1.Image {
	t.Helper()
	var p SimpleSigningPayload
	p.Critical.Identity.DockerReference = repo
	p.Critical.Image.DockerManifestDigest = digest.String()
	p.Critical.Type = "cosign container image signature"
	payload, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:       static.NewLayer(payload, SimpleSigningMediaType),
		Annotations: map[string]string{CosignSignatureAnn: base64.StdEncoding.EncodeToString(sig)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// VerifySignature checks a cosign signature image against key and the
// digest it should vouch for; it returns a reason when it does not verify.
func VerifySignature(img v1.Image, key *ecdsa.PublicKey, digest string) string {
	m, err := img.Manifest()
	if err != nil {
		return err.Error()
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != SimpleSigningMediaType {
		return "not a simple-signing image"
	}
	sig, err := base64.StdEncoding.DecodeString(m.Layers[0].Annotations[CosignSignatureAnn])
	if err != nil {
		return "signature annotation: " + err.Error()
	}
	l, err := img.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		return err.Error()
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return err.Error()
	}
	defer rc.Close()
	payload, err := io.ReadAll(rc)
	if err != nil {
		return err.Error()
	}
	sum := sha256.Sum256(payload)
	if !ecdsa.VerifyASN1(key, sum[:], sig) {
		return "signature does not verify"
	}
	var p SimpleSigningPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return "payload: " + err.Error()
	}
	if p.Critical.Image.DockerManifestDigest != digest {
		return "payload vouches for " + p.Critical.Image.DockerManifestDigest + ", not " + digest
	}
	return ""
}

// rawManifest is a manifest given as bytes, for remote.Put.
type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.b, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// PushSBOM pushes an OCI 1.1 artifact to repo by digest: an SPDX document
// with subject as its subject.
func PushSBOM(t testing.TB, repo string, subject v1.Descriptor, doc string, opts ...remote.Option) v1.Descriptor {
	t.Helper()
	return PushReferrer(t, repo, subject, SPDXArtifactType, static.NewLayer([]byte(doc), types.MediaType(SPDXArtifactType)), nil, opts...)
}

// PushReferrer pushes an OCI 1.1 artifact of artifactType to repo by
// digest: an empty config and one layer (with annotations), subject as
// its subject.
func PushReferrer(t testing.TB, repo string, subject v1.Descriptor, artifactType string, layer v1.Layer, annotations map[string]string, opts ...remote.Option) v1.Descriptor {
	t.Helper()
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), PushTimeout)
	defer cancel()
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	cfg := static.NewLayer([]byte("{}"), EmptyJSONMediaType)
	descs := make([]v1.Descriptor, 2)
	for i, l := range []v1.Layer{cfg, layer} {
		if err := remote.WriteLayer(r, l, opts...); err != nil {
			t.Fatalf("imagegen: push referrer blob: %v", err)
		}
		d, _ := l.Digest()
		n, _ := l.Size()
		mt, _ := l.MediaType()
		descs[i] = v1.Descriptor{MediaType: mt, Digest: d, Size: n}
	}
	descs[1].Annotations = annotations
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     types.OCIManifestSchema1,
		"artifactType":  artifactType,
		"config":        descs[0],
		"layers":        []v1.Descriptor{descs[1]},
		"subject":       v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	h, n, _ := v1.SHA256(bytes.NewReader(b))
	if err := remote.Put(r.Digest(h.String()), rawManifest{b, types.OCIManifestSchema1}, opts...); err != nil {
		t.Fatalf("imagegen: push referrer manifest: %v", err)
	}
	return v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: h, Size: n, ArtifactType: artifactType}
}
