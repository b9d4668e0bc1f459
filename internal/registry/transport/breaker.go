package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
)

// ErrUnreachable is the error (wrapped in *UnreachableError) of a request
// not sent because its host's circuit breaker is open.
var ErrUnreachable = errors.New("registry unreachable")

// UnreachableError says which host is down and why; no request was sent.
type UnreachableError struct {
	Host  string
	Cause string
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("%s unreachable (%s); not attempted", e.Host, e.Cause)
}

func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

// BreakerState is what the circuit breaker of one host knows.
type BreakerState struct {
	// Open: requests to the host fail at once, without a request.
	Open bool
	// Cause is the last failure that counted ("connection refused").
	Cause string
	// Failures in a row that counted; Rejected requests not sent.
	Failures, Rejected int
}

// breaker is one host's circuit breaker (in hostState, under its mu).
type breaker struct {
	BreakerState
}

// breakerTransport fails requests at once for a host that is down: after
// BreakAfter failures in a row that say the host is not there (connection
// refused, a DNS failure, a failed TLS handshake, a 5xx), so that a dead
// registry costs the retries of the first few requests, not of every
// image. Any other answer closes the breaker again. The breaker of every
// host is shared by the stores of a run (Hosts); HalfOpen lets the next
// run try again.
type breakerTransport struct {
	inner http.RoundTripper
	host  string
	m     *Hosts
	// tls: count TLS handshake failures. Not for endpoints allowed plain
	// HTTP, whose https attempt fails by design before the http one.
	tls bool
}

func (t *breakerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.m.init()
	if req.URL.Host != t.host || t.m.BreakAfter <= 0 {
		return t.inner.RoundTrip(req)
	}
	st := t.m.host(t.host)
	st.mu.Lock()
	if st.br.Open {
		st.br.Rejected++
		cause := st.br.Cause
		st.mu.Unlock()
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &UnreachableError{Host: t.host, Cause: cause}
	}
	st.mu.Unlock()
	resp, err := t.inner.RoundTrip(req)
	cause, counts := "", false
	switch {
	case err != nil:
		cause, counts = unreachable(err, t.tls)
	case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		cause, counts = fmt.Sprintf("HTTP %d", resp.StatusCode), true
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case counts:
		st.br.Failures++
		st.br.Cause = cause
		if st.br.Failures >= t.m.BreakAfter && !st.br.Open {
			st.br.Open = true
			t.m.Logger.Warn("registry unreachable: its remaining requests fail at once", "registry", t.host, "cause", cause, "failures", st.br.Failures)
		}
	case err == nil:
		st.br.Failures = 0
	}
	return resp, err
}

// unreachable says whether err means the host is not there, and why.
func unreachable(err error, countTLS bool) (string, bool) {
	var dns *net.DNSError
	var cv *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", true
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host", true
	case errors.As(err, &dns):
		return "DNS: " + dns.Err, true
	case !countTLS:
		return "", false
	case errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &he), errors.As(err, &ci):
		return "TLS handshake: certificate not trusted", true
	case errors.As(err, &rh):
		return "TLS handshake: the server does not speak TLS", true
	}
	return "", false
}

// Breakers returns the state of every host's circuit breaker that has
// seen a failure: what a status page shows.
func (m *Hosts) Breakers() map[string]BreakerState {
	out := map[string]BreakerState{}
	m.hosts.Range(func(k, v any) bool {
		st := v.(*hostState)
		st.mu.Lock()
		if st.br.Failures > 0 || st.br.Open {
			out[k.(string)] = st.br.BreakerState
		}
		st.mu.Unlock()
		return true
	})
	return out
}

// HalfOpen lets every open breaker try again: the next request to the
// host is sent, and one more failure opens the breaker again. The daemon
// calls it (through the engine) at the start of each run.
func (m *Hosts) HalfOpen() {
	m.hosts.Range(func(_, v any) bool {
		st := v.(*hostState)
		st.mu.Lock()
		if st.br.Open {
			st.br.Open = false
			st.br.Failures = m.BreakAfter - 1
		}
		st.mu.Unlock()
		return true
	})
}
