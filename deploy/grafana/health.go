package grafana

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
	"github.com/grafana/grafana-foundation-sdk/go/units"
)

// healthBoard is chargeguard's own health, from its Prometheus metrics: is
// telemetry coming in and stored, and does a cut reach the pile in time.
func healthBoard() *dashboard.DashboardBuilder {
	b := dashboard.NewDashboardBuilder("chargeguard — Health").
		Uid(HealthUID).
		Description("chargeguard itself: MQTT sessions, ingest, the spool, InfluxDB writes, the safety path from detection to the pile's ack, and notifications to Alertmanager. The alerts in deploy/prometheus/rules watch the same metrics.").
		Tags([]string{boardTag}).
		Refresh("30s").
		Time("now-3h", "now").
		Timezone(common.TimeZoneBrowser).
		Links(boardLinks()).
		WithVariable(dashboard.NewQueryVariableBuilder("instance").
			Label("Instance").
			Datasource(promRef()).
			Query(dashboard.StringOrMap{String: ptr(PromVarInstance.Expr)}).
			Definition(PromVarInstance.Expr).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Sort(dashboard.VariableSortNaturalAsc).
			Multi(true).
			IncludeAll(true).
			AllValue(".*"))

	b.WithRow(dashboard.NewRowBuilder("Is chargeguard protecting the piles?"))
	b.WithPanel(promStat("chargeguard up", "Whether Prometheus can scrape chargeguard. DOWN means nothing watches the ports: restart it (runbook ChargeguardDown).", PromUp, valueMap("1", "up", colorOK, "0", "DOWN", colorCut)).
		Thresholds(thresholds(colorCut, 1.0, colorOK)).ColorScheme(thresholdColor()))
	b.WithPanel(promStat("MQTT sessions", "chargeguard's two MQTT sessions: storage (everything piles send, stored in InfluxDB) and live (what the safety engine evaluates and where commands go). A DISCONNECTED live session means no cut can be sent.", PromMQTTConnected, connectedMappings()).
		Thresholds(thresholds(colorCut, 1.0, colorOK)).ColorScheme(thresholdColor()).TextMode(common.BigValueTextModeValueAndName))
	b.WithPanel(promStat("InfluxDB", "Whether chargeguard's last write to InfluxDB succeeded. While InfluxDB is down, telemetry waits in the spool (boards lag, safety is unaffected).", PromInfluxUp, valueMap("1", "up", colorOK, "0", "DOWN", colorCut)).
		Thresholds(thresholds(colorCut, 1.0, colorOK)).ColorScheme(thresholdColor()))
	b.WithPanel(promStat("Spool", "BLOCKED: the spool is full, so chargeguard holds back MQTT acks and the broker queues messages. Free disk or fix InfluxDB (runbook ChargeguardSpoolFull).", PromSpoolBlocked, valueMap("0", "ok", colorOK, "1", "BLOCKED", colorCut)).
		Thresholds(countThresholds(colorCut)).ColorScheme(thresholdColor()))
	b.WithPanel(promStat("Commands pending", "Commands sent to piles and not yet acked. More than 0 for a minute means piles are not answering (runbook ChargeguardCommandsUnacked).", PromPending, nil).
		Thresholds(countThresholds(colorCut)).ColorScheme(thresholdColor()))
	b.WithPanel(promStat("Alerts firing", "Alerts the safety engine raises now, by severity.", PromAlertsFiring, nil).
		Thresholds(countThresholds(colorCut)).ColorScheme(thresholdColor()).TextMode(common.BigValueTextModeValueAndName))

	b.WithRow(dashboard.NewRowBuilder("Ingest"))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Messages ingested").
		Description("Messages per second by kind, and all messages received. A fleet of N piles reporting every 10 s sends about N/10 telemetry messages per second; a drop to zero is ChargeguardIngestStalled.").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromIngestByKind)).
		WithTarget(promTarget("B", PromIngestReceived)).
		WithTarget(promTarget("C", PromPortSamples)).
		Unit("suffix: msg/s").Min(0).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(8).Height(8))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Rejected messages by reason").
		Description("Messages that broke the protocol, per second, by reason. The Fleet board's \"Latest rejected messages\" shows which pile sent them and what was wrong. Clock skew: telemetry stored at receive time because the pile's clock is off by more than 5 minutes.").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromRejected)).
		WithTarget(promTarget("B", PromClockSkew)).
		Unit("suffix: msg/s").Min(0).
		DrawStyle(common.GraphDrawStyleBars).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(8).Height(8))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Ingest lag").
		Description("Time from a pile's reading to its point in InfluxDB (p50 and p99). It grows while InfluxDB is slow or down; the safety engine does not wait for it.").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromIngestLagP50)).
		WithTarget(promTarget("B", PromIngestLagP99)).
		Unit(units.Seconds).Min(0).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(8).Height(8))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Spool depth vs quota").
		Description("Bytes waiting in the on-disk spool for InfluxDB, against the spool's quota (red dashed). Near the quota chargeguard stops acking MQTT messages (ChargeguardSpoolNearQuota at 80 %).").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromSpoolBytes)).
		WithTarget(promTarget("B", PromSpoolQuota)).
		Unit(units.BytesIEC).Min(0).
		OverrideByName("quota", []dashboard.DynamicConfigValue{
			prop("color", map[string]any{"mode": "fixed", "fixedColor": colorCut}),
			prop("custom.lineStyle", map[string]any{"fill": "dash", "dash": []int{10, 10}}),
			prop("custom.fillOpacity", 0),
		}).
		FillOpacity(20).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(8).Height(8))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Spool records and ingest queue").
		Description("Records in the spool and messages queued in memory between MQTT and the spool; \"spool full\" counts appends refused because the spool was full.").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromSpoolRecords)).
		WithTarget(promTarget("B", PromQueueLength)).
		WithTarget(promTarget("C", PromSpoolFull)).
		Unit(units.Short).Min(0).
		OverrideByName("spool full", []dashboard.DynamicConfigValue{prop("color", map[string]any{"mode": "fixed", "fixedColor": colorCut})}).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(8).Height(8))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Spool fsync latency").
		Description("p99 time to fsync a spool append. Every QoS 1 message waits for it before it is acked: a slow disk slows ingest.").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromFsyncP99)).
		Unit(units.Seconds).Min(0).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(8).Height(8))

	b.WithRow(dashboard.NewRowBuilder("InfluxDB writes"))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("InfluxDB write latency").
		Description("Time for one batch write to InfluxDB, p50 and p99.").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromWriteP50)).
		WithTarget(promTarget("B", PromWriteP99)).
		Unit(units.Seconds).Min(0).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(8).Height(8))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("InfluxDB write failures").
		Description("Failed batch writes per second by HTTP status (or network error). Failed batches stay in the spool and are retried; nothing is lost unless the spool fills.").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromWriteFailures)).
		Unit("suffix: /s").Min(0).
		ColorScheme(fixedColor(colorCut)).
		DrawStyle(common.GraphDrawStyleBars).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(8).Height(8))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Points written and dead-lettered").
		Description("Points per second written to InfluxDB, and points InfluxDB refused for good (dead-lettered: a field type conflict or a bad point). Dead-lettered points are missing from the boards (ChargeguardPointsDeadLettered).").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromPointsWritten)).
		WithTarget(promTarget("B", PromDeadLettered)).
		WithTarget(promTarget("C", PromBatches)).
		Unit("suffix: /s").Min(0).
		OverrideByName("dead-lettered", []dashboard.DynamicConfigValue{prop("color", map[string]any{"mode": "fixed", "fixedColor": colorCut})}).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(8).Height(8))

	b.WithRow(dashboard.NewRowBuilder("Safety path: detection → command → ack"))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Detection to command").
		Description("Time from the reading that tripped a rule to the close command leaving chargeguard, p50 and p99. It should stay well under a second (dashed line).").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromDetectP50)).
		WithTarget(promTarget("B", PromDetectP99)).
		Unit(units.Seconds).Min(0).
		Thresholds(thresholds(colorOK, 1.0, colorCut)).
		ThresholdsStyle(dashedThresholds()).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(8).Height(8))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Command to ack").
		Description("Time from a command to the pile's ack, p50 and p99. chargeguard resends after 3 s (dashed line) and gives up after 3 retries (close_failed).").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromAckP50)).
		WithTarget(promTarget("B", PromAckP99)).
		Unit(units.Seconds).Min(0).
		Thresholds(thresholds(colorOK, 3.0, colorCut)).
		ThresholdsStyle(dashedThresholds()).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(8).Height(8))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Commands").
		Description("Commands per second: sent by action, acked (ok true/false), retried, and FAILED (no ack after every retry: a close_failed alert each).").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromCommandsSent)).
		WithTarget(promTarget("B", PromCommandsAcked)).
		WithTarget(promTarget("C", PromCommandsRetry)).
		WithTarget(promTarget("D", PromCommandsFailed)).
		Unit("suffix: /s").Min(0).
		OverrideByName("FAILED", []dashboard.DynamicConfigValue{prop("color", map[string]any{"mode": "fixed", "fixedColor": colorCut})}).
		OverrideByName("retried", []dashboard.DynamicConfigValue{prop("color", map[string]any{"mode": "fixed", "fixedColor": colorWarn})}).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(8).Height(8))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Pending commands and latched ports").
		Description("Commands waiting for an ack, and ports chargeguard keeps closed until an operator resets them.").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromPending)).
		WithTarget(promTarget("B", PromPortsLatched)).
		Unit(units.Short).Min(0).Decimals(0).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(8).Height(8))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Piles online and offline").
		Description("Piles chargeguard hears from, and those it lost (death message or silent for 3 reporting intervals).").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromPilesOnline)).
		WithTarget(promTarget("B", PromPilesOffline)).
		Unit(units.Short).Min(0).Decimals(0).
		OverrideByName("offline", []dashboard.DynamicConfigValue{prop("color", map[string]any{"mode": "fixed", "fixedColor": colorCut})}).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(8).Height(8))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Offline piles by site").
		Description("Sites with offline piles. Several at one site at once is a power or network cut there (ChargeguardManyPilesOffline).").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromOfflineBySite)).
		Unit(units.Short).Min(0).Decimals(0).
		Thresholds(thresholds(colorOK, 4.0, colorCut)).
		ThresholdsStyle(dashedThresholds()).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(8).Height(8))

	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Response to critical alerts (1-3-5)").
		Description("How fast on-call acknowledges an alert and reports being on site, per site, as the console records it (90th percentile). The district's target: respond within 1 minute (dashed), on site within 3. A critical alert unacknowledged after a minute escalates (ChargeguardCriticalUnacknowledged).").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromAckP90)).
		WithTarget(promTarget("B", PromOnSiteP90)).
		Unit(units.Seconds).Min(0).
		Thresholds(thresholds(colorOK, 60.0, colorCut)).
		ThresholdsStyle(dashedThresholds()).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(8).Height(8))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Telemetry the engine could use only in part").
		Description("Per second, by outcome: duplicate, late and stale messages (set aside: only the single-reading trips run on them), unplaced (no usable seq), partial (broke the protocol, acted on as far as it validated), restart (a pile restarted its counter without a birth). Many at once from many piles: ChargeguardPilesUnreadable.").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromSetAside)).
		Unit(units.Short).Min(0).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(8).Height(8))

	b.WithRow(dashboard.NewRowBuilder("MQTT, broker and notifications"))
	b.WithPanel(statetimeline.NewPanelBuilder().
		Title("MQTT sessions over time").
		Description("When each of chargeguard's MQTT sessions was connected.").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromMQTTConnected)).
		Mappings(connectedMappings()).
		ColorScheme(thresholdColor()).
		Thresholds(thresholds(colorCut, 1.0, colorOK)).
		ShowValue(common.VisibilityModeNever).
		MergeValues(true).
		Tooltip(tooltipAll()).
		Span(6).Height(8))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("MQTT connection losses").
		Description("Lost MQTT connections per session. Frequent losses (ChargeguardMQTTFlapping) point at the broker or the network.").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromMQTTLost)).
		Unit(units.Short).Min(0).Decimals(0).
		DrawStyle(common.GraphDrawStyleBars).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(6).Height(8))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Alertmanager notifications").
		Description("Alerts posted to each Alertmanager per second, errors, and alerts DROPPED because the queue overflowed (a page that never went out: ChargeguardNotificationsDropped). Queue: alerts waiting to be posted.").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromNotifySent)).
		WithTarget(promTarget("B", PromNotifyErrors)).
		WithTarget(promTarget("C", PromNotifyDropped)).
		WithTarget(promTarget("D", PromNotifyQueue)).
		Unit(units.Short).Min(0).
		OverrideByName("DROPPED", []dashboard.DynamicConfigValue{prop("color", map[string]any{"mode": "fixed", "fixedColor": colorCut})}).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(6).Height(8))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Embedded broker").
		Description("Only when chargeguard runs its embedded MQTT broker: clients connected (piles plus chargeguard's own two sessions), and messages the broker dropped because a client's queue or in-flight window was full (ChargeguardBrokerDropping).").
		Datasource(promRef()).
		WithTarget(promTarget("A", PromBrokerClients)).
		WithTarget(promTarget("B", PromBrokerDropped)).
		WithTarget(promTarget("C", PromBrokerInflight)).
		Unit(units.Short).Min(0).
		Legend(legendList()).Tooltip(tooltipAll()).
		Span(6).Height(8))
	return b
}

// promStat is a stat panel of an instant PromQL query.
func promStat(title, desc string, q PromQuery, mappings []dashboard.ValueMapping) *stat.PanelBuilder {
	p := newStat().
		Title(title).
		Description(desc).
		Datasource(promRef()).
		WithTarget(promInstant("A", q)).
		Unit(units.Short).Decimals(0).NoValue("no data").
		ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeNone).
		ReduceOptions(lastValue()).
		Span(4).Height(4)
	if mappings != nil {
		p = p.Mappings(mappings)
	}
	return p
}
