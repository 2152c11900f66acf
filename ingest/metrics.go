package ingest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chargeguard/chargeguard/telemetry"
)

type metrics struct {
	received       prometheus.Counter
	messages       *prometheus.CounterVec
	rejected       *prometheus.CounterVec
	portSamples    prometheus.Counter
	skewed         prometheus.Counter
	acked          prometheus.Counter
	queue          prometheus.Gauge
	blocked        prometheus.Gauge
	connected      *prometheus.GaugeVec
	connectionLost *prometheus.CounterVec
	yielded        *prometheus.CounterVec
}

func newMetrics(r prometheus.Registerer, liveBacklog, liveLag, storageLag func() float64) *metrics {
	m := &metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_ingest_received_total",
			Help: "MQTT messages received by the storage session, valid or not.",
		}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_ingest_messages_total",
			Help: "Valid messages ingested, by message kind.",
		}, []string{"kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_ingest_rejected_total",
			Help: "Messages rejected, by reason. Each is kept in the InfluxDB measurement `rejected`.",
		}, []string{"reason"}),
		portSamples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_ingest_port_samples_total",
			Help: "Port readings ingested (one telemetry message carries one per port).",
		}),
		skewed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_ingest_clock_skew_total",
			Help: "Messages whose pile clock was too far from ours; stored at receive time.",
		}),
		acked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_ingest_acked_total",
			Help: "Messages made durable in the spool (and acked to the broker when QoS 1).",
		}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_ingest_queue_length",
			Help: "Messages decoded and waiting for a group commit to the spool.",
		}),
		blocked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_ingest_spool_blocked",
			Help: "1 while the spool refuses messages (full or failing) and acking is held back.",
		}),
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chargeguard_ingest_mqtt_connected",
			Help: "1 when the MQTT session (storage, live, or status: the shard registry's, cluster mode with mqtt.sites) is connected and subscribed.",
		}, []string{"session"}),
		connectionLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_ingest_mqtt_connection_lost_total",
			Help: "MQTT connections lost, by session.",
		}, []string{"session"}),
		yielded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_ingest_storage_yield_seconds_total",
			Help: "Time storage waited for the live session to catch up (the cut comes first), by waiter: worker (all storage workers together) or writer (the InfluxDB writer).",
		}, []string{"waiter"}),
	}
	// Pre-create the series so dashboards and alert rules see zeros, not
	// absent data.
	for _, r := range telemetry.Reasons {
		m.rejected.WithLabelValues(string(r))
	}
	for _, k := range []telemetry.Kind{telemetry.KindStatus, telemetry.KindTelemetry, telemetry.KindEvent, telemetry.KindAck} {
		m.messages.WithLabelValues(k.String())
	}
	for _, w := range []string{"worker", "writer"} {
		m.yielded.WithLabelValues(w)
	}
	for _, s := range []string{"storage", "live"} {
		m.connected.WithLabelValues(s)
		m.connectionLost.WithLabelValues(s)
	}
	if r != nil {
		r.MustRegister(m.received, m.messages, m.rejected, m.portSamples, m.skewed,
			m.acked, m.queue, m.blocked, m.connected, m.connectionLost, m.yielded,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "chargeguard_ingest_live_backlog",
				Help: "Messages the live session has read from the broker and not yet handed to the safety engine.",
			}, liveBacklog),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "chargeguard_ingest_live_lag_seconds",
				Help: "How far the live session is behind the broker: the round trip of its last canary, or the age of the one in flight (0 until one has come back).",
			}, liveLag),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "chargeguard_ingest_storage_lag_seconds",
				Help: "How long storage's messages wait in the broker while storage yields to the live session: the age of the storage session's oldest QoS 1 canary not yet back through its persistent queue, or its last round trip (0 until canaries are known to come back, and with the embedded broker, where storage never yields).",
			}, storageLag))
	}
	return m
}
