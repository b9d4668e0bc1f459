package regtest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

const (
	tokenService = "regtest"
	tokenIssuer  = "regtest-token-issuer"
)

// TokenPath is the path of the token endpoint served next to /v2/ when
// WithTokenAuth is given.
const TokenPath = "/token"

// resourceActions is the "access" claim entry of the Docker token spec.
type resourceActions struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

type claimSet struct {
	Issuer     string             `json:"iss"`
	Subject    string             `json:"sub"`
	Audience   string             `json:"aud"`
	Expiration int64              `json:"exp"`
	NotBefore  int64              `json:"nbf"`
	IssuedAt   int64              `json:"iat"`
	JWTID      string             `json:"jti"`
	Access     []*resourceActions `json:"access"`
}

// tokenServer implements the GET flow of the Docker registry token spec
// (https://distribution.github.io/distribution/spec/auth/token/).
type tokenServer struct {
	user, pass string
	expiry     time.Duration
	anonPull   bool
	signer     *keyPair
	realm      string

	mu     sync.Mutex
	issued map[string]time.Time // token -> exact expiry
}

func (ts *tokenServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != TokenPath {
		http.NotFound(w, req)
		return
	}
	if req.Method != http.MethodGet {
		// The OAuth2 POST flow is optional in the spec; a 404 makes
		// clients (ggcr, containerd) fall back to GET.
		http.NotFound(w, req)
		return
	}

	user, pass, hasBasic := req.BasicAuth()
	authed := false
	if hasBasic {
		uOK := subtle.ConstantTimeCompare([]byte(user), []byte(ts.user)) == 1
		pOK := subtle.ConstantTimeCompare([]byte(pass), []byte(ts.pass)) == 1
		if !uOK || !pOK {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("WWW-Authenticate", `Basic realm="regtest"`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"details":"incorrect username or password"}`))
			return
		}
		authed = true
	}

	var access []*resourceActions
	for _, param := range req.URL.Query()["scope"] {
		for _, scope := range strings.Fields(param) {
			ra, ok := parseScope(scope)
			if !ok {
				continue
			}
			switch {
			case authed:
				access = append(access, ra)
			case ts.anonPull && ra.Type == "repository":
				var pull []string
				for _, a := range ra.Actions {
					if a == "pull" {
						pull = append(pull, a)
					}
				}
				if len(pull) > 0 {
					ra.Actions = pull
					access = append(access, ra)
				}
			}
		}
	}
	if access == nil {
		access = []*resourceActions{}
	}

	now := time.Now()
	expires := now.Add(ts.expiry)
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	subject := ""
	if authed {
		subject = user
	}
	token, err := ts.sign(claimSet{
		Issuer:   tokenIssuer,
		Subject:  subject,
		Audience: tokenService,
		// Round up; the registry enforces the exact expiry (see expired).
		Expiration: expires.Add(time.Second - 1).Unix(),
		NotBefore:  now.Unix(),
		IssuedAt:   now.Unix(),
		JWTID:      hex.EncodeToString(jti[:]),
		Access:     access,
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ts.mu.Lock()
	ts.issued[token] = expires
	ts.mu.Unlock()

	secs := int(ts.expiry / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token":        token,
		"access_token": token,
		"expires_in":   secs,
		"issued_at":    now.UTC().Format(time.RFC3339Nano),
	})
}

// parseScope parses "type[(class)]:name:action1,action2". The name may
// itself contain ':' (e.g. a host:port prefix), so the type is cut at the
// first and the actions at the last colon.
func parseScope(s string) (*resourceActions, bool) {
	i, j := strings.Index(s, ":"), strings.LastIndex(s, ":")
	if i <= 0 || j <= i+1 {
		return nil, false
	}
	typ := s[:i]
	if k := strings.Index(typ, "("); k >= 0 {
		typ = typ[:k]
	}
	var actions []string
	for _, a := range strings.Split(s[j+1:], ",") {
		if a != "" {
			actions = append(actions, a)
		}
	}
	if len(actions) == 0 {
		return nil, false
	}
	return &resourceActions{Type: typ, Name: s[i+1 : j], Actions: actions}, true
}

// sign produces a compact ES256 JWS whose x5c header carries the signing
// certificate; distribution verifies it against its rootcertbundle.
func (ts *tokenServer) sign(claims claimSet) (string, error) {
	hdr, err := json.Marshal(map[string]any{
		"typ": "JWT",
		"alg": "ES256",
		"x5c": []string{base64.StdEncoding.EncodeToString(ts.signer.der)},
	})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(hdr) + "." + enc.EncodeToString(payload)
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, ts.signer.key, digest[:])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc.EncodeToString(sig), nil
}

// expired reports whether token was issued by ts and is past its exact
// expiry. distribution itself allows 60s of clock-skew leeway on "exp",
// which would make short test lifetimes meaningless.
func (ts *tokenServer) expired(token string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	exp, ok := ts.issued[token]
	return ok && !time.Now().Before(exp)
}

// expireAll makes every token issued so far expired.
func (ts *tokenServer) expireAll() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := time.Now()
	for tok := range ts.issued {
		ts.issued[tok] = now
	}
}

// expiryHandler rejects expired bearer tokens with the same challenge the
// registry would send for an invalid token, before distribution sees them.
func (ts *tokenServer) expiryHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		prefix, tok, ok := strings.Cut(req.Header.Get("Authorization"), " ")
		if ok && strings.EqualFold(prefix, "bearer") && ts.expired(tok) {
			w.Header().Set("WWW-Authenticate",
				fmt.Sprintf(`Bearer realm=%q,service=%q,error="invalid_token"`, ts.realm, tokenService))
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":"token expired"}]}` + "\n"))
			return
		}
		next.ServeHTTP(w, req)
	})
}
