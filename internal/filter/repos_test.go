package filter

import (
	"strings"
	"testing"
)

func TestRepoMap(t *testing.T) {
	catalog := strings.Fields("team/app team/app-debug team/lib other/app teams/x jenkins/jnlp-agent jenkins/jnlp-slave jenkins/master myproject/webui")
	tests := []struct {
		name     string
		from, to string
		listed   []string
		discover bool
		want     string // "src=>dst" pairs, space separated
	}{
		// Plain mappings: no listing, to defaults to from.
		{"plain", "team/app", "", nil, false, "team/app=>team/app"},
		{"plain with to", "team/app", "mirror/app", catalog, false, "team/app=>mirror/app"},
		{"plain leading slashes dropped", "/team/app", "/mirror/app", nil, false, "team/app=>mirror/app"},
		{"plain from, regex to", "team/app", "regex:team/,mirror/", nil, false, "team/app=>mirror/app"},

		// Discovery: full match, in listed order.
		{"regex keeps paths", "regex:team/.*", "", catalog, true, "team/app=>team/app team/app-debug=>team/app-debug team/lib=>team/lib"},
		{"regex is anchored", "regex:team/app", "", catalog, true, "team/app=>team/app"},
		{"regex anchors not doubled", "regex:^team/app.*$", "", catalog, true, "team/app=>team/app team/app-debug=>team/app-debug"},
		{"regex matches names, not substrings", "regex:app", "", catalog, true, ""},
		{"regex spaces trimmed", "regex:  team/lib ", "", catalog, true, "team/lib=>team/lib"},
		{"regex duplicates listed once", "regex:team/lib", "", []string{"team/lib", "/team/lib"}, true, "team/lib=>team/lib"},
		// dregsy: a plain to is a prefix for discovered paths.
		{"regex with prefix", "regex:jenkins/jnlp-.*", "dh", catalog, true, "jenkins/jnlp-agent=>dh/jenkins/jnlp-agent jenkins/jnlp-slave=>dh/jenkins/jnlp-slave"},
		{"regex with nested prefix", "regex:team/lib", "/ecr/mirror", catalog, true, "team/lib=>ecr/mirror/team/lib"},
		// dregsy's documented examples of to: regex:.
		{"dregsy index example", "regex:jenkins/jnlp-.*", "regex:jenkins/,dh/other-jenkins/", catalog, true,
			"jenkins/jnlp-agent=>dh/other-jenkins/jnlp-agent jenkins/jnlp-slave=>dh/other-jenkins/jnlp-slave"},
		{"dregsy design example", "regex:myproject/.*", "regex:my(.+)/,from-dh/your$1/", catalog, true, "myproject/webui=>from-dh/yourproject/webui"},
		// The rewritten path starts with "/" as in dregsy.
		{"to regex sees leading slash", "regex:team/.*", "regex:^/team/(.*),/mirror/$1", catalog, true,
			"team/app=>mirror/app team/app-debug=>mirror/app-debug team/lib=>mirror/lib"},
		{"to regex not matching keeps path", "regex:other/.*", "regex:^team/,x/", catalog, true, "other/app=>other/app"},
		{"no match", "regex:nothing/.*", "", catalog, true, ""},
		{"empty catalog", "regex:.*", "", nil, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseRepoMap(tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			if m.Discovers() != tc.discover {
				t.Errorf("Discovers() = %v, want %v", m.Discovers(), tc.discover)
			}
			var got []string
			for _, src := range m.Sources(tc.listed) {
				dst, err := m.Target(src)
				if err != nil {
					t.Fatalf("Target(%q): %v", src, err)
				}
				got = append(got, src+"=>"+dst)
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("got  %q\nwant %q", g, tc.want)
			}
		})
	}
}

func TestRepoMapErrors(t *testing.T) {
	tests := []struct {
		from, to, want string
	}{
		{"regex:", "", "empty regular expression"},
		{"regex:  ", "", "empty regular expression"},
		{"regex:(", "", "error parsing regexp"},
		{"regex:!team/.*", "", "cannot be negated"},
		{"", "", "empty repository path"},
		{"/", "", "empty repository path"},
		{"a", "regex:a", "replacement missing"},
		{"a", "regex:,b", "empty regular expression"},
		{"a", "regex:(,b", "error parsing regexp"},
	}
	for _, tc := range tests {
		_, err := ParseRepoMap(tc.from, tc.to)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseRepoMap(%q, %q) = %v, want an error containing %q", tc.from, tc.to, err, tc.want)
		}
	}
}

func TestRepoMapBadTarget(t *testing.T) {
	for _, to := range []string{"regex:.*,", "regex:app,/", "regex:/,//"} {
		m, err := ParseRepoMap("regex:team/.*", to)
		if err != nil {
			t.Fatal(err)
		}
		if dst, err := m.Target("team/app"); err == nil {
			t.Errorf("to %q: Target = %q, want an error", to, dst)
		}
	}
}
