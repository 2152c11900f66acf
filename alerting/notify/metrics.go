package notify

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Notifier's. Their names are a contract with dashboards and
// alerting rules: do not rename them.
type metrics struct {
	sent        *prometheus.CounterVec
	errors      *prometheus.CounterVec
	dropped     prometheus.Counter
	queueLength prometheus.Gauge
	latency     *prometheus.HistogramVec
	active      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, receivers []string) (*metrics, error) {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_notify_alerts_sent_total",
			Help: "Alert updates delivered, by Alertmanager (host:port, or \"log\" for the log receiver).",
		}, []string{"alertmanager"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_notify_errors_total",
			Help: "Posts to an Alertmanager that failed (each retry counts).",
		}, []string{"alertmanager"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_notify_dropped_total",
			Help: "Alert updates dropped: queue full, rejected by Alertmanager, invalid, or pending at shutdown.",
		}),
		queueLength: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_notify_queue_length",
			Help: "Alert updates waiting to be sent, all receivers together.",
		}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chargeguard_notify_latency_seconds",
			Help:    "Duration of successful posts to an Alertmanager.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"alertmanager"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_notify_active_alerts",
			Help: "Alerts currently firing, as the notifier keeps them.",
		}),
	}
	// Start every series at zero, so that a rate() over them works from the
	// first scrape.
	for _, r := range receivers {
		m.sent.WithLabelValues(r)
		if r != logReceiver {
			m.errors.WithLabelValues(r)
			m.latency.WithLabelValues(r)
		}
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.sent, m.errors, m.dropped, m.queueLength, m.latency, m.active} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("notify: register metrics: %w", err)
		}
	}
	return m, nil
}
