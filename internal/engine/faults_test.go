package engine_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/transport"
	"github.com/regmirror/regmirror/internal/testutil/faultproxy"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// The tests in this file walk a table of network faults, one test per row.
// Each puts a faultproxy in front of a real in-process source and target,
// copies three repositories (a, b, c; the fault aims at a), and checks
// that a either converged to the source's digests or failed cleanly (no
// tag at the target) while b and c were copied.

// rig is a source and a target registry, each behind a fault proxy.
type rig struct {
	src, dst *regtest.Registry
	sp, dp   *faultproxy.Proxy
	srcAuth  []remote.Option
	dstAuth  []remote.Option
	images   map[string]v1.Image
	manners  *transport.Hosts
	srcEP    registry.Endpoint
	dstEP    registry.Endpoint
}

var rigRepos = []string{"a", "b", "c"}

func newRig(t *testing.T, srcOpts ...regtest.Option) *rig {
	t.Helper()
	return newRigWith(t, srcOpts, nil)
}

func newRigWith(t *testing.T, srcOpts, dstOpts []regtest.Option) *rig {
	t.Helper()
	r := &rig{src: regtest.New(t, srcOpts...), dst: regtest.New(t, dstOpts...), images: map[string]v1.Image{}}
	if r.src.Username != "" {
		r.srcAuth = []remote.Option{remote.WithAuth(&authn.Basic{Username: r.src.Username, Password: r.src.Password})}
	}
	if r.dst.Username != "" {
		r.dstAuth = []remote.Option{remote.WithAuth(&authn.Basic{Username: r.dst.Username, Password: r.dst.Password})}
	}
	for i, repo := range rigRepos {
		// Layers large enough to span several reads, small enough to
		// keep the suite fast.
		img := imagegen.Image(uint64(900+i), 2, 48<<10)
		imagegen.Push(t, r.src.Ref(repo+":1"), img, r.srcAuth...)
		r.images[repo] = img
	}
	r.sp = faultproxy.New(t, r.src.URL)
	r.dp = faultproxy.New(t, r.dst.URL)
	r.srcEP = registry.Endpoint{Registry: r.sp.Host, PlainHTTP: true, Username: r.src.Username, Password: r.src.Password}
	r.dstEP = registry.Endpoint{Registry: r.dp.Host, PlainHTTP: true, Username: r.dst.Username, Password: r.dst.Password}
	r.manners = transport.DefaultHosts()
	r.manners.IdleTimeout = 300 * time.Millisecond
	r.manners.Backoff429 = 10 * time.Millisecond
	return r
}

// layer returns the digest of repo's first layer: the blob faults aim at.
func (r *rig) layer(t *testing.T, repo string) string {
	t.Helper()
	ls, err := r.images[repo].Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, err := ls[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// run copies a, b and c with fast retries: 3 image attempts, 3 request
// attempts, millisecond waits.
func (r *rig) run(t *testing.T) *engine.Report {
	t.Helper()
	return r.runTags(t, "1")
}

func (r *rig) runTags(t *testing.T, spec string) *engine.Report {
	t.Helper()
	task := engine.Task{Name: "t", Source: r.srcEP, Target: r.dstEP}
	for _, repo := range rigRepos {
		task.Mappings = append(task.Mappings, engine.Mapping{From: repo, To: repo, Tags: tags(t, spec)})
	}
	e := engine.New(engine.Options{Jobs: 3, Attempts: 3, RetryWait: time.Millisecond, Registry: registry.Options{
		Retry: &transport.Retry{Attempts: 3, Wait: time.Millisecond, Factor: 1},
		Hosts: r.manners,
	}})
	return e.Run(ctx(t), []engine.Task{task})
}

// check asserts that every repository not in failed holds the source's
// digest at the target, and that each failed one failed and left no tag.
// It returns the results by repository.
func (r *rig) check(t *testing.T, rep *engine.Report, failed ...string) map[string]engine.Result {
	t.Helper()
	byRepo := map[string]engine.Result{}
	for _, res := range rep.Results {
		byRepo[res.TargetRepo] = res
	}
	for _, repo := range rigRepos {
		res, ok := byRepo[repo]
		if !ok {
			t.Errorf("%s: no result", repo)
			continue
		}
		want := imagegen.Digest(t, r.images[repo]).String()
		_, err := remote.Head(parse(t, r.dst.Ref(repo+":1")), r.dstAuth...)
		if slicesContains(failed, repo) {
			if res.Status != engine.Failed || res.Err == nil {
				t.Errorf("%s: status %s, want failed", repo, res.Status)
			}
			if err == nil {
				t.Errorf("%s: the target has a tag for an image that failed", repo)
			}
			continue
		}
		if res.Status == engine.Failed {
			t.Errorf("%s failed: %v", repo, res.Err)
			continue
		}
		if got := digestOf(t, r.dst.Ref(repo+":1"), r.dstAuth...); got != want {
			t.Errorf("%s: target digest %s, want %s", repo, got, want)
		}
	}
	if rep.Failed() != len(failed) {
		t.Errorf("report counts %d failures, want %d", rep.Failed(), len(failed))
	}
	return byRepo
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func mustHit(t *testing.T, p *faultproxy.Proxy, rule *faultproxy.Rule, want int) {
	t.Helper()
	if got := p.Hits(rule); got < want {
		t.Fatalf("fault %q applied %d times, want at least %d: the test did not exercise it", rule.Fault.Name, got, want)
	}
}

// Row 1: a source blob body is cut mid-stream once; the copy is retried
// and succeeds.
func TestFaultTruncatedSourceBlobIsRetried(t *testing.T) {
	r := newRig(t)
	rule := r.sp.Inject(faultproxy.Match{Kind: regtest.KindBlobGet, Repo: "a", Ref: r.layer(t, "a")}, 1, faultproxy.Truncate())
	rep := r.run(t)
	mustHit(t, r.sp, rule, 1)
	r.check(t, rep)
	if n := r.sp.Count(faultproxy.Match{Kind: regtest.KindBlobGet, Ref: r.layer(t, "a")}); n != 2 {
		t.Errorf("the cut blob was fetched %d times, want 2 (the cut one and one retry)", n)
	}
}

// Row 2: a source blob's bytes never match its digest. The image fails,
// the upload session it opened is cancelled, no tag is written.
func TestFaultCorruptSourceBlobFailsImageAndCancelsUpload(t *testing.T) {
	r := newRig(t)
	rule := r.sp.Inject(faultproxy.Match{Kind: regtest.KindBlobGet, Ref: r.layer(t, "a")}, 0, faultproxy.Corrupt())
	rep := r.run(t)
	mustHit(t, r.sp, rule, 1)
	res := r.check(t, rep, "a")
	if !strings.Contains(res["a"].Err.Error(), r.layer(t, "a")) {
		t.Errorf("error does not name the bad blob: %v", res["a"].Err)
	}
	if n := r.sp.Count(faultproxy.Match{Kind: regtest.KindBlobGet, Ref: r.layer(t, "a")}); n > 9 {
		t.Errorf("corrupt blob fetched %d times: retries are not bounded", n)
	}
	// Every upload session opened in a/ was committed or cancelled: the
	// target knows none of them any more.
	sessions := map[string]bool{}
	for _, q := range r.dst.Requests() {
		if q.Repo == "a" && q.Kind == regtest.KindBlobUpload && !strings.HasSuffix(q.Path, "/uploads/") {
			sessions[q.Path] = true
		}
	}
	if len(sessions) == 0 {
		t.Fatal("no upload session was opened in a/: the fault came too early to test clean-up")
	}
	for path := range sessions {
		resp, err := r.dst.Client().Get(r.dst.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("upload session %s still open (GET: %d)", path, resp.StatusCode)
		}
	}
	if n := r.dst.Count(regtest.KindManifestPut); n != 2 {
		t.Errorf("%d manifest PUTs at the target, want 2 (b and c only)", n)
	}
}

// Row 3: the target answers 500 to the first blob PUT; the request is
// retried with backoff and the copy succeeds.
func TestFaultTarget500OnBlobPutIsRetried(t *testing.T) {
	r := newRig(t)
	rule := r.dp.Inject(faultproxy.Match{Method: http.MethodPut, Kind: regtest.KindBlobUpload}, 1,
		faultproxy.Status(http.StatusInternalServerError, ""))
	rep := r.run(t)
	mustHit(t, r.dp, rule, 1)
	r.check(t, rep)
	// The adaptive copy limit heard of it.
	if n := r.manners.Pushback(); n != 1 {
		t.Errorf("transport counted %d pushback answers, want 1 (the 500)", n)
	}
}

// Row 4: a 429 with Retry-After makes the transport wait that long for
// that host, then succeed. (TestRetryAfterDelaysOnlyThatHost shows the
// wait is for that host only.)
func TestFault429RetryAfterIsHonoured(t *testing.T) {
	r := newRig(t)
	rule := r.sp.Inject(faultproxy.Match{Method: http.MethodGet, Kind: regtest.KindManifestGet, Repo: "a"}, 1,
		faultproxy.Status(http.StatusTooManyRequests, "TOOMANYREQUESTS", "Retry-After", "1"))
	rep := r.run(t)
	mustHit(t, r.sp, rule, 1)
	r.check(t, rep)
	// The transport answered the 429 itself: the image was not retried.
	if n := r.sp.Count(faultproxy.Match{Method: http.MethodGet, Kind: regtest.KindManifestGet, Repo: "a"}); n != 2 {
		t.Errorf("%d manifest GETs of a, want 2 (the 429 and one after the wait)", n)
	}
	if n := r.manners.Pushback(); n != 1 {
		t.Errorf("transport counted %d pushback answers, want 1 (the 429)", n)
	}
}

// Row 5: the target resets the connection in the middle of an upload (the
// PUT carrying the blob); the upload is retried and succeeds.
func TestFaultConnectionResetDuringUploadIsRetried(t *testing.T) {
	r := newRig(t)
	rule := r.dp.Inject(faultproxy.Match{Method: http.MethodPut, Kind: regtest.KindBlobUpload, Repo: "a"}, 1, faultproxy.Reset())
	rep := r.run(t)
	mustHit(t, r.dp, rule, 1)
	r.check(t, rep)
}

// Row 6: the source sends headers, then nothing. The idle timeout fires
// and the blob is fetched again; when it always stalls, the image fails
// in bounded time and the others are copied.
func TestFaultStalledSourceTimesOut(t *testing.T) {
	t.Run("once", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		rule := r.sp.Inject(faultproxy.Match{Kind: regtest.KindBlobGet, Ref: r.layer(t, "a")}, 1, r.sp.Stall())
		rep := r.run(t)
		mustHit(t, r.sp, rule, 1)
		r.check(t, rep)
	})
	t.Run("always", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		rule := r.sp.Inject(faultproxy.Match{Kind: regtest.KindBlobGet, Ref: r.layer(t, "a")}, 0, r.sp.Stall())
		rep := r.run(t)
		mustHit(t, r.sp, rule, 1)
		res := r.check(t, rep, "a")
		if !errors.Is(res["a"].Err, transport.ErrIdleTimeout) {
			t.Errorf("error is not the idle timeout: %v", res["a"].Err)
		}
	})
}

// Row 7: bearer tokens expire in the middle of the run, at the source
// before a blob download and at the target before an upload's PUT (a
// request with a body); the client fetches new tokens and succeeds.
//
// The tokens expire by revocation at those two requests, not by a short
// lifetime: with a lifetime of a second, a loaded machine could take longer
// than that between the token server issuing a fresh token and the retried
// request arriving, and the retry (go-containerregistry refreshes once) would
// fail for the clock, not for the client. The registry rejects a revoked
// token exactly as it rejects one past its lifetime (regtest's expiry map).
func TestFaultExpiredTokenReauthenticates(t *testing.T) {
	auth := []regtest.Option{regtest.WithTokenAuth("alice", "s3cret")}
	r := newRigWith(t, auth, auth)
	pull := r.sp.Inject(faultproxy.Match{Kind: regtest.KindBlobGet, Repo: "a"}, 1, faultproxy.Before("expire source tokens", r.src.ExpireTokens))
	push := r.dp.Inject(faultproxy.Match{Method: http.MethodPut, Kind: regtest.KindBlobUpload, Repo: "b"}, 1, faultproxy.Before("expire target tokens", r.dst.ExpireTokens))
	rep := r.run(t)
	mustHit(t, r.sp, pull, 1)
	mustHit(t, r.dp, push, 1)
	r.check(t, rep)
	for name, reg := range map[string]*regtest.Registry{"source": r.src, "target": r.dst} {
		refused, tokens := 0, 0
		for _, q := range reg.Requests() {
			if q.Status == http.StatusUnauthorized && (q.Kind == regtest.KindBlobGet || q.Kind == regtest.KindBlobUpload) {
				refused++
			}
			if q.Kind == regtest.KindToken {
				tokens++
			}
		}
		if refused == 0 || tokens < 2 {
			t.Errorf("%s: %d requests refused with an expired token, %d token requests: the fault did not bite", name, refused, tokens)
		}
	}
}

// Row 8: a tag that the tag list named a moment ago is gone (404) by the
// time it is copied: that image fails cleanly, the others are copied.
func TestFaultTagVanishesAfterListing(t *testing.T) {
	r := newRig(t)
	gone := faultproxy.Status(http.StatusNotFound, "MANIFEST_UNKNOWN")
	r.sp.Inject(faultproxy.Match{Kind: regtest.KindManifestHead, Repo: "a"}, 0, gone)
	get := r.sp.Inject(faultproxy.Match{Kind: regtest.KindManifestGet, Repo: "a"}, 0, gone)
	// A regex selection, so the tag list is read first and names the tag.
	rep := r.runTags(t, "regex: ^1$")
	// The target lacks the tag, so the source is asked with a GET.
	mustHit(t, r.sp, get, 1)
	if n := r.sp.Count(faultproxy.Match{Kind: regtest.KindTagsList, Repo: "a"}); n == 0 {
		t.Fatal("tags of a were never listed")
	}
	res := r.check(t, rep, "a")
	if !errors.Is(res["a"].Err, registry.ErrNotFound) {
		t.Errorf("error is not a not-found: %v", res["a"].Err)
	}
	// Not found is permanent: asked once, not retried.
	if n := r.sp.Count(faultproxy.Match{Kind: regtest.KindManifestGet, Repo: "a"}); n != 1 {
		t.Errorf("%d GETs of the vanished tag, want 1 (not found is not retried)", n)
	}
}

// Row 9: the target rejects the manifest (400 MANIFEST_INVALID): the image
// fails with an error naming the registry and the reason.
func TestFaultTargetRejectsManifest(t *testing.T) {
	r := newRig(t)
	rule := r.dp.Inject(faultproxy.Match{Kind: regtest.KindManifestPut, Repo: "a"}, 0,
		faultproxy.Status(http.StatusBadRequest, "MANIFEST_INVALID"))
	rep := r.run(t)
	mustHit(t, r.dp, rule, 1)
	res := r.check(t, rep, "a")
	msg := res["a"].Err.Error()
	if !strings.Contains(msg, r.dp.Host) || !strings.Contains(msg, "MANIFEST_INVALID") {
		t.Errorf("error should name the registry %s and MANIFEST_INVALID: %s", r.dp.Host, msg)
	}
	if n := r.dp.Count(faultproxy.Match{Kind: regtest.KindManifestPut, Repo: "a"}); n != 1 {
		t.Errorf("%d manifest PUTs to a, want 1 (a 400 is permanent)", n)
	}
}

// Row 10: a server that ignores Range answers 200 with the full body.
// regmirror never resumes a blob with Range (a cut blob is fetched again
// whole), so a full answer is what it expects: after a cut, the whole blob
// comes again with 200 and the copy converges with bounded retries.
func TestFaultRangeAnsweredWithFullBody(t *testing.T) {
	r := newRig(t)
	d := r.layer(t, "a")
	cutOnce := r.sp.Inject(faultproxy.Match{Kind: regtest.KindBlobGet, Ref: d}, 1, faultproxy.Truncate())
	full := r.sp.Inject(faultproxy.Match{Kind: regtest.KindBlobGet}, 0, faultproxy.IgnoreRange())
	rep := r.run(t)
	mustHit(t, r.sp, cutOnce, 1)
	mustHit(t, r.sp, full, 1)
	r.check(t, rep)
	gets := 0
	for _, q := range r.sp.Requests() {
		if q.Kind == regtest.KindBlobGet && q.Ref == d {
			gets++
			if q.Status != http.StatusOK {
				t.Errorf("blob GET answered %d", q.Status)
			}
		}
	}
	if gets != 2 {
		t.Errorf("%d GETs of the cut blob, want 2", gets)
	}
}

// Row 11: the target says BLOB_UPLOAD_INVALID because another writer
// finished the same blob first. The retry finds the blob and the copy
// counts as a success, without uploading it again. (The blob is small, so
// the retry asks with a mount from the repository itself, answered 201,
// rather than with a HEAD.)
func TestFaultBlobUploadInvalidAfterAnotherWriter(t *testing.T) {
	r := newRig(t)
	d := r.layer(t, "a")
	commit := faultproxy.Match{Method: http.MethodPut, Kind: regtest.KindBlobUpload, Ref: d}
	rule := r.dp.Inject(commit, 1, faultproxy.ForwardThenStatus(http.StatusBadRequest, "BLOB_UPLOAD_INVALID"))
	rep := r.run(t)
	mustHit(t, r.dp, rule, 1)
	r.check(t, rep)
	// After the refused commit, a HEAD (200) or a mount (201) found the
	// blob; it was neither committed nor sent again.
	reqs := r.dp.Requests()
	failedAt := -1
	for i, q := range reqs {
		if q.Fault != "" {
			failedAt = i
		}
	}
	found := false
	for _, q := range reqs[failedAt+1:] {
		switch {
		case q.Ref != d:
		case q.Kind == regtest.KindBlobHead && q.Status == http.StatusOK, q.Kind == regtest.KindBlobMount && q.Status == http.StatusCreated:
			found = true
		case q.Kind == regtest.KindBlobUpload || q.Kind == regtest.KindBlobMount:
			t.Errorf("blob uploaded again after the fault: %s %s?%s answered %d", q.Method, q.Path, q.Query, q.Status)
		}
	}
	if !found {
		t.Error("neither a blob HEAD nor a mount confirmed the blob after BLOB_UPLOAD_INVALID")
	}
}

// Row 12: the source redirects blob downloads to another host (a CDN).
// The redirect is followed, and no Authorization header ever reaches the
// other host, though it listens on the same IP address.
func TestFaultBlobRedirectToAnotherHostDropsAuthorization(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []regtest.Option
	}{
		{"basic", []regtest.Option{regtest.WithBasicAuth("alice", "s3cret")}},
		{"bearer", []regtest.Option{regtest.WithTokenAuth("alice", "s3cret")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, tc.opts...)
			cdn := faultproxy.NewBlobHost(t)
			rule := r.sp.Inject(faultproxy.Match{Kind: regtest.KindBlobGet}, 0, faultproxy.RedirectTo(cdn))
			rep := r.run(t)
			mustHit(t, r.sp, rule, 6)
			r.check(t, rep)
			seen := cdn.Requests()
			if len(seen) < 6 {
				t.Fatalf("the blob host got %d requests, want every blob (6)", len(seen))
			}
			for _, h := range seen {
				if v := h.Get("Authorization"); v != "" {
					t.Fatalf("Authorization sent to the other host: %q", v)
				}
			}
			// ...while the registry itself did get credentials.
			authed := 0
			for _, q := range r.sp.Requests() {
				if q.Kind == regtest.KindBlobGet && q.Header.Get("Authorization") != "" {
					authed++
				}
			}
			if authed == 0 {
				t.Error("no blob GET to the registry carried Authorization: the test proves nothing")
			}
		})
	}
}

// Row 1 again, cutting the config blob: go-containerregistry then returns
// from Push while the layer uploads still run, and the retry joins those
// uploads. That once deadlocked the upload ledger (the retry held the
// claim the leftover upload waited for); the run must converge.
func TestFaultCutConfigBlobDuringLayerUploads(t *testing.T) {
	for range 3 { // the deadlock needed an unlucky interleaving
		r := newRig(t)
		cfg, err := r.images["a"].ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		rule := r.sp.Inject(faultproxy.Match{Kind: regtest.KindBlobGet, Ref: cfg.String()}, 1, faultproxy.Truncate())
		rep := r.run(t)
		mustHit(t, r.sp, rule, 1)
		r.check(t, rep)
	}
}
