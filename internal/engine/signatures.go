package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/verify"
)

// maxSignaturePayload caps what is read of a signature layer: a
// simple-signing payload is a few hundred bytes.
const maxSignaturePayload = 64 << 10

// verifySignature admits digest, the source reference's digest, to be
// copied only when one of the mapping's keys signed it (see package
// verify). A success is remembered for the engine's life, per digest and
// key set, so the daemon verifies an image once.
func (e *Engine) verifySignature(ctx context.Context, j *job, digest string) error {
	keys := j.mapping.Verify
	cacheKey := digest + "\x00" + keys.ID()
	if _, ok := e.verified.Load(cacheKey); ok {
		return nil
	}
	// cosign's .sig tag first (what `cosign sign` writes by default),
	// then OCI referrers (--registry-referrers-mode=oci-1-1).
	sigs, err := e.signatureTag(ctx, j, digest)
	if err != nil {
		return err
	}
	key, verr := keys.Verify(sigs, digest)
	if verr != nil {
		more, err := e.signatureReferrers(ctx, j, digest)
		if err != nil {
			return err
		}
		if len(more) > 0 {
			key, verr = keys.Verify(append(sigs, more...), digest)
		}
	}
	if verr != nil {
		return fmt.Errorf("verifying %s: %w", j.srcR, verr)
	}
	e.verified.Store(cacheKey, key)
	e.log.Info("signature verified", "task", j.task.Name, "source", j.srcR, "digest", digest, "key", key)
	return nil
}

// signatureTag reads the signatures in cosign's sha256-<hex>.sig tag.
func (e *Engine) signatureTag(ctx context.Context, j *job, digest string) ([]verify.Signature, error) {
	tag := strings.Replace(digest, ":", "-", 1) + ".sig"
	a, err := j.src.Fetch(ctx, j.mapping.From, tag)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("source %s: %w", j.src.Ref(j.mapping.From, tag), err)
	case a.Image == nil:
		return nil, nil
	}
	return signaturesOf(a.Image, tag)
}

// signatureReferrers reads the cosign signatures among digest's referrers.
func (e *Engine) signatureReferrers(ctx context.Context, j *job, digest string) ([]verify.Signature, error) {
	rl, ok := j.src.(registry.ReferrerLister)
	if !ok {
		return nil, nil
	}
	m := j.mapping
	ds, err := rl.Referrers(ctx, m.From, digest)
	if err != nil {
		return nil, fmt.Errorf("source %s: listing referrers: %w", j.src.Ref(m.From, digest), err)
	}
	var out []verify.Signature
	for _, d := range ds {
		if d.ArtifactType != verify.SignatureArtifactType {
			continue
		}
		a, err := j.src.Fetch(ctx, m.From, d.Digest.String())
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", j.src.Ref(m.From, d.Digest.String()), err)
		}
		if a.Image == nil {
			continue
		}
		sigs, err := signaturesOf(a.Image, d.Digest.String())
		if err != nil {
			return nil, err
		}
		out = append(out, sigs...)
	}
	return out, nil
}

// signaturesOf reads the signed layers of a cosign signature manifest:
// each payload (bounded, checked against its digest) and the signature
// from its annotation.
func signaturesOf(img v1.Image, where string) ([]verify.Signature, error) {
	mf, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("signature %s: %w", where, err)
	}
	var out []verify.Signature
	for _, d := range mf.Layers {
		sig, ok := d.Annotations[verify.SignatureAnnotation]
		if !ok || d.Size > maxSignaturePayload {
			continue
		}
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("signature %s: %w", where, err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, fmt.Errorf("signature %s: %w", where, err)
		}
		payload, err := io.ReadAll(io.LimitReader(rc, maxSignaturePayload+1))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("signature %s: reading its payload: %w", where, err)
		}
		sum := sha256.Sum256(payload)
		if len(payload) > maxSignaturePayload || d.Digest.Algorithm != "sha256" || hex.EncodeToString(sum[:]) != d.Digest.Hex {
			continue // not the payload the manifest names: no signature
		}
		out = append(out, verify.Signature{Payload: bytes.Clone(payload), Base64: sig, Where: where})
	}
	return out, nil
}
