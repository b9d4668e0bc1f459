package remote

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/registry"
)

// ledger is what a store has learnt about the blobs of its registry during
// a run. It serves these rules of the copy:
//
//   - a blob the registry holds in one repository is mounted into another
//     (POST ...?mount=DIGEST&from=REPO), not uploaded again;
//   - the same digest is never uploaded twice at once: a second push of it
//     waits for the first and then mounts;
//   - a push that fails cancels the upload sessions it opened, so nothing
//     half-written is left behind;
//   - a blob of known digest and size is uploaded monolithically: POST,
//     then one PUT carrying the body (see monolithic);
//   - a small blob nobody is known to hold is not HEADed before its
//     upload: the POST's mount from the repository itself asks the same
//     question (see skipHead).
//
// It learns by watching the target's responses (ledgerTransport): a blob
// HEAD that answers 200, a mount that answers 201 and an upload whose final
// PUT answers 201 all prove that a repository holds a digest.
type ledger struct {
	mu       sync.Mutex
	known    map[string]string            // digest -> a repository that holds it
	inflight map[string]*claim            // digest -> the push uploading it now
	sessions map[*owner]map[string]string // upload path -> URL to DELETE
	// pending are upload sessions opened for a known digest (POST
	// ?mount=DIGEST answered 202) that no PATCH has used yet; committed
	// are those whose body a monolithic PUT already carried, waiting for
	// go-containerregistry's closing PUT. Both: upload path -> digest.
	pending, committed map[string]string
	// chunked is set when the registry refused a monolithic PUT as
	// unsupported: its uploads go as go-containerregistry sends them.
	chunked atomic.Bool
}

// owner identifies one Push; its pointer travels in the request context.
// (It must not be zero-sized: Go may give every zero-sized allocation the
// same address, which would make all pushes one owner.)
type owner struct {
	// finished is set (under ledger.mu) when the push has returned.
	// go-containerregistry's Push can return (a config blob that failed)
	// while its layer uploads still run, and its Pusher lets the next
	// push of the same digest join such an upload. Those leftovers must
	// neither take a claim (nobody would release it) nor wait for one
	// (the next push holds it while it waits for them: a deadlock), so a
	// finished owner's await returns at once.
	finished bool
	// busy counts the push's upload requests on the wire, and idle,
	// when someone waits, is closed as busy drops to 0 (both under
	// ledger.mu).
	busy int
	idle chan struct{}
	// small are the digests of the push's blobs that its manifest
	// declares no bigger than MonolithicMax (under ledger.mu); see
	// skipHead.
	small map[string]bool
}

type claim struct {
	owner *owner
	done  chan struct{}
}

type ownerKey struct{}

func newLedger() *ledger {
	return &ledger{known: map[string]string{}, inflight: map[string]*claim{}, sessions: map[*owner]map[string]string{},
		pending: map[string]string{}, committed: map[string]string{}}
}

func ownerOf(ctx context.Context) *owner {
	o, _ := ctx.Value(ownerKey{}).(*owner)
	return o
}

// await returns once no other push is uploading digest d; if nobody holds
// it yet and no repository is known to have it, the caller takes the claim.
func (l *ledger) await(ctx context.Context, d string, o *owner) {
	for {
		l.mu.Lock()
		if _, ok := l.known[d]; ok || o.finished {
			l.mu.Unlock()
			return
		}
		c := l.inflight[d]
		if c == nil {
			l.inflight[d] = &claim{owner: o, done: make(chan struct{})}
			l.mu.Unlock()
			return
		}
		if c.owner == o {
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return
		}
	}
}

// declare records that the push o carries blob d, declared size bytes long.
func (l *ledger) declare(o *owner, d string, size int64) {
	if o == nil || size < 0 || size > MonolithicMax {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if o.small == nil {
		o.small = map[string]bool{}
	}
	o.small[d] = true
}

// skipHead reports whether the push o may do without the existence check
// (blob HEAD) go-containerregistry sends before uploading blob d. It may
// when the blob is small and the ledger knows no repository that holds it:
// the upload's POST asks to mount d from the target repository itself,
// which a registry answers 201 when the repository already links d (the
// answer a HEAD 200 would have given) and 202 with an upload session when
// not (the answer to the POST that follows a HEAD 404). A registry that
// ignores the mount gets the small blob uploaded again; a big blob keeps
// its HEAD, since there that mistake would cost its whole size.
func (l *ledger) skipHead(o *owner, d string) bool {
	if o == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, known := l.known[d]
	return !known && o.small[d]
}

// holder returns a repository known to hold d, other than repo.
func (l *ledger) holder(d, repo string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.known[d]; r != repo {
		return r
	}
	return ""
}

// learn records that repo holds d and wakes whoever waits for it.
func (l *ledger) learn(d, repo string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.known[d]; !ok {
		l.known[d] = repo
	}
	l.releaseLocked(d)
}

func (l *ledger) releaseLocked(d string) {
	if c := l.inflight[d]; c != nil {
		close(c.done)
		delete(l.inflight, d)
	}
}

// finish releases every claim of a push and returns the upload sessions it
// left open (empty when the push succeeded).
func (l *ledger) finish(o *owner) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	o.finished = true
	for d, c := range l.inflight {
		if c.owner == o {
			l.releaseLocked(d)
		}
	}
	var open []string
	for _, u := range l.sessions[o] {
		open = append(open, u)
	}
	delete(l.sessions, o)
	return open
}

func (l *ledger) begin(o *owner) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o.busy++
}

func (l *ledger) end(o *owner) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if o.busy--; o.busy == 0 && o.idle != nil {
		close(o.idle)
		o.idle = nil
	}
}

// settle waits, at most d, until no upload request of the push is on the
// wire. go-containerregistry's Push returns on a cancelled context while
// an upload's PATCH is still being answered; that answer carries the
// session's current URL, the only one the registry accepts a DELETE for.
func (l *ledger) settle(o *owner, d time.Duration) {
	l.mu.Lock()
	if o.busy == 0 {
		l.mu.Unlock()
		return
	}
	if o.idle == nil {
		o.idle = make(chan struct{})
	}
	idle := o.idle
	l.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	}
}

// session tracks a push's open upload sessions by path: registries move
// the session's query (distribution's _state) with every response.
func (l *ledger) session(o *owner, done string, next *url.URL) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.sessions[o]
	if m == nil {
		m = map[string]string{}
		l.sessions[o] = m
	}
	if done != "" {
		delete(m, done)
	}
	if next != nil {
		m[next.Path] = next.String()
	}
}

// transport puts the ledger into a transport stack (rtransport.New's mid).
func (l *ledger) transport(inner http.RoundTripper) http.RoundTripper {
	return &ledgerTransport{inner: inner, l: l}
}

// ledgerTransport feeds the ledger from the target's responses.
type ledgerTransport struct {
	inner http.RoundTripper
	l     *ledger
}

// repoOf extracts the repository from /v2/<repo>/blobs/... paths.
func repoOf(path, marker string) (string, bool) {
	p, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return "", false
	}
	i := strings.LastIndex(p, marker)
	if i <= 0 {
		return "", false
	}
	return p[:i], true
}

// blobOf returns the digest of a /v2/<repo>/blobs/<digest> path.
func blobOf(path string) (string, bool) {
	if _, ok := repoOf(path, "/blobs/"); !ok || strings.Contains(path, "/blobs/uploads/") {
		return "", false
	}
	d := path[strings.LastIndex(path, "/")+1:]
	return d, registry.IsDigest(d)
}

// tagCheckedKey marks a Push's context with the path of the tag it writes.
// go-containerregistry HEADs that tag before writing the manifest, to skip
// the PUT when the tag already points at the same digest. The engine asked
// that very question a moment before deciding to push, so the answer "not
// there" is given here without a round trip: a request less per image,
// and at worst (a caller that did not check) one idempotent manifest PUT.
type tagCheckedKey struct{}

func (t *ledgerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if p, ok := req.Context().Value(tagCheckedKey{}).(string); ok && req.Method == http.MethodHead && req.URL.Path == p {
		return &http.Response{Status: "404 Not Found", StatusCode: http.StatusNotFound, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	}
	o := ownerOf(req.Context())
	path := req.URL.Path
	if d, ok := blobOf(path); ok && req.Method == http.MethodHead && t.l.skipHead(o, d) {
		return synthetic(req, http.StatusNotFound, http.Header{}), nil
	}
	if o != nil && strings.Contains(path, "/blobs/uploads/") {
		// Until the response is recorded below: the push's clean-up
		// waits for it (settle).
		t.l.begin(o)
		defer t.l.end(o)
	}
	if resp, ok, err := t.monolithic(req); ok {
		return resp, err
	}
	resp, err := t.inner.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	switch {
	case req.Method == http.MethodHead && resp.StatusCode == http.StatusOK && !strings.Contains(path, "/blobs/uploads/"):
		if d, ok := blobOf(path); ok {
			repo, _ := repoOf(path, "/blobs/")
			t.l.learn(d, repo)
		}
	case strings.Contains(path, "/blobs/uploads/"):
		repo, _ := repoOf(path, "/blobs/uploads/")
		d := req.URL.Query().Get("digest")
		if req.Method == http.MethodPost {
			d = req.URL.Query().Get("mount")
		}
		if resp.StatusCode == http.StatusCreated && d != "" && repo != "" {
			t.l.learn(d, repo)
		}
		if o == nil {
			break
		}
		done := ""
		if req.Method != http.MethodPost {
			done = req.URL.Path
		}
		var next *url.URL
		if resp.StatusCode == http.StatusAccepted {
			if loc, err := resp.Location(); err == nil {
				next = loc
				if req.Method == http.MethodPost && d != "" {
					t.l.pend(loc.Path, d)
				}
			}
		}
		t.l.session(o, done, next)
	}
	return resp, nil
}

// MonolithicMax is the largest blob sent monolithically. A bigger one
// goes as go-containerregistry sends it (PATCH, then PUT): an interrupted
// PATCH ends its body early and learns the session's state, so its upload
// can be deleted, while a monolithic PUT cut in the middle leaves the
// registry holding bytes of a session whose state we no longer know. Small
// blobs (configs, small layers: most of the requests of a many-tag
// repository) are on the wire for milliseconds.
const MonolithicMax = 4 << 20

func (l *ledger) pend(path, d string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending[path] = d
}

// take removes and returns the digest m holds for path.
func (l *ledger) take(m map[string]string, path string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := m[path]
	delete(m, path)
	return d, ok
}

// monolithic uploads a blob in one request instead of
// go-containerregistry's two. It sends PATCH (the body) and then PUT
// ?digest= (empty) to the session its POST opened; the distribution spec
// also lets the PUT carry the body itself, which saves a round trip per
// blob. So when a PATCH with a known length goes to a session opened for
// a known digest, it is sent as that PUT, streaming the same body (never
// buffered), and go-containerregistry is told "202, go on"; its own PUT
// that follows is then answered here with the 201 the registry already
// gave. ok reports that the request was handled here.
func (t *ledgerTransport) monolithic(req *http.Request) (*http.Response, bool, error) {
	path := req.URL.Path
	switch {
	case req.Method == http.MethodPut && req.ContentLength == 0 && strings.Contains(path, "/blobs/uploads/"):
		d, ok := t.l.take(t.l.committed, path)
		if !ok || req.URL.Query().Get("digest") != d {
			return nil, false, nil
		}
		h := http.Header{"Docker-Content-Digest": {d}, "Content-Length": {"0"}}
		if repo, ok := repoOf(path, "/blobs/uploads/"); ok {
			h.Set("Location", "/v2/"+repo+"/blobs/"+d)
		}
		return synthetic(req, http.StatusCreated, h), true, nil
	case req.Method != http.MethodPatch || req.ContentLength <= 0 || req.ContentLength > MonolithicMax || req.Body == nil || t.l.chunked.Load():
		return nil, false, nil
	}
	d, ok := t.l.take(t.l.pending, path)
	if !ok {
		return nil, false, nil
	}
	put := req.Clone(req.Context())
	put.Method = http.MethodPut
	q := put.URL.Query()
	q.Set("digest", d)
	put.URL.RawQuery = q.Encode()
	resp, err := t.inner.RoundTrip(put)
	if err != nil {
		return nil, true, err
	}
	switch resp.StatusCode {
	case http.StatusCreated:
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		// Not for this registry: from now on its uploads are chunked,
		// and this one goes as the PATCH it was, with a fresh body (or,
		// if there is none, fails and is retried chunked).
		t.l.chunked.Store(true)
		if req.GetBody == nil {
			return resp, true, nil
		}
		_ = resp.Body.Close()
		body, err := req.GetBody()
		if err != nil {
			return nil, true, err
		}
		again := req.Clone(req.Context())
		again.Body = body
		resp, err := t.RoundTrip(again)
		return resp, true, err
	default:
		return resp, true, nil // the PATCH failed, as far as the push can tell
	}
	_ = resp.Body.Close()
	repo, _ := repoOf(path, "/blobs/uploads/")
	t.l.learn(d, repo)
	if o := ownerOf(req.Context()); o != nil {
		t.l.session(o, path, nil) // nothing left open
	}
	t.l.mu.Lock()
	t.l.committed[path] = d
	t.l.mu.Unlock()
	// go-containerregistry PUTs ?digest= to the Location it is given:
	// the session's own URL, which the next call answers.
	return synthetic(req, http.StatusAccepted, http.Header{"Location": {req.URL.String()}, "Range": {fmt.Sprintf("0-%d", req.ContentLength-1)}, "Content-Length": {"0"}}), true, nil
}

func synthetic(req *http.Request, status int, h http.Header) *http.Response {
	return &http.Response{Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: http.NoBody, Request: req}
}

// mountable wraps an artifact for pushing to repo so that each layer waits
// for a concurrent upload of the same digest and is then mounted from
// whichever repository of the target holds it.
func (s *remoteStore) mountable(ctx context.Context, repo name.Repository, a *registry.Artifact) *registry.Artifact {
	w := wrapper{ctx: ctx, s: s, repo: repo, o: ownerOf(ctx)}
	if a.Index != nil {
		return &registry.Artifact{Desc: a.Desc, Index: wrappedIndex{a.Index, w}}
	}
	return &registry.Artifact{Desc: a.Desc, Image: wrappedImage{a.Image, w}}
}

type wrapper struct {
	ctx  context.Context
	s    *remoteStore
	repo name.Repository
	o    *owner
}

// index is v1.ImageIndex under another name, so wrappedIndex can embed it
// and still define its own ImageIndex method.
type index = v1.ImageIndex

type wrappedIndex struct {
	index
	w wrapper
}

func (i wrappedIndex) Image(h v1.Hash) (v1.Image, error) {
	img, err := i.index.Image(h)
	if err != nil {
		return nil, err
	}
	return wrappedImage{img, i.w}, nil
}

func (i wrappedIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	idx, err := i.index.ImageIndex(h)
	if err != nil {
		return nil, err
	}
	return wrappedIndex{idx, i.w}, nil
}

type wrappedImage struct {
	v1.Image
	w wrapper
}

func (i wrappedImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for n, l := range ls {
		out[n] = i.w.layer(l)
	}
	return out, nil
}

// ConfigLayer makes the config blob mountable too, so that its upload
// session is opened for a known digest (POST ?mount=) and it can be
// uploaded monolithically.
func (i wrappedImage) ConfigLayer() (v1.Layer, error) {
	cl, err := partial.ConfigLayer(i.Image)
	if err != nil {
		return nil, err
	}
	return i.w.layer(cl), nil
}

func (i wrappedImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return i.w.layer(l), nil
}

// layer returns l as a go-containerregistry MountableLayer whose mount
// source is decided late: after waiting for any concurrent upload of the
// same digest, so the mount finds the blob.
func (w wrapper) layer(l v1.Layer) v1.Layer {
	if d, err := l.Digest(); err == nil {
		if size, err := l.Size(); err == nil {
			w.s.ledger.declare(w.o, d.String(), size)
		}
	}
	wl := &waitLayer{Layer: l, w: w}
	return &remote.MountableLayer{Layer: wl, Reference: lateRef{wl}}
}

type waitLayer struct {
	v1.Layer
	w wrapper
}

func (l *waitLayer) Digest() (v1.Hash, error) {
	h, err := l.Layer.Digest()
	if err == nil && l.w.o != nil {
		l.w.s.ledger.await(l.w.ctx, h.String(), l.w.o)
	}
	return h, err
}

// lateRef is the mount source: a repository of the target known to hold
// the layer, or the target repository itself (a mount the registry answers
// 201 when the repository already links the blob, and otherwise with an
// upload session, after which the blob is uploaded as usual).
type lateRef struct{ l *waitLayer }

func (r lateRef) repo() name.Repository {
	h, err := r.l.Layer.Digest()
	if err != nil {
		return r.l.w.repo
	}
	if from := r.l.w.s.ledger.holder(h.String(), r.l.w.repo.RepositoryStr()); from != "" {
		if repo, err := name.NewRepository(r.l.w.repo.RegistryStr()+"/"+from, r.l.w.s.nameOpts...); err == nil {
			return repo
		}
	}
	if ms, ok := r.l.Layer.(registry.MountSource); ok {
		if from := r.l.w.s.ep.RepoPath(ms.MountFrom()); from != "" && from != r.l.w.repo.RepositoryStr() {
			if repo, err := name.NewRepository(r.l.w.repo.RegistryStr()+"/"+from, r.l.w.s.nameOpts...); err == nil {
				return repo
			}
		}
	}
	return r.l.w.repo
}

func (r lateRef) Context() name.Repository { return r.repo() }
func (r lateRef) Identifier() string {
	h, _ := r.l.Layer.Digest()
	return h.String()
}
func (r lateRef) Name() string               { return r.repo().Name() + "@" + r.Identifier() }
func (r lateRef) String() string             { return r.Name() }
func (r lateRef) Scope(action string) string { return r.repo().Scope(action) }

// cancelSessions deletes upload sessions a failed push left open. The
// registry would expire them eventually; deleting them now means nothing
// half-written outlives the run.
func (s *remoteStore) cancelSessions(ctx context.Context, repo name.Repository, urls []string) {
	if len(urls) == 0 {
		return
	}
	// The push failed, maybe because ctx ended: the clean-up still runs,
	// briefly.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	client, err := s.authClient(ctx, repo)
	if err != nil {
		return
	}
	for _, u := range urls {
		cancelSession(ctx, client, u)
	}
}

// cancelSession deletes one upload session. The URL we hold may carry a
// stale state (distribution's _state records the offset, and a request cut
// in the middle moved it): the registry then refuses the DELETE (416
// RANGE_INVALID), so the session's current URL is asked for with a GET, as
// the distribution spec allows, and the DELETE is sent there.
func cancelSession(ctx context.Context, client *http.Client, u string) {
	do := func(method, u string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		return resp, nil
	}
	resp, err := do(http.MethodDelete, u)
	if err != nil || resp.StatusCode < 300 || resp.StatusCode == http.StatusNotFound {
		return
	}
	status, err := do(http.MethodGet, u)
	if err != nil || status.StatusCode != http.StatusNoContent {
		return
	}
	loc, err := status.Location()
	if err != nil {
		return
	}
	_, _ = do(http.MethodDelete, loc.String())
}
