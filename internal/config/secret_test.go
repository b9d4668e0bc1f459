package config

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretsDoNotLeak loads configurations whose credentials are wrong in
// many ways and checks that no error text holds a password, an auth string
// or what it decodes to.
func TestSecretsDoNotLeak(t *testing.T) {
	const pw = "Hunter2-TopSecret"
	jsonCreds := `{"username": "bob", "password": "` + pw + `"}`
	goodAuth := b64(jsonCreds)
	badJSON := `{"username": "bob", "password": "` + pw + `"` // unterminated
	noUser := `{"password": "` + pw + `"}`
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// loc builds a document whose source location has the given lines.
	loc := func(lines ...string) string {
		return strings.Replace(task(), "      registry: src.example.com\n",
			"      registry: src.example.com\n"+y(lines...), 1)
	}
	docs := map[string]string{
		"auth bad json":            loc("      auth: " + b64(badJSON)),
		"auth bad json raw":        loc("      auth: " + base64.RawURLEncoding.EncodeToString([]byte(badJSON))),
		"auth no username":         loc("      auth: " + b64(noUser)),
		"auth not base64":          loc("      auth: '" + pw + "!'"),
		"auth plain token":         loc("      auth: " + b64(pw)),
		"auth json wrong types":    loc("      auth: " + b64(`{"username": 1, "password": "`+pw+`"}`)),
		"auth and username":        loc("      auth: "+goodAuth, "      username: bob"),
		"auth and password":        loc("      auth: "+goodAuth, "      password: "+pw),
		"auth as mapping":          loc("      auth: {username: bob, password: " + pw + "}"),
		"auth as list":             loc("      auth: [" + goodAuth + "]"),
		"auth on oci":              strings.Replace(loc("      auth: "+goodAuth), "registry: src.example.com", "registry: oci:x", 1),
		"password no username":     loc("      password: " + pw),
		"password malformed env":   loc("      username: bob", "      password: "+pw+"${"),
		"password bad env name":    loc("      username: bob", "      password: ${"+pw+"}"),
		"password unset env":       loc("      username: bob", "      password: "+pw+"${UNSET_VAR}"),
		"password and file":        loc("      username: bob", "      password: "+pw, "      password-file: "+pwFile),
		"password as list":         loc("      username: bob", "      password: ["+pw+"]"),
		"password as bool":         loc("      username: bob", "      password: {a: "+pw+"}"),
		"password duplicate":       loc("      username: bob", "      password: "+pw, "      password: "+pw),
		"password misspelt key":    loc("      username: bob", "      passwd: "+pw),
		"password bad escape":      loc("      username: bob", `      password: "`+pw+`\q"`),
		"password unclosed quote":  loc("      username: bob", `      password: "`+pw),
		"password-file no user":    loc("      password-file: " + pwFile),
		"password-file from env":   loc("      username: bob", "      password-file: ${"+pw+"}"),
		"valid auth other problem": loc("      auth: "+goodAuth, "      skip-tls-verify: maybe"),
		"valid password and error": loc("      username: bob", "      password: "+pw, "      ca-file: /nonexistent"),
	}
	forbidden := []string{pw, goodAuth, jsonCreds, b64(badJSON), b64(noUser), b64(pw)}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			cfg, err := loadString(doc, env{"PW": pw})
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			text := fmt.Sprintf("%v|%+v|%#v|%s", err, err, err, err.Error())
			for _, e := range Errors(err) {
				text += "|" + e.Msg + fmt.Sprintf("%#v", e)
			}
			for _, s := range forbidden {
				if strings.Contains(text, s) {
					t.Errorf("error leaks %q:\n%s", s, text)
				}
			}
			// A partial leak: a long run of the password.
			if strings.Contains(text, pw[4:14]) {
				t.Errorf("error leaks part of the password:\n%s", text)
			}
		})
	}
}

// TestLoadedConfigDoesNotPrintSecrets checks fmt and JSON on a config
// holding passwords from every source.
func TestLoadedConfigDoesNotPrintSecrets(t *testing.T) {
	const pw = "Hunter2-TopSecret"
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auth := b64(`{"username": "bob", "password": "` + pw + `"}`)
	doc := y(
		"tasks:",
		"  - name: auth",
		"    source: {registry: a.example.com, auth: "+auth+"}",
		"    target: {registry: b.example.com, username: bob, password: '${PW}'}",
		"    mappings: [{from: x}]",
		"  - name: file",
		"    source: {registry: a.example.com, username: bob, password: "+pw+"}",
		"    target: {registry: b.example.com, username: bob, password-file: "+pwFile+"}",
		"    mappings: [{from: x}]",
	)
	cfg, err := loadString(doc, env{"PW": pw})
	if err != nil {
		t.Fatal(err)
	}
	dump := fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg)
	dump += fmt.Sprintf("%v %+v %#v", *cfg, *cfg, *cfg)
	for _, tk := range cfg.Tasks {
		for _, loc := range []Location{tk.Source, tk.Target} {
			if loc.Auth == nil || loc.Auth.Password.Reveal() != pw {
				t.Fatalf("task %s: auth %v not loaded", tk.Name, loc.Auth)
			}
			dump += fmt.Sprintf("%v %+v %#v %s", tk, tk, tk, tk.Name)
			dump += fmt.Sprintf("%v %+v %#v", loc, loc, loc)
			dump += fmt.Sprintf("%v %+v %#v %s %q", *loc.Auth, *loc.Auth, *loc.Auth, loc.Auth.Password, loc.Auth.Password)
		}
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dump += string(js)
	if strings.Contains(dump, pw) || strings.Contains(dump, auth) {
		t.Errorf("password printed:\n%s", dump)
	}
	if !strings.Contains(dump, "REDACTED") {
		t.Errorf("expected REDACTED in the dump")
	}
}
