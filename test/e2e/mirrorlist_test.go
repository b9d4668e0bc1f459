package e2e_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regmirror/regmirror/internal/testutil/e2e"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
)

// jsonKey is a service-account-style password: several lines, quotes and a
// backslash, short enough for htpasswd's bcrypt (72 bytes).
const jsonKey = "{\n  \"type\": \"service_account\",\n  \"k\": \"a\\\"b c\"\n}"

// isolatedEnv keeps the machine's docker and podman settings out of a run.
func isolatedEnv(dockerConfig string, extra ...string) []string {
	return append([]string{
		"DOCKER_CONFIG=" + dockerConfig,
		"REGMIRROR_DOCKER_DAEMON_JSON=",
		"REGMIRROR_REGISTRIES_CONF=",
		"LOG_LEVEL=", "LOG_FORMAT=",
	}, extra...)
}

type listReport struct {
	Results []struct {
		Line   int    `json:"line"`
		Status string `json:"result"`
		Digest string `json:"digest"`
		Target string `json:"target"`
		Error  string `json:"error"`
	} `json:"results"`
	Summary struct {
		Images, Copied, Skipped, Pulled, Failed int
	} `json:"summary"`
}

func readReport(t *testing.T, path string) listReport {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r listReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	return r
}

// TestLoginThenMirrorMessyList follows the vendor guide with regmirror: log
// in to the target with a JSON key on stdin, then mirror a hand-edited
// docker-images.txt (comments, CRLF, no final newline, a missing image, a
// malformed line, a line outside the prefix) into it; run it again and it
// costs the source nothing.
func TestLoginThenMirrorMessyList(t *testing.T) {
	e2e.RequireBinary(t, e2e.RegistryBinary)
	e2e.RequireBinary(t, e2e.SkopeoBinary)
	src := e2e.StartRegistry(t, e2e.Options{Count: true})
	dst := e2e.StartRegistry(t, e2e.Options{Count: true, TLS: true, User: "_json_key", Password: jsonKey})
	bin := e2e.BuildRegmirror(t)

	base := imagegen.Layer(91, 512)
	web := imagegen.Image(92, 1, 256, base)
	multi := imagegen.Index(93, []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}, 1, 256, base)
	pinned := imagegen.Image(94, 1, 256, base)
	db := imagegen.Image(95, 1, 256)
	imagegen.Push(t, src.Ref("vendor/app/web:1.0"), web, remoteOpts(src)...)
	imagegen.Push(t, src.Ref("vendor/app/multi:2"), multi, remoteOpts(src)...)
	imagegen.Push(t, src.Ref("vendor/app/pinned:3"), pinned, remoteOpts(src)...)
	imagegen.Push(t, src.Ref("vendor/app/db:old"), db, remoteOpts(src)...)
	pinnedD, dbD := imagegen.Digest(t, pinned).String(), imagegen.Digest(t, db).String()

	// --- login ---
	dockerCfg := t.TempDir()
	cfgFile := filepath.Join(dockerCfg, "config.json")
	env := isolatedEnv(dockerCfg, "SSL_CERT_FILE="+dst.CAFile)

	res := e2e.Run(t, time.Minute, env, "wrong\n", bin, "login", "-u", "_json_key", "--password-stdin", dst.Host)
	if res.Code != 1 || !strings.Contains(res.Stderr, "rejected") {
		t.Fatalf("wrong password: exit %d\n%s", res.Code, res.Stderr)
	}
	if _, err := os.Stat(cfgFile); !os.IsNotExist(err) {
		t.Fatalf("a rejected login wrote %s (%v)", cfgFile, err)
	}
	// What `cat cred.json |` sends: the key and a final newline.
	res = e2e.Run(t, time.Minute, env, jsonKey+"\n", bin, "login", "-u", "_json_key", "--password-stdin", dst.Host)
	if res.Code != 0 || !strings.Contains(res.Stdout, "Login Succeeded") {
		t.Fatalf("login: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if strings.Contains(res.Stdout+res.Stderr, "service_account") {
		t.Fatal("the password was printed")
	}
	fi, err := os.Stat(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("config.json created %v, want 0600", fi.Mode().Perm())
	}
	stored := storedAuth(t, cfgFile, dst.Host)
	if stored != "_json_key:"+jsonKey {
		t.Fatalf("stored credentials changed the key:\n got %q\nwant %q", stored, "_json_key:"+jsonKey)
	}
	before, _ := os.ReadFile(cfgFile)
	res = e2e.Run(t, time.Minute, env, jsonKey+"x", bin, "login", "-u", "_json_key", "--password-stdin", dst.Host)
	if after, _ := os.ReadFile(cfgFile); res.Code != 1 || !bytes.Equal(before, after) {
		t.Fatalf("a rejected login over a stored one: exit %d, config.json changed: %v", res.Code, !bytes.Equal(before, after))
	}

	// --- mirror-list ---
	prefix := src.Host + "/vendor/app"
	lines := []string{
		"# Appcircle server images",      // 1
		"",                               // 2
		"  " + prefix + "/web:1.0  ",     // 3
		prefix + "/multi:2",              // 4
		"\t# " + prefix + "/commented:1", // 5
		prefix + "/pinned:3@" + pinnedD + " # pin", // 6
		prefix + "/missing:9",                      // 7 missing at the source
		prefix + "/Bad Name:1",                     // 8 malformed
		"docker.io/library/busybox:1",              // 9 outside the prefix
		prefix + "/db@" + dbD,                      // 10 by digest, no final newline
	}
	list := filepath.Join(t.TempDir(), "docker-images.txt")
	if err := os.WriteFile(list, []byte(strings.Join(lines, "\r\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "report.json")
	to := dst.Host + "/mirror/appcircle"
	args := []string{"mirror-list", "--from", prefix, "--to", to, "--report", report, list}

	// The source is plain HTTP: allowed by --insecure-registry.
	res = e2e.Run(t, 2*time.Minute, env, "", bin, append([]string{"--insecure-registry", src.Host}, args...)...)
	if res.Code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	want := map[int]string{3: "copied", 4: "copied", 6: "copied", 7: "failed", 8: "failed", 9: "failed", 10: "copied"}
	checkLines(t, res.Stdout, list, want)
	rep := readReport(t, report)
	checkReport(t, rep, want)
	for _, l := range []int{7, 8, 9} {
		if !strings.Contains(res.Stdout, fmt.Sprintf("docker-images.txt:%d: failed", l)) {
			t.Errorf("line %d not reported as failed by number:\n%s", l, res.Stdout)
		}
	}
	if !regexp.MustCompile(`docker-images.txt:9: failed .*source prefix`).MatchString(res.Stdout) {
		t.Errorf("line 9's reason is not the prefix:\n%s", res.Stdout)
	}
	// Digests on the target, as skopeo sees them.
	for ref, x := range map[string]any{"mirror/appcircle/web:1.0": web, "mirror/appcircle/multi:2": multi,
		"mirror/appcircle/pinned:3": pinned, "mirror/appcircle/db@" + dbD: db} {
		if got, want := e2e.SkopeoRawDigest(t, dst, ref), imagegen.Digest(t, x).String(); got != want {
			t.Errorf("%s: %s on the target, want %s", ref, got, want)
		}
	}

	// --- second run: the source marked insecure by registries.conf this
	// time; everything current is skipped with zero GETs to the source.
	conf := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(conf, []byte("[[registry]]\nlocation = \""+src.Host+"\"\ninsecure = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src.ResetCounts()
	dst.ResetCounts()
	res = e2e.Run(t, 2*time.Minute, append(env, "REGMIRROR_REGISTRIES_CONF="+conf), "", bin, args...)
	if res.Code != 1 {
		t.Fatalf("second run: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	want = map[int]string{3: "skipped", 4: "skipped", 6: "skipped", 7: "failed", 8: "failed", 9: "failed", 10: "skipped"}
	checkLines(t, res.Stdout, list, want)
	checkReport(t, readReport(t, report), want)
	if n := src.GETs(); n != 0 {
		t.Errorf("second run sent %d GETs to the source: %v", n, src.Requests())
	}
	if c := dst.Counts(); c["manifest PUT"]+c["upload"] != 0 {
		t.Errorf("second run wrote to the target: %v", c)
	}
}

// storedAuth decodes the "auth" docker's config.json holds for host.
func storedAuth(t *testing.T, path, host string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cf struct {
		Auths map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(b, &cf); err != nil {
		t.Fatal(err)
	}
	dec, err := base64.StdEncoding.DecodeString(cf.Auths[host].Auth)
	if err != nil {
		t.Fatalf("auth for %s: %v (%s)", host, err, b)
	}
	return string(dec)
}

func checkLines(t *testing.T, stdout, list string, want map[int]string) {
	t.Helper()
	name := filepath.Base(list)
	for l, st := range want {
		if !strings.Contains(stdout, fmt.Sprintf("%s:%d: %s ", name, l, st)) {
			t.Errorf("line %d: want %q in\n%s", l, st, stdout)
		}
	}
	if n := strings.Count(stdout, list+":"); n != len(want) {
		t.Errorf("%d result lines, want %d:\n%s", n, len(want), stdout)
	}
	if !strings.Contains(stdout, "summary: ") {
		t.Errorf("no summary:\n%s", stdout)
	}
}

func checkReport(t *testing.T, rep listReport, want map[int]string) {
	t.Helper()
	if len(rep.Results) != len(want) {
		t.Fatalf("report has %d results, want %d: %+v", len(rep.Results), len(want), rep.Results)
	}
	failed := 0
	for _, r := range rep.Results {
		if r.Status != want[r.Line] {
			t.Errorf("report line %d: %s (%s), want %s", r.Line, r.Status, r.Error, want[r.Line])
		}
		if r.Status == "failed" {
			failed++
			if r.Error == "" {
				t.Errorf("report line %d: failed without a reason", r.Line)
			}
		} else if !strings.HasPrefix(r.Digest, "sha256:") {
			t.Errorf("report line %d: no digest", r.Line)
		}
	}
	if rep.Summary.Failed != failed || rep.Summary.Images != len(want) {
		t.Errorf("summary %+v", rep.Summary)
	}
}

// TestPullOnlyWarmsPullThroughCache pre-pulls a list through a real
// pull-through cache (docker-registry with proxy.remoteurl), as the guide's
// "Pulling Images One By One" does through Nexus: afterwards the cache holds
// every blob, and a second pre-pull needs no blob from the upstream.
func TestPullOnlyWarmsPullThroughCache(t *testing.T) {
	e2e.RequireBinary(t, e2e.RegistryBinary)
	upstream := e2e.StartRegistry(t, e2e.Options{Count: true})
	base := imagegen.Layer(81, 1024)
	multi := imagegen.Index(82, []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}, 2, 512, base)
	tool := imagegen.Image(83, 2, 512, base)
	imagegen.Push(t, upstream.Ref("appcircle/docker-registry/multi:1"), multi, remoteOpts(upstream)...)
	imagegen.Push(t, upstream.Ref("appcircle/docker-registry/tool:2"), tool, remoteOpts(upstream)...)
	proxy := e2e.StartRegistry(t, e2e.Options{ProxyRemoteURL: upstream.URL()})
	bin := e2e.BuildRegmirror(t)

	blobs := map[string]bool{}
	addBlobs := func(img v1.Image) {
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		blobs[m.Config.Digest.Hex] = true
		for _, l := range m.Layers {
			blobs[l.Digest.Hex] = true
		}
	}
	addBlobs(tool)
	im, _ := multi.IndexManifest()
	for _, d := range im.Manifests {
		img, err := multi.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		addBlobs(img)
	}

	// The vendor's list names the upstream; --to maps it onto the proxy.
	// The proxy is plain HTTP, marked so in daemon.json as the guide
	// writes it (with the scheme).
	src := upstream.Host + "/appcircle/docker-registry"
	list := filepath.Join(t.TempDir(), "docker-images.txt")
	if err := os.WriteFile(list, []byte("# images\n"+src+"/multi:1\n"+src+"/tool:2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	daemon := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(daemon, []byte(`{"insecure-registries": ["http://`+proxy.Host+`"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := isolatedEnv(t.TempDir(), "REGMIRROR_DOCKER_DAEMON_JSON="+daemon)
	args := []string{"mirror-list", "--pull-only", "--from", src, "--to", proxy.Host + "/appcircle/docker-registry", list}

	upstream.ResetCounts()
	res := e2e.Run(t, 2*time.Minute, env, "", bin, args...)
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	for _, want := range []string{
		"docker-images.txt:2: pulled " + proxy.Host + "/appcircle/docker-registry/multi:1 " + imagegen.Digest(t, multi).String(),
		"docker-images.txt:3: pulled " + proxy.Host + "/appcircle/docker-registry/tool:2 " + imagegen.Digest(t, tool).String(),
		"summary: 2 images: 2 pulled, 0 failed",
	} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("want %q in\n%s", want, res.Stdout)
		}
	}
	if n := upstream.Counts()["blob GET"]; n < len(blobs) {
		t.Errorf("upstream served %d blob GETs, want at least %d (every blob)", n, len(blobs))
	}
	// The cache holds every blob in its storage (it commits a blob as it
	// finishes streaming it; allow it a moment).
	deadline := time.Now().Add(10 * time.Second)
	for {
		var missing []string
		for h := range blobs {
			if _, err := os.Stat(filepath.Join(proxy.Dir, "docker/registry/v2/blobs/sha256", h[:2], h, "data")); err != nil {
				missing = append(missing, h[:12])
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache lacks %d of %d blobs: %v", len(missing), len(blobs), missing)
		}
		time.Sleep(100 * time.Millisecond)
	}

	upstream.ResetCounts()
	res = e2e.Run(t, 2*time.Minute, env, "", bin, args...)
	if res.Code != 0 {
		t.Fatalf("second pull: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if n := upstream.Counts()["blob GET"]; n != 0 {
		t.Errorf("second pull through the warm cache sent %d blob GETs upstream: %v", n, upstream.Requests())
	}
}
