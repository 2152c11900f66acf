package console

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	signIns      *prometheus.CounterVec
	refused      *prometheus.CounterVec
	streams      prometheus.Gauge
	pollSeconds  prometheus.Histogram
	pollErrors   prometheus.Counter
	timeToAck    *prometheus.HistogramVec
	timeToOnSite *prometheus.HistogramVec
	unackedAge   *prometheus.GaugeVec
}

// responseBuckets straddle the district's 1-3-5 targets (60 s to respond,
// 180 s on site) so that the share within target reads off one bucket.
var responseBuckets = []float64{15, 30, 60, 90, 120, 180, 240, 300, 600, 1800, 3600}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_console_sign_ins_total",
			Help: "Sign-ins to the web console by outcome (ok, bad_credentials, rate_limited, bad_csrf).",
		}, []string{"outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_console_refused_total",
			Help: "Console changes refused before they reached the engine, by reason (no_session, bad_csrf, viewer).",
		}, []string{"reason"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_console_streams",
			Help: "Live-update (server-sent events) connections open.",
		}),
		pollSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chargeguard_console_poll_seconds",
			Help:    "Time of the console's once-per-poll read of ports and alerts.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
		}),
		pollErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_console_poll_errors_total",
			Help: "Failed reads of the fleet by the console (its pages then show the last read, marked stale).",
		}),
		timeToAck: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chargeguard_incident_time_to_ack_seconds",
			Help:    "Time from an alert firing to its first acknowledgement, per site (the 1 of 1-3-5).",
			Buckets: responseBuckets,
		}, []string{"site"}),
		timeToOnSite: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chargeguard_incident_time_to_on_site_seconds",
			Help:    "Time from an alert firing to the first \"on site\" mark, per site (the 3 of 1-3-5).",
			Buckets: responseBuckets,
		}, []string{"site"}),
		unackedAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chargeguard_incident_unacknowledged_age_seconds",
			Help: "Age of the oldest active alert nobody has acknowledged, per site and severity (absent when there is none); the escalation rule pages the duty manager past 60 s for a critical one.",
		}, []string{"site", "severity"}),
	}
	for _, o := range []string{"ok", "bad_credentials", "rate_limited", "bad_csrf"} {
		m.signIns.WithLabelValues(o)
	}
	for _, r := range []string{"no_session", "bad_csrf", "viewer"} {
		m.refused.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.signIns, m.refused, m.streams, m.pollSeconds, m.pollErrors, m.timeToAck, m.timeToOnSite, m.unackedAge} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}
