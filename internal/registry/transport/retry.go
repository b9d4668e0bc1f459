package transport

import (
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Retryable is the one place that decides whether an error is transient:
// worth trying again with the same request, or with the whole image copy.
// Everything else (a digest mismatch, a 400, an auth failure, not found) is
// permanent and fails the image at once.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		for _, d := range terr.Errors {
			switch d.Code {
			// Another writer finished or expired the same upload session
			// (Nexus, concurrent mirrors): a fresh attempt HEADs the blob
			// first and finds it, or starts a new session.
			case transport.BlobUploadInvalidErrorCode, transport.BlobUploadUnknownErrorCode,
				transport.TooManyRequestsErrorCode, transport.UnavailableErrorCode:
				return true
			}
		}
		return terr.Temporary()
	}
	if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrPlainHTTP) || errors.Is(err, ErrUnreachable) {
		return false
	}
	var nerr net.Error
	return errors.Is(err, ErrIdleTimeout) || errors.Is(err, ErrTooSlow) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, net.ErrClosed) ||
		(errors.As(err, &nerr) && nerr.Timeout())
}

// Retry is the request-level retry policy handed to go-containerregistry.
type Retry struct {
	// Attempts per request (go-containerregistry's "steps").
	Attempts int
	// First wait, multiplied by Factor after each attempt.
	Wait   time.Duration
	Factor float64
}

// DefaultRetry waits 1s, 3s, 9s.
var DefaultRetry = Retry{Attempts: 4, Wait: time.Second, Factor: 3}

// TransportOptions are the same policy for requests made outside
// go-containerregistry's remote package.
func (r Retry) TransportOptions() []transport.Option {
	return []transport.Option{
		transport.WithRetryPredicate(Retryable),
		transport.WithRetryBackoff(transport.Backoff{Duration: r.Wait, Factor: r.Factor, Jitter: 0.1, Steps: r.Attempts}),
		transport.WithRetryStatusCodes(retryStatusCodes...),
	}
}

var retryStatusCodes = []int{http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// RemoteOptions hand the policy to go-containerregistry's remote package.
func (r Retry) RemoteOptions() []remote.Option {
	return []remote.Option{
		remote.WithRetryPredicate(Retryable),
		remote.WithRetryBackoff(remote.Backoff{Duration: r.Wait, Factor: r.Factor, Jitter: 0.1, Steps: r.Attempts}),
		remote.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout),
	}
}
