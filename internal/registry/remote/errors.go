package remote

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/regmirror/regmirror/internal/registry"
)

// explain turns the errors users most often meet into messages that say how
// to fix them. It keeps the original error wrapped for errors.Is/As. URL
// queries (upload state, signed CDN URLs) are taken out of the message.
func explain(host string, err error) error {
	return registry.StripQueries(explainErr(host, err))
}

func explainErr(host string, err error) error {
	if err == nil {
		return nil
	}
	var (
		unknownCA *x509.UnknownAuthorityError
		verify    *tls.CertificateVerificationError
		hostname  x509.HostnameError
		terr      *transport.Error
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &verify), errors.As(err, &hostname):
		return fmt.Errorf("%w (TLS: the certificate of %s is not trusted; fix it with one of: `ca-file: CA.pem`, `certs-dir: DIR` holding DIR/%s/ca.crt, or `skip-tls-verify: true`)", err, host, host)
	case tlsAlert(err):
		// The server ended the handshake: most often it wants a client
		// certificate we did not present (or does not accept ours).
		return fmt.Errorf("%w (TLS: %s refused the handshake; if it requires a client certificate, put client.cert and client.key in `certs-dir: DIR` as DIR/%s/client.cert and DIR/%s/client.key)", err, host, host, host)
	case errors.As(err, &terr):
		switch terr.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", registry.ErrNotFound, err)
		case http.StatusUnauthorized:
			return fmt.Errorf("%w (authentication failed for %s: check the credentials in the config, or `regmirror login` / docker's config.json)", err, host)
		case http.StatusForbidden:
			return fmt.Errorf("%w (access denied by %s: the credentials lack permission)", err, host)
		}
		for _, d := range terr.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return fmt.Errorf("%w: %w", registry.ErrNotFound, err)
			}
		}
	}
	return err
}

// tlsAlert reports whether the server sent a TLS alert during the
// handshake. crypto/tls reports it as a *net.OpError with Op "remote
// error" around an unexported alert type.
func tlsAlert(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return true
	}
	var alert tls.AlertError
	if errors.As(err, &alert) {
		return true
	}
	// Over HTTP/2 the alert can be lost: when the server sends it after
	// the client's side of a TLS 1.3 handshake is done, net/http's HTTP/2
	// client may see the connection closed before its first request and
	// report only this unexported error, which can be recognised by its
	// text alone. A connection closed before any request was answered is
	// in practice a refused handshake.
	return strings.Contains(err.Error(), "http2: client conn could not be established")
}
