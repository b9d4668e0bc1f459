package e2e

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RegistryBinary is the name of Debian's docker-registry (distribution 2.8).
const RegistryBinary = "docker-registry"

// Options selects how StartRegistry configures the registry.
type Options struct {
	// TLS serves https with a certificate for 127.0.0.1 (and localhost)
	// signed by a fresh test CA.
	TLS bool
	// User and Password enable htpasswd auth.
	User, Password string
	// ProxyRemoteURL turns the registry into a pull-through cache of another
	// registry ("http://127.0.0.1:PORT" or "https://..."), with optional
	// credentials for the remote. Such a registry refuses pushes.
	//
	// Quirk of docker-registry 2.8: it hands ProxyUsername/ProxyPassword
	// only to the remote's bearer-token realm(s), discovered once at start-up
	// by GET remote/v2/; it never sends them as basic auth. So a pull-through
	// cache of an htpasswd test registry reaches the remote anonymously and
	// answers 404 "manifest unknown": point caches at registries without
	// auth. That start-up GET also means the remote must already be up: 2.8
	// panics when it cannot reach it (StartRegistry then fails the test).
	ProxyRemoteURL               string
	ProxyUsername, ProxyPassword string
	// ProxyRemoteCAFile, when set, is the only CA the registry process trusts
	// for outgoing TLS (SSL_CERT_FILE), so that ProxyRemoteURL may point at a
	// TLS test registry: pass that registry's CAFile.
	ProxyRemoteCAFile string
	// ClientCAs requires client certificates signed by the test CA
	// (http.tls.clientcas); Registry.ClientCert/ClientKey then name a usable
	// pair. Requires TLS.
	ClientCAs bool
	// CatalogMaxEntries caps the repositories per /v2/_catalog page
	// (catalog.maxentries; 0: the registry's default of 1000), so that a
	// few repositories span several pages.
	CatalogMaxEntries int
	// Count puts a counting reverse proxy in front of the registry (same
	// scheme, same CA, same client-certificate demands); Registry.Host is
	// then the proxy's address and Counts/Requests/GETs report what it saw.
	Count bool
}

// Registry is a running docker-registry started by StartRegistry. It is
// stopped, and its files removed, when the test that started it ends.
type Registry struct {
	// Host is "127.0.0.1:PORT" as clients must address it (the counting
	// proxy's address when Options.Count is on).
	Host string
	// BackendHost is the registry process's own address; requests sent there
	// directly are not counted. Equal to Host without Options.Count.
	BackendHost string
	// Scheme is "https" with Options.TLS, else "http".
	Scheme string
	// CAFile is the PEM of the CA that signed the server certificate (TLS
	// only).
	CAFile string
	// CertsDir is a docker certs.d-style directory holding
	// CertsDir/<Host>/ca.crt (and client.cert/client.key with ClientCAs), for
	// tools that take --cert-dir (which want CertsDir/<Host> itself) or a
	// certs.d root. BackendHost has its own entry too. TLS only.
	CertsDir string
	// ClientCert and ClientKey are PEM files of a client certificate signed
	// by the test CA (ClientCAs only).
	ClientCert, ClientKey string
	// User and Password are the htpasswd credentials, when enabled.
	User, Password string
	// Dir is the storage root of the filesystem driver, so tests can inspect
	// blobs (Dir/docker/registry/v2/...).
	Dir string
	// ConfigFile is the docker-registry configuration that was used.
	ConfigFile string

	opts     Options
	pki      *testPKI
	proc     *process
	proxy    *countingProxy
	logs     *tailBuffer
	stopOnce sync.Once
}

// URL returns Scheme://Host.
func (r *Registry) URL() string { return r.Scheme + "://" + r.Host }

// Ref returns Host + "/" + repoAndTag, a reference clients can use.
func (r *Registry) Ref(repoAndTag string) string { return r.Host + "/" + repoAndTag }

// Logs returns the tail (last 64 KiB) of the registry's stdout/stderr and of
// the counting proxy's error log.
func (r *Registry) Logs() string { return r.logs.String() }

// TLSConfig returns a client TLS configuration that trusts the test CA and
// presents the test client certificate when ClientCAs is on. It is nil for a
// plain-http registry.
func (r *Registry) TLSConfig() *tls.Config {
	if r.pki == nil {
		return nil
	}
	c := &tls.Config{RootCAs: r.pki.pool, MinVersion: tls.VersionTLS12}
	if r.opts.ClientCAs {
		c.Certificates = []tls.Certificate{r.pki.clientTLS}
	}
	return c
}

// Transport returns a fresh http.Transport configured with TLSConfig and no
// HTTP proxy; callers close its idle connections when done.
func (r *Registry) Transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = r.TLSConfig()
	return tr
}

// Stop stops the counting proxy and the registry process (SIGTERM, then
// SIGKILL after 5s). It is safe to call more than once; the test's cleanup
// calls it anyway. Tests may call it to simulate an unreachable registry.
func (r *Registry) Stop() {
	r.stopOnce.Do(func() {
		if r.proxy != nil {
			r.proxy.close()
		}
		if r.proc != nil {
			r.proc.stop()
		}
	})
}

// Counts returns a copy of the number of requests the counting proxy saw,
// by kind: "ping", "catalog", "tags list", "manifest GET", "manifest HEAD",
// "manifest PUT", "manifest DELETE", "blob GET", "blob HEAD",
// "blob DELETE", "upload" (anything under /blobs/uploads/), "referrers"
// and "other". It panics when the registry was started without Count.
func (r *Registry) Counts() map[string]int { return r.mustProxy("Counts").snapshotCounts() }

// Requests returns the "METHOD PATH" lines the counting proxy saw, in order.
// It panics when the registry was started without Count.
func (r *Registry) Requests() []string { return r.mustProxy("Requests").snapshotRequests() }

// InFlight is how many requests the counting proxy is forwarding right now
// (a benchmark samples it to see a client's concurrency over time).
func (r *Registry) InFlight() int { return int(r.mustProxy("InFlight").inflight.Load()) }

// ResetCounts forgets every request counted so far.
func (r *Registry) ResetCounts() { r.mustProxy("ResetCounts").reset() }

// GETs returns the number of manifest GETs plus blob GETs – what a no-op sync
// must not send.
func (r *Registry) GETs() int {
	c := r.Counts()
	return c["manifest GET"] + c["blob GET"]
}

func (r *Registry) mustProxy(what string) *countingProxy {
	if r.proxy == nil {
		panic("e2e: Registry." + what + " needs a registry started with Options.Count")
	}
	return r.proxy
}

// StartRegistry starts docker-registry on a free loopback port as o asks
// (skipping the test when the binary is absent, see RequireBinary), waits
// until it answers GET /v2/, and arranges for it to be stopped when the test
// ends.
func StartRegistry(t testing.TB, o Options) *Registry {
	t.Helper()
	bin := RequireBinary(t, RegistryBinary)
	if o.ClientCAs && !o.TLS {
		t.Fatalf("e2e: Options.ClientCAs needs Options.TLS")
	}
	if (o.User == "") != (o.Password == "") {
		t.Fatalf("e2e: Options.User and Options.Password go together")
	}
	if o.ProxyRemoteURL == "" && (o.ProxyUsername != "" || o.ProxyPassword != "" || o.ProxyRemoteCAFile != "") {
		t.Fatalf("e2e: proxy credentials or CA given without Options.ProxyRemoteURL")
	}

	base := t.TempDir()
	r := &Registry{
		Scheme:   "http",
		User:     o.User,
		Password: o.Password,
		Dir:      filepath.Join(base, "storage"),
		opts:     o,
		logs:     newTailBuffer(64 << 10),
	}
	confDir := filepath.Join(base, "conf")
	for _, d := range []string{r.Dir, confDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatalf("e2e: %v", err)
		}
	}
	// Registered after t.TempDir, so it runs before the directory goes.
	t.Cleanup(r.Stop)

	if o.TLS {
		pki, err := newTestPKI(confDir)
		if err != nil {
			t.Fatalf("e2e: test PKI: %v", err)
		}
		r.pki = pki
		r.Scheme = "https"
		r.CAFile = pki.CAFile
		r.CertsDir = filepath.Join(base, "certs.d")
		if o.ClientCAs {
			r.ClientCert, r.ClientKey = pki.ClientCert, pki.ClientKey
		}
	}

	htpasswd := ""
	if o.User != "" {
		// MinCost: the registry runs bcrypt on every request.
		hash, err := bcrypt.GenerateFromPassword([]byte(o.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("e2e: bcrypt: %v", err)
		}
		htpasswd = filepath.Join(confDir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(o.User+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatalf("e2e: %v", err)
		}
	}

	var proxyLn net.Listener
	if o.Count {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("e2e: counting proxy listen: %v", err)
		}
		proxyLn = ln
		// Closed by the proxy once it serves; until then, by this cleanup.
		t.Cleanup(func() { _ = ln.Close() })
	}

	env := registryEnv(o)
	client := &http.Client{Transport: r.Transport(), Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()

	const attempts = 3
	for attempt := 1; ; attempt++ {
		port, err := pickPort()
		if err != nil {
			t.Fatalf("e2e: picking a port: %v", err)
		}
		r.BackendHost = fmt.Sprintf("127.0.0.1:%d", port)
		r.ConfigFile = filepath.Join(confDir, "config.yml")
		if err := os.WriteFile(r.ConfigFile, registryConfig(r, o, htpasswd), 0o600); err != nil {
			t.Fatalf("e2e: %v", err)
		}
		r.logs = newTailBuffer(64 << 10)
		proc, err := startProcess(bin, []string{"serve", r.ConfigFile}, env, r.logs)
		if err != nil {
			t.Fatalf("e2e: starting %s: %v", bin, err)
		}
		r.proc = proc
		err = waitReady(client, r.Scheme+"://"+r.BackendHost+"/v2/", proc, 15*time.Second)
		if err == nil {
			break
		}
		proc.stop()
		logs := r.logs.String()
		if attempt < attempts && strings.Contains(logs, "address already in use") {
			t.Logf("e2e: registry port %d was taken, retrying (%d/%d)", port, attempt, attempts)
			continue
		}
		t.Fatalf("e2e: docker-registry did not become ready: %v\nconfig:\n%s\nlog tail:\n%s",
			err, redactConfig(r.ConfigFile), tail(logs, 4<<10))
	}

	r.Host = r.BackendHost
	if o.Count {
		r.Host = proxyLn.Addr().String()
		p, err := newCountingProxy(proxyLn, r)
		if err != nil {
			t.Fatalf("e2e: counting proxy: %v", err)
		}
		r.proxy = p
	}
	if r.pki != nil {
		for _, h := range []string{r.Host, r.BackendHost} {
			if err := r.pki.writeCertsDir(r.CertsDir, h, o.ClientCAs); err != nil {
				t.Fatalf("e2e: certs dir: %v", err)
			}
		}
	}
	return r
}

// registryEnv is the registry's environment: the test's, minus REGISTRY_*
// overrides, plus SSL_CERT_FILE for a TLS remote.
func registryEnv(o Options) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "REGISTRY_") || strings.HasPrefix(kv, "SSL_CERT_") {
			continue
		}
		env = append(env, kv)
	}
	if o.ProxyRemoteCAFile != "" {
		env = append(env, "SSL_CERT_FILE="+o.ProxyRemoteCAFile)
	}
	return env
}

// registryConfig renders the docker-registry 2.8 configuration. Scalars are
// written as JSON strings, which YAML reads as double-quoted strings.
func registryConfig(r *Registry, o Options, htpasswd string) []byte {
	q := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("version: 0.1")
	w("log:")
	w("  level: warn")
	w("  accesslog:")
	w("    disabled: true")
	w("storage:")
	w("  filesystem:")
	w("    rootdirectory: %s", q(r.Dir))
	w("  delete:")
	w("    enabled: true")
	w("  maintenance:")
	w("    uploadpurging:")
	w("      enabled: false")
	if o.CatalogMaxEntries > 0 {
		w("catalog:")
		w("  maxentries: %d", o.CatalogMaxEntries)
	}
	w("http:")
	w("  addr: %s", q(r.BackendHost))
	w("  secret: %s", q(randomHex(16)))
	if r.pki != nil {
		w("  tls:")
		w("    certificate: %s", q(r.pki.ServerCert))
		w("    key: %s", q(r.pki.ServerKey))
		if o.ClientCAs {
			w("    clientcas:")
			w("      - %s", q(r.pki.CAFile))
		}
	}
	if htpasswd != "" {
		w("auth:")
		w("  htpasswd:")
		w("    realm: test")
		w("    path: %s", q(htpasswd))
	}
	if o.ProxyRemoteURL != "" {
		w("proxy:")
		w("  remoteurl: %s", q(o.ProxyRemoteURL))
		if o.ProxyUsername != "" {
			w("  username: %s", q(o.ProxyUsername))
		}
		if o.ProxyPassword != "" {
			w("  password: %s", q(o.ProxyPassword))
		}
	}
	return []byte(b.String())
}

// redactConfig returns the config file's text without secrets, for failure
// messages.
func redactConfig(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "secret:") || strings.HasPrefix(trimmed, "password:") {
			lines[i] = l[:strings.Index(l, ":")+1] + " <redacted>"
		}
	}
	return strings.Join(lines, "\n")
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// pickPort is freePort; tests replace it to exercise the retry.
var pickPort = freePort

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return port, ln.Close()
}

// waitReady polls url until it answers 200 or 401, the process exits, or the
// deadline passes.
func waitReady(client *http.Client, url string, p *process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("docker-registry exited early (%v)", p.waitErr)
		default:
		}
		resp, err := getUnlessExited(client, url, p)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %v", timeout, last)
		}
		select {
		case <-p.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// getUnlessExited GETs url but gives up as soon as p exits (a port taken
// by another listener may accept the connection and never answer).
func getUnlessExited(client *http.Client, url string, p *process) (*http.Response, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return client.Do(req)
}

// process is a child started in its own process group.
type process struct {
	cmd     *exec.Cmd
	cancel  context.CancelFunc
	done    chan struct{}
	waitErr error
	once    sync.Once
}

func startProcess(bin string, args, env []string, out *tailBuffer) (*process, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	p := &process{cmd: cmd, cancel: cancel, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM to the process group, waits up to 5s, then SIGKILLs it,
// and waits for the process to be reaped.
func (p *process) stop() {
	p.once.Do(func() {
		select {
		case <-p.done:
			p.cancel()
			return
		default:
		}
		_ = killGroup(p.cmd.Process, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			// Still alive, so its pid (and group) are still ours to kill.
			p.cancel() // cmd.Cancel: SIGKILL to the group
			<-p.done
		}
		p.cancel()
	})
}
