package alerting

import "github.com/prometheus/client_golang/prometheus"

type serviceMetrics struct {
	alerts          *prometheus.CounterVec
	firing          *prometheus.GaugeVec
	commandsSent    *prometheus.CounterVec
	commandsAcked   *prometheus.CounterVec
	commandsRetried prometheus.Counter
	commandsFailed  prometheus.Counter
	pending         prometheus.Gauge
	latched         prometheus.Gauge
	detectToCmd     prometheus.Histogram
	cmdToAck        prometheus.Histogram
	pilesOnline     prometheus.Gauge
	pilesOffline    *prometheus.GaugeVec
	queue           prometheus.Gauge
	queueFull       prometheus.Counter
	persistDuration prometheus.Histogram
	persistFailures prometheus.Counter
	viewPublish     prometheus.Histogram
	viewPorts       prometheus.Gauge
	persistOK       prometheus.Gauge
	persistFailed   prometheus.Gauge
}

// latencyBuckets run from 100µs to 10s: a cut is measured in milliseconds,
// an ack over a cellular link in seconds.
var latencyBuckets = prometheus.ExponentialBuckets(0.0001, 2.5, 14)

func newServiceMetrics(r prometheus.Registerer) *serviceMetrics {
	m := &serviceMetrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_alerts_total", Help: "Alerts raised, by alertname and severity.",
		}, []string{"alertname", "severity"}),
		firing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chargeguard_alerts_firing", Help: "Alerts firing now, by alertname and severity.",
		}, []string{"alertname", "severity"}),
		commandsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_commands_sent_total", Help: "Commands sent to piles (first attempts), by action.",
		}, []string{"action"}),
		commandsAcked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_commands_acked_total", Help: "Acks received for commands, by action and ok.",
		}, []string{"action", "ok"}),
		commandsRetried: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_commands_retried_total", Help: "Commands resent with the same id after no ack.",
		}),
		commandsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_commands_failed_total", Help: "Commands never acked after every resend (close_failed).",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_commands_pending", Help: "Ports with a command awaiting its ack.",
		}),
		latched: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_ports_latched", Help: "Ports closed for safety and latched until an operator resets them.",
		}),
		detectToCmd: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chargeguard_detection_to_command_seconds",
			Help:    "From receiving the message that showed a condition to publishing the command.",
			Buckets: latencyBuckets,
		}),
		cmdToAck: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chargeguard_command_to_ack_seconds",
			Help:    "From publishing a command (first attempt) to the pile's ack.",
			Buckets: latencyBuckets,
		}),
		pilesOnline: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_piles_online", Help: "Piles whose last status message was a birth.",
		}),
		pilesOffline: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chargeguard_piles_offline", Help: "Piles whose last status message was a death (last will), by site.",
		}, []string{"site"}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_alerting_queue_length", Help: "Messages waiting for the safety engine.",
		}),
		queueFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_alerting_queue_full_total", Help: "Times the engine's queue was full and ingest waited.",
		}),
		persistDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chargeguard_alerting_persist_duration_seconds", Help: "Writing the safety state to disk.",
			Buckets: latencyBuckets,
		}),
		persistFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_alerting_persist_failures_total", Help: "Failed writes of the safety state.",
		}),
		viewPublish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chargeguard_alerting_view_publish_seconds",
			Help: "Time the engine's goroutine spends publishing the read-only view for the API (once per tick with changes).",
			// 10µs to about 1.6 s.
			Buckets: prometheus.ExponentialBuckets(0.00001, 2.5, 14),
		}),
		viewPorts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_alerting_view_ports", Help: "Ports in the newest published view.",
		}),
		persistOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_alerting_persist_last_success_timestamp_seconds", Help: "When the safety state was last written to disk (Unix time; 0: not since start).",
		}),
		persistFailed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_alerting_persist_last_failure_timestamp_seconds", Help: "When a write of the safety state last failed (Unix time; 0: not since start).",
		}),
	}
	for _, a := range []string{"close", "open"} {
		m.commandsSent.WithLabelValues(a)
		m.commandsAcked.WithLabelValues(a, "true")
		m.commandsAcked.WithLabelValues(a, "false")
	}
	if r != nil {
		r.MustRegister(m.alerts, m.firing, m.commandsSent, m.commandsAcked, m.commandsRetried, m.commandsFailed,
			m.pending, m.latched, m.detectToCmd, m.cmdToAck, m.pilesOnline, m.pilesOffline, m.queue, m.queueFull, m.persistDuration, m.persistFailures,
			m.viewPublish, m.viewPorts, m.persistOK, m.persistFailed)
	}
	return m
}
