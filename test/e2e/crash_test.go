package e2e_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/testutil/e2e"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
)

// CrashSeedEnv overrides the seed of TestKill9LeavesOnlyCompleteImages, to
// replay a failure: REGMIRROR_CRASH_SEED=<seed printed by the failing run>.
const CrashSeedEnv = "REGMIRROR_CRASH_SEED"

var crashRepos = []string{"alpha", "beta", "gamma", "delta", "multi"}

// TestKill9LeavesOnlyCompleteImages starts a multi-image sync and kills it
// with SIGKILL at random points, at least 15 times. After every kill, every
// tag the target shows must be a complete image: its manifest, each child
// manifest and each blob they reference exist with their digests. Then a
// last run completes, and the target must equal the source, verified blob
// by blob. A run that finishes before its kill starts a fresh round in a
// new target namespace, so that every kill interrupts a copy in progress.
func TestKill9LeavesOnlyCompleteImages(t *testing.T) {
	src, dst := registries(t)
	bin := e2e.BuildRegmirror(t)

	seed := uint64(20261123)
	if v := os.Getenv(CrashSeedEnv); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", CrashSeedEnv, v, err)
		}
		seed = s
	}
	t.Logf("crash seed %d (replay with %s=%d)", seed, CrashSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	// Distinct images with a shared base, so mounts and the one-upload
	// rule are in play when the kill comes.
	base := imagegen.Layer(5, 64<<10)
	for i, repo := range crashRepos[:4] {
		for j, tag := range []string{"1", "2", "3"} {
			imagegen.Push(t, src.Ref(repo+":"+tag), imagegen.Image(uint64(1000+10*i+j), 2, 192<<10, base), remoteOpts(src)...)
		}
	}
	idx := imagegen.Index(77, []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}, 2, 128<<10, base)
	imagegen.Push(t, src.Ref("multi:1"), idx, remoteOpts(src)...)

	dir := t.TempDir()
	config := func(round int) string {
		var b strings.Builder
		fmt.Fprintf(&b, "tasks:\n  - name: crash\n    source: {registry: \"http://%s\"}\n", src.Host)
		fmt.Fprintf(&b, "    target:\n      registry: %s\n      username: ${DST_USER}\n      password: ${DST_PASS}\n      ca-file: %s\n    mappings:\n", dst.Host, dst.CAFile)
		for _, repo := range crashRepos {
			fmt.Fprintf(&b, "      - {from: %s, to: r%d/%s}\n", repo, round, repo)
		}
		p := filepath.Join(dir, fmt.Sprintf("round%d.yaml", round))
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := []string{"DST_USER=" + dst.User, "DST_PASS=" + dst.Password}

	const wantKills = 15
	round, kills, runs := 1, 0, 0
	cfg := config(round)
	for kills < wantKills {
		if runs++; runs > 60 {
			t.Fatalf("only %d of %d kills interrupted a sync in 60 runs", kills, wantKills)
		}
		delay := 20*time.Millisecond + time.Duration(rng.Int64N(int64(700*time.Millisecond)))
		killed, out := runAndKill(t, bin, env, delay, "sync", "--config", cfg, "--jobs", "3", "--transfers", "2", "--platform-cache", "")
		if killed {
			kills++
		} else if out.code != 0 {
			t.Fatalf("run %d (round %d) exited %d without being killed:\n%s", runs, round, out.code, out.stderr)
		} else {
			round++ // finished before the kill: mirror afresh elsewhere
			cfg = config(round)
		}
		for r := 1; r <= round; r++ {
			walkTarget(t, src, dst, r, false)
		}
		if t.Failed() {
			t.Fatalf("after run %d (kill after %s, seed %d) the target holds an incomplete image", runs, delay, seed)
		}
	}
	t.Logf("%d kills in %d runs over %d rounds", kills, runs, round)

	// Run to completion: every round's namespace becomes a full mirror.
	for r := 1; r <= round; r++ {
		res := e2e.Run(t, time.Minute, env, "", bin, "sync", "--config", config(r), "--platform-cache", "")
		if res.Code != 0 {
			t.Fatalf("completing round %d: exit %d\n%s", r, res.Code, res.Stderr)
		}
		walkTarget(t, src, dst, r, true)
	}
}

type procOut struct {
	code   int
	stderr string
}

// runAndKill starts bin, sends SIGKILL after delay and reports whether the
// signal interrupted it (false: it had already exited).
func runAndKill(t *testing.T, bin string, env []string, delay time.Duration, args ...string) (bool, procOut) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(delay):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = <-done
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true, procOut{code: -1, stderr: stderr.String()}
		}
		return false, procOut{code: exitErr.ExitCode(), stderr: stderr.String()}
	}
	if err != nil {
		t.Fatal(err)
	}
	return false, procOut{stderr: stderr.String()}
}

// walkTarget checks round r's namespace on the target. Every tag present
// must name a complete image with the source's digest: each manifest it
// references and each blob exists (HEAD, size checked). With full, every
// source tag must be present and every blob is downloaded and verified.
// (Child manifests are fetched by digest, which go-containerregistry
// verifies.)
func walkTarget(t *testing.T, src, dst *e2e.Registry, r int, full bool) {
	t.Helper()
	dopts := remoteOpts(dst)
	for _, repo := range crashRepos {
		want := listTags(t, src, repo)
		target := fmt.Sprintf("r%d/%s", r, repo)
		got := listTags(t, dst, target)
		if full && !slices.Equal(got, want) {
			t.Errorf("%s: tags %v, want %v", target, got, want)
		}
		for _, tag := range got {
			ref, err := name.ParseReference(dst.Ref(target + ":" + tag))
			if err != nil {
				t.Fatal(err)
			}
			got, ok := checkTag(t, ref, full, dopts)
			if !ok {
				continue
			}
			srcRef, _ := name.ParseReference(src.Ref(repo + ":" + tag))
			sd, err := remote.Head(srcRef, remoteOpts(src)...)
			if err != nil {
				t.Fatal(err)
			}
			if got != sd.Digest {
				t.Errorf("%s: digest %s, source has %s", ref, got, sd.Digest)
			}
		}
	}
}

// checkTag checks that ref names a complete image: its manifest, every
// child manifest of an index (fetched by digest, which verifies it) and
// every blob exist (checkBlobs). It returns the manifest's digest, and
// false when the manifest cannot be read.
func checkTag(t *testing.T, ref name.Reference, full bool, opts []remote.Option) (v1.Hash, bool) {
	t.Helper()
	// A killed client may leave its last manifest PUT still being handled
	// by the registry, which creates the tag's directory (and so lists the
	// tag) a moment before it writes the link inside: give such a write a
	// bounded moment to finish before calling the tag unreadable.
	var d *remote.Descriptor
	var err error
	for try := 0; try < 20; try++ {
		if d, err = remote.Get(ref, opts...); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("%s: tag listed but manifest unreadable: %v", ref, err)
		return v1.Hash{}, false
	}
	if !d.MediaType.IsIndex() {
		img, err := d.Image()
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		checkBlobs(t, ref.Context(), img, full, opts)
		return d.Digest, true
	}
	ii, err := d.ImageIndex()
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	for _, m := range im.Manifests {
		img, err := ii.Image(m.Digest)
		if err != nil {
			t.Errorf("%s: child %s: %v", ref, m.Digest, err)
			continue
		}
		checkBlobs(t, ref.Context(), img, full, opts)
	}
	return d.Digest, true
}

// checkBlobs HEADs the config and every layer of img in repo; with full it
// downloads each and verifies its digest and size.
func checkBlobs(t *testing.T, repo name.Repository, img v1.Image, full bool, opts []remote.Option) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Errorf("%s: manifest: %v", repo, err)
		return
	}
	for _, desc := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		l, err := remote.Layer(repo.Digest(desc.Digest.String()), opts...)
		if err != nil {
			t.Errorf("%s@%s: %v", repo, desc.Digest, err)
			continue
		}
		// remote.Layer is lazy; Size asks the registry with a HEAD.
		size, err := l.Size()
		if err != nil {
			t.Errorf("%s@%s: blob missing: %v", repo, desc.Digest, err)
			continue
		}
		if size != desc.Size {
			t.Errorf("%s@%s: size %d, want %d", repo, desc.Digest, size, desc.Size)
		}
		if full {
			// A remote layer's reader checks the digest at EOF.
			rc, err := l.Compressed()
			if err == nil {
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
			}
			if err != nil {
				t.Errorf("%s@%s: %v", repo, desc.Digest, err)
			}
		}
	}
}
