package config

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/regmirror/regmirror/internal/registry"
)

// rawLocation is a location as written, before the checks that need
// several keys at once.
type rawLocation struct {
	registry, auth, username, password, passwordFile, caFile str

	authRefresh     time.Duration
	authRefreshLine int // 0: no auth-refresh
	lister          *Lister
	listerLine      int
	skipTLSLine     int
	rateLimitLine   int
	maxReqLine      int
}

// location reads a task's source or target (what).
func (l *loader) location(key, val *yaml.Node, what string, cfg *Config) (Location, *yaml.Node) {
	loc := Location{Line: key.Line}
	n := l.resolve(val)
	if n == nil {
		return loc, nil
	}
	if isNull(n) {
		l.errorf(key.Line, "%s is empty: \"registry\" is required", what)
		return loc, nil
	}
	if n.Kind != yaml.MappingNode {
		l.errorf(n.Line, "%s must be a mapping with a registry, not %s", what, kindName(n))
		return loc, nil
	}

	var raw rawLocation
	printed := l.fields(n, what, map[string]field{
		"registry": func(key, val *yaml.Node) { raw.registry = l.str(key, val, what) },
		"auth": func(key, val *yaml.Node) {
			raw.auth = l.str(key, val, what)
			if strings.TrimSpace(raw.auth.val) != "none" {
				l.printAs(redactedNode(raw.auth))
			}
		},
		"username": func(key, val *yaml.Node) { raw.username = l.str(key, val, what) },
		"password": func(key, val *yaml.Node) {
			raw.password = l.str(key, val, what)
			if !envRefsOnlyRE.MatchString(raw.password.val) {
				l.printAs(redactedNode(raw.password))
			}
		},
		"password-file": func(key, val *yaml.Node) { raw.passwordFile = l.str(key, val, what) },
		"skip-tls-verify": func(key, val *yaml.Node) {
			loc.SkipTLSVerify, raw.skipTLSLine = l.boolean(key, val, what), key.Line
		},
		"ca-file":   func(key, val *yaml.Node) { raw.caFile = l.str(key, val, what) },
		"certs-dir": func(key, val *yaml.Node) { loc.CertsDir = l.str(key, val, what).val },
		"auth-refresh": func(key, val *yaml.Node) {
			raw.authRefresh, _ = l.duration(key, val, what)
			raw.authRefreshLine = key.Line
		},
		"lister": func(key, val *yaml.Node) {
			raw.lister, raw.listerLine = l.locationLister(key, val, what, cfg.Lister), key.Line
		},
		"rate-limit": func(key, val *yaml.Node) {
			loc.RateLimit = l.rateLimit(key, val, what+" rate-limit")
			raw.rateLimitLine = key.Line
		},
		"max-concurrent-requests": func(key, val *yaml.Node) {
			raw.maxReqLine = key.Line
			if n, ok := l.integer(key, val, what); ok {
				if n < 1 {
					l.errorf(key.Line, "%s: max-concurrent-requests must be at least 1 (leave it out for no cap), not %d", what, n)
				}
				loc.MaxConcurrentRequests = n
			}
		},
	})

	// Registry. Without one, the other keys are still checked.
	if !raw.registry.set || raw.registry.val == "" {
		l.errorf(loc.Line, "%s has no registry: \"registry\" is required", what)
	} else {
		ep, err := registry.ParseLocation(raw.registry.val)
		var le *registry.LocationError
		if errors.As(err, &le) {
			l.errorf(raw.registry.line, "%s registry %s: %s", what, quote(raw.registry.val), le.Problem)
		}
		loc.Registry, loc.PlainHTTP = ep.Registry, ep.PlainHTTP
	}

	if kind := (registry.Endpoint{Registry: loc.Registry}).Kind(); !kind.Network() {
		// An OCI layout is a directory: nothing to log in to, no TLS.
		reg := loc.Registry
		for _, s := range []struct {
			key string
			set bool
			ln  int
		}{
			{"auth", raw.auth.set, raw.auth.line},
			{"username", raw.username.set, raw.username.line},
			{"password", raw.password.set, raw.password.line},
			{"password-file", raw.passwordFile.set, raw.passwordFile.line},
			{"ca-file", raw.caFile.set, raw.caFile.line},
			{"auth-refresh", raw.authRefreshLine > 0, raw.authRefreshLine},
			{"lister", raw.lister != nil, raw.listerLine},
			{"rate-limit", raw.rateLimitLine > 0, raw.rateLimitLine},
			{"max-concurrent-requests", raw.maxReqLine > 0, raw.maxReqLine},
		} {
			if s.set {
				l.errorf(s.ln, "%s: %q does not apply to an %s (%s)", what, s.key, kind, reg)
			}
		}
		if loc.SkipTLSVerify {
			l.errorf(raw.skipTLSLine, "%s: \"skip-tls-verify\" does not apply to an %s (%s)", what, kind, reg)
		}
		return loc, printed
	}

	if loc.CertsDir == "" {
		loc.CertsDir = cfg.CertsDir
	}
	loc.Lister = raw.lister
	if l.sourcesOnly && what == "target" {
		// The far side of an air gap: its secrets and files are not here.
		return loc, printed
	}
	l.credentials(&loc, &raw, what)
	l.authRefresh(&loc, &raw, what)
	if raw.caFile.set && raw.caFile.val != "" {
		loc.CAFile = raw.caFile.val
		l.checkCAFile(raw.caFile, what)
	}
	return loc, printed
}

// credentials resolves auth, username, password and password-file. No
// message here may contain a password, an auth string or its decoding.
func (l *loader) credentials(loc *Location, raw *rawLocation, what string) {
	for _, s := range []struct {
		key string
		v   str
	}{{"auth", raw.auth}, {"password", raw.password}} {
		if isRedacted(s.v) {
			l.errorf(s.v.line, "%s: %s is a redacted value (%s, as 'regmirror config print' writes secrets), not a secret: write the real one, a ${VARIABLE} reference or password-file", what, s.key, redacted)
			return
		}
	}
	explicit := raw.username.set || raw.password.set || raw.passwordFile.set
	if raw.auth.set && explicit {
		l.errorf(raw.auth.line, "%s: \"auth\" cannot be combined with \"username\", \"password\" or \"password-file\"", what)
		return
	}

	if raw.auth.set && raw.auth.val != "" {
		if strings.TrimSpace(raw.auth.val) == "none" {
			loc.AuthNone = true
			return
		}
		creds, problem := decodeAuth(raw.auth.val)
		if problem != "" {
			l.errorf(raw.auth.line, "%s: auth %s", what, problem)
			return
		}
		loc.Auth = creds
		return
	}
	if !explicit {
		return
	}

	ok := true
	expand := func(s str, key string) string {
		v, problem := expandEnv(s.val, l.lookupEnv)
		if problem != "" {
			l.errorf(s.line, "%s: %s: %s", what, key, problem)
			ok = false
		}
		return v
	}
	username := expand(raw.username, "username")
	password := expand(raw.password, "password")
	if raw.passwordFile.set {
		if raw.password.set {
			l.errorf(raw.passwordFile.line, "%s: give \"password\" or \"password-file\", not both", what)
			return
		}
		path := expand(raw.passwordFile, "password-file")
		if !ok {
			return
		}
		if path == "" {
			l.errorf(raw.passwordFile.line, "%s: password-file is empty", what)
			return
		}
		data, err := l.readFile(path)
		if err != nil {
			l.errorf(raw.passwordFile.line, "%s: password-file %s: %s", what, quote(path), ioErrText(err))
			return
		}
		password = trimNewline(string(data))
		if password == "" {
			l.errorf(raw.passwordFile.line, "%s: password-file %s holds no password", what, quote(path))
			return
		}
	}
	if !ok {
		return
	}
	if username == "" {
		if password != "" {
			line := raw.password.line
			if raw.passwordFile.set {
				line = raw.passwordFile.line
			}
			if raw.username.set {
				line = raw.username.line
			}
			l.errorf(line, "%s: a password needs a username", what)
		}
		return
	}
	loc.Auth = &Credentials{Username: username, Password: Secret(password)}
}

// trimNewline removes one trailing newline ("\n" or "\r\n").
func trimNewline(s string) string {
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		return strings.TrimSuffix(t, "\r")
	}
	return s
}

// decodeAuth decodes dregsy's auth: base64 of {"username": ..., "password":
// ...}. Like dregsy, base64 of "username:password" is taken too. Standard
// and URL-safe alphabets, padded or not, are accepted, and whitespace is
// ignored (base64 wraps long output). The problem returned never contains
// the input or its decoding.
func decodeAuth(auth string) (*Credentials, string) {
	compact := strings.Join(strings.Fields(auth), "")
	var data []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if data, err = enc.DecodeString(compact); err == nil {
			break
		}
	}
	if err != nil {
		return nil, "is not valid base64 (want base64 of {\"username\": \"...\", \"password\": \"...\"}, or \"none\")"
	}
	text := strings.TrimSpace(string(data))
	var creds struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	switch {
	case strings.HasPrefix(text, "{"):
		if json.Unmarshal([]byte(text), &creds) != nil {
			return nil, "does not decode to valid JSON credentials (want base64 of {\"username\": \"...\", \"password\": \"...\"})"
		}
	case strings.Contains(text, ":"):
		creds.Username, creds.Password, _ = strings.Cut(text, ":")
	default:
		return nil, "does not decode to JSON credentials (want base64 of {\"username\": \"...\", \"password\": \"...\"})"
	}
	if creds.Username == "" {
		if creds.Password != "" {
			return nil, "holds a password but no username"
		}
		return nil, "holds no username"
	}
	return &Credentials{Username: creds.Username, Password: Secret(creds.Password)}, ""
}

// expandEnv expands ${NAME} references. "$${" stands for a literal "${";
// any other "$" is literal. The problem returned names a variable at most,
// never the value being expanded.
func expandEnv(s string, lookup func(string) (string, bool)) (string, string) {
	if !strings.Contains(s, "${") {
		return s, ""
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", "unterminated \"${\" (write \"$${\" for a literal \"${\")"
			}
			name := s[i+2 : i+2+end]
			if !isEnvName(name) {
				return "", "malformed ${NAME} reference (write \"$${\" for a literal \"${\")"
			}
			v, ok := lookup(name)
			if !ok {
				return "", "environment variable " + name + " is not set"
			}
			b.WriteString(v)
			i += 2 + end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), ""
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// authRefresh checks dregsy's auth-refresh, which only Amazon ECR takes.
func (l *loader) authRefresh(loc *Location, raw *rawLocation, what string) {
	d := raw.authRefresh
	switch {
	case raw.authRefreshLine == 0 || d == 0:
		return
	case d < 0:
		l.errorf(raw.authRefreshLine, "%s: auth-refresh must not be negative", what)
	case !isECR(loc.Registry):
		l.errorf(raw.authRefreshLine, "%s: %s wants authentication refresh, but is not an ECR registry", what, quote(loc.Registry))
	default:
		// dregsy raises a shorter interval to the minimum (with a warning).
		loc.AuthRefresh = max(d, minAuthRefresh)
	}
}

// isECR reports whether registry is Amazon ECR, as dregsy decides it
// (ACCOUNT.dkr.ecr.REGION.amazonaws.com[.cn] or public.ecr.aws), or as the
// ECR credential helper that fetches the credentials does (ecrEndpointRE):
// auth-refresh must be accepted wherever that helper is used.
func isECR(registry string) bool {
	host := registry
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	if host == "public.ecr.aws" || host == "ecr-public.aws.com" || ecrEndpointRE.MatchString(host) {
		return true
	}
	p := strings.Split(host, ".")
	return (len(p) == 6 || (len(p) == 7 && p[6] == "cn")) &&
		p[0] != "" && p[1] == "dkr" && p[2] == "ecr" && p[3] != "" && p[4] == "amazonaws" && p[5] == "com"
}

// ecrEndpointRE is the private ECR endpoint grammar of
// github.com/awslabs/amazon-ecr-credential-helper/ecr-login/api (FIPS,
// dual-stack, China, GovCloud and isolated partitions). It is repeated here
// because this package does no I/O and pulls in no AWS SDK; a test checks
// that it agrees with registry.CloudHelper, which asks the library itself.
var ecrEndpointRE = regexp.MustCompile(`^(\d{12})\.dkr[\.\-]ecr(\-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.(amazonaws\.(?:com(?:\.cn)?|eu)|on\.(?:aws|amazonwebservices\.com\.cn)|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$`)

// checkCAFile checks that a ca-file holds at least one PEM certificate.
func (l *loader) checkCAFile(s str, what string) {
	data, err := l.readFile(s.val)
	if err != nil {
		l.errorf(s.line, "%s: ca-file %s: %s", what, quote(s.val), ioErrText(err))
		return
	}
	if !bytes.Contains(data, []byte("-----BEGIN")) || !x509.NewCertPool().AppendCertsFromPEM(data) {
		l.errorf(s.line, "%s: ca-file %s holds no PEM certificate", what, quote(s.val))
	}
}

// locationLister reads a location's lister. In dregsy it is a map of
// strings; here its keys are checked. Settings it does not give are
// inherited from the top-level lister.
func (l *loader) locationLister(key, val *yaml.Node, what string, top Lister) *Lister {
	what += " lister"
	lst := top
	var typ, search str
	fields := l.listerFields(&lst, what)
	fields["type"] = func(key, val *yaml.Node) { typ = l.str(key, val, what) }
	fields["search"] = func(key, val *yaml.Node) { search = l.str(key, val, what) }
	if !l.section(key, val, what, fields) {
		return nil
	}
	lst.Type, lst.Search = typ.val, search.val
	switch lst.Type {
	case "", "catalog", "dockerhub", "ecr", "gcr":
	case "index":
		if lst.Search == "" {
			l.errorf(typ.line, "%s: type index needs a \"search\" term", what)
		}
	default:
		l.errorf(typ.line, "%s: unknown type %s: want catalog, dockerhub, index, ecr or gcr", what, quote(lst.Type))
	}
	return &lst
}

// rateLimit reads `rate-limit: {min-remaining: N, wait: DURATION}`.
func (l *loader) rateLimit(key, val *yaml.Node, what string) RateLimit {
	rl := RateLimit{Wait: time.Minute}
	l.section(key, val, what, map[string]field{
		"min-remaining": func(key, val *yaml.Node) {
			if n, ok := l.integer(key, val, what); ok {
				if n < 0 {
					l.errorf(key.Line, "%s: min-remaining must not be negative", what)
				}
				rl.MinRemaining = n
			}
		},
		"wait": func(key, val *yaml.Node) {
			if d, ok := l.duration(key, val, what); ok {
				if d <= 0 {
					l.errorf(key.Line, "%s: wait must be positive", what)
				}
				rl.Wait = d
			}
		},
	})
	return rl
}
