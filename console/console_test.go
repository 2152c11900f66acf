package console

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/alerting/api"
	"github.com/chargeguard/chargeguard/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeGuard is a Guard for unit tests: it serves fixed ports and alerts and
// records the changes asked of it.
type fakeGuard struct {
	mu      sync.Mutex
	ports   []alerting.PortView
	alerts  []alerting.AlertView
	calls   []string
	refuse  error
	failAll error
	reads   int // Ports calls
}

func (g *fakeGuard) Ports(_ context.Context, _ alerting.PortFilter) ([]alerting.PortView, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reads++
	return append([]alerting.PortView(nil), g.ports...), g.failAll
}

func (g *fakeGuard) Alerts(_ context.Context, _ bool) ([]alerting.AlertView, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]alerting.AlertView(nil), g.alerts...), g.failAll
}

func (g *fakeGuard) Audit(_ context.Context, site, pile string, port int) ([]alerting.AuditRecord, error) {
	return []alerting.AuditRecord{{At: time.Now(), Site: site, Pile: pile, Port: port, Kind: alerting.AuditCommand, Actor: "rule:overheat", Reason: "overheat", Action: telemetry.ActionClose}}, nil
}

func (g *fakeGuard) record(s string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, s)
	return g.refuse
}

func (g *fakeGuard) Reset(_ context.Context, site, pile string, port int, operator string) error {
	return g.record(fmt.Sprintf("reset %s/%s/%d by %s", site, pile, port, operator))
}

func (g *fakeGuard) AckAlert(_ context.Context, key, operator string) error {
	return g.record("ack " + key + " by " + operator)
}

func (g *fakeGuard) MarkOnSite(_ context.Context, key, operator string) error {
	return g.record("onsite " + key + " by " + operator)
}

func (g *fakeGuard) Note(_ context.Context, key, operator, note string) error {
	return g.record("note " + key + " by " + operator + ": " + note)
}

func (g *fakeGuard) changes() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.calls...)
}

type fakeAuth map[string]struct {
	name string
	role api.Role
}

func (f fakeAuth) Authenticate(tok string) (string, api.Role, bool) {
	p, ok := f[tok]
	return p.name, p.role, ok
}

var testAuth = fakeAuth{
	"operator-token-0123456789": {"alice", api.RoleOperator},
	"viewer-token-0123456789":   {"victor", api.RoleViewer},
}

func f(v float64) *float64 { return &v }

func newFakeGuard() *fakeGuard {
	started := time.Now().Add(-2 * time.Minute)
	g := &fakeGuard{}
	for _, pile := range []string{"p1", "p2"} {
		for n := 1; n <= 10; n++ {
			pv := alerting.PortView{Site: "s1", Pile: pile, Port: n, Control: alerting.ControlOpen, Reported: telemetry.StateCharging, TempC: f(30), A: f(2)}
			if pile == "p1" && n == 3 {
				pv.Control, pv.LatchReasons, pv.TempC, pv.LatchedAt = alerting.ControlLatched, []string{"overheat"}, f(75), started
				pv.Alerts = []string{"overheat"}
			}
			g.ports = append(g.ports, pv)
		}
	}
	g.alerts = []alerting.AlertView{{Active: true, Alert: alerting.Alert{Name: alerting.AlertOverheat, Severity: alerting.SeverityCritical,
		Site: "s1", Pile: "p1", Port: 3, Summary: "port 3 of pile s1/p1 reached 75.0 °C", OnSite: "Go there.", Value: 75, StartsAt: started}}}
	return g
}

// harness is a console on a test server, with its poll loop running.
type harness struct {
	c     *Console
	g     *fakeGuard
	srv   *httptest.Server
	stop  func()
	clock time.Time
}

func newHarness(t *testing.T, tls bool) *harness {
	t.Helper()
	return newHarnessWith(t, tls, nil)
}

// newHarnessWith is newHarness with options changed by with (may be nil).
func newHarnessWith(t *testing.T, tls bool, with func(*Options)) *harness {
	t.Helper()
	g := newFakeGuard()
	o := Options{Guard: g, Auth: testAuth, Poll: 20 * time.Millisecond, HistoryStep: time.Second}
	if with != nil {
		with(&o)
	}
	c, err := New(o)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(c.Handler())
	} else {
		srv = httptest.NewServer(c.Handler())
	}
	h := &harness{c: c, g: g, srv: srv, stop: func() { srv.CloseClientConnections(); srv.Close(); cancel(); <-done }}
	t.Cleanup(h.stop)
	require.Eventually(t, func() bool { return len(c.view.Load().ports) > 0 }, 5*time.Second, 10*time.Millisecond)
	return h
}

func (h *harness) client(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{
		Transport:     h.srv.Client().Transport,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func get(t *testing.T, cl *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := cl.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func post(t *testing.T, cl *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := cl.PostForm(u, form)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(body)
	require.NotNil(t, m, "no CSRF token in the page")
	return m[1]
}

func (h *harness) signIn(t *testing.T, cl *http.Client, name, token string) *http.Response {
	t.Helper()
	_, body := get(t, cl, h.srv.URL+"/signin")
	resp, _ := post(t, cl, h.srv.URL+"/signin", url.Values{"csrf": {csrfOf(t, body)}, "name": {name}, "token": {token}, "next": {"/"}})
	return resp
}

func TestSignInSessionCookieAndPages(t *testing.T) {
	h := newHarness(t, true)
	cl := h.client(t)

	resp, _ := get(t, cl, h.srv.URL+"/")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "a page without a session goes to sign-in")
	require.True(t, strings.HasPrefix(resp.Header.Get("Location"), "/signin"))

	resp = h.signIn(t, cl, "alice", "operator-token-0123456789")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie && c.Value != "" {
			ck = c
		}
	}
	require.NotNil(t, ck, "no session cookie")
	require.True(t, ck.HttpOnly)
	require.True(t, ck.Secure, "a sign-in over TLS gets a Secure cookie")
	require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	require.Greater(t, ck.MaxAge, 0, "the session expires")

	for _, p := range []string{"/", "/sites/s1", "/ports/s1/p1/3", "/alerts", "/alerts/overheat/s1/p1/3"} {
		resp, body := get(t, cl, h.srv.URL+p)
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'", p)
		require.Contains(t, body, "alice", p)
	}
	_, body := get(t, cl, h.srv.URL+"/sites/s1")
	require.Regexp(t, `class="cell latched" id="cell-p1-3"`, body)
	_, body = get(t, cl, h.srv.URL+"/ports/s1/p1/3")
	require.Contains(t, body, `id="reset"`, "an operator sees the reset control")
	require.Contains(t, body, "overheat")
	require.Contains(t, body, "<svg")

	// Sign out ends the session: the old cookie no longer opens a page.
	_, body = get(t, cl, h.srv.URL+"/")
	resp, _ = post(t, cl, h.srv.URL+"/signout", url.Values{"csrf": {csrfOf(t, body)}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	old := &http.Client{Transport: cl.Transport, CheckRedirect: cl.CheckRedirect}
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: ck.Value})
	resp2, err := old.Do(req)
	require.NoError(t, err)
	resp2.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp2.StatusCode, "a signed-out session still opens pages")
}

func TestSignInRefusals(t *testing.T) {
	h := newHarness(t, false)
	cl := h.client(t)

	// No CSRF token from the form: refused even with a good token.
	resp, _ := post(t, cl, h.srv.URL+"/signin", url.Values{"name": {"alice"}, "token": {"operator-token-0123456789"}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	// A right token under another name is refused too.
	resp = h.signIn(t, cl, "bob", "operator-token-0123456789")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	for range 4 {
		resp = h.signIn(t, cl, "alice", "wrong-token-0123456789")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	// Five failures in a minute: even the right token waits now.
	resp = h.signIn(t, cl, "alice", "operator-token-0123456789")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
}

func TestViewerSeesNoControlsAndForgedPostsAreRefused(t *testing.T) {
	h := newHarness(t, false)
	viewer := h.client(t)
	require.Equal(t, http.StatusSeeOther, h.signIn(t, viewer, "victor", "viewer-token-0123456789").StatusCode)
	for _, p := range []string{"/ports/s1/p1/3", "/alerts", "/alerts/overheat/s1/p1/3"} {
		_, body := get(t, viewer, h.srv.URL+p)
		require.NotContains(t, body, `id="reset"`, p)
		require.NotContains(t, body, `class="ack"`, p)
		require.NotContains(t, body, `class="onsite"`, p)
		require.NotContains(t, body, `id="note-form"`, p)
	}
	_, body := get(t, viewer, h.srv.URL+"/")
	csrf := csrfOf(t, body) // the sign-out form's: the viewer's own valid token
	key := "overheat/s1/p1/3"
	for _, c := range []struct {
		path string
		form url.Values
	}{
		{"/ports/s1/p1/3/reset", url.Values{"csrf": {csrf}}},
		{"/alerts/ack", url.Values{"csrf": {csrf}, "key": {key}}},
		{"/alerts/onsite", url.Values{"csrf": {csrf}, "key": {key}}},
		{"/alerts/note", url.Values{"csrf": {csrf}, "key": {key}, "note": {"x"}}},
	} {
		resp, _ := post(t, viewer, h.srv.URL+c.path, c.form)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, c.path)
	}

	operator := h.client(t)
	require.Equal(t, http.StatusSeeOther, h.signIn(t, operator, "alice", "operator-token-0123456789").StatusCode)
	// An operator's session without the form's CSRF token (a cross-site
	// form) is refused; so is no session at all.
	resp, _ := post(t, operator, h.srv.URL+"/ports/s1/p1/3/reset", url.Values{"csrf": {"forged"}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, _ = post(t, h.client(t), h.srv.URL+"/ports/s1/p1/3/reset", url.Values{"csrf": {csrf}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Empty(t, h.g.changes(), "a refused POST reached the engine")

	_, body = get(t, operator, h.srv.URL+"/ports/s1/p1/3")
	ocsrf := csrfOf(t, body)
	resp, _ = post(t, operator, h.srv.URL+"/ports/s1/p1/3/reset", url.Values{"csrf": {ocsrf}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	for _, p := range []string{"/alerts/ack", "/alerts/onsite"} {
		resp, _ = post(t, operator, h.srv.URL+p, url.Values{"csrf": {ocsrf}, "key": {key}, "back": {"https://evil.example/"}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		require.Equal(t, "/alerts", resp.Header.Get("Location"), "a form must not redirect off the site")
	}
	resp, _ = post(t, operator, h.srv.URL+"/alerts/note", url.Values{"csrf": {ocsrf}, "key": {key}, "note": {"battery moved"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, []string{
		"reset s1/p1/3 by alice", "ack overheat/s1/p1/3 by alice", "onsite overheat/s1/p1/3 by alice",
		"note overheat/s1/p1/3 by alice: battery moved",
	}, h.g.changes())

	// A refused reset shows the engine's reason on the next page.
	h.g.mu.Lock()
	h.g.refuse = fmt.Errorf("%w: temp_c 66.0 °C is above 60", alerting.ErrConditionActive)
	h.g.mu.Unlock()
	resp, _ = post(t, operator, h.srv.URL+"/ports/s1/p1/3/reset", url.Values{"csrf": {ocsrf}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, body = get(t, operator, h.srv.URL+resp.Header.Get("Location"))
	require.Contains(t, body, "temp_c 66.0 °C is above 60")
}

// The live stream sends the site grid again when a read changes it.
func TestEventsStreamTheGrid(t *testing.T) {
	h := newHarness(t, false)
	cl := h.client(t)
	require.Equal(t, http.StatusSeeOther, h.signIn(t, cl, "alice", "operator-token-0123456789").StatusCode)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.srv.URL+"/events?view=site&site=s1", nil)
	resp, err := cl.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	waitFor := func(s string) {
		t.Helper()
		for sc.Scan() {
			if strings.Contains(sc.Text(), s) {
				return
			}
		}
		t.Fatalf("stream ended before %q: %v", s, sc.Err())
	}
	waitFor(`id="cell-p2-7" data-state="charging"`)
	h.g.mu.Lock()
	for i := range h.g.ports {
		if h.g.ports[i].Pile == "p2" && h.g.ports[i].Port == 7 {
			h.g.ports[i].Control = alerting.ControlLatched
		}
	}
	h.g.mu.Unlock()
	waitFor(`id="cell-p2-7" data-state="latched"`)
}

func TestLanguage(t *testing.T) {
	h := newHarness(t, false)
	cl := h.client(t)
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/signin", nil)
	req.Header.Set("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.5")
	resp, err := cl.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(b), `lang="zh-CN"`)
	require.Contains(t, string(b), "登录")
	resp, _ = get(t, cl, h.srv.URL+"/lang?to=en&back=//evil.example")
	require.Equal(t, "/", resp.Header.Get("Location"))
	req, _ = http.NewRequest(http.MethodGet, h.srv.URL+"/signin", nil)
	req.Header.Set("Accept-Language", "zh-CN")
	resp, err = cl.Do(req)
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(b), `lang="en"`, "the switch overrides Accept-Language")
}

// A reader in Chinese gets the alert's summary and on-site steps in
// Chinese on every page that shows them (alerts, alert, port, and the live
// parts), built from the alert's fields; English readers get the engine's.
func TestAlertTextsInTheReadersLanguage(t *testing.T) {
	h := newHarness(t, false)
	cl := h.client(t)
	h.signIn(t, cl, "alice", "operator-token-0123456789")
	page := func(path, acceptLang string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
		req.Header.Set("Accept-Language", acceptLang)
		resp, err := cl.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	const zhSummary = "站点 s1，充电桩 p1，端口 3：端口过热，已断电（读数 75 °C）"
	for _, p := range []string{"/alerts", "/alerts/overheat/s1/p1/3", "/ports/s1/p1/3"} {
		zh := page(p, "zh-CN,zh;q=0.9")
		require.Contains(t, zh, zhSummary, p)
		require.NotContains(t, zh, "reached 75.0 °C", p)
		en := page(p, "en-GB")
		require.Contains(t, en, "port 3 of pile s1/p1 reached 75.0 °C", p)
		require.NotContains(t, en, "端口过热", p)
	}
	// The alert chips and the latch reason name the alert in the
	// reader's language, with the id beside it in Chinese.
	for _, p := range []string{"/alerts", "/alerts/overheat/s1/p1/3", "/ports/s1/p1/3"} {
		require.Contains(t, page(p, "zh-CN"), "过热（overheat）", p)
		require.NotContains(t, page(p, "en"), "过热", p)
	}
	require.Regexp(t, `id="latch-reason">过热（overheat）<`, page("/ports/s1/p1/3", "zh-CN"))
	require.Regexp(t, `id="latch-reason">overheat<`, page("/ports/s1/p1/3", "en"))
	zh := page("/alerts/overheat/s1/p1/3", "zh-CN")
	require.Contains(t, zh, "拨打 119", "on-site steps in Chinese")
	require.NotContains(t, zh, "Go there.")
	require.Contains(t, page("/alerts/overheat/s1/p1/3", "en"), "Go there.")
}

// Every alert name renders in both languages without falling back to a
// generic text: a new alert name without its Chinese texts fails here.
func TestEveryAlertRendersInBothLanguages(t *testing.T) {
	for _, n := range alerting.AlertNames() {
		a := alerting.Alert{Name: n, Site: "s1", Pile: "p1", Port: 2, Summary: "engine summary", OnSite: "engine steps", Value: 3}
		require.Equal(t, "engine summary", english.Summary(a), n)
		require.Equal(t, "engine steps", english.OnSite(a), n)
		zs, zo := chinese.Summary(a), chinese.OnSite(a)
		require.True(t, strings.HasPrefix(zs, "站点 s1，充电桩 p1"), "%s: %q", n, zs)
		require.NotContains(t, zs, "chargeguard 告警", n)
		require.NotEqual(t, chinese.OnSite(alerting.Alert{}), zo, "%s: generic on-site steps", n)
		require.NotContains(t, zo+zs, "engine", n)
		// An alert restored from an old state file without texts still
		// gets the catalogue's English.
		a.Summary, a.OnSite = "", ""
		require.NotEmpty(t, english.Summary(a), n)
		require.NotEmpty(t, english.OnSite(a), n)
	}
}

func TestTimelineMeasuresTheResponse(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	a := alerting.AlertView{Alert: alerting.Alert{Name: alerting.AlertOverheat, Site: "s", Pile: "p", Port: 1, StartsAt: t0, EndsAt: t0.Add(10 * time.Minute)}}
	recs := []alerting.AuditRecord{
		{At: t0.Add(-time.Minute), Kind: alerting.AuditAlertAck, Reason: "overheat", Actor: "operator:old"},
		{At: t0.Add(40 * time.Second), Kind: alerting.AuditAlertAck, Reason: "overheat", Actor: "operator:kim"},
		{At: t0.Add(50 * time.Second), Kind: alerting.AuditAlertAck, Reason: "temp_warning", Actor: "operator:lee"},
		{At: t0.Add(4 * time.Minute), Kind: alerting.AuditOnSite, Reason: "overheat", Actor: "operator:kim"},
		{At: t0.Add(5 * time.Minute), Kind: alerting.AuditNote, Reason: "overheat", Actor: "operator:kim", Detail: "moved the battery"},
	}
	tl := timeline(a, recs, english)
	var got []string
	for _, e := range tl {
		got = append(got, fmt.Sprintf("%s %s %s late=%t", e.Kind, e.Who, e.After, e.Late))
	}
	require.Equal(t, []string{
		"fired   late=false", "ack kim 40s late=false", "onsite kim 4m0s late=true", "note kim 5m0s late=false", "cleared  10m0s late=false",
	}, got)
}

// A spike between two chart samples is kept: the chart shows the highest
// reading of each step, not whichever came last.
func TestHistoryKeepsThePeakOfAStep(t *testing.T) {
	h := newHistory(time.Hour, 30*time.Second)
	t0 := time.Unix(1_800_000_000, 0)
	pv := func(temp, a float64) []alerting.PortView {
		return []alerting.PortView{{Site: "s", Pile: "p", Port: 1, TempC: f(temp), A: f(a)}}
	}
	h.add(t0, pv(40, 2))
	h.add(t0.Add(10*time.Second), pv(71, 1))
	h.add(t0.Add(20*time.Second), pv(45, 3))
	h.add(t0.Add(31*time.Second), pv(44, 2))
	ss := h.samples("s", "p", 1, t0.Add(-time.Minute))
	require.Len(t, ss, 2)
	require.Equal(t, float32(71), ss[0].temp)
	require.Equal(t, float32(3), ss[0].amps)
	require.Equal(t, float32(44), ss[1].temp)
	svg := string(chartSVG(t0.Add(time.Minute), ss, 0, "x"))
	require.Contains(t, svg, `<polyline class="temp"`)
	require.Contains(t, svg, `<circle class="amps"`)
}

// The response metrics: the age of the oldest unacknowledged alert (what the
// escalation rule watches), and time-to-acknowledge once someone does.
func TestResponseMetrics(t *testing.T) {
	g := newFakeGuard()
	reg := prometheus.NewRegistry()
	c, err := New(Options{Guard: g, Registerer: reg})
	require.NoError(t, err)
	ctx := context.Background()
	c.poll(ctx)
	age := testutil.ToFloat64(c.m.unackedAge.WithLabelValues("s1", "critical"))
	require.InDelta(t, 120, age, 5)

	g.mu.Lock()
	// Acknowledged after the console started: an acknowledgement from
	// before a restart is not measured again.
	g.alerts[0].AckedBy, g.alerts[0].AckedAt = "kim", time.Now()
	g.mu.Unlock()
	c.poll(ctx)
	require.Zero(t, testutil.CollectAndCount(c.m.unackedAge), "an acknowledged alert still counts as unacknowledged")
	c.poll(ctx) // observed once, not once per poll
	require.Equal(t, 1, testutil.CollectAndCount(c.m.timeToAck))
	h := c.m.timeToAck.WithLabelValues("s1").(prometheus.Histogram)
	var m dto.Metric
	require.NoError(t, h.Write(&m))
	require.Equal(t, uint64(1), m.GetHistogram().GetSampleCount())
	require.InDelta(t, 120, m.GetHistogram().GetSampleSum(), 5)
}

// Stopping the console ends its live streams, so that the HTTP server's
// graceful shutdown does not wait on browsers that never hang up.
func TestStreamsEndWithTheConsole(t *testing.T) {
	c, err := New(Options{Guard: newFakeGuard(), Poll: 20 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/events?view=fleet")
	require.NoError(t, err)
	defer resp.Body.Close()
	ended := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, resp.Body); close(ended) }()
	cancel()
	<-done
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("a live stream outlived the console")
	}
}

func (g *fakeGuard) portReads() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reads
}

// Nobody looking, no reads of the fleet beyond the slow history poll: each
// read walks every port (on the engine's goroutine until the service reads
// from snapshots). A page view starts the once-a-Poll reads again.
func TestIdleConsoleDoesNotPoll(t *testing.T) {
	g := newFakeGuard()
	c, err := New(Options{Guard: g, Poll: 10 * time.Millisecond, IdlePoll: time.Hour})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()

	require.Eventually(t, func() bool { return g.portReads() >= 1 }, 5*time.Second, 5*time.Millisecond)
	c.demand.Store(0) // as if the last page view were long ago
	before := g.portReads()
	idle := time.NewTimer(200 * time.Millisecond) // 20 polls' worth of idleness
	<-idle.C
	require.LessOrEqual(t, g.portReads(), before+1, "an idle console kept reading the fleet")

	resp, err := http.Get(srv.URL + "/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Eventually(t, func() bool { return g.portReads() >= before+3 }, 5*time.Second, 5*time.Millisecond,
		"a page view did not start the reads again")
}

// The fleet's offline counts come from the piles' state in the engine's
// view, not only from alerts: a pile silent past its window whose
// pile_offline alert has resolved, a pile whose last word was a death
// (idle, so no alert), and one restored after a restart and not heard
// from since all count; a pile heard from recently does not, and neither
// does an active alert's pile once it reports again.
func TestOfflineCountsFromTheView(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var ports []alerting.PortView
	add := func(pile string, with func(*alerting.PortView)) {
		for n := 1; n <= 2; n++ {
			p := alerting.PortView{Site: "s1", Pile: pile, Port: n, Control: alerting.ControlOpen, Reported: telemetry.StateCharging,
				TempC: f(30), A: f(2), PileSilentAt: now.Add(time.Minute)}
			with(&p)
			ports = append(ports, p)
		}
	}
	add("silent", func(p *alerting.PortView) { p.PileSilentAt = now.Add(-time.Second) })
	add("dead", func(p *alerting.PortView) { p.PileDead, p.Reported = true, telemetry.StateIdle })
	add("fine", func(*alerting.PortView) {})
	add("unknown", func(p *alerting.PortView) { p.PileSilentAt = time.Time{} })
	alerts := []alerting.AlertView{{Active: false, Alert: alerting.Alert{Name: alerting.AlertPileOffline,
		Severity: alerting.SeverityCritical, Site: "s1", Pile: "silent", StartsAt: now.Add(-time.Hour), EndsAt: now.Add(-time.Minute)}}}
	v := buildView(now, ports, alerts)
	require.Len(t, v.sites, 1)
	s := v.sites[0]
	require.Equal(t, 4, s.Offline, "silent and dead piles, 2 ports each")
	require.Equal(t, 4, s.Charging, "fine and unknown")
	require.Zero(t, s.Alerts)
	require.True(t, v.offline[pileKey("s1", "silent")])
	require.True(t, v.offline[pileKey("s1", "dead")])
	require.False(t, v.offline[pileKey("s1", "fine")])

	// The same view read a minute later: the fine pile fell silent too.
	require.Equal(t, 6, buildView(now.Add(time.Minute), ports, alerts).sites[0].Offline)
	// The site grid and the port page say the same.
	rows := siteRows(v, "s1", english)
	require.Len(t, rows, 4)
	require.True(t, rows[0].Offline, rows[0].Pile)
	require.Contains(t, string(rows[0].Grid), `data-state="offline"`)
}
