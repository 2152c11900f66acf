package alerting

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/telemetry"
)

// TestViewMatchesEngine is the invariant of the published view: after
// every publication (and after every tick that found nothing to publish)
// the view says exactly what the engine would answer if asked directly,
// for every port, alert and audit. A change the service forgets to mark
// shows up here as a stale pile. Random operations, seeded; a failure
// prints the seed and step to replay it.
func TestViewMatchesEngine(t *testing.T) {
	seeds := 30
	if testing.Short() {
		seeds = 5
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { viewScenario(t, seed, 400) })
	}
}

func viewScenario(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	k := &sink{}
	clock := time.Unix(1_700_000_000, 0)
	s, err := NewService(ServiceOptions{Publisher: k, Now: func() time.Time { return clock }})
	require.NoError(t, err)
	type pileID struct{ site, pile string }
	piles := []pileID{{"a", "p1"}, {"a", "p2"}, {"a", "p10"}, {"b", "p1"}, {"b", "x"}, {"c", "p3"}}
	if seed%2 == 1 {
		// Enough piles for several chunks of the view, arriving in
		// random order.
		for i := range 3 * chunkSize {
			piles = append(piles, pileID{fmt.Sprintf("s%d", i%3), fmt.Sprintf("q%d", rng.IntN(100000))})
		}
	}
	seq := map[pileID]uint32{}
	msg := func(p pileID, kind telemetry.Kind) telemetry.Message {
		return telemetry.Message{Topic: telemetry.Topic{Root: "chargers", Site: p.site, Pile: p.pile, Kind: kind}, Received: clock}
	}
	// A published view never changes: the previous one still reads as it
	// did when it was checked.
	var old *View
	var oldPorts []PortView
	var oldAlerts []AlertView
	check := func(where string) {
		if old != nil {
			require.Equal(t, oldPorts, old.Ports(PortQuery{}).Ports, "%s: an older view changed", where)
			require.Equal(t, oldAlerts, old.Alerts(false), "%s: an older view's alerts changed", where)
		}
		checkView(t, s, where)
		old = s.View()
		oldPorts, oldAlerts = old.Ports(PortQuery{}).Ports, old.Alerts(false)
	}
	for step := range steps {
		clock = clock.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
		p := piles[rng.IntN(len(piles))]
		what := ""
		switch r := rng.IntN(20); {
		case r < 12:
			seq[p]++
			tm := &telemetry.Telemetry{V: 1, TS: clock.UnixMilli(), Seq: seq[p], AmbientC: telemetry.F(25), LeakMA: telemetry.F(float64(rng.IntN(40)))}
			for n := 1; n <= 1+rng.IntN(4); n++ {
				st := []telemetry.PortState{telemetry.StateCharging, telemetry.StateIdle, telemetry.StateClosed}[rng.IntN(3)]
				tm.Ports = append(tm.Ports, telemetry.PortSample{N: n, State: st,
					A: telemetry.F(rng.Float64() * 20), W: telemetry.F(rng.Float64() * 2000), TempC: telemetry.F(20 + rng.Float64()*70)})
			}
			m := msg(p, telemetry.KindTelemetry)
			m.Telemetry = tm
			s.handle(m)
			what = "telemetry"
		case r < 14:
			m := msg(p, telemetry.KindStatus)
			m.Status = &telemetry.Status{V: 1, Online: rng.IntN(2) == 0, Ports: 4}
			s.handle(m)
			what = "status"
		case r < 17:
			cmds, _, _ := k.snapshot()
			if len(cmds) == 0 {
				continue
			}
			c := cmds[rng.IntN(len(cmds))]
			// The sink does not keep the topic: ack on every pile; the
			// engine ignores an id it does not know.
			m := msg(p, telemetry.KindAck)
			m.Ack = &telemetry.Ack{V: 1, ID: c.ID, TS: clock.UnixMilli(), Port: c.Port, OK: rng.IntN(5) > 0, State: telemetry.StateClosed}
			s.handle(m)
			what = "ack"
		case r < 18:
			_ = s.reset(p.site, p.pile, rng.IntN(5), "op")
			what = "reset"
		case r < 19:
			if as := s.engine.Alerts(true); len(as) > 0 {
				_ = s.ackAlert(as[rng.IntN(len(as))].Key(), "op")
			}
			what = "ackalert"
		default:
			s.tick()
			what = "tick"
		}
		if what == "reset" || what == "ackalert" || what == "tick" {
			check(fmt.Sprintf("seed %d step %d (%s)", seed, step, what))
		}
	}
	s.tick()
	check(fmt.Sprintf("seed %d end", seed))
}

func checkView(t *testing.T, s *Service, where string) {
	t.Helper()
	v := s.View()
	require.Equal(t, s.engine.Ports(PortFilter{}), v.Ports(PortQuery{}).Ports, "%s: ports", where)
	require.Equal(t, len(s.engine.Ports(PortFilter{})), v.NumPorts(), "%s: port count", where)
	require.Equal(t, s.engine.Alerts(false), v.Alerts(false), "%s: alerts", where)
	require.Equal(t, s.engine.Alerts(true), v.Alerts(true), "%s: active alerts", where)
	for _, p := range s.engine.piles {
		for n := 0; n <= p.nports(); n++ {
			require.Equal(t, s.engine.Audit(p.site, p.id, n), v.Audit(p.site, p.id, n), "%s: audit of %s/%s/%d", where, p.site, p.id, n)
		}
	}
}

// TestViewPages checks that pages, however small, walk every matching port
// once, in order, under every filter.
func TestViewPages(t *testing.T) {
	k := &sink{}
	clock := time.Unix(1_700_000_000, 0)
	s, err := NewService(ServiceOptions{Publisher: k, Now: func() time.Time { return clock }})
	require.NoError(t, err)
	for _, site := range []string{"b", "a", "c"} {
		for i := range 7 {
			tm := &telemetry.Telemetry{V: 1, TS: clock.UnixMilli(), Seq: 1, AmbientC: telemetry.F(25)}
			for n := 1; n <= 1+i%4; n++ {
				st := telemetry.StateIdle
				if n%2 == 0 {
					st = telemetry.StateCharging
				}
				tm.Ports = append(tm.Ports, telemetry.PortSample{N: n, State: st, A: telemetry.F(1), W: telemetry.F(200), TempC: telemetry.F(30)})
			}
			s.handle(telemetry.Message{Topic: telemetry.Topic{Root: "chargers", Site: site, Pile: fmt.Sprintf("p%d", i), Kind: telemetry.KindTelemetry},
				Received: clock, Telemetry: tm})
		}
	}
	s.tick()
	v := s.View()
	for _, f := range []PortFilter{{}, {Site: "a"}, {Site: "c", Pile: "p3"}, {Pile: "p2"}, {State: "charging"}, {Site: "b", State: "idle"}, {Site: "zz"}} {
		want := s.engine.Ports(f)
		for _, limit := range []int{1, 2, 3, 5, 1000} {
			var got []PortView
			q := PortQuery{Filter: f, Limit: limit}
			for range 200 {
				page := v.Ports(q)
				require.LessOrEqual(t, len(page.Ports), limit)
				got = append(got, page.Ports...)
				if page.Next.IsZero() {
					break
				}
				require.Len(t, page.Ports, limit, "a page before the last is full")
				q.After = page.Next
			}
			require.Equal(t, want, got, "filter %+v limit %d", f, limit)
		}
	}
	// After a key that is no port at all still continues in order.
	page := v.Ports(PortQuery{After: PortKey{"a", "p15", 0}, Limit: 1})
	require.Equal(t, PortKey{"a", "p2", 1}, PortKey{page.Ports[0].Site, page.Ports[0].Pile, page.Ports[0].Port})
	key, ok := ParsePortKey(page.Next.String())
	require.True(t, ok)
	require.Equal(t, page.Next, key)
	for _, bad := range []string{"", "a/b", "a/b/c", "a/b/65", "a/b/07", "a b/c/1", "a/b/1/2"} {
		_, ok := ParsePortKey(bad)
		require.False(t, ok, bad)
	}
}

// TestServiceReadsNeverWaitForEngine holds the engine's goroutine inside
// the publish of a close command, as a stalled broker connection would,
// and reads: every read answers from the published view. Before the view
// (reads ran on the engine's goroutine) each read waited for the engine
// and ran into its deadline.
func TestServiceReadsNeverWaitForEngine(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	k := &sink{}
	blocking := PublisherFunc(func(topic string, payload []byte) error {
		select {
		case entered <- struct{}{}:
			<-release // the engine's goroutine is held here
		default:
		}
		return k.Publish(topic, payload)
	})
	state := filepath.Join(t.TempDir(), "state.json")
	s, stop := runService(t, ServiceOptions{StatePath: state, Publisher: blocking, Recorder: k, TickInterval: time.Millisecond})
	defer stop()
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock() // before stop, even when the test fails
	now := time.Now()
	s.Observe(telemetryMsg(1, now, 40))
	require.Eventually(t, func() bool {
		ports, _ := s.Ports(context.Background(), PortFilter{})
		return len(ports) == 3
	}, 5*time.Second, time.Millisecond)
	s.Observe(telemetryMsg(2, now.Add(10*time.Second), 80))
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the engine never published the close")
	}
	for range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ports, err := s.Ports(ctx, PortFilter{})
		require.NoError(t, err, "a read waited for the engine's goroutine")
		require.Len(t, ports, 3)
		_, err = s.Alerts(ctx, false)
		require.NoError(t, err)
		_, err = s.Audit(ctx, "s1", "p1", 3)
		require.NoError(t, err)
		_, err = s.PortsPage(ctx, PortQuery{Limit: 1})
		require.NoError(t, err)
		cancel()
	}
	unblock()
	require.Eventually(t, func() bool {
		ports, _ := s.Ports(context.Background(), PortFilter{State: ControlLatched})
		return len(ports) == 1
	}, 5*time.Second, time.Millisecond, "the view never showed the latch")
}

// TestServiceViewBeforeRun: a service restored from its state file shows
// the latched ports before its goroutine has run at all.
func TestServiceViewBeforeRun(t *testing.T) {
	k := &sink{}
	state := filepath.Join(t.TempDir(), "state.json")
	s, stop := runService(t, ServiceOptions{StatePath: state, Publisher: k})
	now := time.Now()
	s.Observe(telemetryMsg(1, now, 50))
	s.Observe(telemetryMsg(2, now.Add(10*time.Second), 80))
	require.Eventually(t, func() bool { c, _, _ := k.snapshot(); return len(c) == 1 }, 5*time.Second, time.Millisecond)
	stop()

	s2, err := NewService(ServiceOptions{StatePath: state, Publisher: &sink{}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ports, err := s2.Ports(ctx, PortFilter{State: ControlLatched})
	require.NoError(t, err)
	require.Len(t, ports, 1)
	alerts, err := s2.Alerts(ctx, true)
	require.NoError(t, err)
	require.NotEmpty(t, alerts)
}
