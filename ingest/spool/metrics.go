package spool

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the spool's Prometheus metrics. Their names are a contract with
// the dashboards.
type metrics struct {
	records  prometheus.Gauge
	bytes    prometheus.Gauge
	quota    prometheus.Gauge
	appends  prometheus.Counter
	full     prometheus.Counter
	corrupt  prometheus.Counter
	fsyncDur prometheus.Histogram

	quarantined prometheus.GaugeFunc
	recovered   prometheus.Counter
	lostBytes   prometheus.Counter
}

// newMetrics makes the metrics of the spool in dir.
func newMetrics(dir string) *metrics {
	m := &metrics{
		records: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_spool_records",
			Help: "Records in the spool not yet accepted by InfluxDB.",
		}),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_spool_bytes",
			Help: "Bytes of records in the spool not yet accepted by InfluxDB (counted against the quota).",
		}),
		quota: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_spool_quota_bytes",
			Help: "Most bytes of unwritten records the spool holds before it refuses appends.",
		}),
		appends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_spool_appends_total",
			Help: "Records durably appended to the spool.",
		}),
		full: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_spool_full_total",
			Help: "Records refused because the spool quota would have been exceeded.",
		}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_spool_corrupt_records_total",
			Help: "Records skipped because they failed their checksum.",
		}),
		fsyncDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chargeguard_spool_fsync_duration_seconds",
			Help:    "Duration of the fsync of one group commit (and of the directory when a segment file was created).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 15),
		}),
		// Read at each scrape, so the alert clears as soon as an operator
		// has removed the files, without a restart.
		quarantined: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "chargeguard_spool_quarantined_segments",
			Help: "Corrupt spool segments kept in the spool's quarantine directory, until an operator removes them.",
		}, func() float64 { return float64(countQuarantined(dir)) }),
		recovered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_spool_recovered_records_total",
			Help: "Records found valid after a corrupt region of a segment and appended to the spool again.",
		}),
		lostBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_spool_corrupt_bytes_total",
			Help: "Bytes of spool segments found corrupt at open (their records are lost unless already in InfluxDB).",
		}),
	}
	return m
}

// register registers the metrics with reg; a nil reg registers nothing.
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.records, m.bytes, m.quota, m.appends, m.full, m.corrupt, m.fsyncDur, m.quarantined, m.recovered, m.lostBytes} {
		errs = append(errs, reg.Register(c))
	}
	return errors.Join(errs...)
}
