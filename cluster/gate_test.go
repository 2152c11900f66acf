package cluster

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/alerting/notify"
)

type fixedRole struct{ r Role }

func (f *fixedRole) Role() Role { return f.r }

type sink struct {
	published []string
	fired     []string
	resolved  []string
	records   int
}

func (s *sink) Publish(topic string, _ []byte) error {
	s.published = append(s.published, topic)
	return nil
}
func (s *sink) Fire(a notify.Alert)    { s.fired = append(s.fired, a.Labels["alertname"]) }
func (s *sink) Resolve(a notify.Alert) { s.resolved = append(s.resolved, a.Labels["alertname"]) }
func (s *sink) Record([]byte)          { s.records++ }

var (
	closeCmd = []byte(`{"v":1,"id":"c1","ts":1,"port":3,"action":"close","reason":"overheat"}`)
	openCmd  = []byte(`{"v":1,"id":"o1","ts":1,"port":3,"action":"open","reason":"reset"}`)
)

// The gate's table: what each role carries out.
func TestGateByRole(t *testing.T) {
	for _, tc := range []struct {
		role                      Role
		closes, opens, fires, rec bool
	}{
		{RoleLeader, true, true, true, true},
		{RoleFollower, false, false, false, false},
		{RoleAlone, true, false, true, true},
	} {
		t.Run(tc.role.String(), func(t *testing.T) {
			s := &sink{}
			g := NewGate(&fixedRole{tc.role})
			var pub alerting.Publisher = g.Publisher(s)
			require.NoError(t, pub.Publish("close", closeCmd))
			err := pub.Publish("open", openCmd)
			if tc.role == RoleAlone {
				require.ErrorIs(t, err, ErrNoLeader, "an open without a leader is refused, with the reason")
			} else {
				require.NoError(t, err)
			}
			var want []string
			if tc.closes {
				want = append(want, "close")
			}
			if tc.opens {
				want = append(want, "open")
			}
			require.Equal(t, want, s.published)
			g.Notifier(s).Fire(notify.Alert{Labels: map[string]string{"alertname": "overheat"}})
			require.Equal(t, tc.fires, len(s.fired) == 1)
			g.Recorder(s).Record([]byte("x"))
			require.Equal(t, tc.rec, s.records == 1)
		})
	}
}

// A follower remembers what its engine has firing; when it comes to lead it
// posts exactly those again (resolved ones not).
func TestGateRefiresActiveAlerts(t *testing.T) {
	role := &fixedRole{RoleFollower}
	g := NewGate(role)
	s := &sink{}
	n := g.Notifier(s)
	n.Fire(notify.Alert{Labels: map[string]string{"alertname": "overheat", "port": "1"}})
	n.Fire(notify.Alert{Labels: map[string]string{"alertname": "smoke", "port": "0"}})
	n.Resolve(notify.Alert{Labels: map[string]string{"alertname": "smoke", "port": "0"}})
	require.Empty(t, s.fired)
	role.r = RoleLeader
	require.Equal(t, 1, g.Refire(s))
	require.Equal(t, []string{"overheat"}, s.fired)
}

func TestUndecodableCommandIsTreatedAsAClose(t *testing.T) {
	s := &sink{}
	pub := NewGate(&fixedRole{RoleAlone}).Publisher(s)
	require.NoError(t, pub.Publish("x", []byte("not json")))
	require.Len(t, s.published, 1)
	require.False(t, errors.Is(pub.Publish("y", closeCmd), ErrNoLeader))
}
