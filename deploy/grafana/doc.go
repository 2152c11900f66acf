// Package grafana is chargeguard's Grafana boards as code: it builds the
// dashboards that operators and on-call staff watch, with the Grafana
// Foundation SDK, from the InfluxQL and PromQL queries defined in this
// package.
//
// The dashboards are committed as JSON under deploy/grafana/dashboards and
// provisioned into Grafana by deploy/grafana/provisioning. Regenerate them
// after changing anything here:
//
//	go run ./deploy/grafana/gen
//
// A test fails when the committed JSON differs from what Boards produces, and
// an integration test runs every InfluxQL query of every board (panels,
// template variables and annotations) against a real InfluxDB 1.8 filled with
// a fault scenario written to docs/schema.md.
//
// The boards query InfluxDB with InfluxQL only, so the same JSON works on
// InfluxDB 1.8, on 2.x through a DBRP mapping, and on 3.x. Every query is a
// Query value in queries.go: the boards and the tests share them, so a query
// cannot be changed on a board without the test running the new text.
package grafana
