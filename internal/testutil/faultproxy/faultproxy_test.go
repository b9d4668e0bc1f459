package faultproxy_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regmirror/regmirror/internal/testutil/faultproxy"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// The harness itself: each fault does what its name says, and rules
// count, skip and stop as documented. Requests go to a real registry.

func setup(t *testing.T) (*faultproxy.Proxy, string) {
	t.Helper()
	reg := regtest.New(t)
	img := imagegen.Image(1, 1, 64<<10)
	imagegen.Push(t, reg.Ref("a:1"), img)
	ls, _ := img.Layers()
	d, _ := ls[0].Digest()
	return faultproxy.New(t, reg.URL), "/v2/a/blobs/" + d.String()
}

func get(t *testing.T, url string) (*http.Response, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestRulesSkipTimesAndForwarding(t *testing.T) {
	p, blob := setup(t)
	rule := p.Add(&faultproxy.Rule{Match: faultproxy.Match{Kind: regtest.KindBlobGet}, Skip: 1, Times: 2,
		Fault: faultproxy.Status(http.StatusServiceUnavailable, "UNAVAILABLE")})
	var codes []int
	for range 5 {
		resp, body, err := get(t, p.URL+blob)
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == http.StatusServiceUnavailable && !strings.Contains(string(body), `"UNAVAILABLE"`) {
			t.Errorf("error body %s", body)
		}
		if resp.StatusCode == http.StatusOK && len(body) == 0 {
			t.Error("forwarded blob is empty")
		}
	}
	if want := []int{200, 503, 503, 200, 200}; !slices.Equal(codes, want) {
		t.Errorf("statuses %v, want %v", codes, want)
	}
	if p.Hits(rule) != 2 || p.Count(faultproxy.Match{Kind: regtest.KindBlobGet}) != 5 {
		t.Errorf("hits %d, seen %d", p.Hits(rule), p.Count(faultproxy.Match{Kind: regtest.KindBlobGet}))
	}
}

func TestTruncateCorruptReset(t *testing.T) {
	p, blob := setup(t)
	_, whole, err := get(t, p.URL+blob)
	if err != nil {
		t.Fatal(err)
	}

	p.Inject(faultproxy.Match{Kind: regtest.KindBlobGet}, 1, faultproxy.Truncate())
	_, got, err := get(t, p.URL+blob)
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != len(whole)/2 {
		t.Errorf("truncate: %d of %d bytes, err %v; want half and unexpected EOF", len(got), len(whole), err)
	}

	p.Inject(faultproxy.Match{Kind: regtest.KindBlobGet}, 1, faultproxy.Corrupt())
	_, got, err = get(t, p.URL+blob)
	if err != nil || len(got) != len(whole) || string(got) == string(whole) {
		t.Errorf("corrupt: %d bytes (want %d, different), err %v", len(got), len(whole), err)
	}

	p.Inject(faultproxy.Match{Kind: regtest.KindBlobGet}, 1, faultproxy.Reset())
	_, _, err = get(t, p.URL+blob)
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
		t.Errorf("reset: err %v, want a reset connection", err)
	}
}

func TestStallSendsHeadersThenNothing(t *testing.T) {
	p, blob := setup(t)
	p.Inject(faultproxy.Match{Kind: regtest.KindBlobGet}, 1, p.Stall())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+blob, nil)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("headers did not arrive: %v", err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if n != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stall: %d bytes, err %v; want none until the deadline", n, err)
	}
}

func TestRedirectToBlobHost(t *testing.T) {
	p, blob := setup(t)
	cdn := faultproxy.NewBlobHost(t)
	_, whole, _ := get(t, p.URL+blob)
	p.Inject(faultproxy.Match{Kind: regtest.KindBlobGet}, 1, faultproxy.RedirectTo(cdn))
	resp, err := http.Get(p.URL + blob) // the client follows the redirect
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if string(got) != string(whole) || len(cdn.Requests()) != 1 || !strings.HasPrefix(resp.Request.URL.String(), cdn.URL) {
		t.Errorf("redirect: %d bytes from %s, blob host saw %d requests", len(got), resp.Request.URL, len(cdn.Requests()))
	}
}
