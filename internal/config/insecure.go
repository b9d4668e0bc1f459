package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
)

// Where docker and podman keep their lists of insecure registries. The
// environment variables override the paths (tests point them elsewhere;
// an empty value turns the file off).
const (
	DockerDaemonJSON     = "/etc/docker/daemon.json"
	ContainersRegistries = "/etc/containers/registries.conf"
	EnvDockerDaemonJSON  = "REGMIRROR_DOCKER_DAEMON_JSON"
	EnvRegistriesConf    = "REGMIRROR_REGISTRIES_CONF"
)

// Insecure is the set of registries the user marked as allowed to use
// plain HTTP or unverified TLS: by --insecure-registry, by docker's
// daemon.json "insecure-registries", or by a registries.conf
// [[registry]] with insecure = true. It is an explicit mark per host;
// nothing else is ever downgraded.
type Insecure struct {
	hosts    map[string]string // lower-case host[:port] -> where it was marked
	wildcard []string          // "*.example.com" from registries.conf, as ".example.com"
	nets     []*net.IPNet      // CIDRs from daemon.json
}

// Add marks host (written as "host[:port]", optionally with http:// or
// https:// in front as the vendors' guides write it) or, for daemon.json,
// a CIDR. origin says where the mark came from.
func (in *Insecure) Add(entry, origin string) error {
	e := strings.TrimSpace(entry)
	low := strings.ToLower(e)
	for _, scheme := range []string{"http://", "https://"} {
		if strings.HasPrefix(low, scheme) {
			e = e[len(scheme):]
			low = low[len(scheme):]
		}
	}
	low = strings.TrimSuffix(low, "/")
	if low == "" || strings.ContainsAny(low, " \t\"'") || strings.Contains(low, "://") {
		return fmt.Errorf("insecure registry %q: want HOST[:PORT]", entry)
	}
	if _, n, err := net.ParseCIDR(low); err == nil {
		in.nets = append(in.nets, n)
		return nil
	}
	if rest, ok := strings.CutPrefix(low, "*."); ok {
		in.wildcard = append(in.wildcard, "."+rest)
		return nil
	}
	if in.hosts == nil {
		in.hosts = map[string]string{}
	}
	if _, ok := in.hosts[low]; !ok {
		in.hosts[low] = origin
	}
	return nil
}

// Match reports whether host ("host[:port]") is marked insecure, and by
// what.
func (in *Insecure) Match(host string) (string, bool) {
	if in == nil {
		return "", false
	}
	h := strings.ToLower(host)
	if o, ok := in.hosts[h]; ok {
		return o, true
	}
	name := h
	if hn, _, err := net.SplitHostPort(h); err == nil {
		name = hn
	}
	for _, w := range in.wildcard {
		if strings.HasSuffix(name, w) {
			return "registries.conf", true
		}
	}
	if ip := net.ParseIP(name); ip != nil {
		for _, n := range in.nets {
			if n.Contains(ip) {
				return "daemon.json", true
			}
		}
	}
	return "", false
}

// SystemPaths returns the daemon.json and registries.conf paths to read:
// the defaults, or what the environment says.
func SystemPaths() (daemonJSON, registriesConf string) {
	daemonJSON, registriesConf = DockerDaemonJSON, ContainersRegistries
	if v, ok := os.LookupEnv(EnvDockerDaemonJSON); ok {
		daemonJSON = v
	}
	if v, ok := os.LookupEnv(EnvRegistriesConf); ok {
		registriesConf = v
	}
	return daemonJSON, registriesConf
}

// LoadSystem adds the insecure registries of docker's daemon.json
// and containers' registries.conf (either path may be "" to skip it). A
// missing file is not an error: most machines have only one of them.
func (in *Insecure) LoadSystem(daemonJSON, registriesConf string) error {
	var errs []error
	if daemonJSON != "" {
		errs = append(errs, in.loadDaemonJSON(daemonJSON))
	}
	if registriesConf != "" {
		errs = append(errs, in.loadRegistriesConf(registriesConf))
	}
	return errors.Join(errs...)
}

func readOptional(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func (in *Insecure) loadDaemonJSON(path string) error {
	b, err := readOptional(path)
	if err != nil || b == nil {
		return err
	}
	var d struct {
		Insecure []string `json:"insecure-registries"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, e := range d.Insecure {
		if err := in.Add(e, path); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}

// registriesConf is the part of containers-registries.conf(5) that matters
// here: version 2 [[registry]] tables and the version 1
// [registries.insecure] list.
type registriesConf struct {
	Registry []struct {
		Location string `toml:"location"`
		Prefix   string `toml:"prefix"`
		Insecure bool   `toml:"insecure"`
	} `toml:"registry"`
	Registries struct {
		Insecure struct {
			Registries []string `toml:"registries"`
		} `toml:"insecure"`
	} `toml:"registries"`
}

func (in *Insecure) loadRegistriesConf(path string) error {
	b, err := readOptional(path)
	if err != nil || b == nil {
		return err
	}
	var c registriesConf
	if _, err := toml.Decode(string(b), &c); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, r := range c.Registry {
		if !r.Insecure {
			continue
		}
		loc := r.Location
		if loc == "" {
			loc = r.Prefix
		}
		// The mark is per host: a location with a namespace path
		// ("reg.example.com/team") marks its host.
		host, _, _ := strings.Cut(loc, "/")
		if err := in.Add(host, path); err != nil {
			return fmt.Errorf("%s: [[registry]] location %q: %w", path, loc, err)
		}
	}
	for _, e := range c.Registries.Insecure.Registries {
		if err := in.Add(e, path); err != nil {
			return fmt.Errorf("%s: [registries.insecure]: %w", path, err)
		}
	}
	return nil
}
