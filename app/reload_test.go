package app_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/app"
	"github.com/chargeguard/chargeguard/config"
	"github.com/chargeguard/chargeguard/internal/testenv"
	"github.com/chargeguard/chargeguard/telemetry"
)

// A reload through the API re-reads the rules from the config file and
// applies them at once, keeping what the engine knows; a bad file is
// refused with the field named and the old rules stay.
func TestReloadRulesFromConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "chargeguard.yaml")
	write := func(overheat string) {
		require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`
alerting:
  rules:
    defaults:
      overheat_c: %s
api:
  tokens:
    - {name: alice, token: operator-token-0123456789, role: operator}
`, overheat)), 0o600))
	}
	write("70")
	cfg, err := config.Load(path)
	require.NoError(t, err)
	cfg.MQTT.URL = "" // the embedded broker: this test needs no outside server
	cfg.MQTT.Listen = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg.Influx.URL = fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)) // nobody there: readings wait in the spool
	cfg.DataDir = dir
	cfg.HTTP.Addr = "127.0.0.1:0"
	cg := start(t, cfg, app.Options{ConfigPath: path})

	pile := newTestPile(t, "tcp://"+cfg.MQTT.Listen, "s9", "p1")
	pile.send(telemetry.StateCharging, 2, 65)
	reload := "http://" + cg.app.HTTPAddr() + "/api/v1/reload"

	// A broken file is refused, naming the field, and changes nothing.
	write("-5")
	req, _ := http.NewRequest(http.MethodPost, reload, nil)
	req.Header.Set("Authorization", "Bearer operator-token-0123456789")
	resp, err := httpClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)

	write("60")
	require.Equal(t, http.StatusOK, post(t, reload, "operator-token-0123456789"))
	pile.send(telemetry.StateCharging, 2, 65)
	require.Eventually(t, func() bool {
		for _, c := range pile.commands() {
			if c.Action == telemetry.ActionClose && c.Port == 3 && c.Reason == "overheat" {
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "65 °C did not close the port after the limit was reloaded to 60 °C")
}
