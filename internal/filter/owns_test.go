package filter

import "testing"

func TestOwns(t *testing.T) {
	for _, c := range []struct {
		specs []string
		tag   string
		want  bool
	}{
		{nil, "anything", true},
		{[]string{"keep: !.*-rc.*"}, "1.0-rc1", false},
		{[]string{"keep: !.*-rc.*"}, "1.0", true},
		{[]string{"latest", "1.2"}, "1.2", true},
		{[]string{"latest", "1.2"}, "1.3", false},
		{[]string{"semver: >=1.0.0", "keep: latest 2"}, "1.0.0", true}, // out of the window, still owned
		{[]string{"semver: >=1.0.0", "keep: latest 2"}, "0.9.0", false},
		{[]string{"semver: >=1.0.0"}, "custom-build", false},
		{[]string{"regex: v1\\..*", "keep: !.*-debug"}, "v1.2", true},
		{[]string{"regex: v1\\..*", "keep: !.*-debug"}, "v1.2-debug", false},
		{[]string{"regex: v1\\..*"}, "v2.0", false},
	} {
		tags, err := ParseTags(c.specs)
		if err != nil {
			t.Fatal(err)
		}
		if got := tags.Owns(c.tag); got != c.want {
			t.Errorf("%q Owns(%q) = %v, want %v", c.specs, c.tag, got, c.want)
		}
	}
}
