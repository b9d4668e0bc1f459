package regtest

import (
	"net/http"
	"net/url"
	"strings"
)

// Kind classifies a request seen by the registry (token endpoint included).
type Kind string

// Request kinds. Classification follows the OCI distribution spec routes.
const (
	KindPing           Kind = "ping"            // GET/HEAD /v2/
	KindCatalog        Kind = "catalog"         // GET /v2/_catalog
	KindTagsList       Kind = "tags-list"       // GET /v2/<name>/tags/list
	KindManifestGet    Kind = "manifest-get"    // GET /v2/<name>/manifests/<ref>
	KindManifestHead   Kind = "manifest-head"   // HEAD /v2/<name>/manifests/<ref>
	KindManifestPut    Kind = "manifest-put"    // PUT /v2/<name>/manifests/<ref>
	KindManifestDelete Kind = "manifest-delete" // DELETE /v2/<name>/manifests/<ref>
	KindBlobGet        Kind = "blob-get"        // GET /v2/<name>/blobs/<digest>
	KindBlobHead       Kind = "blob-head"       // HEAD /v2/<name>/blobs/<digest>
	KindBlobDelete     Kind = "blob-delete"     // DELETE /v2/<name>/blobs/<digest>
	KindBlobUpload     Kind = "blob-upload"     // any request under /v2/<name>/blobs/uploads/ except a mount
	KindBlobMount      Kind = "blob-mount"      // POST /v2/<name>/blobs/uploads/?mount=<digest>[&from=<repo>]
	KindReferrers      Kind = "referrers"       // GET /v2/<name>/referrers/<digest>
	KindToken          Kind = "token"           // any request to TokenPath (the token endpoint)
	KindOther          Kind = "other"           // anything else
)

// Request is one HTTP request as seen by the registry (token endpoint included).
type Request struct {
	Method string
	Path   string // URL path, without the query
	Query  string // raw query string
	Kind   Kind
	// Repo is the repository name for repository-scoped routes ("" otherwise).
	Repo string
	// Ref is the tag or digest for manifest routes, the digest for blob
	// routes and the mounted digest for KindBlobMount ("" otherwise).
	Ref string
	// Status is the HTTP status written; 0 while the request is in flight.
	Status int
}

// Classify maps a request to its Kind, repository and reference. It is
// exported so that middleware given to WithMiddleware can make the same
// decisions the recorder makes.
func Classify(method string, u *url.URL) (kind Kind, repo, ref string) {
	p := u.Path
	switch p {
	case TokenPath:
		return KindToken, "", ""
	case "/v2", "/v2/":
		return KindPing, "", ""
	case "/v2/_catalog":
		return KindCatalog, "", ""
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return KindOther, "", ""
	}
	if name, ok := strings.CutSuffix(rest, "/tags/list"); ok && name != "" {
		return KindTagsList, name, ""
	}
	// References and digests never contain '/', so the last occurrence of a
	// route segment is the real one even if the repository name contains
	// the same word (e.g. "a/manifests/b").
	if i := strings.LastIndex(rest, "/manifests/"); i > 0 {
		name, r := rest[:i], rest[i+len("/manifests/"):]
		if r != "" && !strings.Contains(r, "/") {
			switch method {
			case http.MethodGet:
				return KindManifestGet, name, r
			case http.MethodHead:
				return KindManifestHead, name, r
			case http.MethodPut:
				return KindManifestPut, name, r
			case http.MethodDelete:
				return KindManifestDelete, name, r
			}
			return KindOther, name, r
		}
	}
	if i := strings.LastIndex(rest, "/referrers/"); i > 0 {
		name, r := rest[:i], rest[i+len("/referrers/"):]
		if r != "" && !strings.Contains(r, "/") {
			return KindReferrers, name, r
		}
	}
	if i := strings.LastIndex(rest, "/blobs/"); i > 0 {
		name, r := rest[:i], rest[i+len("/blobs/"):]
		if up, ok := strings.CutPrefix(r, "uploads/"); ok && !strings.Contains(up, "/") {
			if method == http.MethodPost && up == "" {
				if d := u.Query().Get("mount"); d != "" {
					return KindBlobMount, name, d
				}
			}
			return KindBlobUpload, name, ""
		}
		if r == "uploads" {
			return KindBlobUpload, name, ""
		}
		if r != "" && !strings.Contains(r, "/") {
			switch method {
			case http.MethodGet:
				return KindBlobGet, name, r
			case http.MethodHead:
				return KindBlobHead, name, r
			case http.MethodDelete:
				return KindBlobDelete, name, r
			}
			return KindOther, name, r
		}
	}
	return KindOther, "", ""
}

// StatusWriter captures the status code written through it (Status), for
// handlers in front of a registry that record what it answered.
type StatusWriter struct {
	http.ResponseWriter
	Status int
}

func (w *StatusWriter) WriteHeader(code int) {
	if w.Status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher when the underlying writer does.
func (w *StatusWriter) Flush() {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recordingHandler logs every request to r before passing it to next.
func (r *Registry) recordingHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		kind, repo, ref := Classify(req.Method, req.URL)
		r.mu.Lock()
		idx := len(r.reqs)
		gen := r.gen
		r.reqs = append(r.reqs, Request{
			Method: req.Method,
			Path:   req.URL.Path,
			Query:  req.URL.RawQuery,
			Kind:   kind,
			Repo:   repo,
			Ref:    ref,
		})
		r.mu.Unlock()

		sw := &StatusWriter{ResponseWriter: w}
		defer func() {
			status := sw.Status
			if status == 0 {
				status = http.StatusOK
			}
			r.mu.Lock()
			if r.gen == gen && idx < len(r.reqs) {
				r.reqs[idx].Status = status
			}
			r.mu.Unlock()
		}()
		next.ServeHTTP(sw, req)
	})
}
