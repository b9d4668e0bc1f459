package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/testutil/e2e"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
)

// TestReferrersThroughTheCLI runs the built binary with a config whose
// mapping says referrers: true against Debian's docker-registry (TLS and
// htpasswd on the target): a cosign-format signature made at the source is
// on the target, still verifies, and a second run copies nothing. The
// mapping without referrers gets no signature.
//
// The first plan was to let skopeo verify the copied signature with a
// sigstoreSigned policy, an independent verifier; Debian builds skopeo with
// sigstore disabled ("Debian-local change: sigstore disabled"), both for
// signing and for verifying, and cosign is not packaged.
func TestReferrersThroughTheCLI(t *testing.T) {
	src, dst := registries(t)
	bin := e2e.BuildRegmirror(t)
	dir := t.TempDir()

	key := imagegen.NewSigningKey(t)
	push(t, src, "team/app", 91, []string{"1.0"})
	digest := e2e.SkopeoRawDigest(t, src, "team/app:1.0")
	// `cosign sign --key` would store this: a simple-signing image under
	// the sha256-<hex>.sig tag.
	h, err := v1.NewHash(digest)
	if err != nil {
		t.Fatal(err)
	}
	sigTag := registry.CosignTags(digest)[0]
	imagegen.Push(t, src.Ref("team/app:"+sigTag), imagegen.Signature(t, key, src.Ref("team/app"), h), remoteOpts(src)...)

	cfg := filepath.Join(dir, "mirror.yaml")
	writeFile(t, cfg, fmt.Sprintf(`tasks:
  - name: signed
    source: {registry: http://%s}
    target: {registry: %s, ca-file: %s, username: %s, password: '%s'}
    mappings:
      - {from: team/app, to: mirror/signed, referrers: true}
      - {from: team/app, to: mirror/unsigned, tags: ['1.0']}
`, src.Host, dst.Host, dst.CAFile, dst.User, dst.Password))
	res := e2e.Run(t, 2*time.Minute, nil, "", bin, "sync", "--config", cfg, "--log-format", "json")
	if res.Code != 0 {
		t.Fatalf("sync: exit %d\n%s", res.Code, res.Stderr)
	}
	if tags := listTags(t, dst, "mirror/signed"); !slices.Contains(tags, sigTag) || slices.Contains(tags, strings.TrimSuffix(sigTag, ".sig")) {
		t.Fatalf("mirror/signed tags %v: want 1.0 and %s", tags, sigTag)
	}

	// The signature on the target verifies with the key and vouches for
	// the target's digest (the image was copied byte for byte).
	tsig, err := remote.Image(parseRef(t, dst.Ref("mirror/signed:"+sigTag)), remoteOpts(dst)...)
	if err != nil {
		t.Fatal(err)
	}
	if why := imagegen.VerifySignature(tsig, &key.PublicKey, e2e.SkopeoRawDigest(t, dst, "mirror/signed:1.0")); why != "" {
		t.Errorf("target signature: %s", why)
	}
	if tags := listTags(t, dst, "mirror/unsigned"); slices.Contains(tags, sigTag) {
		t.Errorf("mirror/unsigned (no referrers) got the signature too: %v", tags)
	}

	// A second run copies nothing, attachments included.
	res = e2e.Run(t, 2*time.Minute, nil, "", bin, "sync", "--config", cfg, "--log-format", "json")
	if res.Code != 0 || strings.Contains(res.Stderr, `"msg":"copied"`) {
		t.Errorf("second sync: exit %d, copied something:\n%s", res.Code, res.Stderr)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
