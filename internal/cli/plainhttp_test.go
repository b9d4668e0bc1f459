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
