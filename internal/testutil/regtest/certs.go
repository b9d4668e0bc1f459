package regtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"
)

// keyPair is a freshly generated certificate and its private key.
type keyPair struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

func (kp *keyPair) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kp.der})
}

func (kp *keyPair) tlsCertificate(chain ...*keyPair) tls.Certificate {
	c := tls.Certificate{
		Certificate: [][]byte{kp.der},
		PrivateKey:  kp.key,
		Leaf:        kp.cert,
	}
	for _, p := range chain {
		c.Certificate = append(c.Certificate, p.der)
	}
	return c
}

// newKeyPair creates an ECDSA P-256 certificate from tmpl, signed by parent
// (self-signed when parent is nil). The caller sets usage fields in tmpl.
func newKeyPair(t testing.TB, tmpl *x509.Certificate, parent *keyPair) *keyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("regtest: generate key: %v", err)
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("regtest: serial: %v", err)
	}
	tmpl.SerialNumber = sn
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)

	signerCert, signerKey := tmpl, key
	if parent != nil {
		signerCert, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatalf("regtest: create certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("regtest: parse certificate: %v", err)
	}
	return &keyPair{cert: cert, der: der, key: key}
}

// newServerPKI returns a throw-away CA and a server certificate it signed,
// valid for 127.0.0.1, ::1 and localhost.
func newServerPKI(t testing.TB) (ca, leaf *keyPair) {
	t.Helper()
	ca = newKeyPair(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "regtest CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil)
	leaf = newKeyPair(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:    []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca)
	return ca, leaf
}

// newSigningCert returns a self-signed certificate used to sign bearer
// tokens; the registry trusts it through its rootcertbundle.
func newSigningCert(t testing.TB) *keyPair {
	t.Helper()
	return newKeyPair(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "regtest token signer"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil)
}
