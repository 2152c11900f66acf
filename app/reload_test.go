package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/app"
	"github.com/chargeguard/chargeguard/config"
	"github.com/chargeguard/chargeguard/internal/testenv"
	"github.com/chargeguard/chargeguard/telemetry"
)

// reloadConfig writes a config file whose rules set overheat_c and warn_c.
func reloadConfig(t *testing.T, path string, overheat, warn float64) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`
alerting:
  rules:
    defaults:
      overheat_c: %g
      warn_c: %g
api:
  tokens:
    - {name: alice, token: operator-token-0123456789, role: operator}
`, overheat, warn)), 0o600))
}

// startForReload starts chargeguard on the embedded broker with no
// InfluxDB (readings wait in the spool); configPath is app.Options.ConfigPath.
func startForReload(t *testing.T, cfg *config.Config, configPath string) *running {
	t.Helper()
	cfg.MQTT.URL = "" // the embedded broker: these tests need no outside server
	cfg.MQTT.Listen = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg.Influx.URL = fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)) // nobody there
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	return start(t, *cfg, app.Options{ConfigPath: configPath})
}

// postJSON posts with the operator token and decodes the JSON answer.
func postJSON(t *testing.T, url string) (int, map[string]string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer operator-token-0123456789")
	resp, err := httpClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var body map[string]string
	require.NoError(t, json.Unmarshal(b, &body), "%s", b)
	return resp.StatusCode, body
}

func (p *testPile) closedFor(port int, reason string) bool {
	for _, c := range p.commands() {
		if c.Action == telemetry.ActionClose && c.Port == port && c.Reason == reason {
			return true
		}
	}
	return false
}

// A reload through the API re-reads the rules from the config file and
// applies them at once, keeping what the engine knows; a bad file is
// refused with the field named and the old rules stay in force (not the
// bad file's other values, not the defaults).
func TestReloadRulesFromConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chargeguard.yaml")
	reloadConfig(t, path, 75, 55)
	cfg, err := config.Load(path)
	require.NoError(t, err)
	cg := startForReload(t, &cfg, path)

	pile := newTestPile(t, "tcp://"+cfg.MQTT.Listen, "s9", "p1")
	pile.send(telemetry.StateCharging, 2, 72)
	reload := "http://" + cg.app.HTTPAddr() + "/api/v1/reload"

	// A broken file (overheat_c 60 is not above warn_c 65) is refused,
	// naming the file and the field, and changes nothing: 72 °C stays
	// under the old 75 °C, where the file's 60 °C or the default 70 °C
	// would cut.
	reloadConfig(t, path, 60, 65)
	code, body := postJSON(t, reload)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Equal(t, "invalid_rules", body["reason"])
	// docs/api.md quotes this message.
	require.Equal(t, "the new rules are invalid; the old rules stay: reload: config "+path+
		": alerting.rules: rules.defaults.overheat_c: must be above warn_c (65)", body["detail"])
	pile.send(telemetry.StateCharging, 2, 72)
	pile.fence(5)
	require.False(t, pile.closedFor(3, "overheat"), "72 °C closed the port: the refused reload changed the rules")

	reloadConfig(t, path, 60, 55)
	code, body = postJSON(t, reload)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, map[string]string{"status": "reloaded", "operator": "alice"}, body)
	pile.send(telemetry.StateCharging, 2, 72)
	require.Eventually(t, func() bool { return pile.closedFor(3, "overheat") },
		10*time.Second, 20*time.Millisecond, "72 °C did not close the port after the limit was reloaded to 60 °C")
}

// Without --config there is nothing to re-read: the API says so with 501
// unsupported, as docs/api.md promises, not 422 invalid_rules.
func TestReloadWithoutConfigFileIsUnsupported(t *testing.T) {
	cfg := config.Default()
	cfg.API.Tokens = []config.APIToken{{Name: "alice", Token: "operator-token-0123456789", Role: "operator"}}
	cg := startForReload(t, &cfg, "")
	code, body := postJSON(t, "http://"+cg.app.HTTPAddr()+"/api/v1/reload")
	require.Equal(t, http.StatusNotImplemented, code, "%v", body)
	require.Equal(t, "unsupported", body["reason"])
	// docs/api.md quotes this message.
	require.Equal(t, "this chargeguard does not support this operation (reload: chargeguard was started without --config; nothing to re-read: unsupported operation)", body["detail"])
}

// The last line chargeguard logs on a clean stop says it has stopped (the
// spool and the safety state are closed), after "stopping".
func TestStopLogsStoppedLast(t *testing.T) {
	cfg := config.Default()
	cfg.MQTT.URL = ""
	cfg.MQTT.Listen = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg.Influx.URL = fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t))
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	var logs syncBuffer
	a, err := app.New(cfg, app.Options{Logger: zerolog.New(&logs), Registry: prometheus.NewRegistry()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitReady(t, "http://"+a.HTTPAddr())
	cancel()
	require.NoError(t, <-done)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var last struct{ Level, Message, Took string }
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &last))
	require.Equal(t, "stopped", last.Message, logs.String())
	require.Equal(t, "info", last.Level)
	_, err = time.ParseDuration(last.Took)
	require.NoError(t, err)
	require.Contains(t, logs.String(), `"message":"stopping"`)
}

// syncBuffer is a bytes.Buffer safe for the app's and the test's goroutines.
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
