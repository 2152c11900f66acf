package influx

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the writer's Prometheus metrics. Their names are a contract
// with the dashboards.
type metrics struct {
	writeDur     prometheus.Histogram
	failures     *prometheus.CounterVec
	written      prometheus.Counter
	deadLettered prometheus.Counter
	batches      prometheus.Counter
	lag          prometheus.Histogram
	up           prometheus.Gauge

	deadLetterBytes   prometheus.Gauge
	deadLetterMax     prometheus.Gauge
	deadLetterDropped prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		writeDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chargeguard_influx_write_duration_seconds",
			Help:    "Duration of one write request to InfluxDB, whatever its outcome.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_influx_write_failures_total",
			Help: "Failed write requests to InfluxDB by HTTP status code, or \"network\".",
		}, []string{"code"}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_influx_points_written_total",
			Help: "Points (lines) accepted by InfluxDB.",
		}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_influx_points_dead_lettered_total",
			Help: "Points InfluxDB refused for good, set aside in the dead-letter file.",
		}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_influx_batches_total",
			Help: "Spool batches stored in InfluxDB (or dead-lettered) and trimmed.",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chargeguard_ingest_lag_seconds",
			Help:    "Time from receiving a message to InfluxDB accepting its points.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 24), // 1 ms .. 2.3 h
		}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_influx_up",
			Help: "1 if the last write request reached InfluxDB and was not refused for auth, load or outage; else 0.",
		}),
		deadLetterBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_influx_dead_letter_bytes",
			Help: "Size of the dead-letter file.",
		}),
		deadLetterMax: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_influx_dead_letter_max_bytes",
			Help: "Most bytes the dead-letter file may hold; past it refused points are counted, not kept.",
		}),
		deadLetterDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_influx_dead_letter_dropped_total",
			Help: "Points InfluxDB refused for good that were not kept because the dead-letter file was full.",
		}),
	}
}

// register registers the metrics with reg; a nil reg registers nothing.
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.writeDur, m.failures, m.written, m.deadLettered, m.batches, m.lag, m.up, m.deadLetterBytes, m.deadLetterMax, m.deadLetterDropped} {
		errs = append(errs, reg.Register(c))
	}
	return errors.Join(errs...)
}
