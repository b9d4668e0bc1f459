package transport

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// UploadGrace is how long an interrupted blob upload may take to be
// answered once its body has been ended.
const UploadGrace = 10 * time.Second

// uploadEnd lets an interrupted blob upload end cleanly, so that the
// session can be cancelled. A registry records the offset an upload
// reached in its session URL (distribution's signed _state), and refuses
// any request, the DELETE that would cancel it included, whose state
// disagrees with the bytes it holds ("upload resumed at wrong offset"). A
// PATCH cut in the middle leaves the client with the state from before it,
// and the upload directory stays behind. So an upload's PATCH is not cut
// when its context ends: its body ends instead, the registry answers with
// the session's current URL (which the ledger above records), and the
// DELETE sent with that URL really drops the upload. A monolithic PUT
// (the body and ?digest= in one request) whose body ends early fails the
// registry's digest check, and the registry drops the upload itself.
//
// For that the body is sent without a Content-Length (chunked, as docker
// push sends its uploads, so every registry accepts it): a body with a
// declared length cannot end early. Every upload request already on its
// way (the POST that opens a session, too: cut, it leaves a session whose
// URL nobody learnt) is detached from its context and bounded by
// UploadGrace after the context ends.
type uploadEnd struct{ inner http.RoundTripper }

func (t *uploadEnd) RoundTrip(req *http.Request) (*http.Response, error) {
	parent := req.Context()
	if !strings.Contains(req.URL.Path, "/blobs/uploads/") || parent.Done() == nil {
		return t.inner.RoundTrip(req)
	}
	if err := parent.Err(); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, context.Cause(parent)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	var (
		mu    sync.Mutex
		timer *time.Timer
	)
	stop := context.AfterFunc(parent, func() {
		mu.Lock()
		defer mu.Unlock()
		timer = time.AfterFunc(UploadGrace, cancel)
	})
	release := func() {
		stop()
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel()
	}
	out := req.Clone(ctx)
	if (req.Method == http.MethodPatch || req.Method == http.MethodPut) && req.Body != nil && req.Body != http.NoBody {
		out.Body = &endingBody{ReadCloser: req.Body, parent: parent}
		out.ContentLength = -1
		out.Header.Del("Content-Length")
		out.GetBody = nil // the ended body must not be replayed whole
	}
	resp, err := t.inner.RoundTrip(out)
	if err != nil {
		release()
		return resp, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: release}
	return resp, nil
}

// endingBody reads an upload's body until its context ends, and then
// reports the end of the body instead of the error.
type endingBody struct {
	io.ReadCloser
	parent context.Context
}

func (b *endingBody) Read(p []byte) (int, error) {
	if b.parent.Err() != nil {
		return 0, io.EOF
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.parent.Err() != nil {
		return n, io.EOF
	}
	return n, err
}

// releasingBody calls release once the response body is closed.
type releasingBody struct {
	io.ReadCloser
	release func()
	once    sync.Once
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
