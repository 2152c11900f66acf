package simulators

import (
	"context"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/internal/testenv"
	"github.com/chargeguard/chargeguard/telemetry"
)

// recorder subscribes to a root and keeps every message, decoded.
type recorder struct {
	mu       sync.Mutex
	c        mqtt.Client
	status   map[string][]statusSeen // by "site/pile"
	tel      map[string]int
	events   int
	acks     []*telemetry.Ack
	rejected []string
}

type statusSeen struct {
	online   bool
	retained bool
}

func record(t *testing.T, broker, id, filter string) *recorder {
	t.Helper()
	r := &recorder{status: map[string][]statusSeen{}, tel: map[string]int{}}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).SetOrderMatters(true)
	r.c = mqtt.NewClient(opts)
	tok := r.c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	tok = r.c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		msg, err := telemetry.DecodeTopic(telemetry.DefaultRoot, m.Topic(), m.Payload(), time.Now())
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			r.rejected = append(r.rejected, m.Topic()+" "+err.Error())
			return
		}
		key := msg.Topic.Site + "/" + msg.Topic.Pile
		switch {
		case msg.Status != nil:
			r.status[key] = append(r.status[key], statusSeen{msg.Status.Online, m.Retained()})
		case msg.Telemetry != nil:
			r.tel[key]++
		case msg.Event != nil:
			r.events++
		case msg.Ack != nil:
			r.acks = append(r.acks, msg.Ack)
		}
	})
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	t.Cleanup(func() { r.c.Disconnect(100) })
	return r
}

// The whole Changhe fleet, 1,798 ports on 169 connections, runs a
// simulated hour against a real Mosquitto in a few seconds: every pile
// comes online with a retained birth, telemetry flows from every pile,
// everything decodes, and a clean stop leaves a retained death per pile.
func TestChangheFleetAgainstMosquitto(t *testing.T) {
	broker := testenv.Mosquitto(t)
	f, err := LoadFleet("fleets/changhe.yaml")
	require.NoError(t, err)
	piles := f.Piles()
	require.Equal(t, 169, len(piles))

	live := record(t, broker.URL, "test-live", "chargers/#")
	r, err := New(Options{
		Broker: broker.URL, Fleet: f, Seed: 1, Speed: 600, Interval: time.Minute, WarmInterval: time.Minute,
		Start: time.Date(2025, 7, 1, 18, 0, 0, 0, Hangzhou), Duration: time.Hour,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	// Mid-run, a late subscriber sees a retained birth for every pile.
	require.Eventually(t, func() bool { return r.Stats().PilesOnline == len(piles) }, 30*time.Second, 20*time.Millisecond)
	late := record(t, broker.URL, "test-late", "chargers/+/+/status")
	require.Eventually(t, func() bool {
		late.mu.Lock()
		defer late.mu.Unlock()
		for _, p := range piles {
			s := late.status[p.Key()]
			if len(s) == 0 || !s[0].online || !s[0].retained {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "retained births")

	start := time.Now()
	require.NoError(t, <-done)
	t.Logf("stats: %s (stopped %v after the births were checked)", r.Stats(), time.Since(start))

	st := r.Stats()
	require.Equal(t, 1798, st.Ports)
	require.Zero(t, st.PublishErrors)
	require.Zero(t, st.Offline)
	require.Eventually(t, func() bool {
		live.mu.Lock()
		defer live.mu.Unlock()
		n := 0
		for _, c := range live.tel {
			n += c
		}
		for _, p := range piles {
			s := live.status[p.Key()]
			if len(s) == 0 || s[len(s)-1].online {
				return false // the death has not arrived yet
			}
		}
		return int64(n+live.events+2*len(piles)) == st.Sent
	}, 10*time.Second, 20*time.Millisecond, "every message sent reached the subscriber")

	live.mu.Lock()
	defer live.mu.Unlock()
	require.Empty(t, live.rejected, "everything the fleet sent decodes")
	for _, p := range piles {
		// One sample a simulated minute for an hour.
		require.InDelta(t, 60, live.tel[p.Key()], 1, p.Key())
		s := live.status[p.Key()]
		require.True(t, s[0].online, "birth first")
		require.False(t, s[len(s)-1].online, "death last")
	}
	require.Greater(t, live.events, 50, "bikes plugged in during the evening hour")
}
