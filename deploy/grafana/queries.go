package grafana

import "strings"

// The InfluxQL of every board, in one place: the boards use these values and
// the integration test runs each of them against InfluxDB 1.8 (docs/schema.md).
//
// Conventions that hold for all of them:
//   - Grafana's $timeFilter bounds every query on a time series, so a panel
//     follows the time picker or the panel's own relative time ("Last 5
//     minutes" on the panels that show the present). The one exception is
//     the `status` measurement: a pile publishes its birth once per
//     connection, so its last status may be weeks old and is looked up over
//     all time (status points are few).
//   - "Last state of a port" is `last("state")` grouped by site, pile and port,
//     in a subquery when it has to be counted.
//   - In `port`, port is a tag (a string: "3"); in `alert`, `audit`, `ack` and
//     `event` it is an integer field, and 0 means the whole pile. A port's
//     board therefore shows the commands and alerts of its port and of port 0.
//   - Identifiers are double-quoted and string literals single-quoted, so a
//     site or pile id (only [A-Za-z0-9_-]) can never change a statement.

// Conditions on the template variables. The Site board lets an operator pick
// several piles and ports, so it matches them with a regular expression
// (Grafana writes a multi-value selection as "(p01|p02)"); the Port board
// shows exactly one port.
const (
	condSite       = `"site" = '$site'`
	condPileIn     = `"pile" =~ /^$pile$/`
	condPortIn     = `"port" =~ /^$port$/`
	condPile       = `"pile" = '$pile'`
	condPortTag    = `"port" = '$port'`
	condPortOrPile = `("port" = $port OR "port" = 0)`
)

// lastPortState is the subquery of a port's last reported state.
const lastPortState = `SELECT last("state") AS "state" FROM "port" WHERE $timeFilter GROUP BY "site", "pile", "port"`

// lastPileStatus is the subquery of a pile's last birth or death.
const lastPileStatus = `SELECT last("online") AS "online" FROM "status" GROUP BY "site", "pile"`

// energySteps is the subquery of the energy each port delivered between two
// readings: the session counter `wh` only grows during a session and starts
// again near 0 with the next, so the non-negative differences add up to the
// energy delivered.
const energySteps = `SELECT non_negative_difference("wh") AS "wh" FROM "port" WHERE $timeFilter GROUP BY "site", "pile", "port"`

func where(conds ...string) string { return " WHERE " + strings.Join(conds, " AND ") }

// Conditions on the audit measurement. Its action tag is the record's
// alerting.AuditKind and its command field the command (close or open), as
// alerting/service.go writes them (docs/schema.md).
const (
	// condCloseSent: a close sent for the first time, a cut. Its
	// retries are not new cuts.
	condCloseSent = `"action" = 'command' AND "command" = 'close'`
	// condResetOrOpen: operators' resets, refused or not, and the port
	// reopened after a full battery was unplugged (a reset's own open
	// command would mark the same moment twice).
	condResetOrOpen = `("action" =~ /^(reset|reset_refused)$/ OR ("action" = 'command' AND "command" = 'open' AND "actor" = 'rule:full'))`
	// condCommandNews: what changed about a port's commands: sends,
	// resends, failures, cancellations and resets; not the plain acks.
	condCommandNews = `"action" =~ /^(command|retry|latch_reassert|ack_failed|close_failed|open_failed|open_canceled|reset|reset_refused)$/`
)

// Port states.
const (
	StateIdle     = "idle"
	StateCharging = "charging"
	StateClosed   = "closed"
	StateFault    = "fault"
)

// PortStates are the values of the `state` field, in the order the boards
// show them.
var PortStates = []string{StateCharging, StateIdle, StateClosed, StateFault}

// FleetPortsInState counts the ports whose last state, over the panel's time
// range, is state.
func FleetPortsInState(state string) Query {
	return Query{
		ID:      "fleet/ports-" + state,
		Text:    `SELECT count("state") AS "ports" FROM (` + lastPortState + `) WHERE "state" = '` + state + `'`,
		Format:  FormatTimeSeries,
		Columns: []string{"ports"},
	}
}

// FleetSiteStates counts, per site, the ports whose last state is state; the
// column is named after the state.
func FleetSiteStates(state string) Query {
	return Query{
		ID:      "fleet/site-" + state,
		Text:    `SELECT count("state") AS "` + state + `" FROM (` + lastPortState + `) WHERE "state" = '` + state + `' GROUP BY "site"`,
		Format:  FormatTable,
		Columns: []string{state},
		Tags:    []string{"site"},
	}
}

var (
	// Template variables (SHOW TAG VALUES answers the columns key, value).
	VarSite = Query{
		ID:      "var/site",
		Text:    `SHOW TAG VALUES FROM "pile" WITH KEY = "site"`,
		Columns: []string{"key", "value"},
	}
	VarPile = Query{
		ID:      "var/pile",
		Text:    `SHOW TAG VALUES FROM "pile" WITH KEY = "pile"` + where(condSite),
		Columns: []string{"key", "value"},
	}
	VarPortsOfPiles = Query{
		ID:      "var/port-of-piles",
		Text:    `SHOW TAG VALUES FROM "port" WITH KEY = "port"` + where(condSite, condPileIn),
		Columns: []string{"key", "value"},
	}
	VarPortOfPile = Query{
		ID:      "var/port-of-pile",
		Text:    `SHOW TAG VALUES FROM "port" WITH KEY = "port"` + where(condSite, condPile),
		Columns: []string{"key", "value"},
	}

	// Fleet overview.
	FleetPilesOffline = Query{
		ID:      "fleet/piles-offline",
		Text:    `SELECT count("online") AS "piles" FROM (` + lastPileStatus + `) WHERE "online" = false`,
		Format:  FormatTimeSeries,
		Columns: []string{"piles"},
	}
	FleetSiteOffline = Query{
		ID:      "fleet/site-offline",
		Text:    `SELECT count("online") AS "offline_piles" FROM (` + lastPileStatus + `) WHERE "online" = false GROUP BY "site"`,
		Format:  FormatTable,
		Columns: []string{"offline_piles"},
		Tags:    []string{"site"},
	}
	FleetOfflineList = Query{
		ID:      "fleet/offline-list",
		Text:    `SELECT "online" FROM (` + lastPileStatus + `) WHERE "online" = false GROUP BY "site", "pile"`,
		Format:  FormatTable,
		Columns: []string{"online"},
		Tags:    []string{"site", "pile"},
	}
	FleetHottestPorts = Query{
		ID:      "fleet/hottest-ports",
		Text:    `SELECT max("temp_c") AS "temp_c", last("state") AS "state", last("a") AS "a" FROM "port" WHERE $timeFilter GROUP BY "site", "pile", "port"`,
		Format:  FormatTable,
		Columns: []string{"temp_c", "state", "a"},
		Tags:    []string{"site", "pile", "port"},
	}
	FleetHottestBySite = Query{
		ID:      "fleet/hottest-by-site",
		Text:    `SELECT max("temp_c") AS "temp_c" FROM "port" WHERE $timeFilter GROUP BY time($__interval), "site" fill(none)`,
		Format:  FormatTimeSeries,
		Alias:   "$tag_site",
		Columns: []string{"temp_c"},
		Tags:    []string{"site"},
	}
	FleetEnergyTotal = Query{
		ID:      "fleet/energy-total",
		Text:    `SELECT sum("wh") AS "wh" FROM (` + energySteps + `)`,
		Format:  FormatTimeSeries,
		Columns: []string{"wh"},
	}
	FleetEnergyBySite = Query{
		ID:      "fleet/energy-by-site",
		Text:    `SELECT sum("wh") AS "wh" FROM (` + energySteps + `) GROUP BY "site"`,
		Format:  FormatTimeSeries,
		Alias:   "$tag_site",
		Columns: []string{"wh"},
		Tags:    []string{"site"},
	}
	FleetEnergyOverTime = Query{
		ID:      "fleet/energy-over-time",
		Text:    `SELECT sum("wh") AS "wh" FROM (` + energySteps + `) WHERE $timeFilter GROUP BY time($__interval), "site" fill(0)`,
		Format:  FormatTimeSeries,
		Alias:   "$tag_site",
		Columns: []string{"wh"},
		Tags:    []string{"site"},
	}
	FleetCutsCount = Query{
		ID:      "fleet/cuts-count",
		Text:    `SELECT count("id") AS "cuts" FROM "audit" WHERE ` + condCloseSent + ` AND $timeFilter`,
		Format:  FormatTimeSeries,
		Columns: []string{"cuts"},
	}
	FleetCriticalCount = Query{
		ID:      "fleet/critical-count",
		Text:    `SELECT count("summary") AS "alerts" FROM "alert" WHERE "state" = 'firing' AND "severity" = 'critical' AND $timeFilter`,
		Format:  FormatTimeSeries,
		Columns: []string{"alerts"},
	}
	FleetAlertsByName = Query{
		ID:      "fleet/alerts-by-name",
		Text:    `SELECT count("summary") AS "alerts" FROM "alert" WHERE "state" = 'firing' AND $timeFilter GROUP BY "alertname"`,
		Format:  FormatTimeSeries,
		Alias:   "$tag_alertname",
		Columns: []string{"alerts"},
		Tags:    []string{"alertname"},
	}
	FleetAlertEvents = Query{
		ID:      "fleet/alert-events",
		Text:    `SELECT "site", "pile", "port", "alertname", "severity", "state", "summary", "value" FROM "alert" WHERE $timeFilter ORDER BY time DESC LIMIT 1000`,
		Format:  FormatTable,
		Columns: []string{"site", "pile", "port", "alertname", "severity", "state", "summary", "value"},
	}
	FleetCuts = Query{
		ID:      "fleet/cuts",
		Text:    `SELECT "site", "pile", "port", "actor", "reason", "attempt", "id" FROM "audit" WHERE ` + condCloseSent + ` AND $timeFilter ORDER BY time DESC LIMIT 1000`,
		Format:  FormatTable,
		Columns: []string{"site", "pile", "port", "actor", "reason", "attempt", "id"},
	}
	FleetRejectedByReason = Query{
		ID:      "fleet/rejected-by-reason",
		Text:    `SELECT count("size") AS "messages" FROM "rejected" WHERE $timeFilter GROUP BY time($__interval), "reason" fill(none)`,
		Format:  FormatTimeSeries,
		Alias:   "$tag_reason",
		Columns: []string{"messages"},
		Tags:    []string{"reason"},
	}
	FleetRejectedLatest = Query{
		ID:      "fleet/rejected-latest",
		Text:    `SELECT "reason", "kind", "topic", "detail", "size", "payload" FROM "rejected" WHERE $timeFilter ORDER BY time DESC LIMIT 100`,
		Format:  FormatTable,
		Columns: []string{"reason", "kind", "topic", "detail", "size", "payload"},
	}

	// Site board.
	SitePortsNow = Query{
		ID:      "site/ports-now",
		Text:    `SELECT last("state") AS "state", "temp_c", "a", "w", "wh" FROM "port"` + where(condSite, condPileIn, "$timeFilter") + ` GROUP BY "pile", "port"`,
		Format:  FormatTable,
		Columns: []string{"state", "temp_c", "a", "w", "wh"},
		Tags:    []string{"pile", "port"},
	}
	SitePiles = Query{
		ID:      "site/piles",
		Text:    `SELECT last("seq") AS "seq", "ambient_c", "leak_ma", "smoke", "skew_ms" FROM "pile"` + where(condSite, condPileIn, "$timeFilter") + ` GROUP BY "pile"`,
		Format:  FormatTable,
		Columns: []string{"seq", "ambient_c", "leak_ma", "smoke", "skew_ms"},
		Tags:    []string{"pile"},
	}
	SiteStatus = Query{
		ID:      "site/status",
		Text:    `SELECT "pile", "online", "fw", "ports", "rated_a", "kind" FROM "status"` + where(condSite, condPileIn, "$timeFilter") + ` ORDER BY time DESC`,
		Format:  FormatTable,
		Columns: []string{"pile", "online", "fw", "ports", "rated_a", "kind"},
	}
	SiteTemp = Query{
		ID:      "site/temp",
		Text:    `SELECT max("temp_c") AS "temp_c" FROM "port"` + where(condSite, condPileIn, condPortIn, "$timeFilter") + ` GROUP BY time($__interval), "pile", "port" fill(none)`,
		Format:  FormatTimeSeries,
		Alias:   "$tag_pile port $tag_port",
		Columns: []string{"temp_c"},
		Tags:    []string{"pile", "port"},
	}
	SiteAmbient = Query{
		ID:      "site/ambient",
		Text:    `SELECT mean("ambient_c") AS "ambient_c" FROM "pile"` + where(condSite, condPileIn, "$timeFilter") + ` GROUP BY time($__interval), "pile" fill(none)`,
		Format:  FormatTimeSeries,
		Alias:   "$tag_pile ambient",
		Columns: []string{"ambient_c"},
		Tags:    []string{"pile"},
	}
	SiteCurrent = Query{
		ID:      "site/current",
		Text:    `SELECT max("a") AS "a" FROM "port"` + where(condSite, condPileIn, condPortIn, "$timeFilter") + ` GROUP BY time($__interval), "pile", "port" fill(none)`,
		Format:  FormatTimeSeries,
		Alias:   "$tag_pile port $tag_port",
		Columns: []string{"a"},
		Tags:    []string{"pile", "port"},
	}
	SitePower = Query{
		ID:      "site/power",
		Text:    `SELECT mean("w") AS "w" FROM "port"` + where(condSite, condPileIn, condPortIn, "$timeFilter") + ` GROUP BY time($__interval), "pile", "port" fill(none)`,
		Format:  FormatTimeSeries,
		Alias:   "$tag_pile port $tag_port",
		Columns: []string{"w"},
		Tags:    []string{"pile", "port"},
	}
	SiteStates = Query{
		ID:      "site/states",
		Text:    `SELECT last("state") AS "state" FROM "port"` + where(condSite, condPileIn, condPortIn, "$timeFilter") + ` GROUP BY time($__interval), "pile", "port" fill(none)`,
		Format:  FormatTimeSeries,
		Alias:   "$tag_pile port $tag_port",
		Columns: []string{"state"},
		Tags:    []string{"pile", "port"},
	}
	SiteLeak = Query{
		ID:      "site/leak",
		Text:    `SELECT max("leak_ma") AS "leak_ma" FROM "pile"` + where(condSite, condPileIn, "$timeFilter") + ` GROUP BY time($__interval), "pile" fill(none)`,
		Format:  FormatTimeSeries,
		Alias:   "$tag_pile",
		Columns: []string{"leak_ma"},
		Tags:    []string{"pile"},
	}
	SiteAnnoAlerts = Query{
		ID:          "site/annotation-alerts",
		Text:        `SELECT "summary", "pile", "port", "alertname", "severity", "state" FROM "alert"` + where(condSite, condPileIn, "$timeFilter"),
		Columns:     []string{"summary", "pile", "port", "alertname", "severity", "state"},
		TextColumn:  "summary",
		TagsColumns: []string{"pile", "alertname", "severity", "state"},
	}
	SiteAnnoCuts = Query{
		ID:          "site/annotation-cuts",
		Text:        `SELECT "reason", "pile", "port", "actor", "attempt" FROM "audit"` + where(condSite, condPileIn, condCloseSent, "$timeFilter"),
		Columns:     []string{"reason", "pile", "port", "actor", "attempt"},
		TextColumn:  "reason",
		TagsColumns: []string{"pile", "actor"},
	}
	SiteAnnoResets = Query{
		ID:          "site/annotation-resets",
		Text:        `SELECT "reason", "pile", "port", "action", "actor" FROM "audit"` + where(condSite, condPileIn, condResetOrOpen, "$timeFilter"),
		Columns:     []string{"reason", "pile", "port", "action", "actor"},
		TextColumn:  "reason",
		TagsColumns: []string{"pile", "action", "actor"},
	}
	SiteAnnoEvents = Query{
		ID:          "site/annotation-events",
		Text:        `SELECT "detail", "pile", "port", "kind" FROM "event"` + where(condSite, condPileIn, `"kind" =~ /^(smoke|local_trip|door_open)$/`, "$timeFilter"),
		Columns:     []string{"detail", "pile", "port", "kind"},
		TextColumn:  "detail",
		TagsColumns: []string{"pile", "kind"},
	}

	// Port board.
	PortStateNow = portNow("state")
	PortTempNow  = portNow("temp_c")
	PortAmpsNow  = portNow("a")
	PortWattsNow = portNow("w")
	PortWhNow    = portNow("wh")
	PortTemp     = portSeries("temp", "max", "temp_c", "socket")
	PortAmbient  = Query{
		ID:      "port/ambient",
		Text:    `SELECT mean("ambient_c") AS "ambient_c" FROM "pile"` + where(condSite, condPile, "$timeFilter") + ` GROUP BY time($__interval) fill(none)`,
		Format:  FormatTimeSeries,
		Alias:   "ambient (pile enclosure)",
		Columns: []string{"ambient_c"},
	}
	PortCurrent     = portSeries("current", "max", "a", "current")
	PortVoltage     = portSeries("voltage", "mean", "v", "voltage")
	PortPower       = portSeries("power", "mean", "w", "power")
	PortEnergy      = portSeries("energy", "last", "wh", "session energy")
	PortStateSeries = portSeries("states", "last", "state", "state")
	PortAudit       = Query{
		ID:      "port/audit",
		Text:    `SELECT "action", "command", "port", "actor", "reason", "detail", "attempt", "ok", "id" FROM "audit"` + where(condSite, condPile, condPortOrPile, "$timeFilter") + ` ORDER BY time DESC LIMIT 1000`,
		Format:  FormatTable,
		Columns: []string{"action", "command", "port", "actor", "reason", "detail", "attempt", "ok", "id"},
	}
	PortAcks = Query{
		ID:      "port/acks",
		Text:    `SELECT "id", "port", "ok", "state", "err" FROM "ack"` + where(condSite, condPile, condPortOrPile, "$timeFilter") + ` ORDER BY time DESC LIMIT 1000`,
		Format:  FormatTable,
		Columns: []string{"id", "port", "ok", "state", "err"},
	}
	PortAlerts = Query{
		ID:      "port/alerts",
		Text:    `SELECT "alertname", "severity", "port", "state", "summary", "value" FROM "alert"` + where(condSite, condPile, condPortOrPile, "$timeFilter") + ` ORDER BY time DESC LIMIT 1000`,
		Format:  FormatTable,
		Columns: []string{"alertname", "severity", "port", "state", "summary", "value"},
	}
	PortEvents = Query{
		ID:      "port/events",
		Text:    `SELECT "kind", "port", "detail" FROM "event"` + where(condSite, condPile, condPortOrPile, "$timeFilter") + ` ORDER BY time DESC LIMIT 1000`,
		Format:  FormatTable,
		Columns: []string{"kind", "port", "detail"},
	}
	PortAnnoAlerts = Query{
		ID:          "port/annotation-alerts",
		Text:        `SELECT "summary", "port", "alertname", "severity", "state" FROM "alert"` + where(condSite, condPile, condPortOrPile, "$timeFilter"),
		Columns:     []string{"summary", "port", "alertname", "severity", "state"},
		TextColumn:  "summary",
		TagsColumns: []string{"alertname", "severity", "state"},
	}
	PortAnnoCommands = Query{
		ID:          "port/annotation-commands",
		Text:        `SELECT "reason", "port", "action", "command", "actor", "attempt" FROM "audit"` + where(condSite, condPile, condPortOrPile, condCommandNews, "$timeFilter"),
		Columns:     []string{"reason", "port", "action", "command", "actor", "attempt"},
		TextColumn:  "reason",
		TagsColumns: []string{"action", "command", "actor"},
	}
)

// portNow is the last value of field on the Port board's single port.
func portNow(field string) Query {
	return Query{
		ID:      "port/now-" + field,
		Text:    `SELECT last("` + field + `") AS "` + field + `" FROM "port"` + where(condSite, condPile, condPortTag, "$timeFilter"),
		Format:  FormatTimeSeries,
		Columns: []string{field},
	}
}

// portSeries is fn(field) of the Port board's single port over time.
func portSeries(id, fn, field, alias string) Query {
	return Query{
		ID:      "port/" + id,
		Text:    `SELECT ` + fn + `("` + field + `") AS "` + field + `" FROM "port"` + where(condSite, condPile, condPortTag, "$timeFilter") + ` GROUP BY time($__interval) fill(none)`,
		Format:  FormatTimeSeries,
		Alias:   alias,
		Columns: []string{field},
	}
}

// PromQuery is one PromQL expression of a board. $instance is the board's
// instance variable, $__rate_interval Grafana's rate window.
type PromQuery struct {
	ID     string
	Expr   string
	Legend string
}

// sel is the label matcher of the health board's instance variable.
const sel = `instance=~"$instance"`

func m(name string) string { return name + `{` + sel + `}` }

func rate(name string) string { return `rate(` + m(name) + `[$__rate_interval])` }

func quantile(q, hist, by string) string {
	return `histogram_quantile(` + q + `, sum by (le` + by + `) (rate(` + hist + `_bucket{` + sel + `}[$__rate_interval])))`
}

var (
	PromUp             = PromQuery{"health/up", `up{job="chargeguard", ` + sel + `}`, "{{instance}}"}
	PromMQTTConnected  = PromQuery{"health/mqtt-connected", m("chargeguard_ingest_mqtt_connected"), "{{session}} session"}
	PromInfluxUp       = PromQuery{"health/influx-up", m("chargeguard_influx_up"), "InfluxDB"}
	PromSpoolBlocked   = PromQuery{"health/spool-blocked", m("chargeguard_ingest_spool_blocked"), "acks held back"}
	PromPending        = PromQuery{"health/commands-pending", `sum(` + m("chargeguard_commands_pending") + `)`, "pending"}
	PromAlertsFiring   = PromQuery{"health/alerts-firing", `sum by (severity) (` + m("chargeguard_alerts_firing") + `)`, "{{severity}}"}
	PromPilesOnline    = PromQuery{"health/piles-online", `sum(` + m("chargeguard_piles_online") + `)`, "online"}
	PromPilesOffline   = PromQuery{"health/piles-offline", `sum(` + m("chargeguard_piles_offline") + `)`, "offline"}
	PromIngestByKind   = PromQuery{"health/ingest-by-kind", `sum by (kind) (` + rate("chargeguard_ingest_messages_total") + `)`, "{{kind}}"}
	PromIngestReceived = PromQuery{"health/ingest-received", `sum(` + rate("chargeguard_ingest_received_total") + `)`, "received (all)"}
	PromPortSamples    = PromQuery{"health/port-samples", `sum(` + rate("chargeguard_ingest_port_samples_total") + `)`, "port samples"}
	PromRejected       = PromQuery{"health/rejected", `sum by (reason) (` + rate("chargeguard_ingest_rejected_total") + `)`, "{{reason}}"}
	PromClockSkew      = PromQuery{"health/clock-skew", `sum(` + rate("chargeguard_ingest_clock_skew_total") + `)`, "stored at receive time (clock skew)"}
	PromIngestLagP50   = PromQuery{"health/ingest-lag-p50", quantile("0.5", "chargeguard_ingest_lag_seconds", ""), "p50"}
	PromIngestLagP99   = PromQuery{"health/ingest-lag-p99", quantile("0.99", "chargeguard_ingest_lag_seconds", ""), "p99"}
	PromSpoolBytes     = PromQuery{"health/spool-bytes", `sum(` + m("chargeguard_spool_bytes") + `)`, "spool"}
	PromSpoolQuota     = PromQuery{"health/spool-quota", `sum(` + m("chargeguard_spool_quota_bytes") + `)`, "quota"}
	PromSpoolRecords   = PromQuery{"health/spool-records", `sum(` + m("chargeguard_spool_records") + `)`, "records in spool"}
	PromQueueLength    = PromQuery{"health/queue-length", `sum(` + m("chargeguard_ingest_queue_length") + `)`, "ingest queue"}
	PromSpoolFull      = PromQuery{"health/spool-full", `sum(increase(` + m("chargeguard_spool_full_total") + `[$__rate_interval]))`, "spool full"}
	PromFsyncP99       = PromQuery{"health/fsync-p99", quantile("0.99", "chargeguard_spool_fsync_duration_seconds", ""), "fsync p99"}
	PromWriteP50       = PromQuery{"health/write-p50", quantile("0.5", "chargeguard_influx_write_duration_seconds", ""), "p50"}
	PromWriteP99       = PromQuery{"health/write-p99", quantile("0.99", "chargeguard_influx_write_duration_seconds", ""), "p99"}
	PromWriteFailures  = PromQuery{"health/write-failures", `sum by (code) (` + rate("chargeguard_influx_write_failures_total") + `)`, "failed, {{code}}"}
	PromPointsWritten  = PromQuery{"health/points-written", `sum(` + rate("chargeguard_influx_points_written_total") + `)`, "written"}
	PromDeadLettered   = PromQuery{"health/dead-lettered", `sum(` + rate("chargeguard_influx_points_dead_lettered_total") + `)`, "dead-lettered"}
	PromBatches        = PromQuery{"health/batches", `sum(` + rate("chargeguard_influx_batches_total") + `)`, "batches"}
	PromDetectP50      = PromQuery{"health/detect-p50", quantile("0.5", "chargeguard_detection_to_command_seconds", ""), "p50"}
	PromDetectP99      = PromQuery{"health/detect-p99", quantile("0.99", "chargeguard_detection_to_command_seconds", ""), "p99"}
	PromAckP50         = PromQuery{"health/ack-p50", quantile("0.5", "chargeguard_command_to_ack_seconds", ""), "p50"}
	PromAckP99         = PromQuery{"health/ack-p99", quantile("0.99", "chargeguard_command_to_ack_seconds", ""), "p99"}
	PromCommandsSent   = PromQuery{"health/commands-sent", `sum by (action) (` + rate("chargeguard_commands_sent_total") + `)`, "sent {{action}}"}
	PromCommandsAcked  = PromQuery{"health/commands-acked", `sum by (action, ok) (` + rate("chargeguard_commands_acked_total") + `)`, "acked {{action}} ok={{ok}}"}
	PromCommandsRetry  = PromQuery{"health/commands-retried", `sum(` + rate("chargeguard_commands_retried_total") + `)`, "retried"}
	PromCommandsFailed = PromQuery{"health/commands-failed", `sum(` + rate("chargeguard_commands_failed_total") + `)`, "FAILED"}
	PromPortsLatched   = PromQuery{"health/ports-latched", `sum(` + m("chargeguard_ports_latched") + `)`, "ports latched closed"}
	PromOfflineBySite  = PromQuery{"health/offline-by-site", `sum by (site) (` + m("chargeguard_piles_offline") + `) > 0`, "{{site}}"}
	PromMQTTLost       = PromQuery{"health/mqtt-lost", `sum by (session) (increase(` + m("chargeguard_ingest_mqtt_connection_lost_total") + `[$__rate_interval]))`, "{{session}} lost"}
	PromNotifySent     = PromQuery{"health/notify-sent", `sum by (alertmanager) (` + rate("chargeguard_notify_alerts_sent_total") + `)`, "sent to {{alertmanager}}"}
	PromNotifyErrors   = PromQuery{"health/notify-errors", `sum by (alertmanager) (` + rate("chargeguard_notify_errors_total") + `)`, "errors {{alertmanager}}"}
	PromNotifyDropped  = PromQuery{"health/notify-dropped", `sum(` + rate("chargeguard_notify_dropped_total") + `)`, "DROPPED"}
	PromNotifyQueue    = PromQuery{"health/notify-queue", `sum(` + m("chargeguard_notify_queue_length") + `)`, "queue"}
	PromBrokerClients  = PromQuery{"health/broker-clients", `sum(` + m("chargeguard_broker_clients_connected") + `)`, "clients connected"}
	PromBrokerDropped  = PromQuery{"health/broker-dropped", `sum(` + rate("chargeguard_broker_messages_dropped_total") + `)`, "messages dropped"}
	PromBrokerInflight = PromQuery{"health/broker-inflight-dropped", `sum(` + rate("chargeguard_broker_inflight_dropped_total") + `)`, "in-flight dropped"}
	PromVarInstance    = PromQuery{"var/instance", `label_values(chargeguard_ingest_received_total, instance)`, ""}

	// The district's 1-3-5 response target, as the console times it: 90 %
	// of acknowledgements within a minute, of arrivals on site within three.
	PromAckP90    = PromQuery{"health/incident-ack-p90", quantile("0.9", "chargeguard_incident_time_to_ack_seconds", ", site"), "acknowledged, p90, {{site}}"}
	PromOnSiteP90 = PromQuery{"health/incident-on-site-p90", quantile("0.9", "chargeguard_incident_time_to_on_site_seconds", ", site"), "on site, p90, {{site}}"}
	// Telemetry the engine could use only in part (contract v1.1).
	PromSetAside = PromQuery{"health/engine-set-aside", `sum by (outcome) (` + rate("chargeguard_engine_telemetry_set_aside_total") + `)`, "{{outcome}}"}

	// Fleet overview, from chargeguard's own gauges: the engine knows which
	// alerts are firing now and which ports it keeps closed.
	PromFleetFiring  = PromQuery{"fleet/alerts-firing", `sum by (severity) (chargeguard_alerts_firing)`, "{{severity}}"}
	PromFleetLatched = PromQuery{"fleet/ports-latched", `sum(chargeguard_ports_latched)`, "latched"}
)

// Queries returns every InfluxQL query of the boards: panels, template
// variables and annotations. A test checks that the boards use exactly these.
func Queries() []Query {
	qs := []Query{
		VarSite, VarPile, VarPortsOfPiles, VarPortOfPile,
		FleetPilesOffline, FleetSiteOffline, FleetOfflineList, FleetHottestPorts,
		FleetHottestBySite, FleetEnergyTotal, FleetEnergyBySite, FleetEnergyOverTime,
		FleetCutsCount, FleetCriticalCount, FleetAlertsByName, FleetAlertEvents,
		FleetCuts, FleetRejectedByReason, FleetRejectedLatest,
		SitePortsNow, SitePiles, SiteStatus, SiteTemp, SiteAmbient, SiteCurrent,
		SitePower, SiteStates, SiteLeak,
		SiteAnnoAlerts, SiteAnnoCuts, SiteAnnoResets, SiteAnnoEvents,
		PortStateNow, PortTempNow, PortAmpsNow, PortWattsNow, PortWhNow,
		PortTemp, PortAmbient, PortCurrent, PortVoltage, PortPower, PortEnergy,
		PortStateSeries, PortAudit, PortAcks, PortAlerts, PortEvents,
		PortAnnoAlerts, PortAnnoCommands,
	}
	for _, s := range []string{StateClosed, StateFault, StateCharging} {
		qs = append(qs, FleetPortsInState(s))
	}
	for _, s := range PortStates {
		qs = append(qs, FleetSiteStates(s))
	}
	return qs
}

// PromQueries returns every PromQL expression of the boards.
func PromQueries() []PromQuery {
	return []PromQuery{
		PromUp, PromMQTTConnected, PromInfluxUp, PromSpoolBlocked, PromPending,
		PromAlertsFiring, PromPilesOnline, PromPilesOffline, PromIngestByKind,
		PromIngestReceived, PromPortSamples, PromRejected, PromClockSkew,
		PromIngestLagP50, PromIngestLagP99, PromSpoolBytes, PromSpoolQuota,
		PromSpoolRecords, PromQueueLength, PromSpoolFull, PromFsyncP99,
		PromWriteP50, PromWriteP99, PromWriteFailures, PromPointsWritten,
		PromDeadLettered, PromBatches, PromDetectP50, PromDetectP99, PromAckP50,
		PromAckP99, PromCommandsSent, PromCommandsAcked, PromCommandsRetry,
		PromCommandsFailed, PromPortsLatched, PromOfflineBySite, PromMQTTLost,
		PromNotifySent, PromNotifyErrors, PromNotifyDropped, PromNotifyQueue,
		PromBrokerClients, PromBrokerDropped, PromBrokerInflight, PromVarInstance,
		PromFleetFiring, PromFleetLatched, PromAckP90, PromOnSiteP90, PromSetAside,
	}
}
