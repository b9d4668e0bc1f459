package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInsecureFromSystemFiles(t *testing.T) {
	dir := t.TempDir()
	daemon := filepath.Join(dir, "daemon.json")
	conf := filepath.Join(dir, "registries.conf")
	// As the vendor guide writes it: with the scheme in front.
	write(t, daemon, `{"log-driver": "json-file", "insecure-registries": ["http://reg.appcircle.spacetech.com", "10.20.0.0/16", "Nexus.Local:8443"]}`)
	write(t, conf, `unqualified-search-registries = ["docker.io"]

[[registry]]
location = "podman.example.com:5000/team"
insecure = true

[[registry]]
location = "secure.example.com"

[[registry]]
prefix = "*.lab.example"
location = "mirror.lab.example"
insecure = true

[[registry]]
prefix = "*.wild.example"
insecure = true

[registries.insecure]
registries = ["old.example.com"]
`)
	var in Insecure
	if err := in.LoadSystem(daemon, conf); err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"reg.appcircle.spacetech.com":      true,
		"reg.appcircle.spacetech.com:5000": false, // docker matches host:port exactly
		"10.20.3.4:5000":                   true,
		"10.21.3.4:5000":                   false,
		"nexus.local:8443":                 true,
		"nexus.local":                      false,
		"podman.example.com:5000":          true,
		"secure.example.com":               false,
		"mirror.lab.example":               true,
		"a.lab.example":                    false, // pulled from the location, not marked
		"b.wild.example":                   true,
		"old.example.com":                  true,
		"registry-1.docker.io":             false,
	} {
		if _, got := in.Match(host); got != want {
			t.Errorf("Match(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestInsecureMissingAndBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	var in Insecure
	if err := in.LoadSystem(filepath.Join(dir, "nope.json"), filepath.Join(dir, "nope.conf")); err != nil {
		t.Fatalf("missing files: %v", err)
	}
	bad := filepath.Join(dir, "registries.conf")
	write(t, bad, "[[registry]\nlocation = 1\n")
	err := in.LoadSystem("", bad)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("broken registries.conf: %v (want an error naming the file)", err)
	}
	if err := in.Add("http://", "flag"); err == nil {
		t.Error("an empty host was accepted")
	}
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
