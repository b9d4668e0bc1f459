package filter

import (
	"slices"
	"strings"
	"testing"
)

// FuzzRepoMap checks RepoMap's invariants on any from/to pair that parses:
// a discovering mapping names only listed repositories, each once, and a
// target path is never empty, never starts or ends with "/" and has no
// empty component.
func FuzzRepoMap(f *testing.F) {
	for _, seed := range [][2]string{
		{"regex:team/.*", "mirror"},
		{"regex:jenkins/jnlp-.*", "regex:jenkins/,dh/other-jenkins/"},
		{"regex:myproject/.*", "regex:my(.+)/,from-dh/your$1/"},
		{"team/app", "regex:^/team/(.*),/x/$1"},
		{"/redis", ""},
		{"regex:(?:a|b)", "regex:.*,"},
	} {
		f.Add(seed[0], seed[1])
	}
	listed := strings.Fields("team/app team/app /team/db jenkins/jnlp-agent myproject/webui a b other/x")
	f.Fuzz(func(t *testing.T, from, to string) {
		m, err := ParseRepoMap(from, to)
		if err != nil {
			return
		}
		srcs := m.Sources(listed)
		if m.Discovers() {
			seen := map[string]bool{}
			for _, s := range srcs {
				if seen[s] || !slices.Contains(listed, s) && !slices.Contains(listed, "/"+s) {
					t.Fatalf("Sources named %q (listed %v)", s, listed)
				}
				seen[s] = true
			}
		} else if len(srcs) != 1 {
			t.Fatalf("a plain from names %d repositories", len(srcs))
		}
		for _, s := range srcs {
			dst, err := m.Target(s)
			if err != nil {
				continue
			}
			if dst == "" || strings.HasPrefix(dst, "/") || strings.HasSuffix(dst, "/") || strings.Contains(dst, "//") {
				t.Fatalf("Target(%q) = %q", s, dst)
			}
		}
	})
}
