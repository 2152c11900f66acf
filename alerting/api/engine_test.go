package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/telemetry"
)

// engineGuard is a Guard over a real alerting.Engine, behind a mutex (as
// the service's one goroutine would serialise it), with a clock the test
// moves.
type engineGuard struct {
	mu       sync.Mutex
	e        *alerting.Engine
	now      time.Time
	commands []telemetry.Command
}

func newEngineGuard(t *testing.T) *engineGuard {
	n := 0
	e, err := alerting.NewEngine(alerting.DefaultRules(), alerting.EngineOptions{NewID: func() string { n++; return fmt.Sprintf("cmd-%d", n) }})
	require.NoError(t, err)
	return &engineGuard{e: e, now: t0}
}

func (g *engineGuard) apply(actions []alerting.Action) {
	for _, a := range actions {
		if c, ok := a.(alerting.SendCommand); ok {
			g.commands = append(g.commands, c.Cmd)
		}
	}
}

// feed decodes a payload as the pile would publish it, at the test's time
// plus at.
func (g *engineGuard) feed(t *testing.T, at time.Duration, topic, payload string) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.now = t0.Add(at)
	payload = strings.ReplaceAll(payload, "TS", fmt.Sprint(g.now.UnixMilli()))
	m, err := telemetry.DecodeTopic(telemetry.DefaultRoot, telemetry.DefaultRoot+"/"+topic, []byte(payload), g.now)
	require.NoError(t, err)
	g.apply(g.e.Observe(g.now, m))
}

func (g *engineGuard) lastCommand() telemetry.Command {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.commands[len(g.commands)-1]
}

func (g *engineGuard) PortsPage(_ context.Context, q alerting.PortQuery) (alerting.PortPage, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	// The engine's own list, paged here; the Service pages its published
	// view instead (TestPagesOverService).
	var page alerting.PortPage
	for _, p := range g.e.Ports(q.Filter) {
		k := alerting.PortKey{Site: p.Site, Pile: p.Pile, Port: p.Port}
		if !q.After.IsZero() && (k.Site < q.After.Site || (k.Site == q.After.Site && (k.Pile < q.After.Pile || (k.Pile == q.After.Pile && k.Port <= q.After.Port)))) {
			continue
		}
		if q.Limit > 0 && len(page.Ports) == q.Limit {
			last := page.Ports[len(page.Ports)-1]
			page.Next = alerting.PortKey{Site: last.Site, Pile: last.Pile, Port: last.Port}
			break
		}
		page.Ports = append(page.Ports, p)
	}
	return page, nil
}

func (g *engineGuard) Alerts(_ context.Context, activeOnly bool) ([]alerting.AlertView, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.e.Alerts(activeOnly), nil
}

func (g *engineGuard) Audit(_ context.Context, site, pile string, port int) ([]alerting.AuditRecord, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.e.Audit(site, pile, port), nil
}

func (g *engineGuard) Reset(_ context.Context, site, pile string, port int, operator string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	actions, err := g.e.Reset(g.now, site, pile, port, operator)
	g.apply(actions)
	return err
}

func (g *engineGuard) AckAlert(_ context.Context, key, operator string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	actions, err := g.e.Ack(g.now, key, operator)
	g.apply(actions)
	return err
}

func (g *engineGuard) Reload(context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.e.Reload(alerting.DefaultRules())
}

// TestWithEngine plays the reset story against the real engine
// through the API: an overheated port is latched, every premature or
// unauthenticated reset is refused with its reason, and the operator's
// reset once the port has cooled sends "open" in alice's name.
func TestWithEngine(t *testing.T) {
	g := newEngineGuard(t)
	f := newFixture(t, Options{Guard: g, Tokens: testTokens()})
	const reset = "/api/v1/ports/s1/p1/1/reset"
	expectRefusal := func(token string, code int, reason, detail string) {
		t.Helper()
		target := reset
		if reason == "unknown_pile" {
			target = "/api/v1/ports/s1/nosuch/1/reset"
		}
		r := do(t, f.h, "POST", target, token, "")
		require.Equal(t, code, r.Code, r.Raw)
		assert.Equal(t, reason, r.reason(), r.Raw)
		assert.Contains(t, r.Body["detail"], detail)
	}

	g.feed(t, 0, "s1/p1/status", `{"v":1,"ts":TS,"online":true,"ports":4,"rated_a":5,"kind":"residential"}`)
	g.feed(t, 1*time.Second, "s1/p1/telemetry", `{"v":1,"ts":TS,"seq":1,"ports":[{"n":1,"state":"charging","a":2,"temp_c":40}]}`)
	expectRefusal(operatorToken, 409, "not_latched", "port 1")
	expectRefusal(operatorToken, 404, "unknown_pile", "")

	g.feed(t, 10*time.Second, "s1/p1/telemetry", `{"v":1,"ts":TS,"seq":2,"ports":[{"n":1,"state":"charging","a":2,"temp_c":75}]}`)
	closeCmd := g.lastCommand()
	require.Equal(t, telemetry.ActionClose, closeCmd.Action)

	// The operator's board: the port is latched for overheat, and the
	// alert is active with its key.
	r := do(t, f.h, "GET", "/api/v1/ports?site=s1&state=latched", viewerToken, "")
	require.Equal(t, 200, r.Code)
	ports := r.Body["ports"].([]any)
	require.Len(t, ports, 1, r.Raw)
	assert.Equal(t, 1.0, ports[0].(map[string]any)["port"])
	assert.Equal(t, []any{"overheat"}, ports[0].(map[string]any)["latch_reasons"])
	r = do(t, f.h, "GET", "/api/v1/alerts", viewerToken, "")
	require.Len(t, r.Body["alerts"].([]any), 1, r.Raw)
	key := r.Body["alerts"].([]any)[0].(map[string]any)["key"].(string)
	assert.Equal(t, "overheat/s1/p1/1", key)

	// Not yet acked by the pile.
	expectRefusal(operatorToken, 409, "command_pending", "awaiting its ack")
	g.feed(t, 11*time.Second, "s1/p1/ack", `{"v":1,"id":"`+closeCmd.ID+`","ts":TS,"port":1,"ok":true,"state":"closed"}`)
	// No reading since the trip.
	expectRefusal(operatorToken, 409, "condition_active", "no reading has arrived since the trip")
	// Still hot.
	g.feed(t, 20*time.Second, "s1/p1/telemetry", `{"v":1,"ts":TS,"seq":3,"ports":[{"n":1,"state":"closed","a":0,"temp_c":60}]}`)
	expectRefusal(operatorToken, 409, "condition_active", "60.00 °C")
	// Cooled: now only an operator may reset it.
	g.feed(t, 25*time.Second, "s1/p1/telemetry", `{"v":1,"ts":TS,"seq":4,"ports":[{"n":1,"state":"closed","a":0,"temp_c":40}]}`)
	expectRefusal("", 401, "missing_token", "")
	expectRefusal(unknownToken, 401, "unknown_token", "")
	expectRefusal(viewerToken, 403, "operator_role_required", "")
	commandsBefore := len(g.commands)

	// Acknowledge, then reset.
	r = do(t, f.h, "POST", "/api/v1/alerts/"+strings.ReplaceAll(key, "/", "%2F")+"/ack", operatorToken, "")
	require.Equal(t, 200, r.Code, r.Raw)
	r = do(t, f.h, "GET", "/api/v1/alerts", viewerToken, "")
	assert.Equal(t, "alice", r.Body["alerts"].([]any)[0].(map[string]any)["acked_by"])
	r = do(t, f.h, "POST", "/api/v1/alerts/overheat/s1/p1/2/ack", operatorToken, "")
	require.Equal(t, 404, r.Code, r.Raw)
	assert.Equal(t, "unknown_alert", r.reason())

	require.Len(t, g.commands, commandsBefore, "no refused reset sent anything")
	r = do(t, f.h, "POST", reset, operatorToken, `{"note":"plug replaced"}`)
	require.Equal(t, 202, r.Code, r.Raw)
	open := g.lastCommand()
	assert.Equal(t, telemetry.ActionOpen, open.Action)
	assert.Equal(t, 1, open.Port)

	// The audit shows the refusals that reached the engine and the reset,
	// all by operator:alice, and nothing of the refused callers.
	r = do(t, f.h, "GET", "/api/v1/ports/s1/p1/1/audit", viewerToken, "")
	require.Equal(t, 200, r.Code)
	var kinds, actors []string
	for _, rec := range r.Body["audit"].([]any) {
		m := rec.(map[string]any)
		kinds = append(kinds, m["kind"].(string)+":"+fmt.Sprint(m["reason"]))
		actors = append(actors, m["actor"].(string))
	}
	assert.Equal(t, []string{
		"reset_refused:not_latched", "command:overheat", "reset_refused:command_pending", "ack:overheat",
		"reset_refused:condition_active", "reset_refused:condition_active", "alert_ack:overheat", "command:reset", "reset:reset",
	}, kinds)
	for _, a := range actors {
		assert.Contains(t, []string{"operator:alice", "rule:overheat", "pile"}, a)
	}
	r = do(t, f.h, "GET", "/api/v1/alerts?active=false", viewerToken, "")
	alerts := r.Body["alerts"].([]any)
	require.Len(t, alerts, 1)
	assert.Equal(t, false, alerts[0].(map[string]any)["active"], "the reset resolved the alert")
	r = do(t, f.h, "POST", "/api/v1/reload", operatorToken, "")
	require.Equal(t, 200, r.Code)
}

// TestOverRealHTTP checks the routes through net/http's server and client:
// a percent-encoded alert key arrives as one segment, a HEAD works, and a
// body over the limit is cut off.
func TestOverRealHTTP(t *testing.T) {
	g := &fakeGuard{}
	f := newFixture(t, Options{Guard: g, Tokens: testTokens()})
	mux := http.NewServeMux()
	mux.Handle("/api/", f.api.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	send := func(method, path, token, body string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := srv.Client().Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res
	}
	assert.Equal(t, 200, send("POST", "/api/v1/alerts/overheat%2Fs1%2Fp1%2F3/ack", operatorToken, "").StatusCode)
	assert.Equal(t, 200, send("POST", "/api/v1/alerts/overheat/s1/p1/4/ack", operatorToken, "").StatusCode)
	assert.Equal(t, 200, send("HEAD", "/api/v1/ports", viewerToken, "").StatusCode)
	assert.Equal(t, 413, send("POST", "/api/v1/ports/s1/p1/3/reset", operatorToken, strings.Repeat(" ", 1<<20)).StatusCode)
	assert.Equal(t, 401, send("POST", "/api/v1/ports/s1/p1/3/reset", "", "").StatusCode)
	assert.Equal(t, []call{
		{Method: "AckAlert", Key: "overheat/s1/p1/3", Operator: "alice"},
		{Method: "AckAlert", Key: "overheat/s1/p1/4", Operator: "alice"},
		{Method: "Ports"},
	}, g.Calls())
}
