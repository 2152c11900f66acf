package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/telemetry"
)

// TestPortsPageParameters: limit and after reach the Guard as a query,
// the page's next comes back, and a bad limit or cursor is refused before
// the Guard.
func TestPortsPageParameters(t *testing.T) {
	g := &fakeGuard{next: alerting.PortKey{Site: "s1", Pile: "p9", Port: 4}}
	f := newFixture(t, Options{Guard: g, Tokens: testTokens()})

	r := do(t, f.h, "GET", "/api/v1/ports", viewerToken, "")
	require.Equal(t, 200, r.Code, r.Raw)
	assert.Equal(t, "s1/p9/4", r.Body["next"])
	r = do(t, f.h, "GET", "/api/v1/ports?site=s1&limit=7&after=s1/p2/3", viewerToken, "")
	require.Equal(t, 200, r.Code, r.Raw)
	r = do(t, f.h, "GET", "/api/v1/ports?limit=5000&after="+url.QueryEscape("s1/p2/0"), viewerToken, "")
	require.Equal(t, 200, r.Code, r.Raw)
	require.Equal(t, []alerting.PortQuery{
		{Limit: DefaultPageLimit},
		{Filter: alerting.PortFilter{Site: "s1"}, Limit: 7, After: alerting.PortKey{Site: "s1", Pile: "p2", Port: 3}},
		{Limit: MaxPageLimit, After: alerting.PortKey{Site: "s1", Pile: "p2"}},
	}, g.queries)

	for _, bad := range []struct{ query, reason string }{
		{"limit=0", "bad_limit"}, {"limit=5001", "bad_limit"}, {"limit=-1", "bad_limit"},
		{"limit=07", "bad_limit"}, {"limit=x", "bad_limit"}, {"limit=", "bad_limit"},
		{"after=s1/p1", "bad_cursor"}, {"after=s1/p1/65", "bad_cursor"}, {"after=s%201/p1/1", "bad_cursor"},
		{"after=", "bad_cursor"}, {"cursor=s1/p1/1", "unknown_parameter"},
	} {
		r := do(t, f.h, "GET", "/api/v1/ports?"+bad.query, viewerToken, "")
		require.Equal(t, 400, r.Code, "%s: %s", bad.query, r.Raw)
		assert.Equal(t, bad.reason, r.reason(), bad.query)
	}
	assert.Len(t, g.queries, 3, "no bad query reached the Guard")
}

// TestPagesOverService walks every port of a real Service page by page
// over HTTP: each port once, in order, under a filter and without.
func TestPagesOverService(t *testing.T) {
	s, err := alerting.NewService(alerting.ServiceOptions{
		Publisher:    alerting.PublisherFunc(func(string, []byte) error { return nil }),
		TickInterval: time.Millisecond,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	now := time.Now()
	for _, site := range []string{"west", "east", "north"} {
		for i := range 5 {
			tm := &telemetry.Telemetry{V: 1, TS: now.UnixMilli(), Seq: 1, AmbientC: telemetry.F(25)}
			for n := 1; n <= 2+i; n++ {
				tm.Ports = append(tm.Ports, telemetry.PortSample{N: n, State: telemetry.StateIdle, A: telemetry.F(0), W: telemetry.F(0), TempC: telemetry.F(30)})
			}
			s.Observe(telemetry.Message{Topic: telemetry.Topic{Root: "chargers", Site: site, Pile: fmt.Sprintf("p%d", i), Kind: telemetry.KindTelemetry},
				Received: now, Telemetry: tm})
		}
	}
	require.Eventually(t, func() bool { return s.View().NumPorts() == 3*(2+3+4+5+6) }, 5*time.Second, time.Millisecond)

	f := newFixture(t, Options{Guard: serviceGuard{s}, Tokens: testTokens()})
	for _, filter := range []string{"", "site=east&", "pile=p3&", "site=north&pile=p0&"} {
		var got []string
		after := ""
		for page := 0; ; page++ {
			require.Less(t, page, 100)
			target := "/api/v1/ports?" + filter + "limit=4"
			if after != "" {
				target += "&after=" + url.QueryEscape(after)
			}
			r := do(t, f.h, "GET", target, viewerToken, "")
			require.Equal(t, 200, r.Code, r.Raw)
			ports := r.Body["ports"].([]any)
			require.LessOrEqual(t, len(ports), 4)
			require.NotEmpty(t, r.Body["as_of"])
			for _, p := range ports {
				m := p.(map[string]any)
				got = append(got, fmt.Sprintf("%s/%s/%v", m["site"], m["pile"], m["port"]))
			}
			next, _ := r.Body["next"].(string)
			if next == "" {
				break
			}
			require.Len(t, ports, 4, "only the last page is short")
			after = next
		}
		q, err := url.ParseQuery(filter)
		require.NoError(t, err)
		all, err := s.Ports(context.Background(), alerting.PortFilter{Site: q.Get("site"), Pile: q.Get("pile")})
		require.NoError(t, err)
		var want []string
		for _, p := range all {
			want = append(want, fmt.Sprintf("%s/%s/%d", p.Site, p.Pile, p.Port))
		}
		require.NotEmpty(t, want)
		require.Equal(t, want, got, "filter %q", filter)
	}
}

// serviceGuard is a Service as the API's Guard (the app's guard adds
// Reload from the configuration file).
type serviceGuard struct{ *alerting.Service }

func (serviceGuard) Reload(context.Context) error { return nil }

// TestNoTokensReadsAreAChoice: with no token and anonymous reads off, every
// request is refused and nothing reaches the Guard.
func TestNoTokensReadsAreAChoice(t *testing.T) {
	f := newFixture(t, Options{})
	for _, rt := range everyRoute {
		r := do(t, f.h, rt.method, rt.target, "", `{}`)
		require.Equal(t, 401, r.Code, "%s %s: %s", rt.method, rt.target, r.Raw)
		assert.Equal(t, "no_tokens_configured", r.reason())
	}
	assert.Empty(t, f.guard.Calls())
	assert.Contains(t, f.logs.String(), "refuses every request")
}

// TestReadsNeedATokenWhenConfigured: every read needs a token once tokens
// exist; a viewer's is enough.
func TestReadsNeedATokenWhenConfigured(t *testing.T) {
	f := newFixture(t, Options{Tokens: testTokens(), AnonymousReads: true})
	for _, target := range []string{"/api/v1/ports", "/api/v1/alerts", "/api/v1/ports/s1/p1/1/audit"} {
		r := do(t, f.h, "GET", target, "", "")
		require.Equal(t, 401, r.Code, target)
		assert.Equal(t, "missing_token", r.reason())
		r = do(t, f.h, "GET", target, viewerToken, "")
		require.Equal(t, 200, r.Code, target)
	}
}

// TestOperatorOnly is the gate in front of /debug/pprof/: an operator
// token passes; no token, an unknown one or a viewer's does not; and with
// no token configured at all nobody passes.
func TestOperatorOnly(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("profile")) })
	f := newFixture(t, Options{Tokens: testTokens()})
	h := f.api.OperatorOnly(inner)
	for _, tc := range []struct {
		token  string
		code   int
		reason string
	}{
		{"", 401, "missing_token"}, {unknownToken, 401, "unknown_token"},
		{viewerToken, 403, "operator_role_required"}, {operatorToken, 200, ""},
	} {
		req, err := http.NewRequest("GET", "/debug/pprof/heap", nil)
		require.NoError(t, err)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		rec := newRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, tc.code, rec.Code, tc.token)
		if tc.code == 200 {
			assert.Equal(t, "profile", rec.Body.String())
		} else {
			assert.Contains(t, rec.Body.String(), tc.reason)
		}
	}
	open := newFixture(t, Options{AnonymousReads: true}).api.OperatorOnly(inner)
	req, err := http.NewRequest("GET", "/debug/pprof/heap", nil)
	require.NoError(t, err)
	rec := newRecorder()
	open.ServeHTTP(rec, req)
	require.Equal(t, 403, rec.Code)
}

// TestReadSlots: lists are rendered MaxConcurrentReads at a time; a read
// that finds no slot within Timeout gets 503 busy and never reaches the
// Guard, and the slot frees when the read in it ends.
func TestReadSlots(t *testing.T) {
	g := &fakeGuard{hold: make(chan struct{})}
	f := newFixture(t, Options{Guard: g, Tokens: testTokens(), MaxConcurrentReads: 1, Timeout: 300 * time.Millisecond})
	first := make(chan response, 1)
	go func() { first <- do(t, f.h, "GET", "/api/v1/ports", viewerToken, "") }()
	require.Eventually(t, func() bool { return len(g.Calls()) == 1 }, 5*time.Second, time.Millisecond)
	for _, target := range []string{"/api/v1/ports", "/api/v1/alerts"} {
		r := do(t, f.h, "GET", target, viewerToken, "")
		require.Equal(t, 503, r.Code, r.Raw)
		assert.Equal(t, "busy", r.reason())
	}
	assert.Len(t, g.Calls(), 1, "a read without a slot never reaches the Guard")
	close(g.hold)
	require.Equal(t, 200, (<-first).Code)
	r := do(t, f.h, "GET", "/api/v1/alerts", viewerToken, "")
	require.Equal(t, 200, r.Code, r.Raw)
}
