package cli

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/regmirror/regmirror/internal/engine"
	"github.com/regmirror/regmirror/internal/registry"
)

func TestCredentialKey(t *testing.T) {
	for in, want := range map[string][2]string{
		"europe-west1-docker.pkg.dev/appcircle/docker-registry": {"europe-west1-docker.pkg.dev", "europe-west1-docker.pkg.dev"},
		"https://reg.example.com:8443/":                         {"reg.example.com:8443", "reg.example.com:8443"},
		"docker.io":                                             {"index.docker.io", dockerHubKey},
		"registry-1.docker.io":                                  {"index.docker.io", dockerHubKey},
		"127.0.0.1:5000":                                        {"127.0.0.1:5000", "127.0.0.1:5000"},
	} {
		h, k, _ := credentialKey(in)
		if h != want[0] || k != want[1] {
			t.Errorf("credentialKey(%q) = %q, %q; want %q, %q", in, h, k, want[0], want[1])
		}
	}
}

func TestReadPassword(t *testing.T) {
	key := "{\n  \"private_key\": \"-----BEGIN\\nabc\\n-----END\\n\"\n}"
	for in, want := range map[string]string{
		key + "\n":     key, // cat cred.json
		key + "\r\n":   key,
		key:            key,
		"pw\n\n":       "pw\n", // only one newline is the terminator
		"  spaced  \n": "  spaced  ",
	} {
		got, err := readPassword(strings.NewReader(in))
		if err != nil || got != want {
			t.Errorf("readPassword(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "\n", strings.Repeat("x", maxPasswordLen+1)} {
		if _, err := readPassword(strings.NewReader(in)); err == nil || ExitCode(err) != ExitUsage {
			t.Errorf("readPassword(%d bytes) = %v; want a usage error", len(in), err)
		}
	}
}

func TestMarkTasksOnlyMarkedHosts(t *testing.T) {
	t.Setenv("REGMIRROR_DOCKER_DAEMON_JSON", "")
	t.Setenv("REGMIRROR_REGISTRIES_CONF", "")
	g := &globals{insecure: []string{"http://nexus.local:8443", "10.0.0.0/8"}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	in, err := g.insecureRegistries(log)
	if err != nil {
		t.Fatal(err)
	}
	tasks := []engine.Task{
		{Source: registry.Endpoint{Registry: "nexus.local:8443"}, Target: registry.Endpoint{Registry: "nexus.local"}},
		{Source: registry.Endpoint{Registry: "10.1.2.3:5000"}, Target: registry.Endpoint{Registry: "oci:/tmp/x"}},
	}
	markTasks(tasks, in, log)
	got := []bool{tasks[0].Source.SkipTLSVerify, tasks[0].Target.SkipTLSVerify, tasks[1].Source.SkipTLSVerify, tasks[1].Target.SkipTLSVerify}
	want := []bool{true, false, true, false}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("endpoint %d: SkipTLSVerify %v, want %v", i, got[i], want[i])
		}
	}
	if _, err := (&globals{insecure: []string{"http://"}}).insecureRegistries(log); ExitCode(err) != ExitUsage {
		t.Errorf("an empty --insecure-registry: %v, want a usage error", err)
	}
}
