package e2e_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regmirror/regmirror/internal/testutil/e2e"
)

// TestThreeShardsEqualOneSync runs one task that discovers 12 repositories
// of a TLS + htpasswd docker-registry as 3 concurrent processes (sync
// --shard i/3), and the same task unsharded into a second target. Both
// targets must then hold the same repositories, tags and digests (stale
// tags pruned in both), each repository copied by exactly one shard, and
// every shard having copied some.
func TestThreeShardsEqualOneSync(t *testing.T) {
	e2e.RequireBinary(t, e2e.RegistryBinary)
	src := e2e.StartRegistry(t, e2e.Options{Count: true, TLS: true, User: "vendor", Password: "sh4rd pw"})
	sharded := e2e.StartRegistry(t, e2e.Options{})
	whole := e2e.StartRegistry(t, e2e.Options{})
	bin := e2e.BuildRegmirror(t)
	const repos = 12
	for i := range repos {
		push(t, src, fmt.Sprintf("vendor/app-%02d", i), uint64(60+i), []string{"1", "2"})
	}
	// A tag the source never had, in both targets: prune removes it.
	for _, dst := range []*e2e.Registry{sharded, whole} {
		push(t, dst, "mirror/vendor/app-03", 99, []string{"stale"})
		push(t, dst, "mirror/vendor/app-07", 98, []string{"stale"})
	}
	config := func(dst *e2e.Registry) string {
		p := filepath.Join(t.TempDir(), "shards.yaml")
		os.WriteFile(p, []byte(fmt.Sprintf(`lister:
  maxItems: -1
tasks:
  - name: vendor
    source:
      registry: %s
      username: ${SRC_USER}
      password: ${SRC_PASS}
      ca-file: %s
    target:
      registry: http://%s
    mappings:
      - from: regex:vendor/.*
        to: mirror
        prune: true
`, src.Host, src.CAFile, dst.Host)), 0o600)
		return p
	}
	env := []string{"SRC_USER=" + src.User, "SRC_PASS=" + src.Password}

	cfg := config(sharded)
	results := make([]e2e.Result, 3)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e2e.Run(t, 2*time.Minute, env, "", bin, "sync", "--config", cfg, "--shard", fmt.Sprintf("%d/3", i), "--log-format", "json")
		}()
	}
	wg.Wait()
	copiedBy := map[string]int{}
	for i, res := range results {
		if res.Code != 0 {
			t.Fatalf("shard %d/3: exit %d\n%s", i, res.Code, res.Stderr)
		}
		n := 0
		for _, line := range strings.Split(res.Stderr, "\n") {
			if !strings.Contains(line, `"msg":"copied"`) {
				continue
			}
			n++
			_, target, _ := strings.Cut(line, `"target":"`)
			target, _, _ = strings.Cut(target, `"`)
			if prev, ok := copiedBy[target]; ok {
				t.Errorf("%s copied by shards %d and %d", target, prev, i)
			}
			copiedBy[target] = i
		}
		if n == 0 {
			t.Errorf("shard %d/3 copied nothing: the split is not a split\n%s", i, res.Stderr)
		}
		// Discovery is not sharded: every shard lists the catalog.
		if !strings.Contains(res.Stderr, `"msg":"discovered repositories"`) || !strings.Contains(res.Stderr, `"owned":`) {
			t.Errorf("shard %d/3 does not log its discovery and share:\n%s", i, res.Stderr)
		}
	}
	if len(copiedBy) != 2*repos {
		t.Errorf("%d images copied by the shards together, want %d: %v", len(copiedBy), 2*repos, slices.Sorted(maps.Keys(copiedBy)))
	}

	if res := e2e.Run(t, 2*time.Minute, env, "", bin, "sync", "--config", config(whole), "--log-format", "json"); res.Code != 0 {
		t.Fatalf("unsharded sync: exit %d\n%s", res.Code, res.Stderr)
	}
	got, want := snapshot(t, sharded), snapshot(t, whole)
	if len(want) != 2*repos {
		t.Fatalf("the unsharded target holds %d tags, want %d: %v", len(want), 2*repos, want)
	}
	if !maps.Equal(got, want) {
		t.Errorf("3 shards left the target\n%v\nan unsharded sync\n%v", got, want)
	}
}

// snapshot maps every repository:tag of a registry to its digest.
func snapshot(t *testing.T, r *e2e.Registry) map[string]string {
	t.Helper()
	reg, err := name.NewRegistry(r.Host)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := remote.Catalog(t.Context(), reg, remoteOpts(r)...)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, repo := range repos {
		for _, tag := range listTags(t, r, repo) {
			ref, err := name.ParseReference(r.Ref(repo + ":" + tag))
			if err != nil {
				t.Fatal(err)
			}
			d, err := remote.Head(ref, remoteOpts(r)...)
			if err != nil {
				t.Fatalf("%s: %v", ref, err)
			}
			out[repo+":"+tag] = d.Digest.String()
		}
	}
	return out
}
