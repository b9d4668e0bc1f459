package imagegen

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// CosignSigner returns a sigstore signer for priv (ECDSA, Ed25519 or
// RSA), hashing with SHA-256 as `cosign sign --key` does.
func CosignSigner(t testing.TB, priv crypto.PrivateKey) signature.Signer {
	t.Helper()
	s, err := signature.LoadSignerVerifier(priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// CosignPayload is the simple-signing payload cosign signs for digest in
// repo (sigstore's payload.Cosign, as cosign builds it).
func CosignPayload(t testing.TB, repo string, digest v1.Hash) []byte {
	t.Helper()
	d, err := name.NewDigest(repo+"@"+digest.String(), name.WeakValidation)
	if err != nil {
		t.Fatal(err)
	}
	b, err := payload.Cosign{Image: d}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// CosignSign signs payload with s and returns the base64 signature cosign
// puts in the layer's dev.cosignproject.cosign/signature annotation.
func CosignSign(t testing.TB, s signature.Signer, payload []byte) string {
	t.Helper()
	sig, err := s.SignMessage(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// CosignImage is the signature image cosign pushes as
// sha256-<hex>.sig: one simple-signing layer holding payload, annotated
// with the base64 signature.
func CosignImage(t testing.TB, payload []byte, sigB64 string) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.Append(img, mutate.Addendum{
		Layer:       static.NewLayer(payload, SimpleSigningMediaType),
		Annotations: map[string]string{CosignSignatureAnn: sigB64},
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}
