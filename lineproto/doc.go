// Package lineproto appends InfluxDB line protocol to byte slices without
// allocating. It is the one encoder of every point chargeguard stores
// (readings in ingest, alerts and audit records in alerting), so escaping
// is written and tested once.
package lineproto
