package simulators

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/internal/testenv"
)

// The shipped scenarios themselves run against the real chargeguard, on
// real Mosquitto, InfluxDB and Alertmanager, in app.TestScenariosEndToEnd.
// Here the fake backend only plays a backend that misbehaves, to test that
// the runner explains every failure.

// A scenario fails, with a message that says why, when the backend does not
// act, acts too late, or opens a port.
func TestScenarioFailuresAreExplained(t *testing.T) {
	broker := testenv.Mosquitto(t)
	load := func(name string) *Scenario {
		sc, err := LoadScenario("scenarios/" + name + ".yaml")
		require.NoError(t, err)
		// Shorter: the fault 3 s in, 12 s in all.
		sc.Faults[len(sc.Faults)-1].At = Duration(3 * time.Second)
		sc.Duration = Duration(12 * time.Second)
		sc.Interval = Duration(2 * time.Second)
		return sc
	}
	cases := []struct {
		name, scenario string
		delay          time.Duration
		backend        bool
		want           []string
	}{
		{"no backend", "short_circuit", 0, false, []string{
			"close longhu-tianjie/p01/2 (short_circuit): no such close command was received; close commands seen: none",
			"port_closed_at_end longhu-tianjie/p01/2: port 2 is charging"}},
		{"slow backend", "smoke_event", 2500 * time.Millisecond, true, []string{
			"close qihong-yayuan/p03/0 (smoke): closed ", "after the evidence was complete", "want within 2s"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sc := load(c.scenario)
			sc.Root = "neg-" + strings.ReplaceAll(c.name, " ", "-")
			if c.backend {
				newFakeBackend(t, broker.URL, sc.Root, c.delay)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := RunScenario(ctx, sc, broker.URL, zerologNop())
			require.NoError(t, err)
			require.False(t, res.Passed())
			all := strings.Join(res.Failures, "\n")
			for _, w := range c.want {
				require.Contains(t, all, w)
			}
		})
	}
}

func TestScenarioValidation(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{`name: x
sites: [{id: s, kind: residential, rated_a: 3, piles: [{id: p, ports: 4}]}]
start: 2025-01-01T00:00:00+08:00
duration: 1m
faults: [{kind: loose_contact, target: s/p/9, at: 1s}]
expect: [{no_open: {}}]`, "faults[0].target: bad port 9"},
		{`name: x
sites: [{id: s, kind: residential, rated_a: 3, piles: [{id: p, ports: 4}]}]
start: 2025-01-01T00:00:00+08:00
duration: 1m
expect: [{no_open: {}, no_close: {}}]`, "expect[0]: set exactly one"},
		{`name: x
sites: [{id: s, kind: residential, rated_a: 3, piles: [{id: p, ports: 4}]}]
start: 2025-01-01T00:00:00+08:00
duration: 1m
expect: [{close: {target: other/p/1}}]`, "expect[0].close.target: no pile other/p"},
		{`name: x
sites: [{id: s, kind: residential, rated_a: 3, piles: [{id: p, ports: 4}]}]
start: 2025-01-01T00:00:00+08:00
duration: 1m
expct: []`, "field expct not found"},
		{`name: x
fleet: nowhere.yaml
start: 2025-01-01T00:00:00+08:00
duration: 1m
expect: [{no_open: {}}]`, "fleet: read fleet"},
	} {
		_, err := ParseScenario([]byte(c.yaml), "scenarios/x.yaml")
		require.ErrorContains(t, err, c.want)
		require.ErrorContains(t, err, "scenarios/x.yaml")
	}
}
