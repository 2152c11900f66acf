package simulators

import (
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/telemetry"
)

func shippedScenarios(t *testing.T) []*Scenario {
	t.Helper()
	files, err := filepath.Glob("scenarios/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var out []*Scenario
	for _, f := range files {
		sc, err := LoadScenario(f)
		require.NoError(t, err, f)
		out = append(out, sc)
	}
	return out
}

// closingConds are the conditions on which the default policy closes a
// port.
var closingConds = map[Condition]bool{
	CondOverheat: true, CondOverheatRate: true, CondOvercurrent: true, CondShort: true, CondLeakage: true,
	CondSmoke: true, CondSensorFault: true, CondCloseFailed: true, CondRelayWelded: true,
	CondMaxDuration: true, CondFull: true,
}

func TestShippedScenariosCoverThePolicy(t *testing.T) {
	policies := map[string]int{}
	for _, sc := range shippedScenarios(t) {
		policies[sc.Policy]++
		wall := time.Duration(float64(sc.Duration) / max(sc.Speed, 1))
		require.LessOrEqual(t, wall, 2*time.Minute, "%s runs %v of wall time", sc.Name, wall)
		require.NotEmpty(t, sc.SpeedNote, "%s: say why it may or may not be sped up", sc.Name)
	}
	for _, row := range []string{"overheat", "overheat_rate", "overcurrent", "short_circuit", "leakage", "smoke",
		"sensor_fault", "pile_offline", "hot_contact", "close_failed", "relay_welded", "max_duration", "full"} {
		require.Positive(t, policies[row], "no scenario for policy row %s", row)
	}
	require.Equal(t, 2, policies["smoke"], "smoke in telemetry and as an event")
	require.GreaterOrEqual(t, policies["healthy"], 3)
}

// Offline, without a backend, every shipped scenario's faults produce the
// evidence its close expectations wait for, early enough to leave the
// backend time to act before the run ends; and the scenarios that expect
// no close produce no evidence for one.
func TestShippedScenariosProduceTheirEvidence(t *testing.T) {
	for _, sc := range shippedScenarios(t) {
		t.Run(sc.Name, func(t *testing.T) {
			o := sc.Options("", zerologNop())
			var mets []Met
			seen := map[telemetry.Reason]int{}
			require.NoError(t, Simulate(o, time.Duration(sc.Duration), func(e Emitted) {
				mets = append(mets, e.Met...)
				if e.Reject != "" {
					seen[e.Reject]++
				}
			}))
			sort.SliceStable(mets, func(i, j int) bool { return mets[i].Model.Before(mets[j].Model) })
			end := sc.Start.Add(time.Duration(sc.Duration))
			noClose := false
			for _, e := range sc.Expect {
				if e.NoClose != nil && e.NoClose.Target == "" {
					noClose = true
				}
				ce := e.Close
				if ce == nil || ce.Reason == string(CondRelayWelded) || ce.Reason == string(CondCloseFailed) {
					continue // their evidence needs the backend's commands
				}
				tg, _ := ParseTarget(ce.Target)
				var m *Met
				for i := range mets {
					if mets[i].Pile == tg.Key() && string(mets[i].Cond) == ce.Reason && (tg.Port == 0 || mets[i].Port == tg.Port) {
						m = &mets[i]
						break
					}
				}
				require.NotNil(t, m, "no evidence for %s on %s in %v", ce.Reason, ce.Target, sc.Duration)
				left := time.Duration(float64(end.Sub(m.Model)) / max(sc.Speed, 1))
				t.Logf("%s on %s complete at +%v, %v of wall time before the end", ce.Reason, ce.Target, m.Model.Sub(sc.Start), left)
				require.GreaterOrEqual(t, left, 5*time.Second, "leave the backend time to act")
			}
			if noClose {
				for _, m := range mets {
					require.False(t, closingConds[m.Cond], "a no-close scenario met %s on %s/%d at +%v", m.Cond, m.Pile, m.Port, m.Model.Sub(sc.Start))
				}
			}
			if sc.Policy == "hot_contact" {
				// The warning's evidence is there, and nothing hotter.
				var hot bool
				for _, m := range mets {
					hot = hot || m.Cond == CondHotContact
					require.NotEqual(t, CondWarning, m.Cond, "a cold-weather hot contact stays below 55 °C")
				}
				require.True(t, hot, "temp_c - ambient_c never reached %v K", HotContactK)
			}
			t.Logf("conditions met: %d, rejectable messages: %v", len(mets), seen)
		})
	}
}
