package ingest

import (
	"context"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/internal/testenv"
)

// The status session of a shard sees every site's pile statuses, and only
// those: a birth (or an unreadable status) is online, a death or a cleared
// retained status is not; the shard's own sessions still take only its
// sites.
func TestStatusSessionSeesEverySite(t *testing.T) {
	testenv.Integration(t)
	mq := testenv.Mosquitto(t)
	type seen struct {
		site, pile string
		online     bool
	}
	var (
		mu  sync.Mutex
		got []seen
	)
	last := func(site, pile string) (bool, bool) {
		mu.Lock()
		defer mu.Unlock()
		for i := len(got) - 1; i >= 0; i-- {
			if got[i].site == site && got[i].pile == pile {
				return got[i].online, true
			}
		}
		return false, false
	}
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(mq.URL).SetClientID("test-status-pub"))
	tok := pub.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer pub.Disconnect(100)
	publish := func(topic, payload string, retained bool) {
		tok := pub.Publish(topic, 1, retained, payload)
		require.True(t, tok.WaitTimeout(5*time.Second))
		require.NoError(t, tok.Error())
	}
	// Retained before the session exists: learnt on subscribing.
	publish("chargers/south/p1/status", `{"v":1,"ts":1751371200000,"online":true,"ports":2,"rated_a":5,"fw":"t","kind":"residential"}`, true)

	in, err := New(Options{
		BrokerURL: mq.URL, ClientID: "test-status", Spool: nopSpool{}, Sites: []string{"north"},
		OnPileStatus: func(site, pile string, online bool) {
			mu.Lock()
			got = append(got, seen{site, pile, online})
			mu.Unlock()
		},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = in.Run(ctx) }()
	defer func() { cancel(); <-done }()

	require.Eventually(t, func() bool { on, ok := last("south", "p1"); return ok && on }, 10*time.Second, 20*time.Millisecond, "a retained birth of another site")
	publish("chargers/south/p2/status", `{"v":1,"online":false}`, true)
	publish("chargers/east/p3/status", `not json`, false)
	publish("chargers/south/p1/telemetry", `{"v":1,"ts":1751371200000,"seq":1,"ports":[]}`, false)
	publish("chargers/south/p1/status", ``, true) // the retained birth cleared
	require.Eventually(t, func() bool {
		on1, ok1 := last("south", "p1")
		on2, ok2 := last("south", "p2")
		on3, ok3 := last("east", "p3")
		return ok1 && !on1 && ok2 && !on2 && ok3 && on3
	}, 10*time.Second, 20*time.Millisecond, "a cleared status and a death are offline, an unreadable status is a pile all the same")
	mu.Lock()
	defer mu.Unlock()
	for _, s := range got {
		require.NotEqual(t, "", s.pile)
	}
	require.Len(t, got, 4, "statuses only, each once: %v", got)
}
