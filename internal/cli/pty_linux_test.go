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
