package verify_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/verify"
)

type pair struct {
	name string
	priv crypto.Signer
}

func keys(t *testing.T) []pair {
	t.Helper()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return []pair{{"p256.pub", p256}, {"p384.pub", p384}, {"ed25519.pub", ed}, {"rsa.pub", rk}}
}

// publicKeys round-trips the public keys through PEM, as a key file.
func publicKeys(t *testing.T, ps ...pair) *verify.Keys {
	t.Helper()
	var ks []verify.Key
	for _, p := range ps {
		pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(p.priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		k, err := verify.ParseKey(pemBytes)
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		ks = append(ks, verify.Key{Name: p.name, Key: k})
	}
	out, err := verify.NewKeys(ks)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerify(t *testing.T) {
	digest := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	other := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("cd", 32)}
	all := keys(t)
	for _, signer := range all {
		t.Run(signer.name, func(t *testing.T) {
			s := imagegen.CosignSigner(t, signer.priv)
			good := imagegen.CosignPayload(t, "example.com/app", digest)
			sig := verify.Signature{Payload: good, Base64: imagegen.CosignSign(t, s, good)}

			// Good: verified by the signer's key, among others.
			key, err := publicKeys(t, all...).Verify([]verify.Signature{sig}, digest.String())
			if err != nil || key != signer.name {
				t.Fatalf("good signature: key %q, %v", key, err)
			}
			// Wrong key: every key but the signer's.
			var others []pair
			for _, p := range all {
				if p.name != signer.name {
					others = append(others, p)
				}
			}
			_, err = publicKeys(t, others...).Verify([]verify.Signature{sig}, digest.String())
			if !errors.Is(err, verify.ErrNotVerified) || !strings.Contains(err.Error(), "signed by another key") {
				t.Errorf("wrong key: %v", err)
			}
			// Tampered payload: the signed payload with another digest.
			tampered := []byte(strings.Replace(string(good), digest.Hex, other.Hex, 1))
			if string(tampered) == string(good) {
				t.Fatal("tampering changed nothing")
			}
			_, err = publicKeys(t, signer).Verify([]verify.Signature{{Payload: tampered, Base64: sig.Base64}}, other.String())
			if !errors.Is(err, verify.ErrNotVerified) {
				t.Errorf("tampered payload: %v", err)
			}
			// A good signature of another image.
			_, err = publicKeys(t, signer).Verify([]verify.Signature{sig}, other.String())
			if !errors.Is(err, verify.ErrOtherDigest) || !strings.Contains(err.Error(), digest.String()) {
				t.Errorf("signature for another digest: %v", err)
			}
		})
	}
	// Unsigned.
	_, err := publicKeys(t, all[0]).Verify(nil, digest.String())
	if !errors.Is(err, verify.ErrUnsigned) || !strings.Contains(err.Error(), "sha256-"+digest.Hex+".sig") {
		t.Errorf("unsigned: %v", err)
	}
	// A malformed annotation is no signature, and a verified one among
	// bad ones wins.
	s := imagegen.CosignSigner(t, all[0].priv)
	good := imagegen.CosignPayload(t, "example.com/app", digest)
	sigs := []verify.Signature{{Payload: good, Base64: "%%%"}, {Payload: good, Base64: imagegen.CosignSign(t, s, good)}}
	if key, err := publicKeys(t, all[0]).Verify(sigs, digest.String()); err != nil || key != all[0].name {
		t.Errorf("good among malformed: %q, %v", key, err)
	}
}

func TestParseKeyRejects(t *testing.T) {
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, pub := range map[string]crypto.PublicKey{"P-224": p224.Public(), "RSA 1024": small.Public()} {
		pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(pub)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verify.ParseKey(pemBytes); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := verify.ParseKey([]byte("not a key")); err == nil {
		t.Error("garbage accepted")
	}
}

func TestKeysID(t *testing.T) {
	ks := keys(t)
	a, b := publicKeys(t, ks[0], ks[1]), publicKeys(t, ks[1], ks[0])
	if a.ID() != b.ID() || a.ID() == publicKeys(t, ks[0]).ID() {
		t.Errorf("IDs %s %s %s: want order-independent and key-dependent", a.ID(), b.ID(), publicKeys(t, ks[0]).ID())
	}
}
