package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// openPTY opens a pseudo-terminal pair (Linux /dev/ptmx), so a test can
// hand the CLI a real terminal without a library.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	fd := int(ptmx.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open tty: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	// Raw output: no \n -> \r\n translation in what the test reads back.
	if err := rawOutput(int(tty.Fd())); err != nil {
		t.Fatal(err)
	}
	return ptmx, tty
}

func rawOutput(fd int) error {
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	tio.Oflag &^= unix.OPOST
	return unix.IoctlSetTermios(fd, unix.TCSETS, tio)
}

// On a terminal (a pseudo-terminal here) the status line is drawn with the
// final count of images and bytes, and log lines still appear whole.
func TestSyncOnATerminalDrawsProgress(t *testing.T) {
	ptmx, tty := openPTY(t)
	cfg := shardConfig(t, t.TempDir(), 2)
	got := make(chan string)
	go func() {
		b, _ := io.ReadAll(ptmx) // ends with EIO once tty is closed
		got <- string(b)
	}()
	var out bytes.Buffer
	err := Execute(context.Background(), []string{"sync", "--config", cfg, "--platform-cache", ""}, strings.NewReader(""), &out, tty)
	tty.Close()
	screen := <-got
	if err != nil {
		t.Fatalf("sync: %v\n%s", err, screen)
	}
	if !strings.Contains(screen, "\033[K") || !strings.Contains(screen, "sync: 2/2 images, ") {
		t.Errorf("no status line with 2/2 images on the terminal:\n%q", screen)
	}
	if strings.Contains(screen, "2/2 images, 0 B") {
		t.Errorf("bytes written were not counted:\n%q", screen)
	}
	if strings.Count(screen, "msg=copied") != 2 {
		t.Errorf("want 2 copied lines, got:\n%q", screen)
	}
}

// mirror-list draws the same status line on a terminal (and none in a
// pipe, which its own tests run it in).
func TestMirrorListOnATerminalDrawsProgress(t *testing.T) {
	ptmx, tty := openPTY(t)
	src, dst := regtest.New(t), regtest.New(t)
	for _, tag := range []string{"1", "2"} {
		imagegen.Push(t, src.Ref("team/app:"+tag), imagegen.Image(uint64(len(tag)+int(tag[0])), 1, 2048))
	}
	list := filepath.Join(t.TempDir(), "images.txt")
	if err := os.WriteFile(list, []byte(src.Host+"/team/app:1\n"+src.Host+"/team/app:2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := make(chan string)
	go func() {
		b, _ := io.ReadAll(ptmx)
		got <- string(b)
	}()
	var out bytes.Buffer
	err := Execute(context.Background(), []string{"mirror-list", "--insecure-registry", src.Host, "--insecure-registry", dst.Host,
		"--from", src.Host + "/team", "--to", dst.Host + "/mirror", list}, strings.NewReader(""), &out, tty)
	tty.Close()
	screen := <-got
	if err != nil {
		t.Fatalf("mirror-list: %v\n%s\n%s", err, out.String(), screen)
	}
	if !strings.Contains(screen, "\033[K") || !strings.Contains(screen, "mirror-list: 2/2 images, ") || strings.Contains(screen, "2/2 images, 0 B") {
		t.Errorf("no status line with 2/2 images and bytes on the terminal:\n%q", screen)
	}
}

// login without --password-stdin asks on the terminal, as docker does:
// "Password: ", nothing echoed, and the password typed is the one checked
// and stored. Without a terminal it is a usage error naming the flag.
func TestLoginPromptsOnATerminal(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("REGMIRROR_DOCKER_DAEMON_JSON", filepath.Join(t.TempDir(), "none"))
	t.Setenv("REGMIRROR_REGISTRIES_CONF", filepath.Join(t.TempDir(), "none"))
	dst := regtest.New(t, regtest.WithBasicAuth("mirror", "s3cret"))

	_, stderr, err := executeAll("login", "-u", "mirror", "http://"+dst.Host)
	if ExitCode(err) != ExitUsage || !strings.Contains(stderr, "--password-stdin") {
		t.Fatalf("login without a terminal: exit %d, want %d naming --password-stdin\n%s", ExitCode(err), ExitUsage, stderr)
	}

	ptmx, tty := openPTY(t)
	got := make(chan string)
	go func() {
		// Type the password once the prompt shows (echo is off by then).
		var screen []byte
		buf := make([]byte, 256)
		typed := false
		for {
			n, err := ptmx.Read(buf)
			screen = append(screen, buf[:n]...)
			if !typed && bytes.Contains(screen, []byte("Password: ")) {
				typed = true
				echoOff(t, tty)
				_, _ = ptmx.WriteString("s3cret\n")
			}
			if err != nil { // EIO once tty is closed
				got <- string(screen)
				return
			}
		}
	}()
	var out bytes.Buffer
	err = Execute(context.Background(), []string{"login", "-u", "mirror", "http://" + dst.Host}, tty, &out, tty)
	tty.Close()
	screen := <-got
	if err != nil || !strings.Contains(out.String(), "Login Succeeded") {
		t.Fatalf("login on a terminal: %v\n%s\n%q", err, out.String(), screen)
	}
	// The registry takes only s3cret: the typed password was the one sent.
	if !strings.Contains(screen, "Password: ") || strings.Contains(screen, "s3cret") {
		t.Errorf("want a Password: prompt and no echo, the terminal shows %q", screen)
	}
}

// echoOff waits (bounded) until the terminal stops echoing, as a person
// reading the prompt before typing would.
func echoOff(t *testing.T, tty *os.File) {
	for range 5000 {
		tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		if err != nil || tio.Lflag&unix.ECHO == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Error("the terminal kept echoing after the prompt")
}
