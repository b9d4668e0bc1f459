package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Policy is the transport policy of a run: how long to wait, how often to
// retry, how much to hold open at once. The zero value is not useful; start
// from DefaultPolicy.
type Policy struct {
	// IdleTimeout fails a response body that delivers no byte for this
	// long (a stalled CDN connection), so the copy can be retried.
	IdleTimeout time.Duration
	// MinRate and MinRateWindow are a response body's progress deadline:
	// a body whose reads deliver less than MinRate bytes per second over
	// MinRateWindow of reading fails, so a source dripping a byte a second
	// (which the idle timeout never catches) cannot hold a run forever.
	// Only time spent waiting on the network counts, not time the reader
	// spends elsewhere (writing the bytes to a slow target). MinRate 0
	// turns the deadline off.
	MinRate       int64
	MinRateWindow time.Duration
	// MaxManifestSize bounds a manifest response; larger ones are errors.
	MaxManifestSize int64
	// MaxTagPages bounds how many pages of a tag list or catalog are
	// followed (an endless or looping Link header ends in an error).
	MaxTagPages int
	// MaxListSize bounds one page of a tag list or catalog: an endless
	// JSON array ends in an error instead of filling memory.
	MaxListSize int64
	// Retry429 is how many times a 429 answer is retried before it is
	// returned; Backoff429 the first wait when the registry sends no
	// Retry-After, doubled each time (with jitter) up to MaxWait429.
	Retry429   int
	Backoff429 time.Duration
	MaxWait429 time.Duration
	// Transfers caps blob downloads in flight across every store that
	// shares one Hosts: the global transfer limit.
	Transfers int
	// UserAgent is the User-Agent header of every request
	// ("regmirror/VERSION"; empty: DefaultUserAgent).
	UserAgent string
	// BreakAfter opens a host's circuit breaker after this many failures
	// in a row that say it is not there (0: never); see breakerTransport.
	BreakAfter int
}

// DefaultUserAgent is sent when the Policy names no User-Agent (tests,
// tools built without a version).
const DefaultUserAgent = "regmirror"

// Hosts is a Policy applied to every store of a run, together with what the
// run learns about each host: when it asked us to come back, its last
// rate-limit reading, how many pulls it served, its request cap, and the
// global transfer gate. Every store opened with the same Hosts shares them.
// Change the Policy fields only before the first request.
type Hosts struct {
	Policy

	// Logger receives waiting notices; nil discards.
	Logger *slog.Logger

	once   sync.Once
	gate   chan struct{}
	hosts  sync.Map // host -> *hostState
	limits sync.Map // host -> *hostLimit (per-registry request caps)
	pings  pings    // host -> its answer to /v2/

	// pushback counts the answers that asked us to slow down: 429s and
	// 5xx (but 501), from every host. The engine's adaptive copy limit
	// reads it; it is all the engine learns of the wire.
	pushback atomic.Uint64
}

// Pushback returns how many 429 and 5xx answers (501 aside: that is "not
// supported", not "overloaded") every host has sent so far, retried ones
// included. It only grows; a reader compares two readings.
func (m *Hosts) Pushback() uint64 { return m.pushback.Load() }

// pushedBack says whether an answer asks the client to slow down.
func pushedBack(code int) bool {
	return code == http.StatusTooManyRequests || (code >= 500 && code != http.StatusNotImplemented)
}

// Pulls returns, per host, how many manifests were fetched with GET: what
// Docker Hub counts against its pull limit (HEADs and blobs are free).
func (m *Hosts) Pulls() map[string]int {
	out := map[string]int{}
	m.hosts.Range(func(k, v any) bool {
		st := v.(*hostState)
		st.mu.Lock()
		if st.pulls > 0 {
			out[k.(string)] = st.pulls
		}
		st.mu.Unlock()
		return true
	})
	return out
}

// The default progress deadline: 1 KiB/s over a minute. A healthy registry
// is thousands of times faster; a connection that slow is stuck.
const (
	DefaultMinRate       = 1 << 10
	DefaultMinRateWindow = time.Minute
)

// MaxManifestSize is the largest manifest read, from a registry or a
// bundle: the distribution spec suggests registries accept manifests of at
// least 4 MiB, and nothing real comes near it.
const MaxManifestSize = 4 << 20

// DefaultPolicy returns the policy for production use.
func DefaultPolicy() Policy {
	return Policy{
		IdleTimeout:     2 * time.Minute,
		MinRate:         DefaultMinRate,
		MinRateWindow:   DefaultMinRateWindow,
		MaxManifestSize: MaxManifestSize,
		MaxTagPages:     10000,
		MaxListSize:     32 << 20,
		Retry429:        6,
		Backoff429:      2 * time.Second,
		MaxWait429:      5 * time.Minute,
		Transfers:       8,
		// One request's retries (DefaultRetry.Attempts) spent.
		BreakAfter: 4,
	}
}

// DefaultHosts returns fresh per-host state under DefaultPolicy.
func DefaultHosts() *Hosts { return &Hosts{Policy: DefaultPolicy()} }

func (m *Hosts) init() {
	m.once.Do(func() {
		if m.Transfers > 0 {
			m.gate = make(chan struct{}, m.Transfers)
		}
		if m.Logger == nil {
			m.Logger = slog.New(slog.DiscardHandler)
		}
	})
}

// hostState is what we know about one host: when it asked us to come back,
// and the last rate-limit reading it sent.
type hostState struct {
	mu           sync.Mutex
	blockedUntil time.Time
	known        bool
	probed       bool // the allowance was read before a first pull
	limit        int
	remaining    int
	pulls        int
	br           breaker
	// pullsToday counts the pulls of the UTC day pullsDay.
	pullsDay   string
	pullsToday int
	inFlight   int
	// holdUntil is when a min-remaining hold ends (see lowRemainingWait).
	holdUntil time.Time
}

func (m *Hosts) host(h string) *hostState {
	v, _ := m.hosts.LoadOrStore(h, &hostState{})
	return v.(*hostState)
}

// RateLimit returns the last rate-limit reading seen from host.
func (m *Hosts) RateLimit(host string) (limit, remaining int, ok bool) {
	st := m.host(host)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.limit, st.remaining, st.known
}

// RateLimitReading is the last rate-limit reading a host sent
// (ratelimit-limit and ratelimit-remaining).
type RateLimitReading struct {
	Limit, Remaining int
}

// RateLimits returns the last reading of every host that sent one: the
// daemon exports them as metrics.
func (m *Hosts) RateLimits() map[string]RateLimitReading {
	out := map[string]RateLimitReading{}
	m.hosts.Range(func(k, v any) bool {
		st := v.(*hostState)
		st.mu.Lock()
		if st.known {
			out[k.(string)] = RateLimitReading{Limit: st.limit, Remaining: st.remaining}
		}
		st.mu.Unlock()
		return true
	})
	return out
}

// RateLimitPolicy is a source's `rate-limit:` setting: no GET is started
// while the last known remaining count is below MinRemaining; instead the
// transport waits Wait and asks again with a HEAD, which costs nothing.
type RateLimitPolicy struct {
	MinRemaining int
	Wait         time.Duration
}

// hostsTransport applies the Hosts' policy to the requests of one endpoint.
type hostsTransport struct {
	inner  http.RoundTripper
	m      *Hosts
	policy RateLimitPolicy
}

// ErrIdleTimeout is returned when a response body stalls.
var ErrIdleTimeout = errors.New("connection idle too long")

// ErrTooSlow is returned when a response body stays below the progress
// deadline's rate (Policy.MinRate over Policy.MinRateWindow).
var ErrTooSlow = errors.New("transfer too slow")

// ErrTooLarge is returned when a registry response exceeds a bound.
var ErrTooLarge = errors.New("response too large")

func isBlobGET(req *http.Request) bool {
	return req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/")
}

func isPull(req *http.Request) bool {
	return req.Method == http.MethodGet && (strings.Contains(req.URL.Path, "/manifests/") || strings.Contains(req.URL.Path, "/blobs/"))
}

func (t *hostsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.m.init()
	ctx := req.Context()
	st := t.m.host(req.URL.Host)
	if err := t.lowRemainingWait(req, st); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		if err := waitUntil(ctx, st.blocked()); err != nil {
			return nil, err
		}
		release := func() {}
		if isBlobGET(req) && t.m.gate != nil {
			select {
			case t.m.gate <- struct{}{}:
				var once sync.Once
				release = func() { once.Do(func() { <-t.m.gate }) }
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		release = st.track(release)
		resp, err := t.inner.RoundTrip(req)
		if err != nil {
			release()
			return nil, err
		}
		t.observe(st, resp)
		if pushedBack(resp.StatusCode) {
			t.m.pushback.Add(1)
		}
		if req.Method == http.MethodGet && resp.StatusCode == http.StatusOK && strings.Contains(req.URL.Path, "/manifests/") {
			st.mu.Lock()
			st.pulls++
			if day := time.Now().UTC().Format(time.DateOnly); st.pullsDay != day {
				st.pullsDay, st.pullsToday = day, 0
			}
			st.pullsToday++
			st.mu.Unlock()
		}
		if resp.StatusCode == http.StatusTooManyRequests && attempt < t.m.Retry429 && replayable(req) {
			wait := retryAfter(resp, t.m.Backoff429<<attempt, t.m.MaxWait429)
			st.block(wait)
			resp.Body.Close()
			release()
			t.m.Logger.Warn("registry asked to slow down (429); waiting", "registry", req.URL.Host, "duration", wait.Round(time.Millisecond))
			if req.GetBody != nil {
				if req.Body, err = req.GetBody(); err != nil {
					return nil, err
				}
			}
			continue
		}
		resp.Body = t.bound(req, resp, release)
		return resp, nil
	}
}

// lowRemainingWait holds a GET back while the host's last rate-limit reading
// is below the policy's minimum, re-reading it with HEAD requests.
func (t *hostsTransport) lowRemainingWait(req *http.Request, st *hostState) error {
	if t.policy.MinRemaining <= 0 || !isPull(req) {
		return nil
	}
	probe := func() (bool, error) {
		head := req.Clone(req.Context())
		head.Method = http.MethodHead
		head.Body, head.GetBody, head.ContentLength = nil, nil, 0
		resp, err := t.inner.RoundTrip(head)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return t.observe(st, resp), nil
	}
	st.mu.Lock()
	first := !st.known && !st.probed
	st.probed = true
	st.mu.Unlock()
	if first {
		// No reading yet (a sync's first request to a host may be a
		// GET): a free HEAD of the same thing reads the allowance
		// before the first pull spends it.
		if ok, err := probe(); err != nil || !ok {
			return err
		}
	}
	for {
		st.mu.Lock()
		low := st.known && st.remaining < t.policy.MinRemaining
		remaining := st.remaining
		st.mu.Unlock()
		if !low {
			return nil
		}
		t.m.Logger.Warn("rate limit remaining below min-remaining; waiting before the next pull",
			"registry", req.URL.Host, "remaining", remaining, "min_remaining", t.policy.MinRemaining, "duration", t.policy.Wait)
		until := time.Now().Add(t.policy.Wait)
		st.mu.Lock()
		st.holdUntil = until
		st.mu.Unlock()
		if err := waitUntil(req.Context(), until); err != nil {
			return err
		}
		if ok, err := probe(); err != nil || !ok {
			return err // !ok: the host no longer reports a limit, go ahead
		}
	}
}

// observe records rate-limit headers (Docker Hub's "ratelimit-remaining:
// 76;w=21600"). It reports whether the response carried a reading.
func (t *hostsTransport) observe(st *hostState, resp *http.Response) bool {
	limit, okL := parseRateHeader(resp.Header.Get("Ratelimit-Limit"))
	remaining, okR := parseRateHeader(resp.Header.Get("Ratelimit-Remaining"))
	if !okR {
		return false
	}
	st.mu.Lock()
	st.known, st.remaining = true, remaining
	if okL {
		st.limit = limit
	}
	st.mu.Unlock()
	return true
}

// parseRateHeader reads "100;w=21600" (or a bare "100").
func parseRateHeader(v string) (int, bool) {
	v, _, _ = strings.Cut(v, ";")
	n, err := strconv.Atoi(strings.TrimSpace(v))
	return n, err == nil && n >= 0
}

// retryAfter reads Retry-After (seconds or an HTTP date); without one it
// backs off exponentially with jitter. The wait is capped.
func retryAfter(resp *http.Response, backoff, max time.Duration) time.Duration {
	var d time.Duration
	if v := resp.Header.Get("Retry-After"); v != "" {
		if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
			d = time.Duration(s) * time.Second
		} else if at, err := http.ParseTime(v); err == nil {
			d = time.Until(at)
		}
	}
	if d <= 0 {
		d = backoff/2 + rand.N(backoff/2+1)
	}
	return min(d, max)
}

func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// track counts a request in flight to the host until release, which it
// wraps, is called (the response body closed or read to its end).
func (st *hostState) track(release func()) func() {
	st.mu.Lock()
	st.inFlight++
	st.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			st.mu.Lock()
			st.inFlight--
			st.mu.Unlock()
			release()
		})
	}
}

// HostStatus is what Hosts know of one host at a moment: what the
// daemon's status page shows per registry.
type HostStatus struct {
	Host string
	// RateLimit is the last reading the host sent; nil when it sent none.
	RateLimit *RateLimitReading
	// Pulls counts manifest GETs since start, PullsToday those of the
	// current UTC day.
	Pulls, PullsToday int
	// InFlight counts requests sent and not yet answered in full.
	InFlight int
	// WaitUntil, when in the future, is when requests to the host go out
	// again: a 429's Retry-After or a min-remaining hold.
	WaitUntil time.Time
	// Breaker is the host's circuit breaker once it has seen a failure
	// that counts (see breakerTransport); nil before.
	Breaker *BreakerState
}

// Status returns the status of every host requests were sent to, in host
// order.
func (m *Hosts) Status() []HostStatus {
	day := time.Now().UTC().Format(time.DateOnly)
	var out []HostStatus
	m.hosts.Range(func(k, v any) bool {
		st := v.(*hostState)
		st.mu.Lock()
		hs := HostStatus{Host: k.(string), Pulls: st.pulls, InFlight: st.inFlight, WaitUntil: st.blockedUntil}
		if st.pullsDay == day {
			hs.PullsToday = st.pullsToday
		}
		if st.holdUntil.After(hs.WaitUntil) {
			hs.WaitUntil = st.holdUntil
		}
		if st.known {
			hs.RateLimit = &RateLimitReading{Limit: st.limit, Remaining: st.remaining}
		}
		if st.br.Failures > 0 || st.br.Open {
			b := st.br.BreakerState
			hs.Breaker = &b
		}
		st.mu.Unlock()
		out = append(out, hs)
		return true
	})
	slices.SortFunc(out, func(a, b HostStatus) int { return strings.Compare(a.Host, b.Host) })
	return out
}

func (st *hostState) blocked() time.Time {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.blockedUntil
}

func (st *hostState) block(d time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if until := time.Now().Add(d); until.After(st.blockedUntil) {
		st.blockedUntil = until
	}
}

func waitUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxErrorBody is how much of an error response is read: enough for any
// registry's JSON errors. The rest is dropped, so a huge or endless error
// body neither fills memory nor hides the status code.
const maxErrorBody = 16 << 10

// bound wraps a response body with the idle timeout, the size bounds and
// the release of the transfer slot.
func (t *hostsTransport) bound(req *http.Request, resp *http.Response, release func()) io.ReadCloser {
	var limit int64 = -1
	truncate := false
	what := ""
	switch {
	case isBlobGET(req):
		what = "blob " + path.Base(req.URL.Path)
	}
	switch {
	case resp.StatusCode >= 400:
		limit, truncate = maxErrorBody, true
	case strings.Contains(req.URL.Path, "/manifests/") && resp.StatusCode < 300:
		limit, what = t.m.MaxManifestSize, "manifest"
	case (strings.HasSuffix(req.URL.Path, "/tags/list") || strings.HasSuffix(req.URL.Path, "/_catalog")) && resp.StatusCode < 300:
		limit, what = t.m.MaxListSize, "tag list page"
	}
	if limit <= 0 {
		limit = -1
	}
	if !truncate && limit > 0 && resp.ContentLength > limit {
		resp.Body.Close()
		release()
		return io.NopCloser(&errReader{fmt.Errorf("%w: %s of %d bytes exceeds %d", ErrTooLarge, what, resp.ContentLength, limit)})
	}
	b := &boundedBody{rc: resp.Body, limit: limit, truncate: truncate, what: what, release: release, idle: t.m.IdleTimeout,
		minRate: t.m.MinRate, window: t.m.MinRateWindow}
	if b.what == "" {
		b.what = "response of " + req.Method + " " + path.Base(req.URL.Path)
	}
	if b.idle > 0 {
		b.timer = time.AfterFunc(b.idle, func() {
			b.stalled.Store(true)
			b.rc.Close() // unblocks a Read stuck on the network
		})
	}
	return b
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

type boundedBody struct {
	rc       io.ReadCloser
	limit    int64 // -1: unbounded
	truncate bool  // at the limit, end the body instead of failing
	what     string
	read     int64
	release  func()
	idle     time.Duration
	timer    *time.Timer
	stalled  atomic.Bool

	// The progress deadline: busy is the time spent in Read since the
	// window began, got the bytes read in it.
	minRate int64
	window  time.Duration
	busy    time.Duration
	got     int64
	slow    error // set once the deadline failed the body
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.slow != nil {
		return 0, b.slow
	}
	if b.timer != nil {
		b.timer.Reset(b.idle)
	}
	if b.truncate && b.read >= b.limit {
		b.stop()
		return 0, io.EOF
	}
	if b.truncate && int64(len(p)) > b.limit-b.read {
		p = p[:b.limit-b.read]
	}
	start := time.Now()
	n, err := b.rc.Read(p)
	b.read += int64(n)
	if b.stalled.Load() {
		return n, fmt.Errorf("%w: no data for %s", ErrIdleTimeout, b.idle)
	}
	if b.slow = b.progress(time.Since(start), n); b.slow != nil && err == nil {
		b.rc.Close()
		b.stop()
		return n, b.slow
	}
	b.slow = nil
	if !b.truncate && b.limit >= 0 && b.read > b.limit {
		return n, fmt.Errorf("%w: %s exceeds %d bytes", ErrTooLarge, b.what, b.limit)
	}
	if err != nil {
		b.stop()
	}
	return n, err
}

// progress adds one read to the window and, once the window is full,
// fails the body if it delivered less than the floor in it.
func (b *boundedBody) progress(took time.Duration, n int) error {
	if b.minRate <= 0 || b.window <= 0 {
		return nil
	}
	b.busy += took
	b.got += int64(n)
	if b.busy < b.window {
		return nil
	}
	rate := float64(b.got) / b.busy.Seconds()
	if rate >= float64(b.minRate) {
		b.busy, b.got = 0, 0
		return nil
	}
	return fmt.Errorf("%s: %w: %d bytes received, %.0f B/s over the last %s, below the floor of %d B/s (retry: min-rate, min-rate-window)",
		b.what, ErrTooSlow, b.read, rate, b.busy.Round(time.Millisecond), b.minRate)
}

func (b *boundedBody) stop() {
	if b.timer != nil {
		b.timer.Stop()
	}
	b.release()
}

func (b *boundedBody) Close() error {
	b.stop()
	return b.rc.Close()
}
