// Package verify checks cosign signatures made with a key: the signature of
// a "simple signing" payload by one of a set of public keys, and that the
// payload vouches for the image's digest. The cryptography and the payload
// format are sigstore's (github.com/sigstore/sigstore/pkg/signature and
// its payload package); this package decides what counts as verified and
// says why an image is not. It does no I/O: the engine finds the
// signatures (cosign's sha256-<hex>.sig tag or an OCI referrer) and hands
// them over.
//
// Key-based only: keyless signatures (a Fulcio certificate, a Rekor entry)
// need online transparency-log checks, see docs/decisions.md.
package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// Media type, annotation and artifact type of cosign's signatures.
const (
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	SignatureAnnotation    = "dev.cosignproject.cosign/signature"
	// SignatureArtifactType marks a cosign signature stored as an OCI
	// referrer (cosign's --registry-referrers-mode=oci-1-1).
	SignatureArtifactType = "application/vnd.dev.cosign.artifact.sig.v1+json"
)

// Why an image does not verify; errors wrap one of these.
var (
	// ErrUnsigned: no cosign signature was found for the digest.
	ErrUnsigned = errors.New("unsigned")
	// ErrNotVerified: signatures were found, but none verifies with any
	// of the keys: signed by another key, or the signature or its payload
	// was altered (the two cannot be told apart).
	ErrNotVerified = errors.New("no signature verifies with the configured keys")
	// ErrOtherDigest: a signature verifies with a key, but its payload
	// vouches for another image.
	ErrOtherDigest = errors.New("signature is for another image")
)

// Key is a public key and the name it is reported by (its file).
type Key struct {
	Name string
	Key  crypto.PublicKey
}

// ParseKey reads a PEM public key as cosign writes it ("PUBLIC KEY",
// PKIX; "RSA PUBLIC KEY" is accepted too) and checks it is of a kind
// cosign signs with: ECDSA P-256 or P-384, Ed25519, or RSA of 2048 bits or
// more.
func ParseKey(pemBytes []byte) (crypto.PublicKey, error) {
	k, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, err
	}
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, fmt.Errorf("ECDSA key on curve %s: want P-256 or P-384", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits: want 2048 or more", k.N.BitLen())
		}
	default:
		return nil, fmt.Errorf("%T keys are not supported: want ECDSA P-256/P-384, Ed25519 or RSA", k)
	}
	return k, nil
}

// Keys is a set of keys to verify with. The zero value verifies nothing.
type Keys struct {
	keys []loaded
	id   string
}

type loaded struct {
	name string
	vs   []signature.Verifier
}

// NewKeys prepares keys for verification.
func NewKeys(keys []Key) (*Keys, error) {
	out := &Keys{}
	h := sha256.New()
	var ders []string
	for _, k := range keys {
		der, err := cryptoutils.MarshalPublicKeyToDER(k.Key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k.Name, err)
		}
		ders = append(ders, string(der))
		// cosign hashes with SHA-256 whatever the key; a P-384 key used
		// by other signers may hash with SHA-384.
		hashes := []crypto.Hash{crypto.SHA256}
		if ek, ok := k.Key.(*ecdsa.PublicKey); ok && ek.Curve == elliptic.P384() {
			hashes = append(hashes, crypto.SHA384)
		}
		l := loaded{name: k.Name}
		for _, hf := range hashes {
			v, err := signature.LoadVerifier(k.Key, hf)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k.Name, err)
			}
			l.vs = append(l.vs, v)
		}
		out.keys = append(out.keys, l)
	}
	slices.Sort(ders)
	for _, d := range ders {
		h.Write([]byte(d))
	}
	out.id = hex.EncodeToString(h.Sum(nil))
	return out, nil
}

// ID identifies the key set (a hash of the keys, whatever their names or
// order): verification results are cached per digest and ID.
func (k *Keys) ID() string { return k.id }

// MarshalJSON renders the set as its ID, so that a task's fingerprint
// changes when its keys do.
func (k *Keys) MarshalJSON() ([]byte, error) { return json.Marshal(k.id) }

// Names lists the keys' names, for messages.
func (k *Keys) Names() []string {
	out := make([]string, len(k.keys))
	for i, l := range k.keys {
		out[i] = l.name
	}
	return out
}

// Signature is one cosign signature: the simple-signing payload and the
// base64 signature from the layer's annotation.
type Signature struct {
	Payload []byte
	Base64  string
	// Where says where it was found, for messages ("sha256-….sig").
	Where string
}

// Verify returns the name of the key that verifies one of sigs as a
// signature of digest, or an error wrapping ErrUnsigned, ErrNotVerified
// or ErrOtherDigest.
func (k *Keys) Verify(sigs []Signature, digest string) (string, error) {
	if len(sigs) == 0 {
		return "", fmt.Errorf("%w: no cosign signature for %s (neither a %s tag nor an OCI referrer)", ErrUnsigned, digest, strings.Replace(digest, ":", "-", 1)+".sig")
	}
	var other []string
	for _, s := range sigs {
		raw, err := base64.StdEncoding.DecodeString(s.Base64)
		if err != nil {
			continue
		}
		key := k.verifiedBy(raw, s.Payload)
		if key == "" {
			continue
		}
		var p payload.SimpleContainerImage
		if err := json.Unmarshal(s.Payload, &p); err != nil || p.Critical.Type != payload.CosignSignatureType {
			continue
		}
		if got := p.Critical.Image.DockerManifestDigest; got != digest {
			other = append(other, fmt.Sprintf("%s (signed by %s)", got, key))
			continue
		}
		return key, nil
	}
	if len(other) > 0 {
		return "", fmt.Errorf("%w: the signature found vouches for %s, not %s", ErrOtherDigest, strings.Join(other, ", "), digest)
	}
	return "", fmt.Errorf("%w: %d signature(s) of %s, none verifies with %s: signed by another key, or the signature or its payload was altered",
		ErrNotVerified, len(sigs), digest, strings.Join(k.Names(), ", "))
}

func (k *Keys) verifiedBy(sig, data []byte) string {
	for _, l := range k.keys {
		for _, v := range l.vs {
			if v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(data)) == nil {
				return l.name
			}
		}
	}
	return ""
}
