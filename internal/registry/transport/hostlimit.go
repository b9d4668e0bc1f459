package transport

import (
	"context"
	"io"
	"net/http"
	"sync"
)

// The per-registry request cap (Endpoint.MaxConcurrentRequests). Some
// registries (Nexus above all) fail under parallel requests; capping the
// requests in flight to one host is the general form of "run with one job".
//
// A request holds its slot from the moment it is sent until its response
// body is closed or read to the end, so a blob download counts for as long
// as it streams. HEAD answers and bodiless responses free the slot at once.
// Waiting for a slot honours the request's context.
//
// The cap is per host and shared by every store opened with the same
// Hosts: when several locations name the same registry, the smallest cap
// any of them sets applies to all requests to that host, whichever task
// sends them.

// hostLimit is a counting semaphore whose size may shrink when another
// location asks for a smaller cap.
type hostLimit struct {
	mu    sync.Mutex
	limit int
	inUse int
	rides int           // uploads riding on a copy's download, all scopes
	freed chan struct{} // closed (and replaced) whenever a slot frees
}

// LimitHost caps concurrent requests to host at n (n <= 0: no cap from
// this caller). The smallest cap asked for wins.
func (m *Hosts) LimitHost(host string, n int) {
	if n <= 0 {
		return
	}
	v, _ := m.limits.LoadOrStore(host, &hostLimit{limit: n, freed: make(chan struct{})})
	l := v.(*hostLimit)
	l.mu.Lock()
	l.limit = min(l.limit, n)
	l.mu.Unlock()
}

func (m *Hosts) hostLimit(host string) *hostLimit {
	if v, ok := m.limits.Load(host); ok {
		return v.(*hostLimit)
	}
	return nil
}

// acquire waits for a slot of l or, for an upload within a copy scope
// (sc non-nil), for a ride on a body that copy holds open, whichever comes
// first. It returns the ride's release func, or nil when it took a slot.
//
// Both are checked on every wake-up: an upload waiting for a slot while
// its own download holds the host's only one must also notice a ride
// freeing up, or it would wait for itself.
func (l *hostLimit) acquire(req *http.Request, sc *copyScope) (func(), error) {
	ctx := req.Context()
	for {
		l.mu.Lock()
		freed := l.freed // taken first: a wake-up after this closes it
		l.mu.Unlock()
		if sc != nil {
			if done, ok := sc.ride(l); ok {
				return done, nil
			}
		}
		l.mu.Lock()
		if l.inUse < l.limit {
			l.inUse++
			l.mu.Unlock()
			return nil, nil
		}
		l.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (l *hostLimit) release() {
	l.mu.Lock()
	l.inUse--
	l.mu.Unlock()
	l.wake()
}

// wake tells every waiter to look again: a slot or a ride has freed up.
func (l *hostLimit) wake() {
	l.mu.Lock()
	close(l.freed)
	l.freed = make(chan struct{})
	l.mu.Unlock()
}

// A copy from a registry back into the same registry streams each blob out
// of a download into an upload to the same host. Under a cap of 1 the upload
// would wait forever for the slot its own download holds (Nexus does not
// mount across repositories, so such copies stream). A context marked with
// WithCopyScope lets an upload (a request with a body) ride on a slot its
// copy already holds on that host through an open response body: at most
// one upload per open body, so a host sees at most twice its cap while a
// blob streams from it back into it, and exactly its cap otherwise.

// copyScope counts, per capped host, the response bodies a copy holds open
// and the uploads riding on them.
type copyScope struct {
	mu     sync.Mutex
	bodies map[*hostLimit]int
	rides  map[*hostLimit]int
}

type copyScopeKey struct{}

// WithCopyScope marks ctx as one copy (of one image): see above. The engine
// starts one per attempt of each image.
func WithCopyScope(ctx context.Context) context.Context {
	return context.WithValue(ctx, copyScopeKey{}, &copyScope{bodies: map[*hostLimit]int{}, rides: map[*hostLimit]int{}})
}

func scopeOf(req *http.Request) *copyScope {
	sc, _ := req.Context().Value(copyScopeKey{}).(*copyScope)
	return sc
}

// ride reports whether an upload may go without a slot of l, and if so
// counts it until the returned func is called. A copy rides at most once
// per body it holds open, and the host carries at most its cap of rides at
// once across all copies: a ride outlives its download (it waits for the
// upload's answer after the download is drained and its slot freed), so
// counting per copy alone would let finished copies' rides pile up on top
// of new downloads.
func (sc *copyScope) ride(l *hostLimit) (func(), bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.rides[l] >= sc.bodies[l] {
		return nil, false
	}
	l.mu.Lock()
	if l.rides >= l.limit {
		l.mu.Unlock()
		return nil, false
	}
	l.rides++
	l.mu.Unlock()
	sc.rides[l]++
	return sync.OnceFunc(func() {
		sc.mu.Lock()
		sc.rides[l]--
		sc.mu.Unlock()
		l.mu.Lock()
		l.rides--
		l.mu.Unlock()
		l.wake()
	}), true
}

func (sc *copyScope) holdBody(l *hostLimit, d int) {
	sc.mu.Lock()
	sc.bodies[l] += d
	sc.mu.Unlock()
	if d > 0 {
		l.wake() // a ride is possible now
	}
}

func hasBody(req *http.Request) bool {
	return req.Body != nil && req.Body != http.NoBody
}

// limitTransport makes every request to a capped host wait for a slot.
type limitTransport struct {
	inner http.RoundTripper
	m     *Hosts
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	l := t.m.hostLimit(req.URL.Host)
	if l == nil {
		return t.inner.RoundTrip(req)
	}
	sc := scopeOf(req)
	rider := sc
	if !hasBody(req) {
		rider = nil // only an upload may ride on its copy's download
	}
	done, err := l.acquire(req, rider)
	if err != nil {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper must close the body, even on error
		}
		return nil, err
	}
	if done != nil {
		resp, err := t.inner.RoundTrip(req)
		done() // the answer to an upload needs no slot to be read
		return resp, err
	}
	resp, err := t.inner.RoundTrip(req)
	if err != nil {
		l.release()
		return nil, err
	}
	if req.Method == http.MethodHead || resp.Body == nil || resp.Body == http.NoBody {
		l.release()
		return resp, nil
	}
	release := l.release
	if sc != nil {
		sc.holdBody(l, 1)
		release = func() {
			sc.holdBody(l, -1)
			l.release()
		}
	}
	resp.Body = &slotBody{ReadCloser: resp.Body, release: sync.OnceFunc(release)}
	return resp, nil
}

// slotBody frees its request's slot when the body is closed or read to the
// end (or fails): whichever comes first.
type slotBody struct {
	io.ReadCloser
	release func()
}

func (b *slotBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.release()
	}
	return n, err
}

func (b *slotBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}
