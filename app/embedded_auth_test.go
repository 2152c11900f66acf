package app_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/app"
	"github.com/chargeguard/chargeguard/broker/auth"
	"github.com/chargeguard/chargeguard/internal/testenv"
)

// With mqtt.password_file the embedded broker authenticates every client:
// chargeguard logs in with its own account, a pile with its site/pile
// account gets its telemetry stored, and a wrong password is refused.
func TestEmbeddedBrokerWithPasswordFile(t *testing.T) {
	t.Parallel() // mostly waiting on servers and timeouts; the heavy tests run alone
	influx := testenv.Influx(t)
	pw := auth.NewPasswordFile()
	require.NoError(t, pw.Set("chargeguard", "service-password-123", auth.DefaultIterations))
	require.NoError(t, pw.Set("s1/p1", "pile-password-123", auth.DefaultIterations))
	path := filepath.Join(t.TempDir(), "passwords")
	require.NoError(t, pw.WriteFile(path, 0o600))

	cfg := testConfig(t, "", influx, t.TempDir())
	cfg.MQTT.Listen = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg.MQTT.PasswordFile = path
	cfg.MQTT.Username = "chargeguard"
	cfg.MQTT.Password = "service-password-123"
	r := start(t, cfg, app.Options{}) // ready means both MQTT sessions logged in
	// The live session's canary comes back through the ACL: its lag is
	// measured (the gauge stays 0 until one has).
	require.Eventually(t, func() bool { return metric(t, r.reg, "chargeguard_ingest_live_lag_seconds") > 0 },
		10*time.Second, 10*time.Millisecond, "no canary came back through the embedded broker")

	url := "tcp://" + cfg.MQTT.Listen
	bad := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("intruder").
		SetUsername("s1/p1").SetPassword("wrong").SetAutoReconnect(false))
	tok := bad.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.Error(t, tok.Error(), "a wrong password must not connect")

	pile := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("s1/p1").
		SetUsername("s1/p1").SetPassword("pile-password-123"))
	tok = pile.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer pile.Disconnect(100)
	publishRaw(t, pile, "chargers/s1/p1/telemetry", telemetryPayload(1, time.Now().UnixMilli()))
	require.Eventually(t, func() bool { return influx.CountField(t, "port", "temp_c") == 10 }, 30*time.Second, 100*time.Millisecond)
}
