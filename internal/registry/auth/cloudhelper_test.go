package auth

import "testing"

func TestCloudHelperPerHost(t *testing.T) {
	for host, want := range map[string]string{
		"123456789012.dkr.ecr.eu-central-1.amazonaws.com":   "ecr",
		"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn":  "ecr",
		"123456789012.dkr.ecr-fips.us-east-1.amazonaws.com": "ecr",
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com:443":  "ecr",
		"public.ecr.aws":                     "ecr",
		"europe-west3-docker.pkg.dev":        "google",
		"us-docker.pkg.dev":                  "google",
		"gcr.io":                             "google",
		"eu.gcr.io":                          "google",
		"registry.hub.docker.com":            "",
		"index.docker.io":                    "",
		"ghcr.io":                            "",
		"127.0.0.1:5000":                     "",
		"dkr.ecr.eu-central-1.amazonaws.com": "", // no account
		"123456789012.dkr.ecr.eu-central-1.amazonaws.com.evil": "",
		"pkg.dev":    "",
		"evilgcr.io": "",
	} {
		if got := CloudHelper(host); got != want {
			t.Errorf("CloudHelper(%q) = %q, want %q", host, got, want)
		}
	}
}
