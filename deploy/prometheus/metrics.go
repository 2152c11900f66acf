package prometheus

// Metrics are the names of chargeguard's metrics on /metrics that the alert
// rules and the Grafana Health board use: the contract between chargeguard's
// code and its monitoring. Histograms are listed by their base name (their
// series are <name>_bucket, _sum and _count). A test fails when a rule or a
// board uses a name that is not listed here.
var Metrics = []string{
	// cluster mode (docs/scale.md)
	"chargeguard_cluster_leader",
	"chargeguard_cluster_no_leader",
	"chargeguard_cluster_role_changes_total", // {role}
	"chargeguard_cluster_held_back_total",    // {kind, role}
	"chargeguard_shard_claims_registered",    // 1: this replica's site claims are in etcd
	"chargeguard_shard_overlapping_sites",    // sites another shard claims too
	"chargeguard_shard_unguarded_sites",      // sites on the broker no shard claims
	"chargeguard_shard_unguarded_site",       // {site}
	// ingest
	"chargeguard_ingest_received_total",
	"chargeguard_ingest_messages_total", // {kind}
	"chargeguard_ingest_rejected_total", // {reason}
	"chargeguard_ingest_port_samples_total",
	"chargeguard_ingest_clock_skew_total",
	"chargeguard_ingest_acked_total",
	"chargeguard_ingest_queue_length",
	"chargeguard_ingest_spool_blocked",              // 1 while acking is held back
	"chargeguard_ingest_mqtt_connected",             // {session="storage"|"live"}
	"chargeguard_ingest_mqtt_connection_lost_total", // {session}
	"chargeguard_ingest_lag_seconds",                // histogram
	"chargeguard_ingest_live_backlog",               // live session: read, not yet with the engine
	"chargeguard_ingest_live_lag_seconds",           // live session's canary round trip
	"chargeguard_ingest_storage_lag_seconds",        // storage session's canary: its wait in the broker
	"chargeguard_ingest_storage_yield_seconds_total",
	// spool
	"chargeguard_spool_records",
	"chargeguard_spool_bytes",
	"chargeguard_spool_quota_bytes",
	"chargeguard_spool_appends_total",
	"chargeguard_spool_full_total",
	"chargeguard_spool_fsync_duration_seconds", // histogram
	"chargeguard_spool_quarantined_segments",   // corrupt segments kept aside
	"chargeguard_spool_recovered_records_total",
	"chargeguard_spool_corrupt_bytes_total",
	"chargeguard_storage_degraded", // 1: the spool did not open
	// InfluxDB writer
	"chargeguard_influx_write_duration_seconds", // histogram
	"chargeguard_influx_write_failures_total",   // {code}
	"chargeguard_influx_points_written_total",
	"chargeguard_influx_points_dead_lettered_total",
	"chargeguard_influx_batches_total",
	"chargeguard_influx_up",
	"chargeguard_influx_dead_letter_bytes",
	"chargeguard_influx_dead_letter_max_bytes",
	"chargeguard_influx_dead_letter_dropped_total",
	// safety engine
	"chargeguard_alerts_firing",        // {alertname, severity}
	"chargeguard_alerts_total",         // {alertname, severity}
	"chargeguard_commands_sent_total",  // {action}
	"chargeguard_commands_acked_total", // {action, ok}
	"chargeguard_commands_retried_total",
	"chargeguard_commands_failed_total",
	"chargeguard_commands_pending",
	"chargeguard_detection_to_command_seconds", // histogram
	"chargeguard_command_to_ack_seconds",       // histogram
	"chargeguard_ports_latched",
	"chargeguard_piles_offline", // {site}
	"chargeguard_piles_online",
	"chargeguard_engine_telemetry_set_aside_total", // {outcome}
	"chargeguard_engine_pile_clock_distrusted_total",
	"chargeguard_alerting_persist_failures_total",
	"chargeguard_alerting_persist_last_success_timestamp_seconds",
	"chargeguard_alerting_persist_last_failure_timestamp_seconds",
	// incident response, measured by the web console
	"chargeguard_incident_unacknowledged_age_seconds", // {site, severity}
	"chargeguard_incident_time_to_ack_seconds",        // histogram {site}
	"chargeguard_incident_time_to_on_site_seconds",    // histogram {site}
	// notifications to Alertmanager
	"chargeguard_notify_alerts_sent_total", // {alertmanager}
	"chargeguard_notify_errors_total",      // {alertmanager}
	"chargeguard_notify_dropped_total",
	"chargeguard_notify_queue_length",
	// embedded MQTT broker
	"chargeguard_broker_clients_connected",
	"chargeguard_broker_messages_dropped_total",
	"chargeguard_broker_inflight_dropped_total",
	"chargeguard_broker_connections_refused_total", // {reason}
	"chargeguard_broker_preauth_connections",
}
