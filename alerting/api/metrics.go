package api

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's. Their names are a contract with dashboards and
// alerting rules: do not rename them.
type metrics struct {
	requests *prometheus.CounterVec
	resets   *prometheus.CounterVec
}

// The route label values: one per endpoint, and "none" for a path or
// method no endpoint serves, so that a scan of random paths cannot create
// new series.
const (
	routePorts  = "ports"
	routeAlerts = "alerts"
	routeAck    = "ack"
	routeReset  = "reset"
	routeAudit  = "audit"
	routeReload = "reload"
	routeNone   = "none"
)

// resetOutcomes are the outcome label values that exist from the start:
// "ok" and the reasons a reset is refused most often. Every other reason
// (a fixed set: see docs/api.md) appears when it first happens.
var resetOutcomes = []string{
	"ok", "missing_token", "unknown_token", "operator_role_required", "no_operator_tokens",
	"bad_id", "bad_port", "unknown_pile", "not_latched", "pile_latched", "condition_active",
	"command_pending", "pile_offline", "timeout", "internal",
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_api_requests_total",
			Help: "Operator API requests, by route and HTTP status code.",
		}, []string{"route", "code"}),
		resets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_api_resets_total",
			Help: "Port reset attempts through the operator API, by outcome: ok, or the reason of the refusal.",
		}, []string{"outcome"}),
	}
	for _, o := range resetOutcomes {
		m.resets.WithLabelValues(o)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.resets} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: register metrics: %w", err)
		}
	}
	return m, nil
}
