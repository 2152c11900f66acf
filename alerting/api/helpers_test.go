package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/alerting"
)

// Test credentials. They are long and distinctive so that a test can look
// for them in logs and responses.
const (
	operatorToken = "op-secret-7f3a9c1e5b2d4f60"
	viewerToken   = "view-secret-2b8e6d4c0a9f1357"
	unknownToken  = "nobody-secret-c0ffee15deadbeef"
)

func testTokens() []Token {
	return []Token{
		{Name: "alice", Token: operatorToken, Role: RoleOperator},
		{Name: "victor", Token: viewerToken, Role: RoleViewer},
	}
}

// call is one call the fake Guard received.
type call struct {
	Method   string
	Filter   alerting.PortFilter
	Active   bool
	Site     string
	Pile     string
	Port     int
	Operator string
	Key      string
}

// fakeGuard records its calls and answers with canned data, or err.
type fakeGuard struct {
	mu      sync.Mutex
	calls   []call
	err     error
	block   bool          // wait for the context to end, then return its error
	hold    chan struct{} // non-nil: wait until it is closed
	ports   []alerting.PortView
	next    alerting.PortKey     // the Next of every page
	queries []alerting.PortQuery // every PortsPage query, in order
	alerts  []alerting.AlertView
	audit   []alerting.AuditRecord
}

func (g *fakeGuard) record(ctx context.Context, c call) error {
	g.mu.Lock()
	g.calls = append(g.calls, c)
	err, block, hold := g.err, g.block, g.hold
	g.mu.Unlock()
	if hold != nil {
		<-hold
	}
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

func (g *fakeGuard) Calls() []call {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]call(nil), g.calls...)
}

func (g *fakeGuard) PortsPage(ctx context.Context, q alerting.PortQuery) (alerting.PortPage, error) {
	g.mu.Lock()
	g.queries = append(g.queries, q)
	g.mu.Unlock()
	if err := g.record(ctx, call{Method: "Ports", Filter: q.Filter}); err != nil {
		return alerting.PortPage{}, err
	}
	return alerting.PortPage{Ports: g.ports, Next: g.next}, nil
}

func (g *fakeGuard) Alerts(ctx context.Context, activeOnly bool) ([]alerting.AlertView, error) {
	if err := g.record(ctx, call{Method: "Alerts", Active: activeOnly}); err != nil {
		return nil, err
	}
	return g.alerts, nil
}

func (g *fakeGuard) Audit(ctx context.Context, site, pile string, port int) ([]alerting.AuditRecord, error) {
	if err := g.record(ctx, call{Method: "Audit", Site: site, Pile: pile, Port: port}); err != nil {
		return nil, err
	}
	return g.audit, nil
}

func (g *fakeGuard) Reset(ctx context.Context, site, pile string, port int, operator string) error {
	return g.record(ctx, call{Method: "Reset", Site: site, Pile: pile, Port: port, Operator: operator})
}

func (g *fakeGuard) AckAlert(ctx context.Context, key, operator string) error {
	return g.record(ctx, call{Method: "AckAlert", Key: key, Operator: operator})
}

func (g *fakeGuard) Reload(ctx context.Context) error {
	return g.record(ctx, call{Method: "Reload"})
}

// syncBuffer is a log sink safe for the handler's writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logLines decodes the JSON log lines.
func (s *syncBuffer) logLines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

type fixture struct {
	api   *API
	h     http.Handler
	guard *fakeGuard
	logs  *syncBuffer
}

func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	f := &fixture{logs: &syncBuffer{}}
	if o.Guard == nil {
		f.guard = &fakeGuard{}
		o.Guard = f.guard
	}
	o.Logger = zerolog.New(f.logs).Level(zerolog.DebugLevel)
	a, err := New(o)
	require.NoError(t, err)
	f.api, f.h = a, a.Handler()
	return f
}

// response is a decoded response.
type response struct {
	Code   int
	Header http.Header
	Raw    string
	Body   map[string]any
}

func (r response) reason() string { s, _ := r.Body["reason"].(string); return s }
func (r response) errClass() string {
	s, _ := r.Body["error"].(string)
	return s
}

// do serves one request. token "" sends no Authorization header; a token
// starting with "!" is sent as the whole header value.
func do(t *testing.T, h http.Handler, method, target, token, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.RemoteAddr = "192.0.2.7:40000"
	switch {
	case strings.HasPrefix(token, "!"):
		req.Header.Set("Authorization", token[1:])
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return serve(t, h, req)
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

// decode checks that a response is a JSON object, with error and reason
// when it is an error, and decodes it.
func decode(t *testing.T, rec *httptest.ResponseRecorder) response {
	t.Helper()
	res := response{Code: rec.Code, Header: rec.Header(), Raw: rec.Body.String()}
	require.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"), res.Raw)
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &res.Body), "body is not a JSON object: %q", res.Raw)
	if rec.Code >= 400 {
		// Every error body has error and reason.
		require.NotEmpty(t, res.errClass(), res.Raw)
		require.NotEmpty(t, res.reason(), res.Raw)
	}
	return res
}

var t0 = time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
