package cli

import (
	"strings"
	"testing"

	"github.com/regmirror/regmirror/internal/config"
)

// import --config sends each bundle image where the mapping that exported
// it sends its source: plain, Docker Hub short names and discovered
// (regex:) repositories alike.
func TestConfigRoutes(t *testing.T) {
	cfg, err := config.Load(strings.NewReader(`tasks:
  - name: hub
    source:
      registry: registry.hub.docker.com
    target:
      registry: mirror.example:5000
    mappings:
      - from: redis
        to: cache/redis
  - name: quay
    source:
      registry: quay.example
    target:
      registry: mirror.example:5000
    mappings:
      - from: regex:team/.*
        to: q
      - from: other/app
`), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes := configRoutes(cfg.Tasks, cfg.File)
	for repo, want := range map[string]string{
		"docker.io/library/redis":  "hub mirror.example:5000 cache/redis",
		"quay.example/team/a":      "quay mirror.example:5000 q/team/a",
		"quay.example/other/app":   "quay mirror.example:5000 other/app",
		"quay.example/team":        "",
		"docker.io/library/debian": "",
	} {
		rs, err := routes(repo)
		if want == "" {
			if err == nil || !strings.Contains(err.Error(), "no task in c.yaml maps "+repo) {
				t.Errorf("%s: routes %v, err %v; want an error naming it", repo, rs, err)
			}
			continue
		}
		if err != nil || len(rs) != 1 {
			t.Errorf("%s: routes %v, err %v", repo, rs, err)
			continue
		}
		if got := rs[0].Task + " " + rs[0].Target.Registry + " " + rs[0].To; got != want {
			t.Errorf("%s: route %q, want %q", repo, got, want)
		}
	}
}

func TestParseTo(t *testing.T) {
	for in, want := range map[string]string{
		"reg:5000":              "reg:5000 false ",
		"http://reg:5000/a/b/":  "reg:5000 true a/b",
		"https://reg.example/m": "reg.example false m",
	} {
		ep, prefix, err := parseTo(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got := ep.Registry + " " + map[bool]string{true: "true", false: "false"}[ep.PlainHTTP] + " " + prefix; got != want {
			t.Errorf("parseTo(%q) = %q, want %q", in, got, want)
		}
	}
	if _, _, err := parseTo("docker://x"); err == nil {
		t.Error("docker:// accepted")
	}
	if got := repoPath("127.0.0.1:5000/a/b"); got != "a/b" {
		t.Errorf("repoPath = %s", got)
	}
	if got := repoPath("a/b"); got != "a/b" {
		t.Errorf("repoPath of a layout name = %s", got)
	}
}
