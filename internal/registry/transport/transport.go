package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// Config is what the transport needs to know of one endpoint.
type Config struct {
	// Host is "host[:port]" as requests name it (Docker Hub's canonical
	// index.docker.io for its aliases).
	Host string
	// PlainHTTP allows plain HTTP to Host.
	PlainHTTP bool
	// SkipTLSVerify disables certificate verification and, as in skopeo
	// and dregsy, allows falling back to plain HTTP.
	SkipTLSVerify bool
	// CAFile is an extra PEM CA bundle to trust.
	CAFile string
	// CertsDir is a docker certs.d directory: CertsDir/<host>/*.crt are
	// CAs, client.cert and client.key a client certificate.
	CertsDir string
	// RateLimit holds pulls back while the host's remaining allowance is
	// low.
	RateLimit RateLimitPolicy
}

// tlsConfig builds the TLS settings for one endpoint: the system roots plus
// ca-file and certs.d CAs, a client certificate from certs.d, and
// verification turned off only when skip-tls-verify asks for it.
//
// The system pool is loaded only when there are CAs to add to it: reading
// and parsing every certificate of /etc/ssl/certs takes longer than a whole
// run with nothing to do, and with RootCAs unset crypto/tls loads the same
// pool itself, on the first verification that needs it (never, for a
// plain-HTTP registry).
func tlsConfig(e Config) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.SkipTLSVerify {
		cfg.InsecureSkipVerify = true // the user asked for it: skip-tls-verify
		return cfg, nil
	}
	type ca struct {
		source string // "ca-file PATH" or "CA PATH", for messages
		pem    []byte
	}
	var cas []ca
	if e.CAFile != "" {
		pem, err := os.ReadFile(e.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading ca-file: %w", err)
		}
		cas = append(cas, ca{"ca-file " + e.CAFile, pem})
	}
	if e.CertsDir != "" {
		dir := filepath.Join(e.CertsDir, e.Host)
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("reading certs-dir: %w", err)
		}
		var cert, key string
		for _, ent := range entries {
			p := filepath.Join(dir, ent.Name())
			switch {
			case strings.HasSuffix(ent.Name(), ".crt"):
				pem, err := os.ReadFile(p)
				if err != nil {
					return nil, fmt.Errorf("reading CA %s: %w", p, err)
				}
				cas = append(cas, ca{"CA " + p, pem})
			case strings.HasSuffix(ent.Name(), ".cert"):
				cert = p
			case strings.HasSuffix(ent.Name(), ".key"):
				key = p
			}
		}
		if (cert == "") != (key == "") {
			return nil, fmt.Errorf("certs-dir %s: a client certificate needs both a .cert and a .key file", dir)
		}
		if cert != "" {
			pair, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				return nil, fmt.Errorf("loading client certificate from %s: %w", dir, err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
	}
	if len(cas) == 0 {
		return cfg, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, c := range cas {
		if !pool.AppendCertsFromPEM(c.pem) {
			return nil, fmt.Errorf("%s: no PEM certificate found", c.source)
		}
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// New returns the transport stack for an endpoint, one RoundTripper per
// concern: connections are pooled per host and reused for the whole run,
// and every request follows the shared Hosts' policy. mid, if set, wraps
// the stack just above the host's manners (the remote store's blob
// ledger sits there).
func New(e Config, h *Hosts, mid func(http.RoundTripper) http.RoundTripper) (http.RoundTripper, error) {
	tc, err := tlsConfig(e)
	if err != nil {
		return nil, err
	}
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:       tc,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128, // engine checks go 128 wide; keep them all
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	ua := h.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	var rt http.RoundTripper = &userAgentTransport{inner: t, ua: ua}
	// The debug log's line per request is written here, at the wire: it
	// shows what the registry was sent (the PUT a monolithic upload
	// became, each retry of a 429), not what go-containerregistry asked
	// for above (answers from the ping cache and the blob ledger never
	// reach the network).
	rt = &debugTransport{inner: rt, m: h}
	rt = &uploadEnd{inner: rt}
	rt = &breakerTransport{inner: rt, host: e.Host, m: h, tls: !e.PlainHTTP && !e.SkipTLSVerify}
	rt = &plainHTTPGuard{inner: rt, host: e.Host, allowed: e.PlainHTTP || e.SkipTLSVerify, httpOnly: e.PlainHTTP}
	rt = newLinkSchemeFix(rt, e)
	// Below the manners: a request waiting out a 429 or a low rate limit
	// holds no slot; only requests on the wire do.
	rt = &limitTransport{inner: rt, m: h}
	rt = &hostsTransport{inner: rt, m: h, policy: e.RateLimit}
	rt = &pingTransport{inner: rt, m: h}
	if mid != nil {
		rt = mid(rt)
	}
	rt = &countingTransport{inner: rt}
	rt = &resendTransport{inner: rt}
	return rt, nil
}

// userAgentTransport names regmirror in every request it sends, including
// the pings, token requests and uploads go-containerregistry makes and the
// few requests made outside it. It sits at the bottom of the stack, so no
// request can leave without it.
type userAgentTransport struct {
	inner http.RoundTripper
	ua    string
}

func (t *userAgentTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("User-Agent") != t.ua {
		// A RoundTripper must not change the request it was given.
		r := req.Clone(req.Context())
		r.Header.Set("User-Agent", t.ua)
		req = r
	}
	return t.inner.RoundTrip(req)
}

// resendTransport gives a request sent a second time a fresh body.
// go-containerregistry's bearer transport answers a 401 (a token that
// expired in the middle of a run) by fetching a new token and sending the
// very same request again, body included, although the first attempt
// consumed the body: an upload then fails with "ContentLength=N with Body
// length 0". So the body of every request that can be replayed (GetBody
// set) is marked on the way down, and a request that comes back with a
// body already read is given GetBody's fresh copy. This sets req.Body,
// which a RoundTripper should not touch; it is the only way to know, as
// the same *http.Request comes back.
type resendTransport struct{ inner http.RoundTripper }

// sentBody marks a body once it has been read from or closed: either
// way it cannot be sent again.
type sentBody struct {
	io.ReadCloser
	read atomic.Bool
}

func (b *sentBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.ReadCloser.Read(p)
}

func (b *sentBody) Close() error {
	b.read.Store(true)
	return b.ReadCloser.Close()
}

func (t *resendTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody != nil {
		sb, ok := req.Body.(*sentBody)
		switch {
		case !ok:
			req.Body = &sentBody{ReadCloser: req.Body}
		case sb.read.Load():
			body, err := req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("sending %s %s again: %w", req.Method, req.URL.Redacted(), err)
			}
			req.Body = &sentBody{ReadCloser: body}
		}
	}
	return t.inner.RoundTrip(req)
}

// debugTransport logs every request at debug level: method, URL without
// its query (signed CDN URLs carry credentials there), status and time.
// Headers are never logged: they carry the credentials.
type debugTransport struct {
	inner http.RoundTripper
	m     *Hosts
}

func (d *debugTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	d.m.init()
	log := d.m.Logger
	if !log.Enabled(req.Context(), slog.LevelDebug) {
		return d.inner.RoundTrip(req)
	}
	start := time.Now()
	resp, err := d.inner.RoundTrip(req)
	u := *req.URL
	u.RawQuery, u.User, u.Fragment = "", nil, ""
	attrs := []any{"method", req.Method, "url", u.String(), "duration", time.Since(start).Round(time.Millisecond)}
	if err != nil {
		log.DebugContext(req.Context(), "http", append(attrs, "error", err)...)
		return resp, err
	}
	log.DebugContext(req.Context(), "http", append(attrs, "status", resp.StatusCode)...)
	return resp, nil
}

// plainHTTPGuard refuses plain HTTP to the registry unless the user marked
// it. go-containerregistry falls back from https to http on its own for
// loopback and RFC 1918 addresses; for a mirror that would be a silent
// downgrade, so it is stopped here.
//
// The other way round, a registry written http:// is spoken to in plain
// HTTP only: go-containerregistry would try https first (its ping races
// https, then http), which costs a connection and a round trip to learn
// that the registry does not speak TLS, on every run. The https attempt is
// answered here at once, without the network, and the http ping goes
// ahead. (skip-tls-verify still tries https first: such a registry
// usually speaks TLS with a certificate nobody can verify.)
type plainHTTPGuard struct {
	inner    http.RoundTripper
	host     string
	allowed  bool
	httpOnly bool
}

// ErrPlainHTTP is returned when plain HTTP would be used for a registry that
// was not marked as allowing it.
var ErrPlainHTTP = errors.New("plain HTTP not allowed")

// errHTTPOnly answers an https request to a registry written http://.
var errHTTPOnly = errors.New("not tried: the registry is written http://, so it is spoken to in plain HTTP only")

func (g *plainHTTPGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == g.host && (req.URL.Scheme == "http" && !g.allowed || req.URL.Scheme == "https" && g.httpOnly) {
		if req.Body != nil {
			req.Body.Close()
		}
		if g.httpOnly {
			return nil, fmt.Errorf("https://%s: %w", g.host, errHTTPOnly)
		}
		return nil, fmt.Errorf("%w for %s: HTTPS failed; write the registry as http://%s or set skip-tls-verify to allow it (on the command line: --insecure-registry %s)", ErrPlainHTTP, g.host, g.host, g.host)
	}
	return g.inner.RoundTrip(req)
}

// countingTransport adds the size of every request body it sends to the
// counter carried by the request's context, if any. That is how a copy
// learns how many bytes it moved to the target.
type countingTransport struct{ inner http.RoundTripper }

type counterKey struct{}

// WithByteCounter returns a context whose requests add their body sizes to n.
func WithByteCounter(ctx context.Context, n *atomic.Int64) context.Context {
	return context.WithValue(ctx, counterKey{}, n)
}

type progressKey struct{}

// WithProgress returns a context whose uploads (request bodies sent to a
// registry, blobs written to a layout) report each chunk's size to fn as
// it is sent: what a progress display counts. fn must be safe for
// concurrent use.
func WithProgress(ctx context.Context, fn func(n int64)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// ReportProgress reports n bytes sent to the progress hook of ctx, if any:
// for stores that write without HTTP (an OCI layout).
func ReportProgress(ctx context.Context, n int64) {
	if fn, ok := ctx.Value(progressKey{}).(func(int64)); ok && n > 0 {
		fn(n)
	}
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	n, _ := req.Context().Value(counterKey{}).(*atomic.Int64)
	fn, _ := req.Context().Value(progressKey{}).(func(int64))
	if (n != nil || fn != nil) && req.Body != nil && req.Body != http.NoBody {
		req = req.Clone(req.Context())
		req.Body = &countingReader{ReadCloser: req.Body, n: n, progress: fn}
	}
	return c.inner.RoundTrip(req)
}

type countingReader struct {
	io.ReadCloser
	n        *atomic.Int64
	progress func(int64)
}

func (r *countingReader) Read(p []byte) (int, error) {
	k, err := r.ReadCloser.Read(p)
	if r.n != nil {
		r.n.Add(int64(k))
	}
	if r.progress != nil && k > 0 {
		r.progress(int64(k))
	}
	return k, err
}

// linkSchemeFix works around go-containerregistry's check of pagination
// links. It accepts a Link header only when its scheme is the one
// name.Registry.Scheme() guesses for the host, and that guess is "http" for
// loopback and RFC 1918 addresses even when the registry was reached over
// https. So every page after the first of a tag list (or catalog) of a TLS
// registry at such an address failed ("pagination URL scheme "https" does
// not match registry scheme "http""). For those hosts a same-host Link is
// rewritten to the guessed scheme; go-containerregistry's own transport then
// sends the request with the scheme its ping found, https.
type linkSchemeFix struct {
	inner  http.RoundTripper
	host   string
	scheme string // what go-containerregistry expects
}

func newLinkSchemeFix(inner http.RoundTripper, e Config) http.RoundTripper {
	var opts []name.Option
	if e.PlainHTTP || e.SkipTLSVerify {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(e.Host, opts...)
	if err != nil || reg.Scheme() != "http" {
		return inner // the guess is https: links of https registries pass
	}
	return &linkSchemeFix{inner: inner, host: e.Host, scheme: reg.Scheme()}
}

func (f *linkSchemeFix) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := f.inner.RoundTrip(req)
	if err != nil || req.URL.Host != f.host || req.URL.Scheme == f.scheme {
		return resp, err
	}
	link := resp.Header.Get("Link")
	target, rest, ok := strings.Cut(strings.TrimPrefix(link, "<"), ">")
	if !ok || !strings.HasPrefix(link, "<") {
		return resp, nil
	}
	u, perr := url.Parse(target)
	if perr != nil {
		return resp, nil
	}
	u = req.URL.ResolveReference(u)
	if u.Host != req.URL.Host || u.Scheme != req.URL.Scheme {
		return resp, nil // not ours to touch: go-containerregistry decides
	}
	u.Scheme = f.scheme
	resp.Header.Set("Link", "<"+u.String()+">"+rest)
	return resp, nil
}
