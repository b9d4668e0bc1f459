package config

import (
	"slices"
	"strings"
	"testing"
)

func TestPlatformsKey(t *testing.T) {
	doc := `tasks:
  - name: t
    platforms: [linux/amd64, linux/arm64/v8]
    source: {registry: src.example.com}
    target: {registry: dst.example.com}
    mappings:
      - from: inherits
      - from: own
        platforms: [linux/s390x, linux/arm/v7]
        platforms-missing: skip
      - from: one
        platform: linux/amd64
`
	cfg, err := Load(strings.NewReader(doc), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ms := cfg.Tasks[0].Mappings
	for i, want := range [][]string{{"linux/amd64", "linux/arm64/v8"}, {"linux/s390x", "linux/arm/v7"}, nil} {
		if !slices.Equal(ms[i].Platforms, want) {
			t.Errorf("mapping %s: platforms %v, want %v (in the order written)", ms[i].From, ms[i].Platforms, want)
		}
	}
	if ms[0].PlatformsMissing != "" || ms[1].PlatformsMissing != "skip" {
		t.Errorf("platforms-missing %q, %q; want \"\" (fail), skip", ms[0].PlatformsMissing, ms[1].PlatformsMissing)
	}
	if ms[2].Platform == nil || ms[2].Platform.String() != "linux/amd64" {
		t.Errorf("a mapping's platform: keeps it out of the task's platforms: %+v", ms[2])
	}
}

func TestPlatformsErrors(t *testing.T) {
	for _, c := range []struct {
		extra []string
		want  []string
	}{
		{[]string{"        platform: linux/amd64", "        platforms: [linux/arm64]"}, []string{"c.yaml:10:", "platform and platforms cannot both be set"}},
		{[]string{"        platforms: []"}, []string{"c.yaml:9:", "platforms is empty"}},
		{[]string{"        platforms: linux/amd64"}, []string{"c.yaml:9:", "must be a list"}},
		{[]string{"        platforms:", "          - linux/amd64", "          - linux"}, []string{"c.yaml:11:", `platforms[1] "linux"`, "want os/arch[/variant]"}},
		{[]string{"        platforms:", "          - all"}, []string{"c.yaml:10:", `"all" is not a platform`}},
		{[]string{"        platforms:", "          - linux/amd64", "          - linux/amd64"}, []string{"c.yaml:11:", "already listed as platforms[0]"}},
		{[]string{"        platforms: [linux/amd64]", "        platforms-missing: ignore"}, []string{"c.yaml:10:", `platforms-missing "ignore"`, "fail", "skip"}},
		{[]string{"        platforms-missing: skip"}, []string{"c.yaml:9:", "platforms-missing goes with platforms", "every platform"}},
		{[]string{"        platform: linux/amd64", "        platforms-missing: skip"}, []string{"c.yaml:10:", "platforms-missing goes with platforms", "one platform"}},
		{[]string{"        platfroms: [linux/amd64]"}, []string{"c.yaml:9:", `did you mean "platforms"`}},
	} {
		wantLoadError(t, c.extra, c.want...)
	}
	// At task level too.
	doc := "tasks:\n  - name: t\n    platforms-missing: skip\n    source: {registry: a.example.com}\n    target: {registry: b.example.com}\n    mappings: [{from: a/b}]\n"
	if _, err := Load(strings.NewReader(doc), "c.yaml"); err == nil || !strings.Contains(err.Error(), "c.yaml:3:") || !strings.Contains(err.Error(), "set the task's platforms too") {
		t.Errorf("task platforms-missing without platforms: %v", err)
	}
}

// wantLoadError loads the test task with extra lines and wants an error
// holding every one of want.
func wantLoadError(t *testing.T, extra []string, want ...string) {
	t.Helper()
	_, err := Load(strings.NewReader(task(extra...)), "c.yaml")
	if err == nil {
		t.Errorf("%q: loaded, want an error", extra)
		return
	}
	for _, s := range want {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q: error %q lacks %q", extra, err, s)
		}
	}
}
