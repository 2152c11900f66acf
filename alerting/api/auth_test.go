package api

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestNewValidatesTokens(t *testing.T) {
	good := func(name string, role Role) Token {
		return Token{Name: name, Token: "tok-" + name + "-0123456789abcdef", Role: role}
	}
	tests := []struct {
		name   string
		tokens []Token
		fields []string // the fields named, in order; none: valid
	}{
		{name: "none", tokens: nil},
		{name: "operator and viewer", tokens: testTokens()},
		{name: "same name twice (token rotation)", tokens: []Token{good("alice", RoleOperator), {Name: "alice", Token: "another-0123456789", Role: RoleOperator}}},
		{name: "empty name", tokens: []Token{good("a", RoleViewer), {Token: "0123456789abcdef", Role: RoleViewer}}, fields: []string{"api.tokens[1].name"}},
		{name: "name with a newline", tokens: []Token{{Name: "al\nice", Token: "0123456789abcdef", Role: RoleViewer}}, fields: []string{"api.tokens[0].name"}},
		{name: "name with spaces around", tokens: []Token{{Name: " alice", Token: "0123456789abcdef", Role: RoleViewer}}, fields: []string{"api.tokens[0].name"}},
		{name: "long name", tokens: []Token{{Name: strings.Repeat("n", 65), Token: "0123456789abcdef", Role: RoleViewer}}, fields: []string{"api.tokens[0].name"}},
		{name: "name with inner space is fine", tokens: []Token{{Name: "Zhang Wei", Token: "0123456789abcdef", Role: RoleViewer}}},
		{name: "empty token", tokens: []Token{{Name: "a", Role: RoleViewer}}, fields: []string{"api.tokens[0].token"}},
		{name: "short token", tokens: []Token{good("a", RoleViewer), good("b", RoleViewer), {Name: "c", Token: "0123456789abcde", Role: RoleOperator}}, fields: []string{"api.tokens[2].token"}},
		{name: "token with a space", tokens: []Token{{Name: "a", Token: "0123456789 abcdef", Role: RoleViewer}}, fields: []string{"api.tokens[0].token"}},
		{name: "huge token", tokens: []Token{{Name: "a", Token: strings.Repeat("x", 2000), Role: RoleViewer}}, fields: []string{"api.tokens[0].token"}},
		{name: "unknown role", tokens: []Token{good("a", RoleViewer), good("b", RoleViewer), {Name: "c", Token: "0123456789abcdef", Role: "admin"}}, fields: []string{"api.tokens[2].role"}},
		{name: "empty role", tokens: []Token{{Name: "c", Token: "0123456789abcdef"}}, fields: []string{"api.tokens[0].role"}},
		{name: "role in capitals", tokens: []Token{{Name: "c", Token: "0123456789abcdef", Role: "Operator"}}, fields: []string{"api.tokens[0].role"}},
		{name: "duplicate token", tokens: []Token{good("a", RoleViewer), {Name: "b", Token: "tok-a-0123456789abcdef", Role: RoleOperator}}, fields: []string{"api.tokens[1].token"}},
		{name: "all at once", tokens: []Token{{Token: "short"}, good("x", "root")}, fields: []string{"api.tokens[0].name", "api.tokens[0].token", "api.tokens[0].role", "api.tokens[1].role"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Guard: &fakeGuard{}, Tokens: tc.tokens})
			if len(tc.fields) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var fields []string
			for _, e := range err.(interface{ Unwrap() error }).Unwrap().(interface{ Unwrap() []error }).Unwrap() {
				var fe *FieldError
				require.True(t, errors.As(e, &fe), "%v", e)
				fields = append(fields, fe.Field)
				assert.True(t, strings.HasPrefix(e.Error(), fe.Field+": "), e.Error())
			}
			assert.Equal(t, tc.fields, fields)
			for _, tok := range tc.tokens {
				if len(tok.Token) >= 4 {
					assert.NotContains(t, err.Error(), tok.Token, "an error never holds a token")
				}
			}
		})
	}
}

func TestNewOptions(t *testing.T) {
	_, err := New(Options{})
	require.ErrorContains(t, err, "Guard is required")
	_, err = New(Options{Guard: &fakeGuard{}, MaxBodyBytes: -1})
	require.Error(t, err)
	_, err = New(Options{Guard: &fakeGuard{}, Timeout: -1})
	require.Error(t, err)

	// The zero value of the rest is usable: 4 KiB bodies, a nop logger.
	a, err := New(Options{Guard: &fakeGuard{}})
	require.NoError(t, err)
	assert.EqualValues(t, 4096, a.maxBody)
	f := newFixture(t, Options{Tokens: testTokens(), MaxBodyBytes: 64})
	r := do(t, f.h, "POST", "/api/v1/reload", operatorToken, `{"note":"`+strings.Repeat("x", 60)+`"}`)
	assert.Equal(t, 413, r.Code)
	assert.Contains(t, r.Body["detail"], "64 bytes")
}

// TestTokenNeverPrints: a Token in a log line, an error or a dumped
// configuration shows its name and role only.
func TestTokenNeverPrints(t *testing.T) {
	tok := Token{Name: "alice", Token: operatorToken, Role: RoleOperator}
	for _, s := range []string{
		fmt.Sprint(tok), fmt.Sprintf("%v %+v %s", tok, tok, tok), fmt.Sprintf("%#v", tok),
		fmt.Sprint([]Token{tok}), fmt.Sprintf("%+v", struct{ T []Token }{[]Token{tok}}),
	} {
		assert.NotContains(t, s, operatorToken)
		assert.Contains(t, s, "alice")
	}
	out, err := yaml.Marshal(map[string]any{"tokens": []Token{tok}})
	require.NoError(t, err)
	assert.NotContains(t, string(out), operatorToken)
	assert.Contains(t, string(out), "role: operator")

	// And the YAML of the configuration decodes into Tokens.
	var cfg struct {
		Tokens []Token `yaml:"tokens"`
	}
	require.NoError(t, yaml.Unmarshal([]byte("tokens: [{name: alice, token: "+operatorToken+", role: operator}]"), &cfg))
	assert.Equal(t, []Token{tok}, cfg.Tokens)
}
