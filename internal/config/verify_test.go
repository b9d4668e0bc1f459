package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

func writeKey(t *testing.T, dir, name string, curve elliptic.Curve) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerifyKey(t *testing.T) {
	dir := t.TempDir()
	vendor := writeKey(t, dir, "vendor.pub", elliptic.P256())
	other := writeKey(t, dir, "other.pub", elliptic.P384())
	doc := `tasks:
  - name: t
    verify: {keys: [` + vendor + `]}
    source: {registry: src.example.com}
    target: {registry: dst.example.com}
    mappings:
      - from: inherits
      - from: own
        verify:
          keys: [` + vendor + `, ` + other + `]
`
	cfg, err := Load(strings.NewReader(doc), "v.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ms := cfg.Tasks[0].Mappings
	if ms[0].Verify == nil || len(ms[0].Verify.Keys) != 1 || ms[0].Verify.Keys[0].File != vendor || ms[0].Verify.Keys[0].Key == nil {
		t.Errorf("inherited verify %+v", ms[0].Verify)
	}
	if ms[1].Verify == nil || len(ms[1].Verify.Keys) != 2 {
		t.Errorf("own verify %+v", ms[1].Verify)
	}

	p224 := writeKey(t, dir, "p224.pub", elliptic.P224())
	notKey := filepath.Join(dir, "readme.txt")
	os.WriteFile(notKey, []byte("hello"), 0o644)
	for _, c := range []struct {
		extra []string
		want  []string
	}{
		{[]string{"        verify: {keys: [" + filepath.Join(dir, "missing.pub") + "]}"}, []string{"c.yaml:9:", "missing.pub"}},
		{[]string{"        verify: {keys: [" + notKey + "]}"}, []string{"c.yaml:9:", "not a usable cosign public key", "PEM"}},
		{[]string{"        verify: {keys: [" + p224 + "]}"}, []string{"c.yaml:9:", "P-224", "want P-256 or P-384"}},
		{[]string{"        verify: {keys: []}"}, []string{"c.yaml:9:", "keys is empty"}},
		{[]string{"        verify: {}"}, []string{"c.yaml:9:", "verify needs keys"}},
		{[]string{"        verify: {key: [" + vendor + "]}"}, []string{"c.yaml:9:", `did you mean "keys"`}},
		{[]string{"        verify: " + vendor}, []string{"c.yaml:9:", "must be a mapping"}},
	} {
		wantLoadError(t, c.extra, c.want...)
	}
}
