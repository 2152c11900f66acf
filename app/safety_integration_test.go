package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/app"
	"github.com/chargeguard/chargeguard/config"
	"github.com/chargeguard/chargeguard/internal/testenv"
	"github.com/chargeguard/chargeguard/telemetry"
)

// testPile is a minimal pile for end-to-end tests: it obeys commands and
// acks them, and records what it received.
type testPile struct {
	t          *testing.T
	site, pile string
	cl         paho.Client
	mu         sync.Mutex
	cmds       []telemetry.Command
	seq        uint32
	ackClosed  bool                 // ack closes with ok (false: never ack)
	port3      telemetry.PortSample // port 3 as last sent
}

func newTestPile(t *testing.T, brokerURL, site, pile string) *testPile {
	p := &testPile{t: t, site: site, pile: pile, ackClosed: true}
	p.cl = connect(t, brokerURL, "pile-"+site+"-"+pile)
	tok := p.cl.Subscribe("chargers/"+site+"/"+pile+"/cmd", 1, func(_ paho.Client, m paho.Message) {
		msg, err := telemetry.DecodeTopic("chargers", m.Topic(), m.Payload(), time.Now())
		if err != nil || msg.Command == nil {
			t.Errorf("pile got a bad command: %v", err)
			return
		}
		p.mu.Lock()
		p.cmds = append(p.cmds, *msg.Command)
		ack := p.ackClosed
		p.mu.Unlock()
		if !ack {
			return
		}
		state := telemetry.StateClosed
		if msg.Command.Action == telemetry.ActionOpen {
			state = telemetry.StateIdle
		}
		b, _ := telemetry.Encode(&telemetry.Ack{ID: msg.Command.ID, TS: time.Now().UnixMilli(), Port: msg.Command.Port, OK: true, State: state})
		p.cl.Publish("chargers/"+site+"/"+pile+"/ack", 1, false, b)
	})
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	b, _ := telemetry.Encode(&telemetry.Status{TS: time.Now().UnixMilli(), Online: true, Ports: 10, RatedA: 5, FW: "test", Kind: telemetry.SiteResidential})
	publishRaw(t, p.cl, "chargers/"+site+"/"+pile+"/status", b)
	return p
}

func (p *testPile) commands() []telemetry.Command {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]telemetry.Command(nil), p.cmds...)
}

// send publishes telemetry with port 3 in the given state and temperature,
// the other ports idle.
func (p *testPile) send(state telemetry.PortState, a, temp float64) {
	p.seq++
	tm := telemetry.Telemetry{TS: time.Now().UnixMilli(), Seq: p.seq, AmbientC: telemetry.F(25), Smoke: telemetry.B(false), LeakMA: telemetry.F(1)}
	for n := 1; n <= 10; n++ {
		s := telemetry.PortSample{N: n, State: telemetry.StateIdle, A: telemetry.F(0), W: telemetry.F(0), TempC: telemetry.F(25)}
		if n == 3 {
			s = telemetry.PortSample{N: 3, State: state, A: telemetry.F(a), W: telemetry.F(a * 220), TempC: telemetry.F(temp)}
			p.port3 = s
		}
		tm.Ports = append(tm.Ports, s)
	}
	b, err := telemetry.Encode(&tm)
	require.NoError(p.t, err)
	publishRaw(p.t, p.cl, "chargers/"+p.site+"/"+p.pile+"/telemetry", b)
}

// fence proves that chargeguard has acted on everything the pile sent
// before it: it publishes port 3 as last sent and port n overheating,
// and waits for port n's close. The pile's messages are evaluated in order
// and its commands arrive in the order they were published, so any command
// an earlier message caused has reached the pile by then. Port n stays
// latched.
func (p *testPile) fence(n int) {
	p.t.Helper()
	p.seq++
	tm := telemetry.Telemetry{TS: time.Now().UnixMilli(), Seq: p.seq, AmbientC: telemetry.F(25), Smoke: telemetry.B(false), LeakMA: telemetry.F(1)}
	for k := 1; k <= 10; k++ {
		s := telemetry.PortSample{N: k, State: telemetry.StateIdle, A: telemetry.F(0), W: telemetry.F(0), TempC: telemetry.F(25)}
		switch k {
		case 3:
			s = p.port3
		case n:
			s = telemetry.PortSample{N: n, State: telemetry.StateCharging, A: telemetry.F(2), W: telemetry.F(440), TempC: telemetry.F(80)}
		}
		tm.Ports = append(tm.Ports, s)
	}
	b, err := telemetry.Encode(&tm)
	require.NoError(p.t, err)
	publishRaw(p.t, p.cl, "chargers/"+p.site+"/"+p.pile+"/telemetry", b)
	require.Eventually(p.t, func() bool {
		for _, c := range p.commands() {
			if c.Action == telemetry.ActionClose && c.Port == n {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "the fence on port %d never got its close", n)
}

// noOpen fails if the pile was ever told to open a port.
func (p *testPile) noOpen() {
	p.t.Helper()
	for _, c := range p.commands() {
		require.NotEqual(p.t, telemetry.ActionOpen, c.Action, "the service reopened a latched port by itself: %+v", c)
	}
}

// webhook is an Alertmanager webhook receiver.
type webhook struct {
	mu     sync.Mutex
	alerts []map[string]any
	srv    *httptest.Server
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var msg struct {
			Alerts []map[string]any `json:"alerts"`
		}
		if err := json.Unmarshal(b, &msg); err == nil {
			w.mu.Lock()
			w.alerts = append(w.alerts, msg.Alerts...)
			w.mu.Unlock()
		}
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) has(alertname, status string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.alerts {
		labels, _ := a["labels"].(map[string]any)
		if labels["alertname"] == alertname && a["status"] == status {
			return true
		}
	}
	return false
}

// firingBefore reports whether a firing alert of that name for that site
// and pile, which started before t, reached the webhook.
func (w *webhook) firingBefore(alertname, site, pile string, t time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.alerts {
		labels, _ := a["labels"].(map[string]any)
		if labels["alertname"] != alertname || labels["site"] != site || labels["pile"] != pile || a["status"] != "firing" {
			continue
		}
		s, _ := a["startsAt"].(string)
		if at, err := time.Parse(time.RFC3339Nano, s); err == nil && at.Before(t) {
			return true
		}
	}
	return false
}

func alertmanagerConfig(webhookURL string) string {
	return fmt.Sprintf(`
route:
  receiver: hook
  group_by: [alertname, site, pile, port]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %q
        send_resolved: true
`, webhookURL)
}

// An overheat on a real stack: the port is closed within the ack loop, the
// cut is confirmed, the alert reaches Alertmanager and its webhook, the
// alert and the audit are in InfluxDB, and after a restart the port is still
// latched. A normal reading afterwards never reopens it.
func TestOverheatCutEndToEnd(t *testing.T) {
	t.Parallel() // mostly waiting on servers and timeouts; the heavy tests run alone
	mosq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	hook := newWebhook(t)
	am := testenv.Alertmanager(t, alertmanagerConfig(hook.srv.URL))
	dataDir := t.TempDir()
	cfg := testConfig(t, mosq.URL, influx, dataDir)
	cfg.Alerting.Alertmanagers = []string{am.URL}
	cfg.API.Tokens = []config.APIToken{
		{Name: "alice", Token: "operator-token-0123456789", Role: "operator"},
		{Name: "victor", Token: "viewer-token-0123456789", Role: "viewer"},
	}
	cg := start(t, cfg, app.Options{})

	pile := newTestPile(t, mosq.URL, "s1", "p1")
	pile.send(telemetry.StateCharging, 2, 50)
	pile.send(telemetry.StateCharging, 2, 71)
	require.Eventually(t, func() bool { return len(pile.commands()) > 0 }, 10*time.Second, 10*time.Millisecond, "no close command")
	c := pile.commands()[0]
	require.Equal(t, telemetry.ActionClose, c.Action)
	require.Equal(t, 3, c.Port)
	require.Equal(t, "overheat", c.Reason)

	require.Eventually(t, func() bool { return hook.has("overheat", "firing") }, 30*time.Second, 50*time.Millisecond, "on-call never paged")
	require.Eventually(t, func() bool {
		return metric(t, cg.reg, "chargeguard_commands_acked_total", "action", "close", "ok", "true") == 1
	}, 10*time.Second, 20*time.Millisecond, "the cut was never confirmed")
	require.Eventually(t, func() bool { return metric(t, cg.reg, "chargeguard_ports_latched") == 1 },
		5*time.Second, 50*time.Millisecond, "the latched-ports gauge never showed the cut port")

	// The pile reports the port closed and cooling: no open, ever.
	for range 5 {
		pile.send(telemetry.StateClosed, 0, 40)
	}
	pile.fence(5)
	pile.noOpen()
	require.Eventually(t, func() bool {
		return influx.CountField(t, "alert", "port") >= 1 && influx.CountField(t, "audit", "port") >= 2
	}, 30*time.Second, 100*time.Millisecond, "alert and audit never reached InfluxDB")

	// Restart on the same data dir: still latched, and still no open.
	cg.stop(t)
	cfg.HTTP.Addr = "127.0.0.1:0"
	cg2 := start(t, cfg, app.Options{})
	ports, err := cg2.app.Guard().Ports(context.Background(), alerting.PortFilter{Site: "s1", Pile: "p1", State: alerting.ControlLatched})
	require.NoError(t, err)
	var latched []int
	for _, ps := range ports {
		latched = append(latched, ps.Port)
	}
	require.ElementsMatch(t, []int{3, 5}, latched, "port 3 (the overheat) and port 5 (the fence) stay latched")
	pile.send(telemetry.StateClosed, 0, 30)
	pile.fence(6)
	pile.noOpen()

	// Only an authenticated operator reopens it.
	reset := "http://" + cg2.app.HTTPAddr() + "/api/v1/ports/s1/p1/3/reset"
	require.Equal(t, http.StatusUnauthorized, post(t, reset, ""))
	require.Equal(t, http.StatusForbidden, post(t, reset, "viewer-token-0123456789"))
	require.Eventually(t, func() bool {
		return post(t, reset, "operator-token-0123456789") == http.StatusAccepted
	}, 10*time.Second, 100*time.Millisecond, "the operator's reset was refused after the port cooled")
	require.Eventually(t, func() bool {
		for _, c := range pile.commands() {
			if c.Action == telemetry.ActionOpen && c.Port == 3 {
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "the pile never got the open command")
	require.Eventually(t, func() bool { return hook.has("overheat", "resolved") }, 30*time.Second, 50*time.Millisecond, "the alert never resolved")
}

func post(t *testing.T, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// Restart chargeguard while a close awaits its ack: after the restart the
// same command (same id) is resent and completed once the pile answers.
func TestCloseAwaitingAckSurvivesRestart(t *testing.T) {
	t.Parallel() // mostly waiting on servers and timeouts; the heavy tests run alone
	mosq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	cfg := testConfig(t, mosq.URL, influx, t.TempDir())
	cg := start(t, cfg, app.Options{})

	pile := newTestPile(t, mosq.URL, "s2", "p7")
	pile.mu.Lock()
	pile.ackClosed = false // the pile is slow: it does not answer yet
	pile.mu.Unlock()
	pile.send(telemetry.StateCharging, 2, 75)
	require.Eventually(t, func() bool { return len(pile.commands()) >= 1 }, 10*time.Second, 10*time.Millisecond)
	first := pile.commands()[0]
	require.Equal(t, telemetry.ActionClose, first.Action)
	cg.stop(t)

	pile.mu.Lock()
	pile.ackClosed = true
	pile.mu.Unlock()
	cg2 := start(t, cfg, app.Options{})
	require.Eventually(t, func() bool {
		return metric(t, cg2.reg, "chargeguard_commands_acked_total", "action", "close", "ok", "true") >= 1
	}, 20*time.Second, 50*time.Millisecond, "the close awaiting its ack was never completed after the restart")
	var ids []string
	for _, c := range pile.commands() {
		if c.Port == 3 && c.Action == telemetry.ActionClose {
			ids = append(ids, c.ID)
		}
	}
	require.GreaterOrEqual(t, len(ids), 2, "the close was resent after the restart")
	for _, id := range ids {
		require.Equal(t, first.ID, id, "a resend reuses the command's id")
	}
	ports, err := cg2.app.Guard().Ports(context.Background(), alerting.PortFilter{Site: "s2", Pile: "p7", State: alerting.ControlLatched})
	require.NoError(t, err)
	require.Len(t, ports, 1)
}
