package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SkopeoBinary is the name of the skopeo command.
const SkopeoBinary = "skopeo"

// skopeoTimeout bounds every skopeo call.
const skopeoTimeout = 2 * time.Minute

// SkopeoRawDigest returns the digest of the manifest stored under ref as
// skopeo fetches it: sha256 of the bytes of `skopeo inspect --raw` (for a
// multi-arch image that is the index / manifest list digest). ref is either
// relative to r ("repo:tag", "repo@sha256:...") or already starts with
// r.Host or r.BackendHost. Credentials travel in a temporary --authfile,
// never in argv.
func SkopeoRawDigest(t testing.TB, r *Registry, ref string) string {
	t.Helper()
	res := skopeo(t, append([]string{"inspect", "--raw"},
		append(skopeoSideArgs(t, r, ""), "docker://"+qualify(r, ref))...)...)
	sum := sha256.Sum256([]byte(res.Stdout))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// SkopeoDigest returns what `skopeo inspect --format '{{.Digest}}'` reports
// for ref (see SkopeoRawDigest for ref's form). skopeo 1.9 reports the digest
// of the top-level manifest (the index for a multi-arch image) but also
// resolves the instance for the running platform and fails when there is
// none (e.g. for random.Index, whose entries name no platform), so tests
// use SkopeoRawDigest for "the digest of the tag".
func SkopeoDigest(t testing.TB, r *Registry, ref string) string {
	t.Helper()
	res := skopeo(t, append([]string{"inspect", "--format", "{{.Digest}}"},
		append(skopeoSideArgs(t, r, ""), "docker://"+qualify(r, ref))...)...)
	return strings.TrimSpace(res.Stdout)
}

// SkopeoCopy runs `skopeo copy --all --preserve-digests` from src to dst,
// e.g. to seed a registry. When srcReg (dstReg) is non-nil, src (dst) is a
// reference in that registry as for SkopeoRawDigest and is given the
// docker:// transport together with that registry's cert dir or
// --tls-verify=false and a temporary auth file; when nil, the reference is
// passed to skopeo verbatim and must carry its transport (e.g.
// "oci:/path/to/layout:tag").
func SkopeoCopy(t testing.TB, src, dst string, srcReg, dstReg *Registry) {
	t.Helper()
	args := []string{"copy", "--all", "--preserve-digests", "--retry-times", "0"}
	if srcReg != nil {
		args = append(args, skopeoSideArgs(t, srcReg, "src-")...)
		src = "docker://" + qualify(srcReg, src)
	}
	if dstReg != nil {
		args = append(args, skopeoSideArgs(t, dstReg, "dest-")...)
		dst = "docker://" + qualify(dstReg, dst)
	}
	skopeo(t, append(args, src, dst)...)
}

// skopeo runs skopeo with a policy that accepts everything and fails the
// test on a non-zero exit.
func skopeo(t testing.TB, args ...string) Result {
	t.Helper()
	bin := RequireBinary(t, SkopeoBinary)
	full := append([]string{"--insecure-policy", "--command-timeout", skopeoTimeout.String()}, args...)
	res := Run(t, skopeoTimeout+10*time.Second, nil, "", bin, full...)
	if res.Code != 0 {
		t.Fatalf("e2e: skopeo %s: exit %d\nstderr:\n%s", strings.Join(args, " "), res.Code, tail(res.Stderr, 4<<10))
	}
	return res
}

// skopeoSideArgs returns the TLS and auth flags for talking to r, each flag
// prefixed with prefix ("", "src-" or "dest-"). The auth file is always
// given, empty without credentials, so that ambient credentials never leak
// in.
func skopeoSideArgs(t testing.TB, r *Registry, prefix string) []string {
	t.Helper()
	var args []string
	if r.CertsDir != "" {
		args = append(args, "--"+prefix+"tls-verify=true", "--"+prefix+"cert-dir", filepath.Join(r.CertsDir, r.Host))
	} else {
		args = append(args, "--"+prefix+"tls-verify=false")
	}
	return append(args, "--"+prefix+"authfile", authFile(t, r))
}

// authFile writes a containers-auth.json with r's credentials (for Host and
// BackendHost) into a fresh temporary directory and returns its path.
func authFile(t testing.TB, r *Registry) string {
	t.Helper()
	type entry struct {
		Auth string `json:"auth"`
	}
	auths := map[string]entry{}
	if r.User != "" {
		e := entry{Auth: base64.StdEncoding.EncodeToString([]byte(r.User + ":" + r.Password))}
		auths[r.Host] = e
		auths[r.BackendHost] = e
	}
	data, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	p := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatalf("e2e: %v", err)
	}
	return p
}

// qualify prefixes ref with r.Host unless it already names r.
func qualify(r *Registry, ref string) string {
	if strings.HasPrefix(ref, r.Host+"/") || strings.HasPrefix(ref, r.BackendHost+"/") {
		return ref
	}
	return r.Host + "/" + ref
}
