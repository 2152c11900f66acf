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

// Load never sends faster than its target rate (what rate it reaches on a
// given machine is BenchmarkLoadQoS0's business), every message it counts
// reaches the broker and decodes, and ts and seq increase per pile.
func TestLoadAgainstMosquitto(t *testing.T) {
	broker := testenv.Mosquitto(t)
	type last struct {
		ts  int64
		seq uint32
	}
	var mu sync.Mutex
	seen := map[string]last{}
	var got, bad, backwards int
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("load-watch").SetOrderMatters(true))
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer c.Disconnect(100)
	tok = c.Subscribe("load/+/+/telemetry", 1, func(_ mqtt.Client, m mqtt.Message) {
		msg, err := telemetry.DecodeTopic("load", m.Topic(), m.Payload(), time.Now())
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			bad++
			return
		}
		got++
		k := msg.Topic.Site + "/" + msg.Topic.Pile
		if l, ok := seen[k]; ok && (msg.Telemetry.TS <= l.ts || msg.Telemetry.Seq != l.seq+1) {
			backwards++
		}
		seen[k] = last{msg.Telemetry.TS, msg.Telemetry.Seq}
	})
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())

	res, err := Load(context.Background(), LoadOptions{Broker: broker.URL, Root: "load", Piles: 200, Ports: 10,
		Rate: 2000, Duration: 2 * time.Second, Conns: 4, QoS: 1})
	require.NoError(t, err)
	t.Logf("%+v", res)
	require.Zero(t, res.Errors)
	require.Positive(t, res.Sent)
	require.LessOrEqual(t, res.Sent, int64(4000), "the pacing never sends ahead of rate x elapsed, and stops at the duration")
	require.LessOrEqual(t, res.Rate, 2000.0)
	require.Equal(t, res.Sent, res.Completed)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return int64(got) == res.Sent
	}, 10*time.Second, 20*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Zero(t, bad)
	require.Zero(t, backwards, "ts and seq increase per pile (one connection keeps a pile's order)")
	require.Len(t, seen, 200)
}

func BenchmarkLoadQoS0(b *testing.B) {
	broker := testenv.Mosquitto(b)
	b.ReportAllocs()
	var sent int64
	var secs float64
	for b.Loop() {
		res, err := Load(context.Background(), LoadOptions{Broker: broker.URL, Root: "bench", Piles: 100, Rate: 20000, Duration: time.Second, Conns: 4})
		require.NoError(b, err)
		sent += res.Sent
		secs += res.Seconds
	}
	b.ReportMetric(float64(sent)/secs, "msgs/s")
}

func TestSharesAddUp(t *testing.T) {
	for _, c := range []struct {
		total        int64
		piles, conns int
	}{{100000, 1000, 4}, {7, 3, 2}, {1, 10, 3}, {100001, 2000, 7}, {0, 5, 2}} {
		workers := make([]*loadConn, c.conns)
		for i := range workers {
			workers[i] = &loadConn{}
		}
		for p := 0; p < c.piles; p++ {
			w := workers[p%c.conns]
			w.piles = append(w.piles, &loadPile{})
		}
		got := shares(c.total, workers, c.piles)
		var sum int64
		for i, n := range got {
			sum += n
			// Each connection's part follows its piles within one message.
			want := float64(c.total) * float64(len(workers[i].piles)) / float64(c.piles)
			if d := float64(n) - want; d < -1 || d > 1 {
				t.Errorf("total %d, %d piles over %d conns: conn %d got %d, want about %.1f", c.total, c.piles, c.conns, i, n, want)
			}
		}
		if sum != c.total {
			t.Errorf("total %d, %d piles over %d conns: parts %v add up to %d", c.total, c.piles, c.conns, got, sum)
		}
	}
}
