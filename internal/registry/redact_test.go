package registry_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/regmirror/regmirror/internal/registry"
)

func TestStripQueries(t *testing.T) {
	inner := fmt.Errorf(`Patch "http://127.0.0.1:5000/v2/a/blobs/uploads/0a?_state=SECRET%%3D": %w`, io.ErrUnexpectedEOF)
	err := registry.StripQueries(fmt.Errorf("copying a:1: %w; Location /v2/a/blobs/uploads/1?_state=OTHER&x=1 and GET https://cdn.example/blob?X-Amz-Signature=abc", inner))
	msg := err.Error()
	for _, leak := range []string{"_state", "SECRET", "OTHER", "Signature", "?"} {
		if strings.Contains(msg, leak) {
			t.Errorf("%q left in %q", leak, msg)
		}
	}
	for _, keep := range []string{`Patch "http://127.0.0.1:5000/v2/a/blobs/uploads/0a": unexpected EOF`, "/v2/a/blobs/uploads/1 and", "https://cdn.example/blob"} {
		if !strings.Contains(msg, keep) {
			t.Errorf("%q lost from %q", keep, msg)
		}
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Error("the stripped error no longer wraps its cause")
	}
	plain := errors.New("no URL here? no")
	if registry.StripQueries(plain) != plain {
		t.Error("an error without a URL was rewrapped")
	}
}

// TestStripURLQueriesDropsCredentialsAndFragments: the user information
// of a URL is a credential and its fragment may carry a token; both go,
// with the query, wherever a URL is shown.
func TestStripURLQueriesDropsCredentialsAndFragments(t *testing.T) {
	in := `PUT https://bob:hunter2@dst.example/v2/app/blobs/uploads/u1?_state=S&digest=sha256:1: refused; see http://alice@docs.example/page#token=T and /v2/x/blobs/uploads/2#frag`
	got := registry.StripURLQueries(in)
	for _, leak := range []string{"bob", "hunter2", "alice", "_state", "token=T", "frag", "?", "#", "@"} {
		if strings.Contains(got, leak) {
			t.Errorf("%q left in %q", leak, got)
		}
	}
	for _, keep := range []string{"PUT https://dst.example/v2/app/blobs/uploads/u1 refused", "http://docs.example/page and", "/v2/x/blobs/uploads/2"} {
		if !strings.Contains(got, keep) {
			t.Errorf("%q lost from %q", keep, got)
		}
	}
}
