// Package e2e holds helpers for end-to-end tests that run real processes:
// a throw-away docker-registry (optionally with TLS, htpasswd auth, client
// certificates, pull-through proxying and a request-counting reverse proxy in
// front), skopeo as an independent client, and the regmirror binary itself.
//
// Every helper binds to loopback addresses only, bounds its time, and
// registers t.Cleanup hooks that stop the processes it started and remove
// the temporary directories it created.
//
// Tests that need a binary call RequireBinary, which skips the test when the
// binary is absent unless REGMIRROR_E2E_REQUIRE=1 is set (CI sets it), in
// which case the test fails instead.
//
// Packages that call BuildRegmirror should route TestMain through Main so the
// binary is built once per test binary and its directory removed at the end:
//
//	func TestMain(m *testing.M) { e2e.Main(m) }
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing binary from a
// skip into a failure.
const RequireEnv = "REGMIRROR_E2E_REQUIRE"

// DefaultTimeout is what Run uses when it is given a zero timeout.
const DefaultTimeout = 120 * time.Second

// RequireBinary returns the path of a binary or skips the test when it is
// absent – unless the environment variable REGMIRROR_E2E_REQUIRE=1 is set, in
// which case a missing binary FAILS the test.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("e2e: required binary %q not found (%s=1): %v", name, RequireEnv, err)
	}
	t.Skipf("e2e: binary %q not found, skipping (set %s=1 to make this a failure)", name, RequireEnv)
	return ""
}

// Result is the outcome of Run. Code is the process's exit code, or -1 when
// it was killed (by the timeout or a signal).
type Result struct {
	Stdout, Stderr string
	Code           int
	TimedOut       bool
}

// Run runs bin with args, adding env ("K=V" entries, later ones win) to the
// test process's environment, feeding stdin, and killing the process group
// after timeout (DefaultTimeout when zero). It fails the test only when the
// process cannot be started; a non-zero exit or a time-out is reported in the
// Result (a time-out also appends a note to Stderr).
func Run(t testing.TB, timeout time.Duration, env []string, stdin string, bin string, args ...string) Result {
	t.Helper()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second

	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.Code = exitErr.ExitCode()
	case cmd.ProcessState != nil:
		// e.g. exec.ErrWaitDelay: the process ended but its pipes stayed open.
		res.Code = cmd.ProcessState.ExitCode()
	default:
		t.Fatalf("e2e: cannot run %s: %v", bin, err)
	}
	if ctx.Err() == context.DeadlineExceeded {
		res.TimedOut = true
		res.Code = -1
		res.Stderr += fmt.Sprintf("\n[e2e: %s killed after time-out of %s]\n", filepath.Base(bin), timeout)
	}
	return res
}

// killGroup signals the process group led by p (every process is started
// with Setpgid, so its pgid is its pid).
func killGroup(p *os.Process, sig syscall.Signal) error {
	if p == nil {
		return nil
	}
	if err := syscall.Kill(-p.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

var (
	buildOnce   sync.Once
	buildDir    string
	buildBin    string
	buildErr    error
	mainRunning atomic.Bool
)

// Main runs the tests of a package and then removes what the package's tests
// left behind across tests (the regmirror binary built by BuildRegmirror).
// Call it from TestMain.
func Main(m *testing.M) {
	mainRunning.Store(true)
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// BuildRegmirror builds ./cmd/regmirror of the module that contains the
// working directory, with CGO_ENABLED=0, and returns the binary's path. When
// the package's TestMain goes through Main, the build happens once per test
// binary (sync.Once) and is removed when the tests end; otherwise each call
// builds into the calling test's own temporary directory (cheap thanks to the
// build cache) so nothing is left behind. A failed build fails the test with
// the compiler's output.
func BuildRegmirror(t testing.TB) string {
	t.Helper()
	if !mainRunning.Load() {
		bin, err := buildRegmirror(t.TempDir())
		if err != nil {
			t.Fatalf("e2e: %v", err)
		}
		return bin
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "regmirror-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		buildBin, buildErr = buildRegmirror(dir)
	})
	if buildErr != nil {
		t.Fatalf("e2e: %v", buildErr)
	}
	return buildBin
}

func buildRegmirror(dir string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building regmirror: go command not found: %v", err)
	}
	bin := filepath.Join(dir, "regmirror")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./cmd/regmirror")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/regmirror (in %s) failed: %v\n%s", root, err, out)
	}
	return bin, nil
}

// ModuleRoot walks up from the working directory to the directory holding
// go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("e2e: no go.mod found above the working directory")
		}
		dir = parent
	}
}

// tailBuffer is an io.Writer that keeps only the last max bytes written.
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	dropped bool
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.dropped = true
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped {
		return "[…earlier output dropped…]\n" + string(b.buf)
	}
	return string(b.buf)
}

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
