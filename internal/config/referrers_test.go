package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/regmirror/regmirror/internal/registry/auth"
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

// TestAuthRefreshWhereverTheECRHelperIsUsed: every host the registry
// package hands to the ECR credential helper takes auth-refresh, and hosts
// it does not are refused as before.
func TestAuthRefreshWhereverTheECRHelperIsUsed(t *testing.T) {
	for _, host := range []string{
		"123456789012.dkr.ecr.eu-central-1.amazonaws.com",
		"123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
		"123456789012.dkr-ecr.eu-west-1.on.aws",
		"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
		"123456789012.dkr.ecr.us-gov-west-1.amazonaws.com:443",
		"public.ecr.aws",
		"ghcr.io",
		"europe-west3-docker.pkg.dev",
		"dkr.ecr.eu-central-1.amazonaws.com",
	} {
		ecr := auth.CloudHelper(host) == "ecr"
		_, err := Load(strings.NewReader(y(
			"tasks:",
			"  - name: t",
			"    source: {registry: src.example.com}",
			"    target: {registry: '"+host+"', auth-refresh: 10h}",
			"    mappings: [{from: a/b}]",
		)), "c.yaml")
		if ecr && err != nil {
			t.Errorf("%s uses the ECR helper but auth-refresh is refused: %v", host, err)
		}
		if !ecr && host != "public.ecr.aws" && err == nil {
			t.Errorf("%s: auth-refresh accepted on a registry that is not ECR", host)
		}
	}
}
