package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// logOnce logs one line through the logger the flags build.
func logOnce(t *testing.T, format string) string {
	t.Helper()
	var buf bytes.Buffer
	g := &globals{logFormat: format}
	log, err := g.loggerTo(&buf, "text")
	if err != nil {
		t.Fatal(err)
	}
	head := &transport.Error{StatusCode: http.StatusNotFound,
		Request: &http.Request{Method: http.MethodHead, URL: &url.URL{Scheme: "https", Host: "r.example", Path: "/v2/a/manifests/1"}}}
	detail := &transport.Error{StatusCode: http.StatusNotFound, Errors: []transport.Diagnostic{
		{Code: transport.ManifestUnknownErrorCode, Message: "manifest unknown", Detail: map[string]any{"name": "a/app"}}}}
	if !strings.Contains(head.Error(), "HEAD responses have no body") || !strings.Contains(detail.Error(), "map[name:a/app]") {
		t.Fatalf("the library no longer adds the noise: %q, %q", head.Error(), detail.Error())
	}
	log.Info("copied", "digest", testDigest, "duration", 1234*time.Millisecond, "bytes", int64(45_300_000),
		"error", errors.Join(head, detail))
	return buf.String()
}

func TestTextLogsAreReadable(t *testing.T) {
	out := logOnce(t, "text")
	for _, want := range []string{"digest=sha256:0123456789ab ", "duration=1.2s", `bytes="45.3 MB"`,
		"HEAD https://r.example/v2/a/manifests/1: unexpected status code 404 Not Found", "MANIFEST_UNKNOWN: manifest unknown"} {
		if !strings.Contains(out, want) {
			t.Errorf("text log lacks %q:\n%s", want, out)
		}
	}
	for _, noise := range []string{testDigest, "HEAD responses have no body", "map["} {
		if strings.Contains(out, noise) {
			t.Errorf("text log has %q:\n%s", noise, out)
		}
	}
}

func TestJSONLogsKeepDigestsAndSeconds(t *testing.T) {
	out := logOnce(t, "json")
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if m["digest"] != testDigest || m["duration_s"] != 1.234 || m["bytes"] != 45300000.0 {
		t.Errorf("json log: %v", m)
	}
	if _, ok := m["duration"]; ok {
		t.Errorf("json log keeps duration beside duration_s: %v", m)
	}
	if e, _ := m["error"].(string); strings.Contains(e, "HEAD responses have no body") || strings.Contains(e, "map[") || !strings.Contains(e, "404 Not Found") {
		t.Errorf("json error %q", e)
	}
}

// A real registry's failure, through sync's own logger: the error line
// on stderr carries no library noise, while the raw error (kept in the
// report) shows the noise was there to remove.
func TestSyncFailureLogHasNoLibraryNoise(t *testing.T) {
	f := newDecideFixture(t, `      - {from: a/app, to: m/app, tags: ["9.9"]}
`)
	path := filepath.Join(t.TempDir(), "r.json")
	_, errs, code := f.run(t, "sync", "--report", path)
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	raw := readRunReport(t, path).Results[0].Error
	if !strings.Contains(raw, "map[") && !strings.Contains(raw, "HEAD responses have no body") {
		t.Fatalf("the registry's error has no noise to remove (test proves nothing): %q", raw)
	}
	if !strings.Contains(errs, "failed") {
		t.Fatalf("no failure logged:\n%s", errs)
	}
	for _, noise := range []string{"HEAD responses have no body", "map["} {
		if strings.Contains(errs, noise) {
			t.Errorf("stderr has %q:\n%s", noise, errs)
		}
	}
}
