package config

import (
	"crypto"

	"go.yaml.in/yaml/v3"

	"github.com/regmirror/regmirror/internal/verify"
)

// Verify is a mapping's `verify:` (ours): copy only images with a cosign
// signature by one of Keys.
type Verify struct {
	Keys []VerifyKey
}

// VerifyKey is one public key file, read and parsed at load time.
type VerifyKey struct {
	File string
	Key  crypto.PublicKey
}

// verify reads `verify: {keys: [FILE, ...]}`: every file must hold a
// public key cosign signs with (ECDSA P-256/P-384, Ed25519, RSA).
func (l *loader) verify(key, val *yaml.Node) *Verify {
	const what = "verify"
	v := &Verify{}
	var keysKey, keysVal *yaml.Node
	if !l.section(key, val, what, map[string]field{
		"keys": func(k, val *yaml.Node) { keysKey, keysVal = k, val },
	}) || keysKey == nil {
		l.errorf(key.Line, "verify needs keys: a list of cosign public key files (verify: {keys: [cosign.pub]})")
		return nil
	}
	seq := l.resolve(keysVal)
	switch {
	case seq == nil:
		return nil
	case isNull(seq) || seq.Kind == yaml.SequenceNode && len(seq.Content) == 0:
		l.errorf(keysKey.Line, "verify: keys is empty: list at least one public key file")
		return nil
	case seq.Kind != yaml.SequenceNode:
		l.errorf(seq.Line, "verify: \"keys\" must be a list of files, not %s", kindName(seq))
		return nil
	}
	for i, item := range seq.Content {
		n := l.resolve(item)
		if n == nil {
			return nil
		}
		if isNull(n) || n.Kind != yaml.ScalarNode || n.Value == "" {
			l.errorf(n.Line, "verify: keys[%d] must be a file name, not %s", i, kindName(n))
			continue
		}
		data, err := l.readFile(n.Value)
		if err != nil {
			l.errorf(n.Line, "verify: key %s: %s", quote(n.Value), ioErrText(err))
			continue
		}
		k, err := verify.ParseKey(data)
		if err != nil {
			l.errorf(n.Line, "verify: key %s is not a usable cosign public key: %v", quote(n.Value), err)
			continue
		}
		v.Keys = append(v.Keys, VerifyKey{File: n.Value, Key: k})
	}
	if len(v.Keys) == 0 {
		return nil
	}
	return v
}
