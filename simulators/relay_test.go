package simulators

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/telemetry"
)

// onePile builds a single 10-port residential pile at a quiet hour with
// the given faults, and returns it with a function that advances it and
// returns the decoded telemetry samples of one port.
func onePile(t *testing.T, faults ...Fault) (*Pile, time.Time) {
	t.Helper()
	fleet := &Fleet{Sites: []Site{{ID: "site", Kind: telemetry.SiteResidential, RatedA: 3, Piles: []PileGroup{{ID: "pile", Ports: 10}}}}}
	start := time.Date(2025, 11, 5, 3, 0, 0, 0, Hangzhou)
	o := Options{Fleet: fleet, Seed: 5, Start: start, Faults: faults}
	require.NoError(t, o.defaults())
	return newPiles(&o, start)[0], start
}

func decodeAll(t *testing.T, obs []Outbound) (tels []*telemetry.Telemetry, evs []*telemetry.Event, acks []*telemetry.Ack) {
	t.Helper()
	for _, ob := range obs {
		if ob.Kind == telemetry.KindUnknown {
			continue
		}
		m, err := telemetry.Decode(telemetry.Topic{Root: "chargers", Site: "site", Pile: "pile", Kind: ob.Kind}, ob.Payload, time.Time{})
		require.NoError(t, err, "%s", ob.Payload)
		switch {
		case m.Telemetry != nil:
			tels = append(tels, m.Telemetry)
		case m.Event != nil:
			evs = append(evs, m.Event)
		case m.Ack != nil:
			acks = append(acks, m.Ack)
		}
	}
	return
}

func portOf(tel *telemetry.Telemetry, n int) telemetry.PortSample {
	for _, s := range tel.Ports {
		if s.N == n {
			return s
		}
	}
	return telemetry.PortSample{}
}

func cmd(id string, port int, a telemetry.Action) *telemetry.Command {
	return &telemetry.Command{V: 1, ID: id, Port: port, Action: a, Reason: "overheat"}
}

func TestCloseStopsCurrentAtNextSampleAndIsExecutedOnce(t *testing.T) {
	// A fault session on port 3 (a stuck sensor changes nothing else).
	p, start := onePile(t, Fault{Kind: FaultSensorStuck, Target: "site/pile/3"})
	tels, _, _ := decodeAll(t, p.Advance(start.Add(time.Minute)))
	s := portOf(tels[len(tels)-1], 3)
	require.Equal(t, telemetry.StateCharging, s.State)
	require.Greater(t, *s.A, 1.0)

	now := start.Add(time.Minute + 500*time.Millisecond)
	res := p.HandleCommand(cmd("c1", 3, telemetry.ActionClose), now)
	require.True(t, res.Executed)
	require.Equal(t, 1, res.Deliveries)
	_, _, acks := decodeAll(t, res.Out)
	require.Len(t, acks, 1)
	require.Equal(t, telemetry.Ack{V: 1, ID: "c1", TS: now.UnixMilli(), Port: 3, OK: true, State: telemetry.StateClosed}, *acks[0])

	tels, _, _ = decodeAll(t, p.Advance(p.Next()))
	s = portOf(tels[0], 3)
	require.Equal(t, telemetry.StateClosed, s.State)
	require.Zero(t, *s.A)
	require.Zero(t, *s.W)

	// An open with a new id is executed; the repeated close id is then
	// re-acked with the first result but not executed again.
	res = p.HandleCommand(cmd("o1", 3, telemetry.ActionOpen), p.Next())
	require.True(t, res.Executed)
	require.Equal(t, telemetry.StateCharging, res.Ack.State)
	again := p.HandleCommand(cmd("c1", 3, telemetry.ActionClose), p.Next())
	require.False(t, again.Executed)
	require.Equal(t, 2, again.Deliveries)
	_, _, acks = decodeAll(t, again.Out)
	require.Len(t, acks, 1)
	require.Equal(t, "c1", acks[0].ID)
	require.True(t, acks[0].OK)
	require.Equal(t, telemetry.StateClosed, acks[0].State, "same result as the first time")
	tels, _, _ = decodeAll(t, p.Advance(p.Next().Add(15*time.Second)))
	s = portOf(tels[len(tels)-1], 3)
	require.Equal(t, telemetry.StateCharging, s.State, "the repeated close did not close the port again")
	require.Greater(t, *s.A, 1.0)
}

func TestPortZeroClosesEveryPortAndBadPortIsRefused(t *testing.T) {
	p, start := onePile(t, Fault{Kind: FaultSensorStuck, Target: "site/pile/2"}, Fault{Kind: FaultSensorStuck, Target: "site/pile/7"})
	p.Advance(start.Add(30 * time.Second))
	res := p.HandleCommand(cmd("all", 0, telemetry.ActionClose), p.Next())
	require.Equal(t, telemetry.Ack{ID: "all", TS: res.Ack.TS, Port: 0, OK: true, State: telemetry.StateClosed}, res.Ack)
	tels, _, _ := decodeAll(t, p.Advance(p.Next()))
	for _, s := range tels[0].Ports {
		require.Equal(t, telemetry.StateClosed, s.State)
		require.Zero(t, *s.A)
	}
	bad := p.HandleCommand(cmd("bad", 11, telemetry.ActionClose), p.Next())
	require.False(t, bad.Ack.OK)
	require.Equal(t, "no such port", bad.Ack.Err)
}

func TestWeldedRelayAcksClosedButKeepsDrawing(t *testing.T) {
	p, start := onePile(t, Fault{Kind: FaultWeldedRelay, Target: "site/pile/4"})
	p.Advance(start.Add(30 * time.Second))
	res := p.HandleCommand(cmd("w1", 4, telemetry.ActionClose), p.Next())
	require.True(t, res.Ack.OK)
	require.Equal(t, telemetry.StateClosed, res.Ack.State)
	at := p.Next()
	obs := p.Advance(at)
	tels, _, _ := decodeAll(t, obs)
	s := portOf(tels[0], 4)
	require.Equal(t, telemetry.StateClosed, s.State)
	require.Greater(t, *s.A, WeldedA, "the welded relay still conducts")
	require.Equal(t, []Met{{Pile: "site/pile", Port: 4, Cond: CondRelayWelded, Model: at}}, obs[len(obs)-1].Met)

	// The main contactor (port 0) cuts it.
	p.HandleCommand(cmd("w2", 0, telemetry.ActionClose), p.Next())
	tels, _, _ = decodeAll(t, p.Advance(p.Next()))
	require.Zero(t, *portOf(tels[0], 4).A)
}

func TestLostAndLateAcks(t *testing.T) {
	p, start := onePile(t,
		Fault{Kind: FaultLostAcks, Target: "site/pile", At: Duration(time.Minute), For: Duration(time.Minute)},
		Fault{Kind: FaultLateAcks, Target: "site/pile", At: Duration(3 * time.Minute)})
	// Before the window: acked at once.
	res := p.HandleCommand(cmd("a", 1, telemetry.ActionClose), start.Add(10*time.Second))
	require.Len(t, res.Out, 1)
	require.Zero(t, res.Out[0].Delay)
	// In the window: executed, never acked, however often it is resent;
	// the fourth delivery completes the close_failed evidence.
	for i := 1; i <= 4; i++ {
		res = p.HandleCommand(cmd("b", 2, telemetry.ActionClose), start.Add(time.Minute+time.Duration(i)*3*time.Second))
		require.Equal(t, i == 1, res.Executed)
		for _, ob := range res.Out {
			require.Equal(t, telemetry.KindUnknown, ob.Kind, "no ack leaves the pile")
		}
		if i == 4 {
			require.Len(t, res.Out, 1)
			require.Equal(t, CondCloseFailed, res.Out[0].Met[0].Cond)
			require.Equal(t, AckTimeout, res.Out[0].Met[0].After)
		}
	}
	require.Equal(t, telemetry.StateClosed, p.PortState(2))
	// After the window the same id is re-acked again.
	res = p.HandleCommand(cmd("b", 2, telemetry.ActionClose), start.Add(150*time.Second))
	require.Len(t, res.Out, 1)
	require.Equal(t, telemetry.KindAck, res.Out[0].Kind)
	// Late acks.
	res = p.HandleCommand(cmd("c", 3, telemetry.ActionClose), start.Add(4*time.Minute))
	require.Equal(t, 5*time.Second, res.Out[0].Delay)
}
