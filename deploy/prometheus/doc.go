// Package prometheus holds the Prometheus configuration that watches
// chargeguard itself: prometheus.yml (the scrape of chargeguard's /metrics,
// the rule files and the Alertmanager to alert), rules/chargeguard.rules.yml
// (alerts on chargeguard's own health, each with a runbook under
// docs/runbooks) and their promtool unit tests in tests/.
//
// The Go code is only the metric contract the rules and the Grafana boards
// are written against (Metrics) and the tests that run promtool on all of
// the above.
package prometheus
