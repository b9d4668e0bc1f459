package e2e_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/testutil/e2e"
	"github.com/regmirror/regmirror/internal/testutil/faultproxy"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// TestSecretsNeverShow runs the binary with every kind of credential in
// play — a password (from the environment), a bearer token (a token-auth
// source), a dregsy base64 `auth` (the target), a wrong password (an auth
// failure) — at debug level, through injected faults, in text and JSON,
// prints the config, and runs the daemon and reads its /status and
// /metrics. No secret, nor any base64 form of one, may show in stdout,
// stderr, those pages or the command line.
func TestSecretsNeverShow(t *testing.T) {
	e2e.RequireBinary(t, e2e.RegistryBinary)
	bin := e2e.BuildRegmirror(t)

	const (
		srcUser, srcPass = "tokenuser", "Src-Pa55-7f3a9c"
		badPass          = "Wrong-Pa55-0d1e2f"
		dstUser, dstPass = "mirror", "Dst-Pa55 w1th space-4b8e"
	)
	src := regtest.New(t, regtest.WithTokenAuth(srcUser, srcPass))
	srcAuth := remote.WithAuth(&authn.Basic{Username: srcUser, Password: srcPass})
	for i, repo := range []string{"app", "tool"} {
		imagegen.Push(t, src.Ref(repo+":1"), imagegen.Image(uint64(500+i), 2, 32<<10), srcAuth)
	}
	sp := faultproxy.New(t, src.URL)
	// Faults on the way: a 500 and a cut body, each retried.
	faults := []*faultproxy.Rule{
		sp.Inject(faultproxy.Match{Kind: regtest.KindBlobGet, Repo: "app"}, 1, faultproxy.Status(http.StatusInternalServerError, "UNKNOWN")),
		sp.Inject(faultproxy.Match{Kind: regtest.KindBlobGet, Repo: "tool"}, 1, faultproxy.Truncate()),
	}

	dst := e2e.StartRegistry(t, e2e.Options{TLS: true, User: dstUser, Password: dstPass})
	dstAuth := authB64(dstUser, dstPass)

	dir := t.TempDir()
	cfg := filepath.Join(dir, "secrets.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`retry: {attempts: 3, wait: 10ms, request-attempts: 3, request-wait: 10ms, idle-timeout: 5s}
tasks:
  - name: good
    source:
      registry: http://%[1]s
      username: %[2]s
      password: ${SRC_PW}
    target:
      registry: %[3]s
      auth: %[4]s
      ca-file: %[5]s
    mappings: [{from: app}, {from: tool}]
  - name: bad
    source:
      registry: http://%[1]s
      username: %[2]s
      password: ${BAD_PW}
    target:
      registry: %[3]s
      auth: %[4]s
      ca-file: %[5]s
    mappings: [{from: app, to: other}]
`, sp.Host, srcUser, dst.Host, dstAuth, dst.CAFile)), 0o600)
	env := []string{"SRC_PW=" + srcPass, "BAD_PW=" + badPass}

	type run struct {
		args []string
		code int
	}
	runs := []run{
		{[]string{"sync", "--config", cfg, "--log-level", "debug", "--log-format", "json", "--platform-cache", ""}, 1},
		{[]string{"sync", "--config", cfg, "--log-level", "debug", "--log-format", "text", "--platform-cache", ""}, 1},
		{[]string{"config", "print", "--config", cfg, "--log-level", "debug"}, 0},
	}
	var out strings.Builder
	for _, r := range runs {
		res := e2e.Run(t, 2*time.Minute, env, "", bin, r.args...)
		if res.Code != r.code {
			t.Fatalf("regmirror %s: exit %d, want %d\n%s", strings.Join(r.args, " "), res.Code, r.code, res.Stderr)
		}
		fmt.Fprintf(&out, "ARGS %q\nSTDOUT\n%s\nSTDERR\n%s\n", r.args, res.Stdout, res.Stderr)
	}

	// The daemon, at debug level, through a fault, and its /status and
	// /metrics pages.
	faults = append(faults, sp.Inject(faultproxy.Match{Kind: regtest.KindManifestHead}, 1, faultproxy.Status(http.StatusBadGateway, "")))
	d := startDaemon(t, bin, cfg, append(env, "LOG_LEVEL=debug")...)
	waitFor(t, 60*time.Second, "a run of both tasks", func() bool {
		st := d.status(t)
		done := 0
		for _, tk := range st.Tasks {
			if tk.Runs > 0 && !tk.Running {
				done++
			}
		}
		return done == 2
	})
	for _, page := range []string{"/status", "/metrics"} {
		code, body := d.get(t, page)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", page, code)
		}
		fmt.Fprintf(&out, "PAGE %s\n%s\n", page, body)
	}
	d.stop(t)
	fmt.Fprintf(&out, "DAEMON STDERR\n%s\n", d.logs.String())
	all := out.String()

	// The runs did what the test claims: debug lines, both faults, the
	// auth failure, a copy that succeeded, the printed config. The cut
	// body fails the blob's upload, which is retried (the debug line of
	// the failed request names the error).
	for _, want := range []string{`"level":"DEBUG"`, "level=DEBUG", "authentication failed", `"msg":"copied"`, "auth: REDACTED", "password: ${SRC_PW}", `"error":"unexpected EOF"`, "PAGE /status", `"last_run"`} {
		if !strings.Contains(all, want) {
			t.Errorf("output lacks %q: the test does not exercise what it claims", want)
		}
	}
	for _, r := range faults {
		if sp.Hits(r) == 0 {
			t.Errorf("fault %q never applied", r.Fault.Name)
		}
	}

	// Every secret and its encodings.
	secrets := map[string]string{}
	add := func(what, s string) {
		secrets[what] = s
		secrets[what+" (base64)"] = base64.StdEncoding.EncodeToString([]byte(s))
		secrets[what+" (base64url)"] = base64.RawURLEncoding.EncodeToString([]byte(s))
	}
	add("source password", srcPass)
	add("wrong password", badPass)
	add("target password", dstPass)
	add("source basic auth", srcUser+":"+srcPass)
	add("wrong basic auth", srcUser+":"+badPass)
	add("target basic auth", dstUser+":"+dstPass)
	secrets["dregsy auth"] = dstAuth
	// The bearer tokens the source issued, as seen on the wire.
	bearer := regexp.MustCompile(`^Bearer (\S+)$`)
	tokens := 0
	for _, q := range sp.Requests() {
		if m := bearer.FindStringSubmatch(q.Header.Get("Authorization")); m != nil {
			secrets[fmt.Sprintf("bearer token %d", tokens)] = m[1]
			// A JWT's signature alone is secret enough to leak it.
			if parts := strings.Split(m[1], "."); len(parts) == 3 {
				secrets[fmt.Sprintf("bearer token %d signature", tokens)] = parts[2]
			}
			tokens++
		}
	}
	if tokens == 0 {
		t.Fatal("no bearer token was used: the source is not token-protected as intended")
	}
	for what, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("%s shows in the output or arguments", what)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", all)
	}
}

// TestNoFlagTakesASecret: credentials never go through argv, so no command
// may offer a flag for one. login's --password-stdin is a switch that makes
// standard input the password's only way in.
func TestNoFlagTakesASecret(t *testing.T) {
	bin := e2e.BuildRegmirror(t)
	flag := regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([\w-]+)`)
	command := regexp.MustCompile(`(?m)^  ([a-z][\w-]*)\s{2,}\S`)
	secretish := regexp.MustCompile(`(?i)pass|token|secret|auth|cred`)
	allowed := map[string]bool{"password-stdin": true}
	help := func(args ...string) string {
		res := e2e.Run(t, 30*time.Second, nil, "", bin, append(args, "--help")...)
		if res.Code != 0 {
			t.Fatalf("%v --help: exit %d\n%s", args, res.Code, res.Stderr)
		}
		return res.Stdout
	}
	// Every command and subcommand, from the help texts themselves.
	var cmds [][]string
	var walk func(path []string)
	walk = func(path []string) {
		cmds = append(cmds, path)
		text := help(path...)
		if i := strings.Index(text, "Available Commands:"); i >= 0 {
			block := text[i:]
			if j := strings.Index(block, "\n\n"); j >= 0 {
				block = block[:j]
			}
			for _, m := range command.FindAllStringSubmatch(block, -1) {
				if m[1] != "help" && m[1] != "completion" {
					walk(append(append([]string(nil), path...), m[1]))
				}
			}
		}
	}
	walk(nil)
	seen := 0
	for _, c := range cmds {
		for _, m := range flag.FindAllStringSubmatch(help(c...), -1) {
			seen++
			if secretish.MatchString(m[1]) && !allowed[m[1]] {
				t.Errorf("regmirror %s offers --%s: credentials must not go through argv", strings.Join(c, " "), m[1])
			}
		}
	}
	if len(cmds) < 4 || seen < 10 {
		t.Fatalf("found %d commands and %d flags in the help texts: the patterns are broken", len(cmds), seen)
	}
	t.Logf("%d commands, %d flags checked", len(cmds), seen)
}
