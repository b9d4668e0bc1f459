package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/regmirror/regmirror/internal/registry"
	"github.com/regmirror/regmirror/internal/registry/remote"
)

// dockerHubKey is where docker keeps Docker Hub's credentials.
const dockerHubKey = "https://index.docker.io/v1/"

// maxPasswordLen bounds what --password-stdin reads: a service-account key
// is a few KiB; a megabyte is a mistake (the wrong file piped in).
const maxPasswordLen = 1 << 20

func newLoginCmd(g *globals) *cobra.Command {
	var (
		user     string
		stdin    bool
		password string
	)
	cmd := &cobra.Command{
		Use:   "login REGISTRY -u USER [--password-stdin]",
		Short: "Check credentials against a registry and store them in docker's config.json",
		Long: `login checks USER and its password against REGISTRY (as 'docker login' does: a ping, the token or basic-auth
challenge, then GET /v2/ with the credentials) and, when the registry
accepts them, stores them in docker's config.json – $DOCKER_CONFIG/config.json,
else ~/.docker/config.json, created 0600 – or in the credential helper
that file names. 'regmirror sync' and 'regmirror mirror-list' then find
them, and so do docker, skopeo and crane.

The password is never taken from an argument (arguments show in ps and in
shell history): on a terminal login asks for it ("Password: ", not
echoed); with --password-stdin it is read from standard input, less one
final newline (as docker does), so a multi-line JSON key survives
unchanged. A REGISTRY written with a path or a scheme is stored under its
host, as docker does; http://REGISTRY checks the login over plain HTTP. A rejected login changes nothing and exits 1.`,
		Example: `  # Google Artifact Registry with a service-account key (the vendor guide's first step)
  cat cred.json | regmirror login -u _json_key --password-stdin europe-west1-docker.pkg.dev

  # a registry of your own
  printf '%s' "$REG_PASSWORD" | regmirror login -u mirror --password-stdin reg.example.com`,
		Args: positional("REGISTRY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger("text")
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("password") {
				return usageErr("--password is not accepted: a password in the arguments shows in ps and shell history; pipe it to --password-stdin")
			}
			if user == "" {
				return usageErr("--username (-u) is required")
			}
			var pw string
			if stdin {
				pw, err = readPassword(g.stdin)
			} else {
				pw, err = promptPassword(g.stdin, g.stderr)
			}
			if err != nil {
				return err
			}
			host, key, plainHTTP := credentialKey(args[0])
			insecure, err := g.insecureRegistries(log)
			if err != nil {
				return err
			}
			// Load first: a config.json we could not write back is
			// found before the registry is asked.
			cf, err := dockerconfig.Load(dockerConfigDir())
			if err != nil {
				return fmt.Errorf("reading docker config: %w", err)
			}
			ep := markInsecure(registry.Endpoint{Registry: host, PlainHTTP: plainHTTP, Username: user, Password: pw}, insecure, log)
			if err := remote.CheckLogin(cmd.Context(), ep, registry.Options{Hosts: newHosts(log)}); err != nil {
				if errors.Is(err, remote.ErrLoginRejected) {
					return fmt.Errorf("login to %s failed: the registry rejected user %q: %w; nothing was stored", host, user, err)
				}
				return fmt.Errorf("login to %s: %w; nothing was stored", host, err)
			}
			if err := storeCredentials(cf, key, user, pw); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "Login Succeeded")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&user, "username", "u", "", "user name")
	f.BoolVar(&stdin, "password-stdin", false, "read the password from standard input (without it, login asks on the terminal)")
	f.StringVarP(&password, "password", "p", "", "refused: use --password-stdin")
	_ = f.MarkHidden("password")
	return cmd
}

func newLogoutCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout REGISTRY",
		Short: "Remove a registry's credentials from docker's config.json",
		Long: `logout removes what 'regmirror login' (or docker login) stored for REGISTRY:
its entry in docker's config.json ($DOCKER_CONFIG/config.json, else
~/.docker/config.json), or its credentials in the credential helper that
file names. REGISTRY is written as for login (a path or a scheme is
ignored). Logging out of a registry with no stored credentials says so
and exits 0; the registry itself is not asked.`,
		Example: `  regmirror logout europe-west1-docker.pkg.dev`,
		Args:    positional("REGISTRY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			host, key, _ := credentialKey(args[0])
			cf, err := dockerconfig.Load(dockerConfigDir())
			if err != nil {
				return fmt.Errorf("reading docker config: %w", err)
			}
			store := cf.GetCredentialsStore(key)
			if ac, err := store.Get(key); err == nil && ac.Username == "" && ac.Password == "" && ac.IdentityToken == "" && ac.Auth == "" {
				if _, ok := cf.AuthConfigs[key]; !ok {
					fmt.Fprintf(g.stdout, "Not logged in to %s\n", host)
					return nil
				}
			}
			if err := store.Erase(key); err != nil {
				return fmt.Errorf("removing the credentials for %s from %s: %w", host, cf.Filename, err)
			}
			fmt.Fprintf(g.stdout, "Removed login credentials for %s\n", host)
			return nil
		},
	}
}

// promptPassword asks for the password on the terminal that in is, as
// docker login does: "Password: " on out, nothing echoed. Without a
// terminal there is no one to ask: that is a usage error naming
// --password-stdin.
func promptPassword(in io.Reader, out io.Writer) (string, error) {
	f, ok := in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usageErr("standard input is not a terminal to ask for the password: pipe it to --password-stdin")
	}
	fmt.Fprint(out, "Password: ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(out) // the newline the user typed was not echoed
	if err != nil {
		return "", fmt.Errorf("reading the password from the terminal: %w", err)
	}
	if len(b) == 0 {
		return "", usageErr("no password given")
	}
	return string(b), nil
}

// readPassword reads the whole of stdin and removes one final newline
// ("\n" or "\r\n"), exactly as docker login --password-stdin does.
func readPassword(r io.Reader) (string, error) {
	if r == nil {
		return "", usageErr("--password-stdin: no standard input")
	}
	b, err := io.ReadAll(io.LimitReader(r, maxPasswordLen+1))
	if err != nil {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	if len(b) > maxPasswordLen {
		return "", usageErr("--password-stdin: more than %d bytes on standard input; is that the right file?", maxPasswordLen)
	}
	pw := strings.TrimSuffix(string(b), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", usageErr("--password-stdin: standard input was empty")
	}
	return pw, nil
}

// credentialKey returns the host to check the login against and the key
// docker's config.json stores it under: the host without scheme or path,
// and Docker Hub's historical "https://index.docker.io/v1/". http://HOST
// (what the plain-HTTP hint tells users to write) asks for plain HTTP.
func credentialKey(arg string) (host, key string, plainHTTP bool) {
	// A host that does not parse is kept as written: checking the login
	// then says what is wrong with it.
	ep, _, _ := registry.ParseLocationPath(strings.TrimSpace(arg))
	h := ep.Registry
	if registry.IsDockerHub(h) {
		return "index.docker.io", dockerHubKey, false
	}
	return h, h, ep.PlainHTTP
}

// storeCredentials writes the credentials where docker would: the
// credential helper config.json names for the host, else config.json
// itself (written to a temporary file and renamed, 0600 when new).
func storeCredentials(cf *configfile.ConfigFile, key, user, pw string) error {
	ac := types.AuthConfig{Username: user, Password: pw, ServerAddress: key}
	if err := cf.GetCredentialsStore(key).Store(ac); err != nil {
		return fmt.Errorf("storing the credentials for %s in %s: %w", key, cf.Filename, err)
	}
	return nil
}

// dockerConfigDir is where docker's config.json lives: $DOCKER_CONFIG, else
// docker's default (~/.docker). DOCKER_CONFIG is read on every call:
// docker/cli's config.Dir reads it once per process and keeps it, so a
// process (a test binary, an embedding program) that changes it would
// write credentials into a directory it no longer means. That is where
// go-containerregistry's keychain reads them too.
func dockerConfigDir() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	return dockerconfig.Dir()
}
