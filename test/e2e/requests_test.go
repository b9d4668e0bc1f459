package e2e_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regmirror/regmirror/internal/testutil/e2e"
	"github.com/regmirror/regmirror/internal/testutil/imagegen"
)

// manyTags pushes n tags of repo shaped like the benchmark's `many`
// workload: two base layers shared by every tag, a config and a layer of
// each tag's own.
func manyTags(t *testing.T, r *e2e.Registry, repo string, n int, own int64) {
	t.Helper()
	bases := []v1.Layer{imagegen.Layer(7, 4096), imagegen.Layer(8, 2048)}
	for i := range n {
		imagegen.Push(t, r.Ref(fmt.Sprintf("%s:v%03d", repo, i)), imagegen.Image(uint64(1000+i), 1, own, bases...), remoteOpts(r)...)
	}
}

func showCounts(m map[string]int) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(out, " ")
}

// TestTargetRequestsPerImage counts what docker-registry, as the target,
// sees for a cold copy of a many-tag repository: its tag list once (the
// copy decision: the target lacks every tag, so no manifest HEAD), per
// image POST and PUT for its config and for its own layer
// (no blob HEAD: the POST asks to mount the blob from the repository
// itself, which answers the same question) and the manifest PUT; the two
// base layers once.
func TestTargetRequestsPerImage(t *testing.T) {
	src, dst := registries(t)
	bin := e2e.BuildRegmirror(t)
	const n = 20
	manyTags(t, src, "many", n, 4096)
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`tasks:
  - name: t
    source: {registry: "http://%s"}
    target: {registry: %s, auth: %s, ca-file: %s}
    mappings: [{from: many, to: mirror/many}]
`, src.Host, dst.Host, authB64(dst.User, dst.Password), dst.CAFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	src.ResetCounts()
	dst.ResetCounts()
	res := e2e.Run(t, 5*time.Minute, nil, "", bin, "sync", "--config", cfg)
	if res.Code != 0 {
		t.Fatalf("sync: exit %d\n%s", res.Code, res.Stderr)
	}
	got := dst.Counts()
	want := map[string]int{"ping": 1, "tags list": 1, "upload": 2*2*n + 2*2, "manifest PUT": n}
	if showCounts(got) != showCounts(want) {
		t.Errorf("the target saw for %d images\n  %s\nwant\n  %s", n, showCounts(got), showCounts(want))
	}
	for _, tag := range []string{"v000", fmt.Sprintf("v%03d", n-1)} {
		if s, d := e2e.SkopeoRawDigest(t, src, "many:"+tag), e2e.SkopeoRawDigest(t, dst, "mirror/many:"+tag); s != d {
			t.Errorf("%s: target %s, source %s", tag, d, s)
		}
	}
}
