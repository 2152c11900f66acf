package simulators

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/internal/testenv"
	"github.com/chargeguard/chargeguard/telemetry"
)

// Stream faults, offline: duplicated and reordered seq, a clock jump, and
// a stuck sensor.
func TestStreamFaults(t *testing.T) {
	p, start := onePile(t,
		Fault{Kind: FaultDuplicate, Target: "site/pile", At: Duration(30 * time.Second)},
		Fault{Kind: FaultReorder, Target: "site/pile", At: Duration(60 * time.Second)},
		Fault{Kind: FaultClockSkew, Target: "site/pile", At: Duration(90 * time.Second)},
		Fault{Kind: FaultSensorStuck, Target: "site/pile/1", At: Duration(0)},
		Fault{Kind: FaultLooseContact, Target: "site/pile/1", At: Duration(0), Ramp: Duration(time.Minute)})
	tels, _, _ := decodeAll(t, p.Advance(start.Add(3*time.Minute)))
	var seqs []uint32
	var jump int64
	stuck := map[float64]bool{}
	for i, tel := range tels {
		seqs = append(seqs, tel.Seq)
		if i > 0 {
			jump = max(jump, tel.TS-tels[i-1].TS)
		}
		stuck[*portOf(tel, 1).TempC] = true
	}
	dup, reordered := 0, 0
	for i := 1; i < len(seqs); i++ {
		if seqs[i] == seqs[i-1] {
			dup++
		}
		if seqs[i] < seqs[i-1] {
			reordered++
		}
	}
	require.Equal(t, 1, dup, "seq %v", seqs)
	require.Equal(t, 1, reordered, "seq %v", seqs)
	require.InDelta(t, (10 * time.Minute).Milliseconds(), jump, float64((20 * time.Second).Milliseconds()), "the clock jumps by 10 min")
	require.Len(t, stuck, 1, "a stuck sensor repeats one value while the socket heats")
	require.Greater(t, p.ports[1].temp, 40.0)
}

// On the wire: hostile topics go out on a throwaway connection (a topic
// with '+' is refused by the broker and never reaches a subscriber, one
// with a space does), a 1 MiB payload reaches the subscriber and is
// rejected as too_large, and the pile's own connection survives all of it
// (no death is published before the end). A network loss fires the will.
func TestFaultsOnTheWire(t *testing.T) {
	broker := testenv.Mosquitto(t)
	fleet := &Fleet{Sites: []Site{{ID: "site", Kind: telemetry.SiteOpenAir, RatedA: 5, Piles: []PileGroup{{ID: "pile", Ports: 8}, {ID: "other", Ports: 8}}}}}
	var mu sync.Mutex
	reasons := map[telemetry.Reason]int{}
	var deaths []string
	var topics []string
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("wire-watch"))
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer c.Disconnect(100)
	tok = c.Subscribe("#", 1, func(_ mqtt.Client, m mqtt.Message) {
		msg, err := telemetry.DecodeTopic("chargers", m.Topic(), m.Payload(), time.Now())
		mu.Lock()
		defer mu.Unlock()
		topics = append(topics, m.Topic())
		var rej *telemetry.RejectError
		if errors.As(err, &rej) {
			reasons[rej.Reason]++
		}
		if msg.Status != nil && !msg.Status.Online {
			deaths = append(deaths, msg.Topic.Pile)
		}
	})
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())

	r, err := New(Options{Broker: broker.URL, Fleet: fleet, Seed: 3, Speed: 10, Interval: 5 * time.Second,
		Start: time.Date(2025, 6, 1, 12, 0, 0, 0, Hangzhou), Duration: 40 * time.Second,
		Faults: []Fault{
			{Kind: FaultMalformed, Target: "site/pile", At: Duration(5 * time.Second), Payload: MalformedHostilePlus},
			{Kind: FaultMalformed, Target: "site/pile", At: Duration(5 * time.Second), Payload: MalformedHostileSpace},
			{Kind: FaultMalformed, Target: "site/pile", At: Duration(5 * time.Second), Payload: MalformedTooLarge},
			{Kind: FaultNetworkLoss, Target: "site/other", At: Duration(10 * time.Second), For: Duration(10 * time.Second)},
		}})
	require.NoError(t, err)
	require.NoError(t, r.Run(context.Background()))
	st := r.Stats()
	require.Equal(t, int64(1), st.Hostile, "only the topic with a wildcard needs a throwaway connection")
	require.Zero(t, st.PublishErrors)

	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return reasons[telemetry.ReasonTooLarge] == 1 && reasons[telemetry.ReasonBadID] == 1 && len(deaths) == 3
	}, 10*time.Second, 20*time.Millisecond, "reasons %v, deaths %v", reasons, deaths)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, "other", deaths[0], "the first death is the will of the pile that lost its network")
	require.ElementsMatch(t, []string{"other", "pile", "other"}, deaths, "then both piles' deaths on the clean stop")
	require.Contains(t, topics, "chargers/a b/pile/telemetry")
	require.NotContains(t, topics, "chargers/a+b/pile/telemetry")
	require.Equal(t, 2, reasons[telemetry.ReasonTooLarge]+reasons[telemetry.ReasonBadID])
}
