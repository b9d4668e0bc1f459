package transport

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// TestHostLimitSlots checks when a capped request holds its slot: a blob GET
// until its body is closed or drained, a HEAD not past its answer, and a
// request waiting for a slot gives up when its context ends.
func TestHostLimitSlots(t *testing.T) {
	reg := regtest.New(t)
	img := imagegen.Image(1, 1, 4096)
	imagegen.Push(t, reg.Ref("app:1"), img)
	layers, _ := img.Layers()
	dig, _ := layers[0].Digest()
	blobURL := reg.URL + "/v2/app/blobs/" + dig.String()

	m := DefaultHosts()
	m.LimitHost(reg.Host, 4)
	m.LimitHost(reg.Host, 1) // the smallest cap wins
	m.LimitHost(reg.Host, 0) // "no cap" from another location changes nothing
	c := &http.Client{Transport: &limitTransport{inner: reg.Transport(), m: m}}

	do := func(ctx context.Context, method, url string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Do(req)
	}
	// short bounds the requests that must wait for a slot; requests that
	// must get one get long, so a slow machine cannot fail them.
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	long := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return ctx
	}

	// HEADs free their slot with the answer: many in a row pass.
	for range 3 {
		resp, err := do(long(), http.MethodHead, blobURL)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("HEAD: %v %v", resp, err)
		}
	}

	// An open blob body holds the only slot.
	held, err := do(long(), http.MethodGet, blobURL)
	if err != nil || held.StatusCode != http.StatusOK {
		t.Fatalf("GET: %v %v", held, err)
	}
	before := len(reg.Requests())
	if _, err := do(short(), http.MethodHead, blobURL); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second request while a body is open: %v, want it to wait until its context ends", err)
	}
	if n := len(reg.Requests()); n != before {
		t.Fatalf("the waiting request reached the registry (%d requests, want %d)", n, before)
	}

	// Closing the body frees the slot.
	held.Body.Close()
	resp, err := do(long(), http.MethodGet, blobURL)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	// Reading to the end frees it too, even without Close.
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	resp, err = do(long(), http.MethodGet, blobURL)
	if err != nil {
		t.Fatalf("after draining: %v", err)
	}
	resp.Body.Close()

	// Another host is not capped.
	other := regtest.New(t)
	held, err = do(long(), http.MethodGet, reg.URL+"/v2/")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Body.Close()
	if resp, err := do(long(), http.MethodGet, other.URL+"/v2/"); err != nil {
		t.Errorf("uncapped host waited: %v", err)
	} else {
		resp.Body.Close()
	}
}

// TestCopyScopeRides: within one copy scope, an upload may ride on a slot
// the copy holds through an open body on the same host, one upload per body;
// outside the scope it waits.
func TestCopyScopeRides(t *testing.T) {
	reg := regtest.New(t)
	m := DefaultHosts()
	m.LimitHost(reg.Host, 1)
	c := &http.Client{Transport: &limitTransport{inner: reg.Transport(), m: m}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	scope := WithCopyScope(ctx)
	send := func(ctx context.Context, method string) (*http.Response, error) {
		var body io.Reader
		if method != http.MethodGet {
			body = strings.NewReader("x")
		}
		req, err := http.NewRequestWithContext(ctx, method, reg.URL+"/v2/", body)
		if err != nil {
			t.Fatal(err)
		}
		return c.Do(req)
	}
	short := func(parent context.Context) context.Context {
		c, cancel := context.WithTimeout(parent, 50*time.Millisecond)
		t.Cleanup(cancel)
		return c
	}

	held, err := send(scope, http.MethodGet) // the download: holds the only slot
	if err != nil {
		t.Fatal(err)
	}
	if _, err := send(short(ctx), http.MethodPut); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("an upload outside the copy: %v, want it to wait", err)
	}
	if _, err := send(short(scope), http.MethodGet); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a bodiless request of the copy: %v, want it to wait", err)
	}
	// Uploads ride one at a time: hold a ride open by a body that blocks.
	pr, pw := io.Pipe()
	rideDone := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(scope, http.MethodPut, reg.URL+"/v2/", pr)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		rideDone <- err
	}()
	// Wait (bounded) until the registry sees it: it is riding then.
	for i := 0; ; i++ {
		seen := false
		for _, q := range reg.Requests() {
			seen = seen || q.Method == http.MethodPut
		}
		if seen {
			break
		}
		if i == 1000 {
			t.Fatal("the riding upload never reached the registry")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := send(short(scope), http.MethodPut); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a second upload on one open body: %v, want it to wait", err)
	}
	pw.Close()
	if err := <-rideDone; err != nil {
		t.Errorf("the riding upload: %v", err)
	}
	held.Body.Close()
	if resp, err := send(ctx, http.MethodPut); err != nil {
		t.Errorf("after the download closed: %v", err)
	} else {
		resp.Body.Close()
	}
}
