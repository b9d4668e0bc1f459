// Package faultproxy puts an httptest reverse proxy in front of a real
// registry (usually an in-process regtest.Registry) and makes it misbehave
// on demand, request by request: truncate or corrupt a body, answer with an
// error status, reset the connection, stall, redirect a blob elsewhere.
//
//	p := faultproxy.New(t, backend.URL)
//	p.Inject(faultproxy.Match{Kind: regtest.KindBlobGet, Repo: "a"}, 1, faultproxy.Truncate())
//	// point the code under test at p.Host instead of backend.Host
//
// Everything that is not matched by a rule is forwarded untouched. The
// proxy keeps the client's Host header so the registry's Location headers
// point back at the proxy, and rewrites a bearer challenge's realm to the
// proxy too, so token requests pass through it (go-containerregistry only
// trusts a loopback realm on the registry's own host:port).
//
// It listens on 127.0.0.1 only and is closed by t.Cleanup; stalled
// responses are released when the client goes away or the proxy closes.
package faultproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// Proxy is a running fault-injecting reverse proxy.
type Proxy struct {
	// Host is "127.0.0.1:PORT": use it as the registry name.
	Host string
	// URL is "http://" + Host.
	URL string

	backend *url.URL
	rp      *httputil.ReverseProxy
	srv     *httptest.Server
	closed  chan struct{}

	mu    sync.Mutex
	rules []*Rule
	reqs  []Request
}

// Request is one request as seen by the proxy.
type Request struct {
	Method string
	Path   string
	Query  string
	Kind   regtest.Kind
	Repo   string
	Ref    string
	Header http.Header
	// Status is what the client was answered (0 when the connection was
	// cut or the request is still in flight).
	Status int
	// Fault names the fault applied, "" when forwarded untouched.
	Fault string
}

// Match selects requests. Empty fields match anything.
type Match struct {
	Method string
	Kind   regtest.Kind
	Repo   string
	// Ref is the tag or digest of manifest and blob routes, and the
	// digest being committed (?digest=) for blob upload PUTs.
	Ref string
	// Header, when set, must be present on the request (e.g. "Range").
	Header string
}

func (m Match) matches(r *http.Request, kind regtest.Kind, repo, ref string) bool {
	return (m.Method == "" || m.Method == r.Method) &&
		(m.Kind == "" || m.Kind == kind) &&
		(m.Repo == "" || m.Repo == repo) &&
		(m.Ref == "" || m.Ref == ref) &&
		(m.Header == "" || r.Header.Get(m.Header) != "")
}

// Fault answers one request in place of (or around) the backend. next
// forwards the request to the backend, writing to whatever writer it is
// given.
type Fault struct {
	Name  string
	Serve func(w http.ResponseWriter, r *http.Request, next http.Handler)
}

// Rule is an injected fault: requests matching Match, after the first Skip
// of them, get the Fault, Times times (0: always).
type Rule struct {
	Match Match
	Skip  int
	Times int
	Fault Fault

	seen, hits int
}

// Hits returns how many requests the rule's fault was applied to.
func (p *Proxy) Hits(r *Rule) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return r.hits
}

// New starts a proxy in front of backendURL ("http://127.0.0.1:PORT").
func New(t testing.TB, backendURL string) *Proxy {
	t.Helper()
	u, err := url.Parse(backendURL)
	if err != nil || u.Scheme != "http" {
		t.Fatalf("faultproxy: backend %q: want an http:// URL", backendURL)
	}
	p := &Proxy{backend: u, closed: make(chan struct{})}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // Location headers point back here
		},
		ModifyResponse: func(resp *http.Response) error {
			for _, k := range []string{"Www-Authenticate", "Location"} {
				if v := resp.Header.Get(k); v != "" {
					resp.Header.Set(k, strings.ReplaceAll(v, u.Host, p.Host))
				}
			}
			return nil
		},
		// Errors talking to the backend (a cancelled client) are not
		// worth a log line in test output.
		ErrorLog:     quiet,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) },
	}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	p.srv.Config.ErrorLog = quiet
	p.srv.Start()
	p.Host = p.srv.Listener.Addr().String()
	p.URL = "http://" + p.Host
	t.Cleanup(func() {
		close(p.closed)
		p.srv.CloseClientConnections()
		p.srv.Close()
	})
	return p
}

var quiet = log.New(io.Discard, "", 0)

// Inject adds a rule: the fault f for requests matching m, times times (0:
// always). Rules are tried in the order they were added; the first that
// applies wins.
func (p *Proxy) Inject(m Match, times int, f Fault) *Rule {
	return p.Add(&Rule{Match: m, Times: times, Fault: f})
}

// Add adds a fully specified rule and returns it.
func (p *Proxy) Add(r *Rule) *Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, r)
	return r
}

// Remove takes a rule out: later requests no longer get its fault (the
// source is healthy again).
func (p *Proxy) Remove(r *Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = slices.DeleteFunc(p.rules, func(x *Rule) bool { return x == r })
}

// Requests returns every request seen so far, in arrival order.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Request, len(p.reqs))
	copy(out, p.reqs)
	return out
}

// Count returns how many requests matched m.
func (p *Proxy) Count(m Match) int {
	n := 0
	for _, q := range p.Requests() {
		if (m.Method == "" || m.Method == q.Method) && (m.Kind == "" || m.Kind == q.Kind) &&
			(m.Repo == "" || m.Repo == q.Repo) && (m.Ref == "" || m.Ref == q.Ref) &&
			(m.Header == "" || q.Header.Get(m.Header) != "") {
			n++
		}
	}
	return n
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	kind, repo, ref := regtest.Classify(r.Method, r.URL)
	if kind == regtest.KindBlobUpload && ref == "" {
		ref = r.URL.Query().Get("digest")
	}
	p.mu.Lock()
	var fault *Fault
	for _, rule := range p.rules {
		if !rule.Match.matches(r, kind, repo, ref) {
			continue
		}
		rule.seen++
		if rule.seen <= rule.Skip || (rule.Times > 0 && rule.hits >= rule.Times) {
			continue
		}
		rule.hits++
		fault = &rule.Fault
		break
	}
	idx := len(p.reqs)
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Kind: kind, Repo: repo, Ref: ref, Header: r.Header.Clone()}
	if fault != nil {
		rec.Fault = fault.Name
	}
	p.reqs = append(p.reqs, rec)
	p.mu.Unlock()

	sw := &regtest.StatusWriter{ResponseWriter: w}
	defer func() {
		p.mu.Lock()
		p.reqs[idx].Status = sw.Status
		p.mu.Unlock()
	}()
	if fault == nil {
		p.rp.ServeHTTP(sw, r)
		return
	}
	fault.Serve(sw, r, p.rp)
}

// Status answers with code and a distribution-style error body carrying
// errCode (e.g. "MANIFEST_INVALID"; "" for no body), plus headers given as
// key, value pairs. The request is not forwarded.
func Status(code int, errCode string, header ...string) Fault {
	return Fault{Name: fmt.Sprintf("status %d %s", code, errCode), Serve: func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		drain(r)
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		if errCode == "" {
			w.WriteHeader(code)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": errCode, "message": "injected by faultproxy"}}})
	}}
}

// ForwardThenStatus forwards the request to the backend (so it takes
// effect there) and then answers the client with Status instead: another
// writer did the work, this client is told it failed.
func ForwardThenStatus(code int, errCode string) Fault {
	st := Status(code, errCode)
	return Fault{Name: "forwarded, then " + st.Name, Serve: func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		st.Serve(w, r, nil)
	}}
}

// Before runs f, then forwards the request untouched.
func Before(name string, f func()) Fault {
	return Fault{Name: name, Serve: func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		f()
		next.ServeHTTP(w, r)
	}}
}

// buffered forwards r and returns the backend's complete answer.
func buffered(r *http.Request, next http.Handler) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	return rec
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = append([]string(nil), v...)
	}
}

// Truncate forwards the request, sends the headers (with the full
// Content-Length) and the first half of the body, then cuts the connection.
func Truncate() Fault {
	return Fault{Name: "truncate", Serve: func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		writeHalf(w, r, next)
		cut(w, false)
	}}
}

// writeHalf forwards r and sends the answer's status, its headers (with
// the full Content-Length) and the first half of its body.
func writeHalf(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rec := buffered(r, next)
	body := rec.Body.Bytes()
	copyHeader(w.Header(), rec.Header())
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body[:len(body)/2])
}

// Corrupt forwards the request and flips bytes of the body, keeping its
// length: the client receives content that does not match its digest.
func Corrupt() Fault {
	return Fault{Name: "corrupt", Serve: func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		rec := buffered(r, next)
		body := bytes.Clone(rec.Body.Bytes())
		for i := 0; i < len(body); i += 97 {
			body[i] ^= 0xff
		}
		copyHeader(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	}}
}

// Reset reads part of the request body (an upload in progress), then
// resets the connection (TCP RST), without answering.
func Reset() Fault {
	return Fault{Name: "reset", Serve: func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		_, _ = io.CopyN(io.Discard, r.Body, 512)
		cut(w, true)
	}}
}

// Stall sends the backend's status and headers, then nothing: the body
// never comes. It returns when the client gives up or the proxy closes.
func (p *Proxy) Stall() Fault {
	return Fault{Name: "stall", Serve: func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		rec := buffered(r, next)
		copyHeader(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case <-r.Context().Done():
		case <-p.closed:
		case <-time.After(time.Minute): // bounded even if nobody gives up
		}
	}}
}

// StallMidway sends the backend's status, headers and the first half of
// the body, then nothing more: a transfer that hangs in the middle, so
// whatever the client streams it into has received part of it. It returns
// when the client gives up or the proxy closes.
func (p *Proxy) StallMidway() Fault {
	return Fault{Name: "stall midway", Serve: func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		writeHalf(w, r, next)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case <-r.Context().Done():
		case <-p.closed:
		case <-time.After(time.Minute): // bounded even if nobody gives up
		}
	}}
}

// Drip sends the backend's status and headers, then the body one byte
// every interval: a connection that is never idle long enough for an idle
// timeout and yet never finishes. It returns when the body is sent, the
// client gives up or the proxy closes.
func (p *Proxy) Drip(every time.Duration) Fault {
	return Fault{Name: "drip", Serve: func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		rec := buffered(r, next)
		copyHeader(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		f, _ := w.(http.Flusher)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for _, c := range rec.Body.Bytes() {
			if _, err := w.Write([]byte{c}); err != nil {
				return
			}
			if f != nil {
				f.Flush()
			}
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			case <-p.closed:
				return
			}
		}
	}}
}

// IgnoreRange forwards the request without its Range header, so the
// client gets 200 and the full body whatever range it asked for.
func IgnoreRange() Fault {
	return Fault{Name: "ignore range", Serve: func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		r.Header.Del("Range")
		r.Header.Del("If-Range")
		next.ServeHTTP(w, r)
	}}
}

// RedirectTo fetches the blob from the backend, hands it to cdn and
// answers with a 307 redirect to cdn: a registry that serves blobs from
// another host (a CDN or object store).
func RedirectTo(cdn *BlobHost) Fault {
	return Fault{Name: "redirect", Serve: func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		rec := buffered(r, next)
		if rec.Code != http.StatusOK {
			copyHeader(w.Header(), rec.Header())
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		path := "/cdn" + r.URL.Path
		cdn.put(path, rec.Body.Bytes(), rec.Header().Get("Content-Type"))
		http.Redirect(w, r, cdn.URL+path+"?sig=signed-url", http.StatusTemporaryRedirect)
	}}
}

// cut ends the connection under the response: with reset, an RST instead
// of an orderly close.
func cut(w http.ResponseWriter, reset bool) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(fmt.Sprintf("faultproxy: hijack: %v", err)) // httptest servers support it
	}
	if tc, ok := conn.(*net.TCPConn); ok && reset {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func drain(r *http.Request) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
	}
}

// BlobHost is a second host serving blobs handed to it by RedirectTo, the
// way a registry's CDN does. It records every request's headers.
type BlobHost struct {
	// URL is "http://127.0.0.1:PORT".
	URL string

	mu    sync.Mutex
	blobs map[string]blob
	reqs  []http.Header
}

type blob struct {
	data []byte
	ct   string
}

// NewBlobHost starts a blob host closed by t.Cleanup.
func NewBlobHost(t testing.TB) *BlobHost {
	b := &BlobHost{blobs: map[string]blob{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.reqs = append(b.reqs, r.Header.Clone())
		bl, ok := b.blobs[r.URL.Path]
		b.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		if bl.ct != "" {
			w.Header().Set("Content-Type", bl.ct)
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(bl.data)))
		_, _ = w.Write(bl.data)
	}))
	t.Cleanup(srv.Close)
	b.URL = srv.URL
	return b
}

func (b *BlobHost) put(path string, data []byte, ct string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.blobs[path] = blob{data: bytes.Clone(data), ct: ct}
}

// Requests returns the headers of every request the blob host received.
func (b *BlobHost) Requests() []http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]http.Header(nil), b.reqs...)
}
