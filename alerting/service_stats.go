package alerting

import "github.com/prometheus/client_golang/prometheus"

// engineStats exports Engine.Stats: how much telemetry the engine had to
// set aside or read only in part, per outcome. A fleet-wide rise is a
// firmware rollout or a network problem (deploy/prometheus rules), a
// single pile's is its own pile_stream or pile_protocol alert.
type engineStats struct {
	telemetry *prometheus.CounterVec
	distrust  prometheus.Counter
	last      Stats
}

func newEngineStats(r prometheus.Registerer) *engineStats {
	s := &engineStats{
		telemetry: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_engine_telemetry_set_aside_total",
			Help: "Telemetry the safety engine could not use in order, by outcome: duplicate, late, stale (set aside: single-sample trips only), unplaced (no usable seq), partial (broke the protocol, acted on as far as it validated), restart (a new seq stream without a birth).",
		}, []string{"outcome"}),
		distrust: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_engine_pile_clock_distrusted_total",
			Help: "Times a pile's clock broke the contract (over max_clock_skew off, or not moving forward) and its timed rules switched to receive time.",
		}),
	}
	for _, o := range []string{"duplicate", "late", "stale", "unplaced", "partial", "restart"} {
		s.telemetry.WithLabelValues(o)
	}
	if r != nil {
		r.MustRegister(s.telemetry, s.distrust)
	}
	return s
}

// update adds what the engine counted since the last call. It runs on the
// engine's goroutine.
func (s *engineStats) update(now Stats) {
	add := func(o string, cur, prev uint64) {
		if cur > prev {
			s.telemetry.WithLabelValues(o).Add(float64(cur - prev))
		}
	}
	add("duplicate", now.Duplicates, s.last.Duplicates)
	add("late", now.Late, s.last.Late)
	add("stale", now.Stale, s.last.Stale)
	add("unplaced", now.Unplaced, s.last.Unplaced)
	add("partial", now.Partial, s.last.Partial)
	add("restart", now.Restarts, s.last.Restarts)
	if now.ClockDistrust > s.last.ClockDistrust {
		s.distrust.Add(float64(now.ClockDistrust - s.last.ClockDistrust))
	}
	s.last = now
}
