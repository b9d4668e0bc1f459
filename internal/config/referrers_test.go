package config

import (
	"errors"
	"strings"
	"testing"
)

func TestReferrersKey(t *testing.T) {
	cfg, err := Load(strings.NewReader(task("        referrers: true", "      - from: c/d")), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ms := cfg.Tasks[0].Mappings
	if !ms[0].Referrers || ms[1].Referrers {
		t.Errorf("referrers = %v, %v; want true, false (off by default)", ms[0].Referrers, ms[1].Referrers)
	}

	// Line 9 is the first line after "- from: a/b".
	_, err = Load(strings.NewReader(task("        referrers: sometimes")), "c.yaml")
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *config.Error", err)
	}
	for _, s := range []string{"c.yaml:9:", `"referrers"`, "true or false", `"sometimes"`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	_, err = Load(strings.NewReader(task("        referrer: true")), "c.yaml")
	if err == nil || !strings.Contains(err.Error(), `did you mean "referrers"`) {
		t.Errorf("typo: err = %v, want a suggestion of \"referrers\"", err)
	}
}
