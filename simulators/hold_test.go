package simulators

import (
	"context"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/internal/testenv"
	"github.com/chargeguard/chargeguard/telemetry"
)

// HoldScenario reports the result at the scenario's end and then keeps its
// piles online, still reporting, with no death until ctx is done; then the
// piles die as on any clean stop.
func TestHoldScenarioKeepsThePilesOnline(t *testing.T) {
	broker := testenv.Mosquitto(t)
	sc, err := ParseScenario([]byte(`name: hold
sites: [{id: s, kind: open_air, rated_a: 5, piles: [{id: p, ports: 2}]}]
start: 2025-06-08T11:00:00+08:00
duration: 3s
interval: 1s
speed_note: a test
expect:
  - no_open: {}
`), "hold.yaml")
	require.NoError(t, err)
	sc.Root = "holdtest"

	var mu sync.Mutex
	var deaths, telemetryAfter int
	var reported time.Time
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("hold-watch"))
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer c.Disconnect(100)
	tok = c.Subscribe("holdtest/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		msg, err := telemetry.DecodeTopic("holdtest", m.Topic(), m.Payload(), time.Now())
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case msg.Status != nil && !msg.Status.Online:
			deaths++
		case msg.Telemetry != nil && !reported.IsZero():
			telemetryAfter++
		}
	})
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	results := make(chan Result, 1)
	done := make(chan error, 1)
	go func() {
		done <- HoldScenario(ctx, sc, broker.URL, zerolog.Nop(), func(r Result) {
			mu.Lock()
			reported = time.Now()
			mu.Unlock()
			results <- r
		})
	}()
	var res Result
	select {
	case res = <-results:
	case <-time.After(30 * time.Second):
		t.Fatal("the scenario never reported")
	}
	require.True(t, res.Passed(), "%s", res)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return telemetryAfter >= 2 },
		10*time.Second, 10*time.Millisecond, "the held pile stopped reporting")
	mu.Lock()
	require.Zero(t, deaths, "a held pile died at the scenario's end")
	mu.Unlock()
	cancel()
	require.NoError(t, <-done)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return deaths == 1 },
		10*time.Second, 10*time.Millisecond, "the pile did not die on the clean stop")
}
