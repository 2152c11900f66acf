package alerting

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/telemetry"
)

// replicaEngine is an engine with ids of its own, as each replica of a
// cluster has.
func replicaEngine(t *testing.T, name string) *Engine {
	n := 0
	e, err := NewEngine(DefaultRules(), EngineOptions{NewID: func() string { n++; return name + "-" + strconv.Itoa(n) }})
	require.NoError(t, err)
	return e
}

func cmdMsg(at time.Time, c telemetry.Command) telemetry.Message {
	m := msg("s1", "p1", at, nil)
	m.Topic.Kind, m.Command = telemetry.KindCmd, &c
	return m
}

func firedNames(acts []Action) []AlertName {
	var out []AlertName
	for _, a := range acts {
		if f, ok := a.(AlertFired); ok {
			out = append(out, f.Alert.Name)
		}
	}
	return out
}

// A follower decides the same close as the leader under its own id. Without
// mirroring, the pile's ack (of the leader's id) never settles it, and the
// follower's engine goes on to believe the close failed: close_failed and
// a port-0 close that no one needs, which it would send after a failover.
// With the leader's command mirrored, in either order (the follower behind
// or ahead of the leader), the ack settles it on both.
func TestMirroredCommandTakesTheLeadersID(t *testing.T) {
	for _, followerFirst := range []bool{true, false} {
		t.Run("follower_decides_first="+strconv.FormatBool(followerFirst), func(t *testing.T) {
			leader, follower := replicaEngine(t, "L"), replicaEngine(t, "F")
			both := func(at time.Time, m telemetry.Message) (l, f []Action) {
				return leader.Observe(at, m), follower.Observe(at, m)
			}
			both(t0, msg("s1", "p1", t0, birth(2, 5)))
			both(t0, msg("s1", "p1", t0, tel(1, t0, charging(1, 2, 40))))
			at := t0.Add(time.Second)
			hot := msg("s1", "p1", at, tel(2, at, charging(1, 2, 80)))
			lacts := leader.Observe(at, hot)
			lcmds := commands(lacts)
			require.Len(t, lcmds, 1)
			lc := lcmds[0].Cmd
			require.Equal(t, telemetry.ActionClose, lc.Action)
			var fcmds []SendCommand
			if followerFirst {
				fcmds = commands(follower.Observe(at, hot))
				follower.Observe(at, cmdMsg(at, lc))
			} else {
				follower.Observe(at, cmdMsg(at, lc))
				fcmds = commands(follower.Observe(at, hot))
			}
			require.Len(t, fcmds, 1, "the follower's engine decides the close itself")
			if !followerFirst {
				require.Equal(t, lc.ID, fcmds[0].Cmd.ID, "decided after seeing the leader's, it takes its id")
			}
			ack := msg("s1", "p1", at, &telemetry.Ack{V: 1, ID: lc.ID, Port: 1, OK: true, State: telemetry.StateClosed})
			both(at.Add(100*time.Millisecond), ack)
			require.Zero(t, leader.Counts().Pending)
			require.Zero(t, follower.Counts().Pending, "the leader's ack settles the follower's close")
			// Long after every ack timeout, neither believes the close failed.
			for i := 1; i <= 20; i++ {
				now := at.Add(time.Duration(i) * time.Second)
				require.NotContains(t, firedNames(follower.Tick(now)), AlertCloseFailed)
				require.Empty(t, commands(follower.Tick(now)))
			}
			require.Empty(t, commands(follower.Reconnected(at.Add(25*time.Second))), "a failover resends nothing already acked")
		})
	}
}

// The leader carries out an operator's reset; the follower sees its open
// and unlatches the port too, under the leader's id, so that after a
// failover it neither holds a stale latch nor sends a second open.
func TestMirroredOpenResetsTheFollower(t *testing.T) {
	leader, follower := replicaEngine(t, "L"), replicaEngine(t, "F")
	feed := func(at time.Time, m telemetry.Message) {
		leader.Observe(at, m)
		follower.Observe(at, m)
	}
	feed(t0, msg("s1", "p1", t0, birth(2, 5)))
	at := t0.Add(time.Second)
	lc := commands(leader.Observe(at, msg("s1", "p1", at, tel(1, at, charging(1, 2, 80)))))[0].Cmd
	follower.Observe(at, msg("s1", "p1", at, tel(1, at, charging(1, 2, 80))))
	follower.Observe(at, cmdMsg(at, lc))
	feed(at, msg("s1", "p1", at, &telemetry.Ack{V: 1, ID: lc.ID, Port: 1, OK: true, State: telemetry.StateClosed}))
	at = at.Add(10 * time.Second)
	feed(at, msg("s1", "p1", at, tel(2, at, telemetry.PortSample{N: 1, State: telemetry.StateClosed, A: telemetry.F(0), TempC: telemetry.F(30), W: telemetry.F(0)})))
	acts, err := leader.Reset(at, "s1", "p1", 1, "ops")
	require.NoError(t, err)
	open := commands(acts)[0].Cmd
	require.Equal(t, telemetry.ActionOpen, open.Action)
	facts := follower.Observe(at, cmdMsg(at, open))
	fcmds := commands(facts)
	require.Len(t, fcmds, 1)
	require.Equal(t, open.ID, fcmds[0].Cmd.ID)
	feed(at, msg("s1", "p1", at, &telemetry.Ack{V: 1, ID: open.ID, Port: 1, OK: true, State: telemetry.StateIdle}))
	require.Zero(t, follower.Counts().Latched)
	require.Zero(t, follower.Counts().Pending)
}
