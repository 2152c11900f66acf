package simulators

import (
	"bytes"
	"crypto/sha256"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/telemetry"
)

func TestSessionEnergyIsTheIntegralOfItsCurve(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 200; i++ {
		s := newSession(r)
		full := s.FullAt()
		require.True(t, full >= 2*time.Hour && full <= 8*time.Hour, "session %d lasts %v", i, full)
		require.True(t, s.PeakW >= 100 && s.PeakW <= 400, "peak %v W", s.PeakW)
		require.LessOrEqual(t, s.Unplug, full+3*time.Hour)
		require.GreaterOrEqual(t, s.Unplug, 2*time.Hour)
		// Simpson's rule over the curve, one-second steps, split at the
		// end of the constant-current phase where the curve has a kink.
		num := simpson(s.Power, 0, s.CC) + simpson(s.Power, s.CC, full)
		require.InDelta(t, num, s.Energy(full), 1e-6*num+1e-6, "session %d", i)
		require.InDelta(t, s.Energy(full), s.Energy(full+time.Hour), 1e-9, "no energy after full")
		// The last instant before full draws just above FullW.
		require.InDelta(t, FullW, s.Power(full-time.Millisecond), 0.01)
	}
}

func simpson(f func(time.Duration) float64, a, b time.Duration) float64 {
	n := int((b - a) / time.Second)
	if n%2 == 1 {
		n++
	}
	if n == 0 {
		return 0
	}
	h := float64(b-a) / float64(n)
	sum := f(a) + f(b-time.Nanosecond)
	for k := 1; k < n; k++ {
		w := 2.0
		if k%2 == 1 {
			w = 4
		}
		sum += w * f(a+time.Duration(float64(k)*h))
	}
	return sum * (h / float64(time.Hour)) / 3
}

// The energy counter a pile reports integrates the power it reports: over
// a whole session, wh at the last charging sample equals the curve's energy.
func TestPileEnergyCounterFollowsTheCurve(t *testing.T) {
	fleet := &Fleet{Sites: []Site{{ID: "s", Kind: telemetry.SiteResidential, RatedA: 3, Piles: []PileGroup{{ID: "p", Ports: 1}}}}}
	start := time.Date(2025, 3, 10, 2, 0, 0, 0, Hangzhou) // arrivals are rare at 2 am
	opts := Options{Fleet: fleet, Seed: 3, Start: start,
		Faults: nil}
	require.NoError(t, opts.defaults())
	p := newPiles(&opts, start)[0]
	pt := p.ports[1]
	pt.arrival = time.Time{}
	pt.sess, pt.plugged = &Session{Chem: LeadAcid, PeakW: 200, CC: 3 * time.Hour, Taper: 50 * time.Minute, PF: 0.92, Unplug: 9 * time.Hour}, start
	pt.charged, pt.wh, pt.wasOn, pt.done = 0, 0, false, false
	var lastWH, sumW float64
	var firstCharging, lastCharging time.Time
	var prev time.Time
	for _, ob := range p.Advance(start.Add(8 * time.Hour)) {
		if ob.Kind != telemetry.KindTelemetry {
			continue
		}
		m, err := telemetry.Decode(telemetry.Topic{Kind: telemetry.KindTelemetry}, ob.Payload, time.Time{})
		require.NoError(t, err)
		s := m.Telemetry.Ports[0]
		if s.State == telemetry.StateCharging {
			if firstCharging.IsZero() {
				firstCharging = ob.Model
			}
			if !prev.IsZero() {
				sumW += *s.W * ob.Model.Sub(prev).Hours()
			}
			prev = ob.Model
			lastWH, lastCharging = *s.WH, ob.Model
		}
	}
	s := pt.sess
	require.False(t, lastCharging.IsZero())
	// wh is exact (closed form) up to rounding to 0.1 Wh.
	// The charge starts at the first sample after the plug-in.
	require.InDelta(t, s.Energy(lastCharging.Sub(firstCharging)), lastWH, 0.06)
	require.InDelta(t, s.Energy(s.FullAt()), pt.wh, 1e-6, "the counter ends at the session's energy")
	// And the reported power, summed over the samples, is the same energy
	// to within the rectangle rule's error.
	require.InDelta(t, lastWH, sumW, 0.01*lastWH)
}

// A healthy fleet, over simulated days in every season, stays in physical
// ranges: sockets below 55 °C, enclosures between -10 and 50 °C, currents
// below 1.1 x rated, no smoke, leakage well below 30 mA, sessions ≤ 8 h.
func TestHealthyFleetStaysInPhysicalRanges(t *testing.T) {
	f, err := LoadFleet("fleets/changhe.yaml")
	require.NoError(t, err)
	// Every open-air point and the largest residential site: enough piles
	// to see hundreds of sessions, few enough to stay fast.
	sub := f.Filter([]string{"chunbo-nanyuan", "changhe-laojie", "longhu-tianjie", "xingguang-dadao", "baimahu", "binwen-koudai-gongyuan", "jiangbin-zhigao-dongce"}, nil, 0)
	hot, sunny := 38.0, 1.0
	for _, c := range []struct {
		name    string
		start   time.Time
		weather Weather
	}{
		{"summer heat wave", time.Date(2025, 7, 20, 0, 0, 0, 0, Hangzhou), Weather{MaxC: &hot, Sun: &sunny}},
		{"summer", time.Date(2025, 8, 3, 0, 0, 0, 0, Hangzhou), Weather{}},
		{"autumn", time.Date(2025, 10, 12, 0, 0, 0, 0, Hangzhou), Weather{}},
		{"winter", time.Date(2025, 1, 15, 0, 0, 0, 0, Hangzhou), Weather{}},
		{"spring", time.Date(2025, 4, 8, 0, 0, 0, 0, Hangzhou), Weather{Rain: []Window{{From: Duration(10 * time.Hour), For: Duration(5 * time.Hour)}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if testing.Short() && c.name != "summer heat wave" {
				t.Skip("-short: the heat wave alone, the hardest case; the full run covers every season")
			}
			opts := Options{Fleet: sub, Seed: 11, Start: c.start, Weather: c.weather, Interval: 60 * time.Second}
			var maxTemp, maxAmb, maxLeak, maxOpenAirAmb = -100.0, -100.0, 0.0, -100.0
			minAmb := 100.0
			var sessions, samples int
			chargingSince := map[string]time.Time{}
			var longest time.Duration
			days := 48 * time.Hour
			if testing.Short() {
				// -short (the race-detector pass) checks one simulated day;
				// the full run checks two.
				days = 24 * time.Hour
			}
			err := Simulate(opts, days, func(e Emitted) {
				if e.Reject != "" || len(e.Met) > 0 {
					t.Fatalf("%s: a healthy pile sent a rejectable message (%s) or met %v", e.Pile.Key(), e.Reject, e.Met)
				}
				m, err := telemetry.DecodeTopic(telemetry.DefaultRoot, e.Topic, e.Payload, time.Time{})
				if err != nil {
					t.Fatalf("%s: %s does not decode: %v", e.Topic, e.Payload, err)
				}
				if m.Event != nil && m.Event.Kind == telemetry.EventPlugIn {
					sessions++
				}
				tel := m.Telemetry
				if tel == nil {
					return
				}
				samples++
				amb := *tel.AmbientC
				maxAmb, minAmb = math.Max(maxAmb, amb), math.Min(minAmb, amb)
				if e.Pile.Kind == telemetry.SiteOpenAir {
					maxOpenAirAmb = math.Max(maxOpenAirAmb, amb)
				}
				maxLeak = math.Max(maxLeak, *tel.LeakMA)
				require.False(t, *tel.Smoke)
				for _, s := range tel.Ports {
					// Plain checks: this loop sees millions of samples.
					maxTemp = math.Max(maxTemp, *s.TempC)
					if *s.A >= OvercurrentX*e.Pile.RatedA {
						t.Fatalf("%s port %d draws %v A", e.Pile.Key(), s.N, *s.A)
					}
					if *s.TempC < amb-1.5 {
						t.Fatalf("%s port %d at %v °C is colder than its enclosure at %v °C", e.Pile.Key(), s.N, *s.TempC, amb)
					}
					key := e.Pile.Key() + string(rune(s.N))
					if s.State == telemetry.StateCharging {
						if *s.W <= FullW-1 || *s.W > 400 {
							t.Fatalf("%s port %d charging at %v W", e.Pile.Key(), s.N, *s.W)
						}
						if chargingSince[key].IsZero() {
							chargingSince[key] = e.Model
						}
						longest = max(longest, e.Model.Sub(chargingSince[key]))
					} else {
						delete(chargingSince, key)
						if *s.A != 0 {
							t.Fatalf("%s port %d %s draws %v A", e.Pile.Key(), s.N, s.State, *s.A)
						}
					}
				}
			})
			require.NoError(t, err)
			t.Logf("%d samples, %d sessions, socket max %.1f °C, enclosure %.1f..%.1f °C (open-air max %.1f), leak max %.1f mA, longest charge %v",
				samples, sessions, maxTemp, minAmb, maxAmb, maxOpenAirAmb, maxLeak, longest)
			require.Greater(t, sessions, 100)
			require.Less(t, maxTemp, WarnTempC)
			require.Less(t, maxAmb, 50.5)
			require.Greater(t, minAmb, -10.0)
			require.Less(t, maxLeak, 10.0)
			require.LessOrEqual(t, longest, MaxSession)
			if c.name == "summer heat wave" {
				require.Greater(t, maxOpenAirAmb, 45.0, "open-air enclosures in the sun on a 38 °C afternoon")
			}
			if c.name == "winter" {
				require.Less(t, minAmb, 6.0, "a winter night is cold")
			}
		})
	}
}

func TestSameSeedSameBytes(t *testing.T) {
	f, err := LoadFleet("fleets/changhe.yaml")
	require.NoError(t, err)
	run := func(seed uint64) []byte {
		var buf bytes.Buffer
		opts := Options{Fleet: f, Seed: seed, Start: time.Date(2025, 7, 1, 19, 0, 0, 0, Hangzhou),
			Faults: []Fault{{Kind: FaultLooseContact, Target: "chunbo-nanyuan/p01/3", At: Duration(time.Minute)},
				{Kind: FaultReorder, Target: "baimahu/p01", At: Duration(2 * time.Minute), Count: 2}}}
		require.NoError(t, Simulate(opts, 20*time.Minute, func(e Emitted) {
			buf.WriteString(e.Topic)
			buf.WriteByte(' ')
			buf.Write(e.Payload)
			buf.WriteByte('\n')
		}))
		return buf.Bytes()
	}
	a, b, c := run(1), run(1), run(2)
	require.Greater(t, len(a), 1<<20)
	require.Equal(t, sha256.Sum256(a), sha256.Sum256(b), "same seed, same stream")
	require.NotEqual(t, sha256.Sum256(a), sha256.Sum256(c), "another seed, another stream")
}
