package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/testutil/e2e"
)

// plan, check and prune of the built binary against docker-registry: the
// plan sends no GET and writes nothing, check fails until the target is
// current and again when a tag differs, and prune deletes the tag the
// source dropped while leaving a hand-pushed tag alone.
func TestPlanCheckPrune(t *testing.T) {
	src, dst := registries(t)
	bin := e2e.BuildRegmirror(t)
	push(t, src, "a/app", 1, []string{"1.0", "1.1", "2.0"})
	push(t, dst, "m/app", 9, []string{"custom"}) // not the mapping's: never pruned

	cfg := filepath.Join(t.TempDir(), "ops.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`tasks:
  - name: ops
    source: {registry: "http://%s"}
    target: {registry: %s, username: "${DST_USER}", password: "${DST_PASS}", ca-file: %s}
    mappings:
      - from: a/app
        to: m/app
        tags: ['semver: >=1.0.0']
        prune: true
`, src.Host, dst.Host, dst.CAFile)), 0o600)
	env := []string{"DST_USER=" + dst.User, "DST_PASS=" + dst.Password}
	regm := func(args ...string) e2e.Result {
		return e2e.Run(t, 2*time.Minute, env, "", bin, append(args, "--config", cfg, "--platform-cache", "")...)
	}

	src.ResetCounts()
	dst.ResetCounts()
	res := regm("plan", "--output", "json")
	if res.Code != 0 {
		t.Fatalf("plan: exit %d\n%s", res.Code, res.Stderr)
	}
	var doc struct {
		Totals struct{ Copy, Skip, Prune int } `json:"totals"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &doc); err != nil || doc.Totals.Copy != 3 || doc.Totals.Prune != 0 {
		t.Errorf("plan: %+v (%v)\n%s", doc, err, res.Stdout)
	}
	for _, r := range []*e2e.Registry{src, dst} {
		c := r.Counts()
		if r.GETs() != 0 || c["manifest PUT"]+c["upload"]+c["manifest DELETE"] != 0 {
			t.Errorf("plan sent more than HEADs and tag lists: %v", r.Requests())
		}
	}

	if res = regm("check"); res.Code != 1 || !strings.Contains(res.Stdout, "3 missing") {
		t.Errorf("check before sync: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if res = regm("sync"); res.Code != 0 {
		t.Fatalf("sync: exit %d\n%s", res.Code, res.Stderr)
	}
	if res = regm("check"); res.Code != 0 || !strings.Contains(res.Stdout, "check: in sync: 3 images") {
		t.Errorf("check after sync: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}

	// 1.1 is re-pushed with other content at the source: check sees it.
	push(t, src, "a/app", 5, []string{"1.1"})
	if res = regm("check"); res.Code != 1 || !strings.Contains(res.Stdout, "differs     "+dst.Host+"/m/app:1.1") {
		t.Errorf("check after a source change: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}

	// 1.0 is deleted at the source: plan shows the prune, sync does it.
	d := e2e.SkopeoRawDigest(t, src, "a/app:1.0")
	ref := parseRef(t, src.Ref("a/app@"+d))
	if err := remote.Delete(ref, remoteOpts(src)...); err != nil {
		t.Fatal(err)
	}
	dst.ResetCounts()
	if res = regm("plan"); res.Code != 0 || !strings.Contains(res.Stdout, "prune   "+dst.Host+"/m/app:1.0") {
		t.Errorf("plan after a source delete: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if n := dst.Counts()["manifest DELETE"]; n != 0 {
		t.Errorf("plan deleted %d manifests", n)
	}
	if res = regm("sync"); res.Code != 0 || !strings.Contains(res.Stderr, "msg=pruned") {
		t.Fatalf("sync with prune: exit %d\n%s", res.Code, res.Stderr)
	}
	if got, want := listTags(t, dst, "m/app"), []string{"1.1", "2.0", "custom"}; !slices.Equal(got, want) {
		t.Errorf("target tags after prune %v, want %v", got, want)
	}
	if n := dst.Counts()["manifest DELETE"]; n != 1 {
		t.Errorf("%d manifest DELETEs, want 1", n)
	}
	if res = regm("check"); res.Code != 0 {
		t.Errorf("check after prune: exit %d\n%s", res.Code, res.Stdout)
	}
}

func parseRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
