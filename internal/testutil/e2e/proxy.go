package e2e

import (
	"crypto/tls"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// countingProxy is a reverse proxy in front of a registry that counts the
// requests it forwards. It keeps the client's Host header so the registry
// builds Location URLs (uploads) that point back at the proxy.
type countingProxy struct {
	srv *http.Server
	tr  *http.Transport

	mu       sync.Mutex
	counts   map[string]int
	reqs     []string
	inflight atomic.Int64
}

func newCountingProxy(ln net.Listener, r *Registry) (*countingProxy, error) {
	backend := &url.URL{Scheme: r.Scheme, Host: r.BackendHost}
	p := &countingProxy{counts: map[string]int{}, tr: r.Transport()}
	p.tr.DisableCompression = true // pass bytes through untouched
	p.tr.MaxIdleConnsPerHost = 16
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(backend)
			pr.Out.Host = pr.In.Host
		},
		Transport:     p.tr,
		FlushInterval: -1,
		ErrorLog:      log.New(r.logs, "e2e counting proxy: ", log.LstdFlags),
	}
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			p.record(req)
			p.inflight.Add(1)
			defer p.inflight.Add(-1)
			rp.ServeHTTP(w, req)
		}),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(r.logs, "e2e counting proxy: ", log.LstdFlags),
	}
	if r.pki != nil {
		cfg := &tls.Config{
			Certificates: []tls.Certificate{r.pki.serverTLS},
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"http/1.1"},
		}
		if r.opts.ClientCAs {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
			cfg.ClientCAs = r.pki.pool
		}
		ln = tls.NewListener(ln, cfg)
	}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *countingProxy) close() {
	_ = p.srv.Close()
	p.tr.CloseIdleConnections()
}

func (p *countingProxy) record(req *http.Request) {
	kind := requestKind(req.Method, req.URL.Path)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[kind]++
	p.reqs = append(p.reqs, req.Method+" "+req.URL.Path)
}

func (p *countingProxy) snapshotCounts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]int, len(p.counts))
	for k, v := range p.counts {
		m[k] = v
	}
	return m
}

func (p *countingProxy) snapshotRequests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.reqs...)
}

func (p *countingProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts = map[string]int{}
	p.reqs = nil
}

// requestKind classifies a registry API request; see Registry.Counts.
func requestKind(method, path string) string {
	if path == "/v2" || path == "/v2/" {
		return "ping"
	}
	if !strings.HasPrefix(path, "/v2/") {
		return "other"
	}
	if path == "/v2/_catalog" {
		return "catalog"
	}
	// lastSeg reports whether path ends in "/<marker>/<one segment>" (the
	// segment may be empty when allowEmpty), looking at the last marker so
	// that repository names containing "manifests" etc. do not confuse it.
	lastSeg := func(marker string, allowEmpty bool) bool {
		i := strings.LastIndex(path, "/"+marker+"/")
		if i < len("/v2") {
			return false
		}
		rest := path[i+len(marker)+2:]
		return !strings.Contains(rest, "/") && (allowEmpty || rest != "")
	}
	switch {
	case strings.HasSuffix(path, "/tags/list"):
		return "tags list"
	case lastSeg("blobs/uploads", true), strings.HasSuffix(path, "/blobs/uploads"):
		return "upload"
	case lastSeg("manifests", false):
		return "manifest " + method
	case lastSeg("blobs", false):
		return "blob " + method
	case lastSeg("referrers", false):
		return "referrers"
	}
	return "other"
}
