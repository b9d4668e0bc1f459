package config

import (
	"errors"
	"strings"
	"testing"
)

func TestPruneKey(t *testing.T) {
	cfg, err := Load(strings.NewReader(task("        prune: true", "      - from: c/d")), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ms := cfg.Tasks[0].Mappings
	if !ms[0].Prune || ms[1].Prune {
		t.Errorf("prune = %v, %v; want true, false (off by default)", ms[0].Prune, ms[1].Prune)
	}
	_, err = Load(strings.NewReader(task("        prune: yes please")), "c.yaml")
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *config.Error", err)
	}
	for _, s := range []string{"c.yaml:9:", `"prune"`, "true or false"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	_, err = Load(strings.NewReader(task("        prun: true")), "c.yaml")
	if err == nil || !strings.Contains(err.Error(), `did you mean "prune"`) {
		t.Errorf("typo: err = %v, want a suggestion of \"prune\"", err)
	}
}
