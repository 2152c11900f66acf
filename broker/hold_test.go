package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func connect(t *testing.T, url, id string, autoAck bool) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).
		SetCleanSession(true).SetAutoReconnect(false).SetAutoAckDisabled(!autoAck).SetOrderMatters(false))
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second) && tok.Error() == nil, "connect %s: %v", id, tok.Error())
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

// startHeld starts a broker whose watched session "store" takes every
// message and acknowledges none, and fills it up to the mark (Above is half
// of MaxWritesPending: 32).
func startHeld(t *testing.T, stall, storeMax time.Duration) (*Broker, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	b, err := New(Options{
		Addr:             "127.0.0.1:0",
		MaxWritesPending: 64,
		Hold: HoldOptions{
			Watch:  map[string]Watch{"store": {Max: storeMax}},
			Exempt: []string{"cmd"},
			Topics: []string{"/telemetry"},
			Stall:  stall,
			Max:    time.Hour, // only the stall or storeMax may let a held publish through
		},
		Logger:     zerolog.Nop(),
		Registerer: reg,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	store := connect(t, b.URL(), "store", false)
	tok := store.Subscribe("chargers/#", 1, func(paho.Client, paho.Message) {})
	require.True(t, tok.WaitTimeout(10*time.Second) && tok.Error() == nil)
	return b, reg
}

// TestHoldStallValve: a watched session that stops acknowledging
// (chargeguard's spool is full, its disk hangs) holds telemetry publishers
// only until Stall, never up to Max: storage trouble must not keep readings
// from the safety engine.
func TestHoldStallValve(t *testing.T) {
	b, reg := startHeld(t, 200*time.Millisecond, 0)
	pile := connect(t, b.URL(), "pile", true)
	const n = 32 + 8
	var toks []paho.Token
	for i := range n {
		toks = append(toks, pile.Publish("chargers/s/p/telemetry", 1, false, fmt.Sprintf(`{"seq":%d}`, i)))
	}
	for i, tk := range toks {
		require.True(t, tk.WaitTimeout(30*time.Second), "publish %d still held after 30 s: the stall valve did not open", i)
		require.NoError(t, tk.Error())
	}
	require.Positive(t, counter(t, reg, "chargeguard_broker_publishes_held_total"), "nothing was held: the test did not reach the mark")
	require.Positive(t, counter(t, reg, "chargeguard_broker_publish_hold_stalled_total"))
	require.Zero(t, counter(t, reg, "chargeguard_broker_publish_hold_timeouts_total"))
}

// TestHoldNeverHoldsCommandsOrEvents: while telemetry publishers are held
// (the watched session is behind and, with a stall time of an hour, not
// given up on), a close command, a pile's event and a QoS 0 message still
// go through.
func TestHoldNeverHoldsCommandsOrEvents(t *testing.T) {
	b, reg := startHeld(t, time.Hour, 0)
	pile := connect(t, b.URL(), "pile", true)
	var toks []paho.Token
	for i := range 32 + 1 {
		toks = append(toks, pile.Publish("chargers/s/p/telemetry", 1, false, fmt.Sprintf(`{"seq":%d}`, i)))
	}
	require.Eventually(t, func() bool {
		return counter(t, reg, "chargeguard_broker_publishes_held_total") > 0
	}, 30*time.Second, 10*time.Millisecond, "the telemetry over the mark was not held")
	require.False(t, toks[len(toks)-1].WaitTimeout(0), "a held publish was acknowledged")

	// A held connection is read no further, so the others come from their
	// own connections, as other piles' would.
	cmd := connect(t, b.URL(), "cmd", true)
	other := connect(t, b.URL(), "other-pile", true)
	for _, p := range []struct {
		c     paho.Client
		topic string
		qos   byte
	}{
		{cmd, "chargers/s/p/cmd", 1},         // a close order
		{cmd, "chargers/s/p/telemetry", 1},   // exempt client, whatever the topic
		{other, "chargers/s/q/event", 1},     // not a held topic
		{other, "chargers/s/q/telemetry", 0}, // QoS 0
	} {
		tk := p.c.Publish(p.topic, p.qos, false, `{}`)
		require.True(t, tk.WaitTimeout(30*time.Second), "%s (QoS %d) was held", p.topic, p.qos)
		require.NoError(t, tk.Error())
	}
	require.Equal(t, 1.0, counter(t, reg, "chargeguard_broker_publishes_held_total"))
}

// TestHoldBoundedPerSession: a session's own Max bounds a wait on it (the
// storage session's 100 ms in chargeguard), even when the default is
// longer and the session keeps acknowledging.
func TestHoldBoundedPerSession(t *testing.T) {
	b, reg := startHeld(t, time.Hour, 50*time.Millisecond)
	pile := connect(t, b.URL(), "pile", true)
	var toks []paho.Token
	for i := range 32 + 4 {
		toks = append(toks, pile.Publish("chargers/s/p/telemetry", 1, false, fmt.Sprintf(`{"seq":%d}`, i)))
	}
	for i, tk := range toks {
		require.True(t, tk.WaitTimeout(30*time.Second), "publish %d still held after 30 s: the session's Max was ignored", i)
		require.NoError(t, tk.Error())
	}
	require.Positive(t, counter(t, reg, "chargeguard_broker_publish_hold_timeouts_total"))
	require.Zero(t, counter(t, reg, "chargeguard_broker_publish_hold_stalled_total"))
}
