package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Role is what a token may do.
type Role string

const (
	// RoleViewer may read ports, alerts and audits.
	RoleViewer Role = "viewer"
	// RoleOperator may also reset ports, acknowledge alerts and reload the
	// rules.
	RoleOperator Role = "operator"
)

// MinTokenLen is the shortest token New accepts. 16 characters of a random
// hex or base64 string are 64 to 96 bits: beyond guessing over HTTP.
const MinTokenLen = 16

// maxTokenLen bounds a token; a longer one is a pasted file, not a token.
const maxTokenLen = 1024

// maxNameLen is the longest token name: the engine keeps 64 bytes of an
// operator's name in its audit, so a longer name would be cut there.
const maxNameLen = 64

// Token is one API credential from the configuration. Name identifies the
// person or system holding it in logs and in the engine's audit
// ("operator:<name>"); Token is the secret sent as "Authorization: Bearer
// <token>".
type Token struct {
	Name  string `yaml:"name" json:"name"`
	Token string `yaml:"token" json:"-"`
	Role  Role   `yaml:"role" json:"role"`
}

// String shows the name and role, never the secret, so that a Token that
// ends up in a log line or an error stays harmless.
func (t Token) String() string { return t.Name + " (" + string(t.Role) + ")" }

// GoString hides the secret from %#v as well.
func (t Token) GoString() string {
	return fmt.Sprintf("api.Token{Name:%q, Token:<secret>, Role:%q}", t.Name, t.Role)
}

// MarshalYAML hides the secret when a configuration is dumped.
func (t Token) MarshalYAML() (any, error) {
	return map[string]string{"name": t.Name, "token": "<secret>", "role": string(t.Role)}, nil
}

// FieldError is an error in one field of the API configuration, named by
// its YAML path (api.tokens[2].role). It never holds a token.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// principal is an authenticated caller.
type principal struct {
	name string
	role Role
}

// credential is a configured token as the API keeps it: only its SHA-256,
// so that comparing takes the same time whatever the length of the token
// presented, and the secret itself is not kept in memory by this package.
type credential struct {
	hash [sha256.Size]byte
	principal
}

// validTokens checks the tokens and returns them as credentials. Every
// problem is reported, each naming its field.
func validTokens(tokens []Token) ([]credential, []error) {
	var errs []error
	bad := func(i int, field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: fmt.Sprintf("api.tokens[%d].%s", i, field), Err: fmt.Errorf(format, a...)})
	}
	creds := make([]credential, 0, len(tokens))
	seen := make(map[[sha256.Size]byte]int, len(tokens))
	for i, t := range tokens {
		switch {
		case t.Name == "":
			bad(i, "name", "must be set: it names the operator in the audit")
		case !validName(t.Name):
			bad(i, "name", "must be 1 to %d printable characters without leading or trailing space", maxNameLen)
		}
		switch {
		case t.Token == "":
			bad(i, "token", "must be set")
		case len(t.Token) < MinTokenLen:
			bad(i, "token", "is %d characters long; want at least %d (e.g. openssl rand -hex 32)", len(t.Token), MinTokenLen)
		case len(t.Token) > maxTokenLen:
			bad(i, "token", "is longer than %d characters", maxTokenLen)
		case !validTokenChars(t.Token):
			bad(i, "token", "must hold only visible ASCII characters (no spaces)")
		}
		if t.Role != RoleViewer && t.Role != RoleOperator {
			bad(i, "role", "%q is not one of viewer, operator", truncate(string(t.Role), 32))
		}
		h := sha256.Sum256([]byte(t.Token))
		if j, dup := seen[h]; dup && t.Token != "" {
			bad(i, "token", "is the same as api.tokens[%d].token: every token must be unique", j)
		} else {
			seen[h] = i
		}
		creds = append(creds, credential{hash: h, principal: principal{name: t.Name, role: t.Role}})
	}
	return creds, errs
}

func validName(s string) bool {
	if len(s) > maxNameLen || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func validTokenChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// authenticate finds the caller of r. With no token configured every caller
// is an anonymous viewer. Otherwise the request must carry a known bearer
// token; the error then says why it does not (missing_token,
// bad_authorization, unknown_token).
func (a *API) authenticate(r *http.Request) (principal, *apiError) {
	if len(a.creds) == 0 {
		if !a.anonRead {
			return principal{}, errUnauthorized("no_tokens_configured",
				"no API token is configured and anonymous reads are off: configure api.tokens, or api.anonymous_reads: true")
		}
		return principal{role: RoleViewer}, nil
	}
	h := r.Header.Values("Authorization")
	if len(h) == 0 || (len(h) == 1 && strings.TrimSpace(h[0]) == "") {
		return principal{}, errUnauthorized("missing_token", "send the header Authorization: Bearer <token>")
	}
	if len(h) > 1 {
		return principal{}, errUnauthorized("bad_authorization", "more than one Authorization header")
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h[0]), " ")
	// The scheme name is case-insensitive (RFC 9110 section 11.1).
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return principal{}, errUnauthorized("bad_authorization", "the Authorization header must be: Bearer <token>")
	}
	p, ok := a.lookup(strings.TrimSpace(tok))
	if !ok {
		return principal{}, errUnauthorized("unknown_token", "the bearer token is not one of the configured API tokens")
	}
	return p, nil
}

// lookup finds the credential of a token.
func (a *API) lookup(tok string) (principal, bool) {
	sum := sha256.Sum256([]byte(tok))
	// Compare with every credential, without stopping at a match, so that
	// the time taken says nothing about which token (or how much of one)
	// matched.
	found := -1
	for i := range a.creds {
		if subtle.ConstantTimeCompare(sum[:], a.creds[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return principal{}, false
	}
	return a.creds[found].principal, true
}

// Authenticate checks a token the way the API checks a bearer token, for
// another front end of the same credentials (the web console's sign-in).
// It returns the token's name and role; ok is false for an unknown token,
// and always when no token is configured (the API is then open read-only,
// and there is no one to sign in as).
func (a *API) Authenticate(token string) (name string, role Role, ok bool) {
	p, ok := a.lookup(token)
	return p.name, p.role, ok
}

// OperatorOnly wraps h (a debugging endpoint such as /debug/pprof/) so
// that only a caller with an operator token reaches it. With no token
// configured it refuses everyone: the app then serves such endpoints only
// on a loopback listener, without this wrapper.
func (a *API) OperatorOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, e := a.authenticate(r)
		if e == nil && len(a.creds) == 0 {
			e = &apiError{status: http.StatusForbidden, Error: "forbidden", Reason: "no_operator_tokens",
				Detail: "no API token is configured: configure an operator token in api.tokens"}
		}
		if e == nil {
			e = a.mayChange(p)
		}
		if e != nil {
			writeError(w, e)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// mayChange refuses a change to anyone but an operator.
func (a *API) mayChange(p principal) *apiError {
	if len(a.creds) == 0 {
		return &apiError{status: http.StatusForbidden, Error: "forbidden", Reason: "no_operator_tokens",
			Detail: "no API token is configured, so the API is read-only: configure api.tokens with an operator to reset or acknowledge"}
	}
	if p.role != RoleOperator {
		return &apiError{status: http.StatusForbidden, Error: "forbidden", Reason: "operator_role_required",
			Detail: fmt.Sprintf("token %q has role %s; this needs role operator", p.name, p.role)}
	}
	return nil
}

func errUnauthorized(reason, detail string) *apiError {
	return &apiError{status: http.StatusUnauthorized, Error: "unauthorized", Reason: reason, Detail: detail}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so that the log stays valid UTF-8.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
