package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	waitFor = 20 * time.Second
	tick    = 20 * time.Millisecond
)

// received collects the payloads a paho client delivers.
type received struct {
	mu   sync.Mutex
	msgs []string
}

func (r *received) handle(_ mqtt.Client, m mqtt.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, string(m.Payload()))
}

func (r *received) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

func (r *received) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// connect connects a paho client; a persistent session when clean is false.
func connect(t *testing.T, url, id string, clean bool, onMessage mqtt.MessageHandler) mqtt.Client {
	t.Helper()
	opts := mqtt.NewClientOptions().
		AddBroker(url).
		SetClientID(id).
		SetCleanSession(clean).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(false).
		SetConnectTimeout(5 * time.Second)
	if onMessage != nil {
		opts.SetDefaultPublishHandler(onMessage)
	}
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second), "connect %s: timeout", id)
	require.NoError(t, tok.Error(), "connect %s", id)
	t.Cleanup(func() {
		if c.IsConnected() {
			c.Disconnect(100)
		}
	})
	return c
}

func wait(t *testing.T, tok mqtt.Token, what string) {
	t.Helper()
	require.True(t, tok.WaitTimeout(10*time.Second), "%s: timeout", what)
	require.NoError(t, tok.Error(), what)
}

func TestMosquittoPublishSubscribe(t *testing.T) {
	broker := Mosquitto(t)
	assert.Equal(t, "tcp://"+broker.Addr, broker.URL)
	assert.True(t, strings.HasPrefix(broker.Addr, "127.0.0.1:"))

	var got received
	sub := connect(t, broker.URL, "sub", true, nil)
	wait(t, sub.Subscribe("chargers/s1/+/telemetry", 1, got.handle), "subscribe")
	pub := connect(t, broker.URL, "pub", true, nil)
	wait(t, pub.Publish("chargers/s1/p1/telemetry", 1, false, `{"v":1}`), "publish")
	wait(t, pub.Publish("chargers/s2/p1/telemetry", 1, false, `{"v":2}`), "publish")

	require.Eventually(t, func() bool { return got.count() >= 1 }, waitFor, tick)
	assert.Equal(t, []string{`{"v":1}`}, got.all(), "only the subscribed site's message")
}

// TestMosquittoQueuesBeyondDefaultLimit proves that the production tuning
// reaches the test broker: with Mosquitto's default max_queued_messages of
// 1000, most of these messages to an offline persistent session would be
// dropped silently. It also checks that a graceful restart keeps the queue.
func TestMosquittoQueuesBeyondDefaultLimit(t *testing.T) {
	broker := Mosquitto(t)
	const n = 3000

	sub := connect(t, broker.URL, "chargeguard-test", false, nil)
	wait(t, sub.Subscribe("chargers/+/+/telemetry", 1, nil), "subscribe")
	sub.Disconnect(100)

	pub := connect(t, broker.URL, "pile", true, nil)
	toks := make([]mqtt.Token, 0, n)
	for i := range n {
		toks = append(toks, pub.Publish("chargers/s1/p1/telemetry", 1, false, fmt.Sprintf(`{"seq":%d}`, i)))
	}
	for i, tok := range toks {
		wait(t, tok, fmt.Sprintf("publish %d", i))
	}
	pub.Disconnect(100)

	pid := broker.PID()
	broker.Stop() // a clean shutdown saves the queue to the persistence file
	assert.False(t, broker.Running())
	broker.Start()
	assert.NotEqual(t, pid, broker.PID())

	var got received
	connect(t, broker.URL, "chargeguard-test", false, got.handle)
	require.Eventually(t, func() bool { return got.count() >= n }, waitFor, tick,
		"the persistent session must get all %d queued messages after the restart", n)
	seen := map[string]bool{}
	for _, m := range got.all() {
		seen[m] = true
	}
	assert.Len(t, seen, n, "every message once")
}

func TestMosquittoKillAndStart(t *testing.T) {
	broker := Mosquitto(t)
	addr := broker.Addr
	broker.Kill()
	assert.False(t, broker.Running())
	require.Error(t, mqttProbe(addr, time.Second), "a killed broker must not accept connections")

	broker.Start()
	assert.Equal(t, addr, broker.Addr)
	var got received
	sub := connect(t, broker.URL, "sub", true, nil)
	wait(t, sub.Subscribe("x", 1, got.handle), "subscribe")
	wait(t, sub.Publish("x", 1, false, "after restart"), "publish")
	require.Eventually(t, func() bool { return got.count() == 1 }, waitFor, tick)
}

func TestInfluxWriteCountQueryAndCrash(t *testing.T) {
	influx := Influx(t)
	assert.Equal(t, "chargeguard/autogen", influx.Bucket())
	assert.Equal(t, int64(0), influx.Count(t, "port"), "a measurement that does not exist yet")

	influx.WriteLines(t, "port,site=s1,pile=p1,port=3 temp_c=38.5,a=1.8 1751371200000000000\n")
	assert.Equal(t, int64(1), influx.Count(t, "port"))
	assert.Equal(t, int64(1), influx.CountField(t, "port", "temp_c"))
	assert.Equal(t, int64(0), influx.CountField(t, "port", "no_such_field"))

	series := influx.Query(t, `SELECT temp_c FROM "port" WHERE site = 's1'`)
	require.Len(t, series, 1)
	assert.Equal(t, "port", series[0].Name)
	assert.Equal(t, []string{"time", "temp_c"}, series[0].Columns)
	require.Len(t, series[0].Values, 1)
	assert.Equal(t, "2025-07-01T12:00:00Z", series[0].Values[0][0])
	assert.Equal(t, json.Number("38.5"), series[0].Values[0][1])
	assert.Len(t, influx.Rows(t, `SELECT * FROM "port"`), 1)

	_, err := influx.QueryErr("SELEKT nonsense")
	assert.Error(t, err, "a bad query is an error, not an empty result")
	assert.Error(t, influx.WriteLinesErr("not line protocol\n"))

	// wal-fsync-delay 0: a point InfluxDB answered 204 for survives a crash.
	influx.Kill()
	assert.False(t, influx.Running())
	influx.Start()
	assert.Equal(t, int64(1), influx.Count(t, "port"))

	influx.WriteLines(t, "port,site=s1,pile=p1,port=4 temp_c=30 1751371201000000000\n")
	influx.Stop()
	influx.Start()
	assert.Equal(t, int64(2), influx.Count(t, "port"))
}

func TestInfluxFluxEnabled(t *testing.T) {
	influx := Influx(t)
	influx.WriteLines(t, "port,site=s1 temp_c=40 1751371200000000000\nport,site=s1 temp_c=41 1751371201000000000\n")
	flux := `from(bucket: "chargeguard/autogen") |> range(start: 0) |> filter(fn: (r) => r._measurement == "port") |> count()`
	req, err := http.NewRequest(http.MethodPost, influx.URL+"/api/v2/query", strings.NewReader(flux))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/vnd.flux")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	// Annotated CSV: the count is the last column of the data row.
	var last string
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") && !strings.Contains(line, "_value") {
			last = strings.TrimSpace(line)
		}
	}
	assert.True(t, strings.HasSuffix(last, ",2"), "flux count row %q", last)
}

func TestAlertmanagerReceivesAlert(t *testing.T) {
	am := Alertmanager(t, "")
	assert.Empty(t, am.Alerts(t))

	alert := []map[string]any{{
		"labels":      map[string]string{"alertname": "overheat", "site": "s1", "pile": "p1", "port": "3", "severity": "critical"},
		"annotations": map[string]string{"summary": "port 3 at 72 °C"},
		"startsAt":    time.Now().UTC().Format(time.RFC3339),
	}}
	body, err := json.Marshal(alert)
	require.NoError(t, err)
	resp, err := http.Post(am.URL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(answer))

	var got []Alert
	require.Eventually(t, func() bool {
		got = am.Alerts(t)
		return len(got) == 1
	}, waitFor, tick)
	assert.Equal(t, "overheat", got[0].Labels["alertname"])
	assert.Equal(t, "3", got[0].Labels["port"])
	assert.Equal(t, "port 3 at 72 °C", got[0].Annotations["summary"])
	assert.Equal(t, "active", got[0].Status.State)
	assert.Equal(t, "blackhole", got[0].Receivers[0].Name)

	// Alerts live in memory: a restart forgets them and the server comes
	// back on the same URL.
	url := am.URL
	am.Kill()
	am.Start()
	assert.Equal(t, url, am.URL)
	assert.Empty(t, am.Alerts(t))
}
