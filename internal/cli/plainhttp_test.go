package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regmirror/regmirror/internal/testutil/imagegen"
	"github.com/regmirror/regmirror/internal/testutil/regtest"
)

// The plain-HTTP hint says "write the registry as http://HOST": login and
// mirror-list, where it is also given, take that spelling.
func TestLoginAndMirrorListTakeHTTPScheme(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("REGMIRROR_DOCKER_DAEMON_JSON", filepath.Join(t.TempDir(), "none"))
	t.Setenv("REGMIRROR_REGISTRIES_CONF", filepath.Join(t.TempDir(), "none"))
	dst := regtest.New(t, regtest.WithBasicAuth("mirror", "s3cret"))
	src := regtest.New(t)
	imagegen.Push(t, src.Ref("team/app:1.0"), imagegen.Image(71, 1, 256))

	var out, errb bytes.Buffer
	err := Execute(context.Background(), []string{"login", "-u", "mirror", "--password-stdin", "http://" + dst.Host},
		strings.NewReader("s3cret\n"), &out, &errb)
	if err != nil || !strings.Contains(out.String(), "Login Succeeded") {
		t.Fatalf("login http://%s: %v\n%s%s", dst.Host, err, out.String(), errb.String())
	}

	list := filepath.Join(t.TempDir(), "images.txt")
	if err := os.WriteFile(list, []byte(src.Host+"/team/app:1.0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := executeAll("mirror-list", "--from", "http://"+src.Host+"/team", "--to", "http://"+dst.Host+"/mirror", list)
	if ExitCode(err) != ExitOK || !strings.Contains(stdout, "copied") {
		t.Fatalf("mirror-list with http:// prefixes: exit %d\n%s%s", ExitCode(err), stdout, stderr)
	}
	if dst.Count(regtest.KindManifestPut) != 1 {
		t.Errorf("%d manifest PUTs on the target, want 1", dst.Count(regtest.KindManifestPut))
	}
}

// TestLoginWritesWhereDockerConfigPointsNow: login stores credentials in
// $DOCKER_CONFIG as it is when login runs, not as it was the first time
// the process asked (docker/cli's config.Dir keeps its first answer):
// two logins under two DOCKER_CONFIGs write two files, and the first
// directory does not get the second credential.
func TestLoginWritesWhereDockerConfigPointsNow(t *testing.T) {
	t.Setenv("REGMIRROR_DOCKER_DAEMON_JSON", filepath.Join(t.TempDir(), "none"))
	t.Setenv("REGMIRROR_REGISTRIES_CONF", filepath.Join(t.TempDir(), "none"))
	reg := regtest.New(t, regtest.WithBasicAuth("u", "p"))
	first, second := t.TempDir(), t.TempDir()
	for _, dir := range []string{first, second} {
		t.Setenv("DOCKER_CONFIG", dir)
		var out, errb bytes.Buffer
		if err := Execute(context.Background(), []string{"login", "-u", "u", "--password-stdin", "http://" + reg.Host},
			strings.NewReader("p\n"), &out, &errb); err != nil {
			t.Fatalf("login with DOCKER_CONFIG=%s: %v\n%s", dir, err, errb.String())
		}
		if err := os.Remove(filepath.Join(dir, "config.json")); err != nil {
			t.Fatalf("login did not write %s/config.json: %v", dir, err)
		}
	}
}
