package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRoutes calls every route as an operator and checks what reaches the
// Guard and what comes back.
func TestRoutes(t *testing.T) {
	temp := 71.5
	g := &fakeGuard{
		ports: []alerting.PortView{{Site: "s1", Pile: "p1", Port: 3, Control: alerting.ControlLatched,
			LatchReasons: []string{"overheat"}, TempC: &temp, Reported: telemetry.StateClosed}},
		alerts: []alerting.AlertView{{Alert: alerting.Alert{Name: alerting.AlertOverheat, Severity: alerting.SeverityCritical,
			Site: "s1", Pile: "p1", Port: 3, StartsAt: t0}, Active: true}},
		audit: []alerting.AuditRecord{{At: t0, Site: "s1", Pile: "p1", Port: 3, Kind: alerting.AuditCommand,
			Actor: "rule:overheat", Reason: "overheat", CommandID: "c1", Action: telemetry.ActionClose, Attempt: 1}},
	}
	tests := []struct {
		name, method, target, body string
		code                       int
		call                       call
		check                      func(t *testing.T, r response)
	}{
		{name: "ports all", method: "GET", target: "/api/v1/ports", code: 200, call: call{Method: "Ports"},
			check: func(t *testing.T, r response) {
				ports := r.Body["ports"].([]any)
				require.Len(t, ports, 1)
				p := ports[0].(map[string]any)
				assert.Equal(t, "latched", p["control"])
				assert.Equal(t, []any{"overheat"}, p["latch_reasons"])
				assert.Equal(t, 71.5, p["temp_c"])
				assert.Equal(t, "closed", p["reported"])
			}},
		{name: "ports filtered", method: "GET", target: "/api/v1/ports?site=s1&pile=p-2_x&state=latched", code: 200,
			call: call{Method: "Ports", Filter: alerting.PortFilter{Site: "s1", Pile: "p-2_x", State: "latched"}}},
		{name: "ports by reported state", method: "GET", target: "/api/v1/ports?state=charging", code: 200,
			call: call{Method: "Ports", Filter: alerting.PortFilter{State: "charging"}}},
		{name: "alerts default active", method: "GET", target: "/api/v1/alerts", code: 200, call: call{Method: "Alerts", Active: true},
			check: func(t *testing.T, r response) {
				alerts := r.Body["alerts"].([]any)
				require.Len(t, alerts, 1)
				a := alerts[0].(map[string]any)
				assert.Equal(t, "overheat/s1/p1/3", a["key"], "an alert carries the key that acknowledges it")
				assert.Equal(t, "overheat", a["alertname"])
				assert.Equal(t, "critical", a["severity"])
				assert.Equal(t, true, a["active"])
			}},
		{name: "alerts active=true", method: "GET", target: "/api/v1/alerts?active=true", code: 200, call: call{Method: "Alerts", Active: true}},
		{name: "alerts recent", method: "GET", target: "/api/v1/alerts?active=false", code: 200, call: call{Method: "Alerts", Active: false}},
		{name: "audit", method: "GET", target: "/api/v1/ports/s1/p1/3/audit", code: 200, call: call{Method: "Audit", Site: "s1", Pile: "p1", Port: 3},
			check: func(t *testing.T, r response) {
				recs := r.Body["audit"].([]any)
				require.Len(t, recs, 1)
				assert.Equal(t, "rule:overheat", recs[0].(map[string]any)["actor"])
				assert.Equal(t, "c1", recs[0].(map[string]any)["command_id"])
				assert.Equal(t, 3.0, r.Body["port"])
			}},
		{name: "audit of a pile", method: "GET", target: "/api/v1/ports/s1/p1/0/audit", code: 200, call: call{Method: "Audit", Site: "s1", Pile: "p1", Port: 0}},
		{name: "reset", method: "POST", target: "/api/v1/ports/s1/p1/3/reset", code: 202,
			call: call{Method: "Reset", Site: "s1", Pile: "p1", Port: 3, Operator: "alice"},
			check: func(t *testing.T, r response) {
				assert.Equal(t, "open_sent", r.Body["status"])
				assert.Equal(t, "alice", r.Body["operator"])
			}},
		{name: "reset whole pile with a note", method: "POST", target: "/api/v1/ports/s1/p1/0/reset", body: `{"note":"checked on site"}`, code: 202,
			call: call{Method: "Reset", Site: "s1", Pile: "p1", Port: 0, Operator: "alice"}},
		{name: "reset port 64", method: "POST", target: "/api/v1/ports/s1/p1/64/reset", body: "  \n", code: 202,
			call: call{Method: "Reset", Site: "s1", Pile: "p1", Port: 64, Operator: "alice"}},
		{name: "reset: the operator is the token's name, not the body's", method: "POST", target: "/api/v1/ports/s1/p1/3/reset",
			body: `{"note":"operator: mallory"}`, code: 202, call: call{Method: "Reset", Site: "s1", Pile: "p1", Port: 3, Operator: "alice"}},
		{name: "ack escaped key", method: "POST", target: "/api/v1/alerts/overheat%2Fs1%2Fp1%2F3/ack", code: 200,
			call: call{Method: "AckAlert", Key: "overheat/s1/p1/3", Operator: "alice"},
			check: func(t *testing.T, r response) {
				assert.Equal(t, "acknowledged", r.Body["status"])
				assert.Equal(t, "overheat/s1/p1/3", r.Body["key"])
			}},
		{name: "ack key in four segments", method: "POST", target: "/api/v1/alerts/smoke/s1/p1/0/ack", body: `{}`, code: 200,
			call: call{Method: "AckAlert", Key: "smoke/s1/p1/0", Operator: "alice"}},
		{name: "reload", method: "POST", target: "/api/v1/reload", code: 200, call: call{Method: "Reload"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g.calls = nil
			f := newFixture(t, Options{Guard: g, Tokens: testTokens()})
			r := do(t, f.h, tc.method, tc.target, operatorToken, tc.body)
			require.Equal(t, tc.code, r.Code, r.Raw)
			assert.Equal(t, "no-store", r.Header.Get("Cache-Control"))
			assert.Equal(t, []call{tc.call}, g.Calls())
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// TestEmptyListsAreArrays: a client iterating over the result never meets
// null.
func TestEmptyListsAreArrays(t *testing.T) {
	f := newFixture(t, Options{Tokens: testTokens()})
	for target, field := range map[string]string{
		"/api/v1/ports": "ports", "/api/v1/alerts": "alerts", "/api/v1/ports/s1/p1/1/audit": "audit",
	} {
		r := do(t, f.h, "GET", target, viewerToken, "")
		require.Equal(t, 200, r.Code)
		assert.Equal(t, []any{}, r.Body[field], target)
	}
}

type route struct {
	method, target string
	change         bool
	ok             int
}

var everyRoute = []route{
	{"GET", "/api/v1/ports", false, 200},
	{"GET", "/api/v1/alerts?active=false", false, 200},
	{"GET", "/api/v1/ports/s1/p1/2/audit", false, 200},
	{"POST", "/api/v1/ports/s1/p1/2/reset", true, 202},
	{"POST", "/api/v1/alerts/overheat%2Fs1%2Fp1%2F2/ack", true, 200},
	{"POST", "/api/v1/alerts/overheat/s1/p1/2/ack", true, 200},
	{"POST", "/api/v1/reload", true, 200},
}

// TestAuth runs every route with every kind of caller.
func TestAuth(t *testing.T) {
	cases := []struct {
		name   string
		header string // as for do
		// code and reason for a read and for a change; ok means the route's
		// success code.
		read, change       int
		readWhy, changeWhy string
	}{
		{name: "no token", header: "", read: 401, change: 401, readWhy: "missing_token", changeWhy: "missing_token"},
		{name: "empty header", header: "! ", read: 401, change: 401, readWhy: "missing_token", changeWhy: "missing_token"},
		{name: "basic auth", header: "!Basic YWxpY2U6c2VjcmV0", read: 401, change: 401, readWhy: "bad_authorization", changeWhy: "bad_authorization"},
		{name: "bare token", header: "!" + operatorToken, read: 401, change: 401, readWhy: "bad_authorization", changeWhy: "bad_authorization"},
		{name: "unknown token", header: unknownToken, read: 401, change: 401, readWhy: "unknown_token", changeWhy: "unknown_token"},
		{name: "a prefix of a token", header: operatorToken[:16], read: 401, change: 401, readWhy: "unknown_token", changeWhy: "unknown_token"},
		{name: "a token with more", header: operatorToken + "x", read: 401, change: 401, readWhy: "unknown_token", changeWhy: "unknown_token"},
		{name: "viewer", header: viewerToken, read: 0, change: 403, changeWhy: "operator_role_required"},
		{name: "operator", header: operatorToken, read: 0, change: 0},
		{name: "operator, lower-case scheme", header: "!bearer " + operatorToken, read: 0, change: 0},
	}
	for _, c := range cases {
		for _, rt := range everyRoute {
			t.Run(c.name+"/"+rt.method+" "+rt.target, func(t *testing.T) {
				f := newFixture(t, Options{Tokens: testTokens()})
				want, why := c.read, c.readWhy
				if rt.change {
					want, why = c.change, c.changeWhy
				}
				if want == 0 {
					want = rt.ok
				}
				r := do(t, f.h, rt.method, rt.target, c.header, "")
				require.Equal(t, want, r.Code, r.Raw)
				if want >= 400 {
					assert.Equal(t, why, r.reason(), r.Raw)
					assert.Empty(t, f.guard.Calls(), "a refused caller never reaches the Guard")
				} else {
					assert.Len(t, f.guard.Calls(), 1)
				}
				if want == 401 {
					assert.Equal(t, "unauthorized", r.errClass())
					assert.Equal(t, `Bearer realm="chargeguard"`, r.Header.Get("WWW-Authenticate"))
				}
				if want == 403 {
					assert.Equal(t, "forbidden", r.errClass())
				}
			})
		}
	}
}

func TestTwoAuthorizationHeaders(t *testing.T) {
	f := newFixture(t, Options{Tokens: testTokens()})
	req := newRequest(t, "POST", "/api/v1/ports/s1/p1/1/reset")
	req.Header.Add("Authorization", "Bearer "+viewerToken)
	req.Header.Add("Authorization", "Bearer "+operatorToken)
	r := serve(t, f.h, req)
	require.Equal(t, 401, r.Code)
	assert.Equal(t, "bad_authorization", r.reason())
	assert.Empty(t, f.guard.Calls())
}

// TestNoTokens: with no token configured anyone may read and no one may
// change anything, whatever the request carries.
func TestNoTokens(t *testing.T) {
	f := newFixture(t, Options{AnonymousReads: true})
	for _, rt := range everyRoute {
		for _, tok := range []string{"", operatorToken, "!Basic xyz"} {
			r := do(t, f.h, rt.method, rt.target, tok, `{"note":"please"}`)
			if !rt.change {
				require.Equal(t, rt.ok, r.Code, "%s %s: %s", rt.method, rt.target, r.Raw)
				continue
			}
			require.Equal(t, 403, r.Code, r.Raw)
			assert.Equal(t, "forbidden", r.errClass())
			assert.Equal(t, "no_operator_tokens", r.reason())
		}
	}
	for _, c := range f.guard.Calls() {
		assert.Contains(t, []string{"Ports", "Alerts", "Audit"}, c.Method, "no change reaches the Guard")
	}
	assert.Len(t, f.guard.Calls(), 9)
	assert.Contains(t, f.logs.String(), "read-only", "New warns that the API is read-only")
}

func TestViewerOnlyTokensWarn(t *testing.T) {
	f := newFixture(t, Options{Tokens: []Token{{Name: "v", Token: viewerToken, Role: RoleViewer}}})
	assert.Contains(t, f.logs.String(), "no API token has the operator role")
	r := do(t, f.h, "POST", "/api/v1/reload", viewerToken, "")
	require.Equal(t, 403, r.Code)
	assert.Equal(t, "operator_role_required", r.reason())
}

// TestBadInput: bad ids, ports, keys, queries and bodies are refused with
// 400 (or 413) and never reach the Guard.
func TestBadInput(t *testing.T) {
	long := strings.Repeat("a", 65)
	tests := []struct {
		method, target, body string
		code                 int
		reason               string
	}{
		{"GET", "/api/v1/ports?site=s.1", "", 400, "bad_id"},
		{"GET", "/api/v1/ports?site=" + long, "", 400, "bad_id"},
		{"GET", "/api/v1/ports?pile=p%2F1", "", 400, "bad_id"},
		{"GET", "/api/v1/ports?pile=%00", "", 400, "bad_id"},
		{"GET", "/api/v1/ports?state=burning", "", 400, "bad_state"},
		{"GET", "/api/v1/ports?stat=latched", "", 400, "unknown_parameter"},
		{"GET", "/api/v1/ports?site=s1&site=s2", "", 400, "bad_parameter"},
		{"GET", "/api/v1/ports?site=%zz", "", 400, "bad_query"},
		{"GET", "/api/v1/alerts?active=yes", "", 400, "bad_parameter"},
		{"GET", "/api/v1/alerts?active=", "", 200, ""},
		{"GET", "/api/v1/alerts?all=true", "", 400, "unknown_parameter"},
		{"GET", "/api/v1/ports/s1/p1/65/audit", "", 400, "bad_port"},
		{"GET", "/api/v1/ports/s1/p%201/1/audit", "", 400, "bad_id"},
		{"GET", "/api/v1/ports/s1/p1/1/audit?x=1", "", 400, "unknown_parameter"},
		{"POST", "/api/v1/ports/s%2F1/p1/1/reset", "", 400, "bad_id"},
		{"POST", "/api/v1/ports/s1/" + long + "/1/reset", "", 400, "bad_id"},
		{"POST", "/api/v1/ports/s%C3%A91/p1/1/reset", "", 400, "bad_id"},
		{"POST", "/api/v1/ports/s1/p1/65/reset", "", 400, "bad_port"},
		{"POST", "/api/v1/ports/s1/p1/-1/reset", "", 400, "bad_port"},
		{"POST", "/api/v1/ports/s1/p1/+1/reset", "", 400, "bad_port"},
		{"POST", "/api/v1/ports/s1/p1/01/reset", "", 400, "bad_port"},
		{"POST", "/api/v1/ports/s1/p1/1.0/reset", "", 400, "bad_port"},
		{"POST", "/api/v1/ports/s1/p1/one/reset", "", 400, "bad_port"},
		{"POST", "/api/v1/ports/s1/p1/99999999999999999999/reset", "", 400, "bad_port"},
		{"POST", "/api/v1/ports/s1/p1/1/reset?force=true", "", 400, "unknown_parameter"},
		{"POST", "/api/v1/ports/s1/p1/1/reset", `{"note":`, 400, "bad_body"},
		{"POST", "/api/v1/ports/s1/p1/1/reset", `note=hi`, 400, "bad_body"},
		{"POST", "/api/v1/ports/s1/p1/1/reset", `[]`, 400, "bad_body"},
		{"POST", "/api/v1/ports/s1/p1/1/reset", `{"note":5}`, 400, "bad_body"},
		{"POST", "/api/v1/ports/s1/p1/1/reset", `{"operator":"mallory"}`, 400, "bad_body"},
		{"POST", "/api/v1/ports/s1/p1/1/reset", `{}{}`, 400, "bad_body"},
		{"POST", "/api/v1/ports/s1/p1/1/reset", `{}}`, 400, "bad_body"},
		{"POST", "/api/v1/ports/s1/p1/1/reset", `{"note":"` + strings.Repeat("n", maxNoteLen+1) + `"}`, 400, "bad_body"},
		{"POST", "/api/v1/ports/s1/p1/1/reset", `{"note":"` + strings.Repeat("n", 5000) + `"}`, 413, "body_too_large"},
		{"POST", "/api/v1/alerts/overheat%2Fs1%2Fp1/ack", "", 400, "bad_key"},
		{"POST", "/api/v1/alerts/overheat%2Fs1%2Fp1%2F3%2Fx/ack", "", 400, "bad_key"},
		{"POST", "/api/v1/alerts/burning%2Fs1%2Fp1%2F3/ack", "", 400, "bad_key"},
		{"POST", "/api/v1/alerts/overheat%2Fs.1%2Fp1%2F3/ack", "", 400, "bad_id"},
		{"POST", "/api/v1/alerts/overheat%2Fs1%2Fp1%2F65/ack", "", 400, "bad_port"},
		{"POST", "/api/v1/alerts/full/s1/p1/3/ack", "", 400, "bad_key"},
		{"POST", "/api/v1/alerts/overheat/s1/p%2F1/3/ack", "", 400, "bad_id"},
		{"POST", "/api/v1/alerts/overheat/s1/p1/3/ack", `"note"`, 400, "bad_body"},
		{"POST", "/api/v1/reload", `{"rules":{}}`, 400, "bad_body"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			f := newFixture(t, Options{Tokens: testTokens()})
			r := do(t, f.h, tc.method, tc.target, operatorToken, tc.body)
			require.Equal(t, tc.code, r.Code, r.Raw)
			if tc.code == 200 {
				return
			}
			assert.Equal(t, tc.reason, r.reason(), r.Raw)
			assert.Empty(t, f.guard.Calls(), "bad input never reaches the Guard")
		})
	}
}

// TestNoRoute: unknown paths, wrong methods and unclean paths get JSON
// errors, not ServeMux's text or a redirect.
func TestNoRoute(t *testing.T) {
	f := newFixture(t, Options{Tokens: testTokens()})
	tests := []struct {
		method, target string
		code           int
		reason, allow  string
	}{
		{"GET", "/api/v1/nothing", 404, "no_route", ""},
		{"GET", "/api/v2/ports", 404, "no_route", ""},
		{"GET", "/api/v1/ports/s1/p1/1", 404, "no_route", ""},
		{"GET", "/api/v1/ports/s1/p1/1/reset", 405, "method_not_allowed", "POST"},
		{"DELETE", "/api/v1/ports", 405, "method_not_allowed", "GET"},
		{"PUT", "/api/v1/reload", 405, "method_not_allowed", "POST"},
		{"POST", "/api/v1/ports/s1/../s1/p1/1/reset", 400, "bad_path", ""},
		{"POST", "/api/v1/ports//p1/1/reset", 400, "bad_path", ""},
		{"POST", "/api/v1/ports/s1/p1/1/reset/", 404, "no_route", ""},
	}
	for _, tc := range tests {
		r := do(t, f.h, tc.method, tc.target, operatorToken, "")
		require.Equal(t, tc.code, r.Code, "%s %s: %s", tc.method, tc.target, r.Raw)
		assert.Equal(t, tc.reason, r.reason())
		assert.Equal(t, tc.allow, r.Header.Get("Allow"))
	}
	assert.Empty(t, f.guard.Calls())
}

// TestGuardErrors maps every error of the Guard to its status and reason.
func TestGuardErrors(t *testing.T) {
	wrap := func(err error, detail string) error { return fmt.Errorf("%w: %s", err, detail) }
	tests := []struct {
		err            error
		code           int
		class, reason  string
		detailContains string
	}{
		{wrap(alerting.ErrUnknownPile, "s1/p1"), 404, "not_found", "unknown_pile", "unknown pile: s1/p1"},
		{wrap(alerting.ErrUnknownAlert, "overheat/s1/p1/1"), 404, "not_found", "unknown_alert", "no such active alert"},
		{wrap(alerting.ErrNotLatched, "port 1"), 409, "conflict", "not_latched", "not latched"},
		{wrap(alerting.ErrConditionActive, "overheat: temp_c 60.00 °C is not below 55 °C"), 409, "conflict", "condition_active", "60.00 °C"},
		{wrap(alerting.ErrCommandPending, "close of port 1"), 409, "conflict", "command_pending", "awaiting its ack"},
		{wrap(alerting.ErrPileOffline, "no telemetry for 30s"), 409, "conflict", "pile_offline", "offline"},
		{fmt.Errorf("%w (smoke)", alerting.ErrPileLatched), 409, "conflict", "pile_latched", "reset port 0 first"},
		{wrap(alerting.ErrBadPort, "65"), 400, "bad_request", "bad_port", "out of range"},
		{alerting.ErrNoOperator, 403, "forbidden", "no_operator", "operator"},
		{fmt.Errorf("engine: %w", context.DeadlineExceeded), 503, "unavailable", "timeout", "did not answer"},
		{context.Canceled, 503, "unavailable", "canceled", "canceled"},
		{fmt.Errorf("service stopping: %w", ErrUnavailable), 503, "unavailable", "unavailable", "stopping"},
		{fmt.Errorf("%w: config c.yml: rules.defaults.overheat_c: must be above warn_c (55)", ErrInvalidRules), 422, "unprocessable", "invalid_rules", "rules.defaults.overheat_c"},
		{fmt.Errorf("reload: %w", errors.ErrUnsupported), 501, "not_implemented", "unsupported", "does not support"},
		{errors.New("disk on fire at /var/lib/chargeguard"), 500, "internal", "internal", "logged"},
		{fmt.Errorf("%w: garbage", alerting.ErrBadState), 500, "internal", "internal", "logged"},
	}
	for _, tc := range tests {
		for _, rt := range everyRoute {
			t.Run(tc.reason+"/"+rt.method+" "+rt.target, func(t *testing.T) {
				g := &fakeGuard{err: tc.err}
				f := newFixture(t, Options{Guard: g, Tokens: testTokens()})
				r := do(t, f.h, rt.method, rt.target, operatorToken, "")
				require.Equal(t, tc.code, r.Code, r.Raw)
				assert.Equal(t, tc.class, r.errClass())
				assert.Equal(t, tc.reason, r.reason())
				assert.Contains(t, r.Body["detail"], tc.detailContains)
				require.Len(t, g.Calls(), 1)
				if tc.code == 500 {
					assert.NotContains(t, r.Raw, "fire", "an internal error's text stays in the log")
					assert.Contains(t, f.logs.String(), tc.err.Error(), "an internal error is logged")
				}
			})
		}
	}
}

// TestPrematureReset is the case with a fake Guard: the engine
// refuses, and the operator is told why.
func TestPrematureReset(t *testing.T) {
	g := &fakeGuard{err: fmt.Errorf("%w: overheat: temp_c 60.00 °C is not below 55 °C", alerting.ErrConditionActive)}
	f := newFixture(t, Options{Guard: g, Tokens: testTokens()})
	r := do(t, f.h, "POST", "/api/v1/ports/s1/p1/3/reset", operatorToken, "")
	require.Equal(t, http.StatusConflict, r.Code)
	assert.Equal(t, map[string]any{"error": "conflict", "reason": "condition_active",
		"detail": "the condition that tripped the port has not cleared: overheat: temp_c 60.00 °C is not below 55 °C"}, r.Body)
}

// TestUnauthenticatedResetNeverReachesGuard tries every way in without an
// operator token, with a body that claims to be an operator.
func TestUnauthenticatedResetNeverReachesGuard(t *testing.T) {
	f := newFixture(t, Options{Tokens: testTokens()})
	for _, h := range []string{"", "!Bearer", "!Bearer ", unknownToken, viewerToken, "!Token " + operatorToken, "!" + operatorToken} {
		r := do(t, f.h, "POST", "/api/v1/ports/s1/p1/3/reset", h, `{"note":"I am alice"}`)
		require.Contains(t, []int{401, 403}, r.Code, "%q: %s", h, r.Raw)
	}
	assert.Empty(t, f.guard.Calls())
}

// TestTimeout: a Guard that does not answer gives 503 once the API's
// timeout passes, and the Guard sees the deadline.
func TestTimeout(t *testing.T) {
	g := &fakeGuard{block: true}
	f := newFixture(t, Options{Guard: g, Tokens: testTokens(), Timeout: 20 * time.Millisecond})
	start := time.Now()
	r := do(t, f.h, "POST", "/api/v1/ports/s1/p1/3/reset", operatorToken, "")
	require.Equal(t, 503, r.Code)
	assert.Equal(t, "timeout", r.reason())
	assert.Less(t, time.Since(start), 5*time.Second)
	lines := f.logs.logLines(t)
	last := lines[len(lines)-1]
	assert.Equal(t, "timeout", last["outcome"])
	assert.Equal(t, "error", last["level"])
}

// TestResetIsLogged: every reset attempt, allowed or refused, is one log
// line with the operator, the port and the outcome.
func TestResetIsLogged(t *testing.T) {
	g := &fakeGuard{}
	f := newFixture(t, Options{Guard: g, Tokens: testTokens()})
	type attempt struct {
		token, target, body string
		err                 error
		operator, port      string
		outcome, level      string
	}
	attempts := []attempt{
		{operatorToken, "/api/v1/ports/s1/p1/3/reset", `{"note":"cooled down, plug replaced"}`, nil, "alice", "3", "ok", "info"},
		{operatorToken, "/api/v1/ports/s1/p1/4/reset", "", fmt.Errorf("%w: x", alerting.ErrConditionActive), "alice", "4", "condition_active", "warn"},
		{operatorToken, "/api/v1/ports/s1/p1/0/reset", "", fmt.Errorf("%w: y", alerting.ErrUnknownPile), "alice", "0", "unknown_pile", "warn"},
		{viewerToken, "/api/v1/ports/s1/p1/5/reset", "", nil, "victor", "5", "operator_role_required", "warn"},
		{"", "/api/v1/ports/s1/p1/6/reset", "", nil, "", "6", "missing_token", "warn"},
		{unknownToken, "/api/v1/ports/s1/p1/7/reset", "", nil, "", "7", "unknown_token", "warn"},
		{operatorToken, "/api/v1/ports/s1/p1/77/reset", "", nil, "alice", "77", "bad_port", "warn"},
		{operatorToken, "/api/v1/ports/s1/p1/8/reset", "", errors.New("boom"), "alice", "8", "internal", "error"},
	}
	for _, a := range attempts {
		g.err = a.err
		do(t, f.h, "POST", a.target, a.token, a.body)
	}
	var resets []map[string]any
	for _, l := range f.logs.logLines(t) {
		if strings.HasPrefix(l["message"].(string), "port reset") {
			resets = append(resets, l)
		}
	}
	require.Len(t, resets, len(attempts))
	for i, a := range attempts {
		l := resets[i]
		assert.Equal(t, a.operator, l["operator"], "attempt %d", i)
		assert.Equal(t, "s1", l["site"])
		assert.Equal(t, "p1", l["pile"])
		assert.Equal(t, a.port, l["port"])
		assert.Equal(t, a.outcome, l["outcome"], "attempt %d", i)
		assert.Equal(t, a.level, l["level"], "attempt %d", i)
		assert.Equal(t, "192.0.2.7:40000", l["remote"])
		assert.Equal(t, "api", l["component"])
	}
	assert.Equal(t, "cooled down, plug replaced", resets[0]["note"])
	assert.Equal(t, "port reset: open command sent", resets[0]["message"])
	assert.Equal(t, "port reset refused", resets[1]["message"])
	assert.Contains(t, resets[1]["detail"], "has not cleared")
}

func TestAckAndReloadAreLogged(t *testing.T) {
	f := newFixture(t, Options{Tokens: testTokens()})
	do(t, f.h, "POST", "/api/v1/alerts/overheat/s1/p1/3/ack", operatorToken, `{"note":"on my way"}`)
	do(t, f.h, "POST", "/api/v1/reload", viewerToken, "")
	lines := f.logs.logLines(t)
	ack, reload := lines[len(lines)-2], lines[len(lines)-1]
	assert.Equal(t, "alert acknowledgement", ack["message"])
	assert.Equal(t, "alice", ack["operator"])
	assert.Equal(t, "overheat/s1/p1/3", ack["key"])
	assert.Equal(t, "on my way", ack["note"])
	assert.Equal(t, "rules reload refused", reload["message"])
	assert.Equal(t, "victor", reload["operator"])
	assert.Equal(t, "operator_role_required", reload["outcome"])
}

// TestSecretsNeverLeak drives every path with valid and invalid tokens and
// checks that no token reaches a log line or a response.
func TestSecretsNeverLeak(t *testing.T) {
	g := &fakeGuard{}
	f := newFixture(t, Options{Guard: g, Tokens: testTokens()})
	var bodies strings.Builder
	headers := []string{"", operatorToken, viewerToken, unknownToken, "!Basic " + operatorToken, "!" + unknownToken,
		"!Bearer " + operatorToken + " " + unknownToken}
	errs := []error{nil, alerting.ErrConditionActive, errors.New("internal trouble"), context.DeadlineExceeded}
	for _, e := range errs {
		g.err = e
		for _, h := range headers {
			for _, rt := range everyRoute {
				r := do(t, f.h, rt.method, rt.target, h, "")
				bodies.WriteString(r.Raw)
				for k, v := range r.Header {
					bodies.WriteString(k + ": " + strings.Join(v, ",") + "\n")
				}
			}
			r := do(t, f.h, "POST", "/api/v1/ports/s1/p1/99/reset", h, `{"note":1}`)
			bodies.WriteString(r.Raw)
			r = do(t, f.h, "GET", "/api/v1/nowhere", h, "")
			bodies.WriteString(r.Raw)
		}
	}
	logs := f.logs.String()
	require.NotEmpty(t, logs)
	for _, secret := range []string{operatorToken, viewerToken, unknownToken} {
		for _, part := range []string{secret, secret[:12], secret[len(secret)-12:]} {
			assert.NotContains(t, logs, part, "a token reached the log")
			assert.NotContains(t, bodies.String(), part, "a token reached a response")
		}
	}
	assert.Contains(t, logs, "alice", "the operator's name is logged instead")
}

// TestMetrics counts requests by route and code, and resets by outcome.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	g := &fakeGuard{}
	f := newFixture(t, Options{Guard: g, Tokens: testTokens(), Registerer: reg})
	do(t, f.h, "POST", "/api/v1/ports/s1/p1/3/reset", operatorToken, "")
	g.err = fmt.Errorf("%w: still hot", alerting.ErrConditionActive)
	do(t, f.h, "POST", "/api/v1/ports/s1/p1/3/reset", operatorToken, "")
	do(t, f.h, "POST", "/api/v1/ports/s1/p1/3/reset", operatorToken, "")
	do(t, f.h, "POST", "/api/v1/ports/s1/p1/3/reset", "", "")
	do(t, f.h, "POST", "/api/v1/ports/s1/p1/3/reset", operatorToken, `{"note":"`+strings.Repeat("x", 5000)+`"}`)
	g.err = nil
	do(t, f.h, "GET", "/api/v1/ports", viewerToken, "")
	do(t, f.h, "GET", "/api/v1/ports?state=x", viewerToken, "")
	do(t, f.h, "GET", "/api/v1/alerts", viewerToken, "")
	do(t, f.h, "GET", "/api/v1/ports/s1/p1/3/audit", viewerToken, "")
	do(t, f.h, "POST", "/api/v1/alerts/overheat/s1/p1/3/ack", operatorToken, "")
	do(t, f.h, "POST", "/api/v1/reload", operatorToken, "")
	do(t, f.h, "GET", "/api/v1/random/path", "", "")
	do(t, f.h, "DELETE", "/api/v1/ports", "", "")

	req := f.api.m.requests
	for _, c := range []struct {
		route, code string
		n           float64
	}{
		{"reset", "202", 1}, {"reset", "409", 2}, {"reset", "401", 1}, {"reset", "413", 1},
		{"ports", "200", 1}, {"ports", "400", 1}, {"alerts", "200", 1}, {"audit", "200", 1},
		{"ack", "200", 1}, {"reload", "200", 1}, {"none", "404", 1}, {"none", "405", 1},
	} {
		assert.Equal(t, c.n, testutil.ToFloat64(req.WithLabelValues(c.route, c.code)), "%s %s", c.route, c.code)
	}
	res := f.api.m.resets
	assert.Equal(t, 1.0, testutil.ToFloat64(res.WithLabelValues("ok")))
	assert.Equal(t, 2.0, testutil.ToFloat64(res.WithLabelValues("condition_active")))
	assert.Equal(t, 1.0, testutil.ToFloat64(res.WithLabelValues("missing_token")))
	assert.Equal(t, 1.0, testutil.ToFloat64(res.WithLabelValues("body_too_large")))
	assert.Equal(t, 0.0, testutil.ToFloat64(res.WithLabelValues("pile_offline")))

	n, err := testutil.GatherAndCount(reg, "chargeguard_api_requests_total", "chargeguard_api_resets_total")
	require.NoError(t, err)
	assert.Equal(t, 12+len(resetOutcomes)+1, n, "one series per route and code seen, and every reset outcome")

	// A second API on the same registry is an error, not a panic.
	_, err = New(Options{Guard: g, Registerer: reg, AnonymousReads: true})
	require.Error(t, err)
}

// newRequest and serve are for requests do cannot build.
func newRequest(t *testing.T, method, target string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "http://chargeguard.test"+target, nil)
	require.NoError(t, err)
	req.RemoteAddr = "192.0.2.7:40000"
	return req
}

func serve(t *testing.T, h http.Handler, req *http.Request) response {
	t.Helper()
	rec := newRecorder()
	h.ServeHTTP(rec, req)
	return decode(t, rec)
}
