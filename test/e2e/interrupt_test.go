package e2e_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regmirror/regmirror/internal/testutil/e2e"
	"github.com/regmirror/regmirror/internal/testutil/faultproxy"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// uploadDirs lists the upload sessions a docker-registry keeps on disk.
func uploadDirs(t *testing.T, r *e2e.Registry) []string {
	t.Helper()
	var dirs []string
	root := filepath.Join(r.Dir, "docker/registry/v2/repositories")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && filepath.Base(filepath.Dir(p)) == "_uploads" {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return dirs
}

// uploadLeftovers counts what is under the target's _uploads: session
// directories, data files (path -> size) and hash-state files.
func uploadLeftovers(t *testing.T, r *e2e.Registry) (dirs int, data map[string]int64, stubs int) {
	t.Helper()
	data = map[string]int64{}
	for _, d := range uploadDirs(t, r) {
		dirs++
		_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			fi, err := e.Info()
			if err != nil {
				return err
			}
			if strings.Contains(p, "/hashstates/") {
				stubs++
			} else {
				data[p] = fi.Size()
			}
			return nil
		})
	}
	return dirs, data, stubs
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// uploadedBytes is the size of the largest upload in progress into repo.
func uploadedBytes(t *testing.T, r *e2e.Registry, repo string) int64 {
	var most int64
	for _, d := range uploadDirs(t, r) {
		if !strings.Contains(d, "/repositories/"+repo+"/_uploads/") {
			continue
		}
		if fi, err := os.Stat(filepath.Join(d, "data")); err == nil && fi.Size() > most {
			most = fi.Size()
		}
	}
	return most
}

// TestInterruptCancelsUploadsAndExits130 interrupts a sync in the middle
// of a big blob upload to a real docker-registry, with SIGINT and then
// SIGTERM. The source hangs halfway through the blob, so the target holds
// part of it when the signal comes. regmirror must start no other image,
// leave no upload session behind under _uploads (the registry only drops
// one when the DELETE carries the session's current state), report the
// images it never started as not started rather than failed, and exit 130
// or 143.
func TestInterruptCancelsUploadsAndExits130(t *testing.T) {
	origin, dst := registries(t)
	src := faultproxy.New(t, origin.URL())
	bin := e2e.BuildRegmirror(t)

	const size = 16 << 20
	big := imagegen.Layer(4242, size)
	bigDigest, err := big.Digest()
	if err != nil {
		t.Fatal(err)
	}
	for i, tag := range []string{"1", "2", "3", "4"} {
		imagegen.Push(t, origin.Ref("big:"+tag), imagegen.Image(uint64(500+i), 1, 1024, big), remoteOpts(origin)...)
	}
	stall := src.Inject(faultproxy.Match{Kind: regtest.KindBlobGet, Ref: bigDigest.String()}, 0, src.StallMidway())

	dir := t.TempDir()
	env := []string{"DST_USER=" + dst.User, "DST_PASS=" + dst.Password}
	for round, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		cfg := filepath.Join(dir, fmt.Sprintf("r%d.yaml", round))
		body := fmt.Sprintf("tasks:\n  - name: big\n    source: {registry: \"http://%s\"}\n"+
			"    target:\n      registry: %s\n      username: ${DST_USER}\n      password: ${DST_PASS}\n      ca-file: %s\n"+
			"    mappings:\n      - {from: big, to: r%d/big}\n", src.Host, dst.Host, dst.CAFile, round)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "sync", "--config", cfg, "--jobs", "1", "--platform-cache", "")
		cmd.Env = append(os.Environ(), env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()

		// Wait (bounded) until the target has stored a MiB of the big
		// blob (the other layers are 1 KiB): its upload is in flight,
		// stuck behind the hanging source.
		deadline := time.Now().Add(60 * time.Second)
		for uploadedBytes(t, dst, fmt.Sprintf("r%d/big", round)) < 1<<20 {
			select {
			case err := <-done:
				t.Fatalf("%v round: sync ended before the signal (%v):\n%s", sig, err, stderr.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				t.Fatalf("%v round: the target never held part of the blob; stall hits %d:\n%s", sig, src.Hits(stall), stderr.String())
			}
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("%v round: sync did not stop after the signal:\n%s", sig, stderr.String())
		}
		code := cmd.ProcessState.ExitCode()
		out := stderr.String()
		want := 128 + int(sig)
		if code != want {
			t.Errorf("%v round: exit %d, want %d:\n%s", sig, code, want, out)
		}
		// What the target keeps of the cancelled uploads. A cancelled
		// session's data is gone; docker-registry (distribution 2.8 and
		// 3) then rewrites a hash-state stub of ~100 bytes into the
		// session's directory (its DELETE handler closes the upload
		// after cancelling it), which no request can remove.
		dirs, data, stubs := uploadLeftovers(t, dst)
		t.Logf("%v round: exit %d; under _uploads: %d directories, %d data files (%d bytes), %d hash-state stubs", sig, code, dirs, len(data), sum(data), stubs)
		if len(data) != 0 {
			t.Errorf("%v round: upload data left on the target: %v\n%s", sig, data, out)
		}
		if !strings.Contains(out, "interrupted") || !strings.Contains(out, "not_started=3") {
			t.Errorf("%v round: no interrupted line with not_started=3:\n%s", sig, out)
		}
		if strings.Contains(out, "context canceled") || strings.Contains(out, "level=ERROR") {
			t.Errorf("%v round: an image is reported as failed:\n%s", sig, out)
		}
		if tags := listTags(t, dst, fmt.Sprintf("r%d/big", round)); len(tags) != 0 {
			t.Errorf("%v round: tags %v on the target", sig, tags)
		}
	}
}
