package app_test

import (
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/app"
	"github.com/chargeguard/chargeguard/config"
	"github.com/chargeguard/chargeguard/internal/testenv"
)

// httpConfig is a configuration against a real Mosquitto; InfluxDB is left
// unreachable on purpose (it never makes chargeguard unready).
func httpConfig(t *testing.T, mqttURL string) config.Config {
	cfg := config.Default()
	cfg.MQTT.URL = mqttURL
	cfg.MQTT.ClientID = "chargeguard-http-test"
	cfg.Influx.URL = "http://127.0.0.1:1"
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	return cfg
}

const (
	testOperatorToken = "http-test-operator-0123456789"
	testViewerToken   = "http-test-viewer-9876543210"
)

func getWith(t *testing.T, url, token string) int {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestPprofIsOffOrBehindAnOperator: /debug/pprof/ is not served unless
// http.pprof is set, and then only to an operator's token.
func TestPprofIsOffOrBehindAnOperator(t *testing.T) {
	testenv.Integration(t)
	mosq := testenv.Mosquitto(t)

	cg := start(t, httpConfig(t, mosq.URL), app.Options{})
	base := "http://" + cg.app.HTTPAddr()
	require.Equal(t, http.StatusNotFound, getWith(t, base+"/debug/pprof/", ""), "pprof is off by default")
	require.Equal(t, http.StatusNotFound, getWith(t, base+"/debug/pprof/heap", ""))
	cg.stop(t)

	cfg := httpConfig(t, mosq.URL)
	cfg.HTTP.Pprof = true
	cfg.API.Tokens = []config.APIToken{
		{Name: "ops", Token: testOperatorToken, Role: "operator"},
		{Name: "board", Token: testViewerToken, Role: "viewer"},
	}
	cg = start(t, cfg, app.Options{})
	base = "http://" + cg.app.HTTPAddr()
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/symbol"} {
		require.Equal(t, http.StatusUnauthorized, getWith(t, base+path, ""), path)
		require.Equal(t, http.StatusForbidden, getWith(t, base+path, testViewerToken), path)
		require.Equal(t, http.StatusOK, getWith(t, base+path, testOperatorToken), path)
	}
	// With tokens, reads need one too.
	require.Equal(t, http.StatusUnauthorized, getWith(t, base+"/api/v1/ports", ""))
	require.Equal(t, http.StatusOK, getWith(t, base+"/api/v1/ports", testViewerToken))
	// Probes and Prometheus need no token.
	require.Equal(t, http.StatusOK, getWith(t, base+"/metrics", ""))
	require.Equal(t, http.StatusOK, getWith(t, base+"/healthz", ""))
}

// TestReadyzReportsCommandSession: /readyz names the command (actuator)
// session and is unready while it is down.
func TestReadyzReportsCommandSession(t *testing.T) {
	testenv.Integration(t)
	mosq := testenv.Mosquitto(t)
	cg := start(t, httpConfig(t, mosq.URL), app.Options{})
	url := "http://" + cg.app.HTTPAddr() + "/readyz"
	status := func() (int, map[string]string) {
		resp, err := httpClient.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]string
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		return resp.StatusCode, m
	}
	code, m := status()
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok", m["commands"])

	mosq.Stop()
	require.Eventually(t, func() bool {
		code, m := status()
		return code == http.StatusServiceUnavailable && m["commands"] != "ok" && m["commands"] != ""
	}, 30*time.Second, 50*time.Millisecond, "readyz never reported the command session down")
	mosq.Start()
	require.Eventually(t, func() bool {
		code, m := status()
		return code == http.StatusOK && m["commands"] == "ok"
	}, 60*time.Second, 100*time.Millisecond, "readyz never reported the command session back")
}

// TestHTTPConnectionCap: http.max_conns connections that send nothing hold
// every slot (until ReadHeaderTimeout); one more request waits, and goes
// through once a slot frees.
func TestHTTPConnectionCap(t *testing.T) {
	testenv.Integration(t)
	mosq := testenv.Mosquitto(t)
	cfg := httpConfig(t, mosq.URL)
	cfg.HTTP.MaxConns = 8
	cg := start(t, cfg, app.Options{})
	addr := cg.app.HTTPAddr()
	// start's readiness probe may still hold a keep-alive connection; let
	// it go so that the count below is exact.
	http.DefaultClient.CloseIdleConnections()
	httpClient.CloseIdleConnections()

	var idle []net.Conn
	for range cfg.HTTP.MaxConns {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	short := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	// Every slot is taken by a silent connection: the request is accepted
	// by the kernel but never served within its second.
	_, err := short.Get("http://" + addr + "/healthz")
	require.Error(t, err, "a request was served beyond http.max_conns")

	idle[0].Close()
	idle = idle[1:]
	require.Eventually(t, func() bool {
		resp, err := short.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond)
}
