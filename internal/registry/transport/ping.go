package transport

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// PingTTL is how long a host's answer to the /v2/ ping is reused.
//
// go-containerregistry pings /v2/ before its first request for every
// repository (each repository gets its own authenticated transport), and
// the puller and the pusher each do: 12 repositories of one host cost 24
// pings per run, a round trip each, to learn the same challenge every time.
// The answer (no auth, or which auth scheme and token realm) is a property
// of the host, so the first answer is kept and handed to every later ping
// of the run. Credentials are not part of it: a ping is sent without them,
// and tokens are still asked for per repository scope.
const PingTTL = 5 * time.Minute

// pingAnswer is a host's remembered answer to GET /v2/.
type pingAnswer struct {
	scheme string // the scheme that answered: the other one is not tried again
	status int
	header http.Header
	at     time.Time
}

// pings remembers, per host, the last decisive ping answer: 200 (no auth)
// or 401 with its challenge. Errors and other statuses are never
// remembered, so a host that was down is asked again.
type pings struct {
	mu       sync.Mutex
	m        map[string]pingAnswer
	inflight map[string]chan struct{} // scheme://host -> closed when its ping is answered
}

// wait returns once no ping of the host in the request's scheme is on
// the wire, having claimed it for the caller if it must ping itself (then
// done must be called). The schemes do not wait for each other:
// go-containerregistry races https against http, and a stalled https must
// not hold up the http answer.
func (p *pings) wait(req *http.Request) (done func(), err error) {
	host := req.URL.Host
	key := req.URL.Scheme + "://" + host
	for {
		p.mu.Lock()
		if a, ok := p.m[host]; ok && time.Since(a.at) <= PingTTL {
			p.mu.Unlock()
			return nil, nil
		}
		ch := p.inflight[key]
		if ch == nil {
			if p.inflight == nil {
				p.inflight = map[string]chan struct{}{}
			}
			ch = make(chan struct{})
			p.inflight[key] = ch
			p.mu.Unlock()
			return func() {
				p.mu.Lock()
				delete(p.inflight, key)
				p.mu.Unlock()
				close(ch)
			}, nil
		}
		p.mu.Unlock()
		select {
		case <-ch:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
}

func (p *pings) get(host string, now time.Time) (pingAnswer, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.m[host]
	if !ok || now.Sub(a.at) > PingTTL {
		return pingAnswer{}, false
	}
	return a, true
}

func (p *pings) put(host string, a pingAnswer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]pingAnswer{}
	}
	p.m[host] = a
}

// errOtherScheme answers a ping in the scheme a host did not answer in.
var errOtherScheme = errors.New("not tried: this run already reached the registry with the other scheme")

// pingTransport answers repeated pings from what the host said the first
// time (see PingTTL). It sits above the request caps: a remembered answer
// needs no slot.
type pingTransport struct {
	inner http.RoundTripper
	m     *Hosts
}

func isPing(req *http.Request) bool {
	return req.Method == http.MethodGet && (req.URL.Path == "/v2/" || req.URL.Path == "/v2") && req.Header.Get("Authorization") == ""
}

func (t *pingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !isPing(req) {
		return t.inner.RoundTrip(req)
	}
	host := req.URL.Host
	// Repositories start together: the first ping goes, the rest wait
	// for its answer.
	done, err := t.m.pings.wait(req)
	if err != nil {
		return nil, err
	}
	if done != nil {
		defer done()
	}
	if a, ok := t.m.pings.get(host, time.Now()); ok {
		if a.scheme != req.URL.Scheme {
			return nil, fmt.Errorf("%s://%s/v2/: %w", req.URL.Scheme, host, errOtherScheme)
		}
		return &http.Response{Status: fmt.Sprintf("%d %s", a.status, http.StatusText(a.status)), StatusCode: a.status,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: a.header.Clone(), Body: http.NoBody, Request: req}, nil
	}
	resp, err := t.inner.RoundTrip(req)
	if err == nil && (resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized) {
		t.m.pings.put(host, pingAnswer{scheme: req.URL.Scheme, status: resp.StatusCode, header: resp.Header.Clone(), at: time.Now()})
	}
	return resp, err
}
