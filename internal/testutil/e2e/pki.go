package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// testPKI is a fresh CA with one server and one client certificate, all
// ECDSA P-256, valid for a day. The server certificate names IP 127.0.0.1
// and DNS localhost.
type testPKI struct {
	CAFile, ServerCert, ServerKey, ClientCert, ClientKey string

	pool      *x509.CertPool
	serverTLS tls.Certificate
	clientTLS tls.Certificate
	caPEM     []byte
	clientPEM []byte
	clientKey []byte
}

func newTestPKI(dir string) (*testPKI, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "regmirror e2e test CA", Organization: []string{"regmirror e2e"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}

	leaf := func(cn string, usage x509.ExtKeyUsage, server bool) (certPEM, keyPEM []byte, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: cn, Organization: []string{"regmirror e2e"}},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if server {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
		if err != nil {
			return nil, nil, err
		}
		keyPEM, err = pemKey(key)
		if err != nil {
			return nil, nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
	}

	p := &testPKI{
		CAFile:     filepath.Join(dir, "ca.crt"),
		ServerCert: filepath.Join(dir, "server.crt"),
		ServerKey:  filepath.Join(dir, "server.key"),
		ClientCert: filepath.Join(dir, "client.cert"),
		ClientKey:  filepath.Join(dir, "client.key"),
		pool:       x509.NewCertPool(),
		caPEM:      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}
	p.pool.AddCert(caCert)
	srvCert, srvKey, err := leaf("127.0.0.1", x509.ExtKeyUsageServerAuth, true)
	if err != nil {
		return nil, err
	}
	p.clientPEM, p.clientKey, err = leaf("regmirror e2e client", x509.ExtKeyUsageClientAuth, false)
	if err != nil {
		return nil, err
	}
	if p.serverTLS, err = tls.X509KeyPair(srvCert, srvKey); err != nil {
		return nil, err
	}
	if p.clientTLS, err = tls.X509KeyPair(p.clientPEM, p.clientKey); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		path string
		data []byte
	}{
		{p.CAFile, p.caPEM},
		{p.ServerCert, srvCert},
		{p.ServerKey, srvKey},
		{p.ClientCert, p.clientPEM},
		{p.ClientKey, p.clientKey},
	} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// writeCertsDir lays out dir/<host>/ca.crt (plus client.cert and client.key
// when withClient) the way docker's certs.d and skopeo's --cert-dir expect.
func (p *testPKI) writeCertsDir(dir, host string, withClient bool) error {
	hd := filepath.Join(dir, host)
	if err := os.MkdirAll(hd, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(hd, "ca.crt"), p.caPEM, 0o600); err != nil {
		return err
	}
	if withClient {
		if err := os.WriteFile(filepath.Join(hd, "client.cert"), p.clientPEM, 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(hd, "client.key"), p.clientKey, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func pemKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}
