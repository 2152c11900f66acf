package app_test

import (
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/app"
	"github.com/chargeguard/chargeguard/internal/testenv"
)

// A shard (mqtt.sites) guards and stores its own sites only: telemetry of
// another site, published first, reaches neither its storage session nor
// its engine, while its own site's is stored and watched. Without the
// filter both sessions subscribe to chargers/# and take everything.
func TestShardOfSitesTakesOnlyItsSites(t *testing.T) {
	mosq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	cfg := testConfig(t, mosq.URL, influx, t.TempDir())
	cfg.MQTT.Sites = []string{"north", "east"}
	cg := start(t, cfg, app.Options{})

	pub := paho.NewClient(paho.NewClientOptions().AddBroker(mosq.URL).SetClientID("shard-pub").SetOrderMatters(true))
	tok := pub.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer pub.Disconnect(100)
	const n = 20
	base := time.Now().Add(-time.Minute).UnixMilli()
	publish := func(site string) {
		for i := range n {
			tok := pub.Publish(fmt.Sprintf("chargers/%s/p1/telemetry", site), 1, false, telemetryPayload(uint32(i+1), base+int64(i)))
			require.True(t, tok.WaitTimeout(10*time.Second))
			require.NoError(t, tok.Error())
		}
	}
	publish("south") // another shard's site, first
	publish("north")

	count := func(site string) int64 {
		rows, err := influx.QueryErr(fmt.Sprintf(`SELECT count("seq") FROM "pile" WHERE "site" = '%s'`, site))
		require.NoError(t, err)
		if len(rows) == 0 || len(rows[0].Values) == 0 {
			return 0
		}
		v, _ := rows[0].Values[0][1].(interface{ Int64() (int64, error) }).Int64()
		return v
	}
	require.Eventually(t, func() bool { return count("north") == n }, time.Minute, 200*time.Millisecond, "north's telemetry never stored")
	require.Eventually(t, func() bool { return metric(t, cg.reg, "chargeguard_alerting_view_ports") == 10 }, 30*time.Second, 100*time.Millisecond,
		"the engine should watch north's 10 ports: %v", metric(t, cg.reg, "chargeguard_alerting_view_ports"))
	require.Zero(t, count("south"), "another shard's site was stored")
	require.EqualValues(t, n, metric(t, cg.reg, "chargeguard_ingest_received_total"), "the storage session received another shard's messages")
	require.EqualValues(t, 10, metric(t, cg.reg, "chargeguard_alerting_view_ports"), "the engine watched another shard's ports")
}
