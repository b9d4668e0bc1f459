package remote

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
)

// TestExplainRefusedHandshake: however net/http reports a handshake the
// server refused (an alert seen during the handshake, or over HTTP/2 only
// a connection closed before the first request), the message names the
// client-certificate fix; other network errors are left as they are.
func TestExplainRefusedHandshake(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		hint bool
	}{
		{"alert", &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}, true},
		{"http2 not established", fmt.Errorf("Get \"https://r/v2/\": %w", errors.New("http2: client conn could not be established")), true},
		{"refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := explain("r:5000", tc.err).Error()
			if has := strings.Contains(got, "client.cert"); has != tc.hint {
				t.Errorf("explain(%v) = %q; client certificate hint: %v, want %v", tc.err, got, has, tc.hint)
			}
			if !errors.Is(explain("r:5000", tc.err), tc.err) {
				t.Errorf("explain does not wrap %v", tc.err)
			}
		})
	}
}
