package grafana

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
	"github.com/grafana/grafana-foundation-sdk/go/units"
)

// portBoard is one port's history and everything chargeguard did about it.
func portBoard() *dashboard.DashboardBuilder {
	b := newBoard("chargeguard — Port", PortUID,
		"One port's readings and every command chargeguard sent it: closes, retries, the pile's acks, resets — who did what and why.").
		WithVariable(queryVar("site", "Site", VarSite, false)).
		WithVariable(queryVar("pile", "Pile", VarPile, false)).
		WithVariable(queryVar("port", "Port", VarPortOfPile, false).Sort(dashboard.VariableSortNumericalAsc)).
		Annotation(annotation("Alerts", "orange", PortAnnoAlerts)).
		Annotation(annotation("Commands", colorCut, PortAnnoCommands))

	b.WithRow(dashboard.NewRowBuilder("$site / $pile / port $port now"))
	b.WithPanel(newStat().
		Title("State").
		Description("The port's last reported state (last 5 minutes). CLOSED (red): the relay is open by order; it stays closed until an operator resets it, which chargeguard refuses while the cause is still there. \"No data\": the pile has not reported for 5 minutes.").
		Datasource(*influxRef()).
		TimeFrom(NowWindow).
		WithTarget(target("A", PortStateNow)).
		Mappings(stateMappings()).
		ColorScheme(fixedColor(colorIdle)).
		ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeNone).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Fields("/^(?!Time$).*/")).
		Span(8).Height(4))
	b.WithPanel(nowStat("Socket temperature", "The socket's last temperature. Orange from 55 °C (warning alert), red from 70 °C (chargeguard closes the port).", PortTempNow, units.Celsius, 1).
		Thresholds(tempThresholds()).ColorScheme(thresholdColor()).ColorMode(common.BigValueColorModeBackground))
	b.WithPanel(nowStat("Current", "The port's last current. A closed port must draw nothing.", PortAmpsNow, units.Ampere, 2))
	b.WithPanel(nowStat("Power", "The port's last power. Under 15 W for 10 minutes means the battery is full.", PortWattsNow, units.Watt, 0))
	b.WithPanel(nowStat("Session energy", "Energy delivered in the current (or last) charging session.", PortWhNow, units.WattHour, 0))

	b.WithRow(dashboard.NewRowBuilder("History"))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Socket temperature vs ambient").
		Description("The socket's hottest reading per time step against the pile's enclosure temperature (dashed grey). Dashed lines: 55 °C warning, 70 °C cut. Markers: alerts (orange) and commands (red).").
		Datasource(*influxRef()).
		WithTarget(target("A", PortTemp)).
		WithTarget(target("B", PortAmbient)).
		Unit(units.Celsius).Decimals(1).
		Thresholds(tempThresholds()).
		ThresholdsStyle(dashedThresholds()).
		OverrideByRegexp("^ambient.*", ambientStyle()).
		Legend(legendList()).
		Tooltip(tooltipAll()).
		Span(12).Height(9))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Current and voltage").
		Description("Highest current per time step (left axis) and mean voltage (right axis). Current after a confirmed cut means the relay is welded (relay_welded alert).").
		Datasource(*influxRef()).
		WithTarget(target("A", PortCurrent)).
		WithTarget(target("B", PortVoltage)).
		Unit(units.Ampere).Decimals(2).Min(0).
		OverrideByName("voltage", []dashboard.DynamicConfigValue{unit(units.Volt), prop("custom.axisPlacement", "right"), prop("decimals", 0), prop("min", nil)}).
		Legend(legendList()).
		Tooltip(tooltipAll()).
		Span(12).Height(9))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Power and session energy").
		Description("Mean power per time step (left axis) and the session's energy counter (right axis, starts again at each session).").
		Datasource(*influxRef()).
		WithTarget(target("A", PortPower)).
		WithTarget(target("B", PortEnergy)).
		Unit(units.Watt).Decimals(0).Min(0).
		OverrideByName("session energy", []dashboard.DynamicConfigValue{unit(units.WattHour), prop("custom.axisPlacement", "right")}).
		Legend(legendList()).
		Tooltip(tooltipAll()).
		Span(12).Height(8))
	b.WithPanel(statetimeline.NewPanelBuilder().
		Title("State").
		Description("What the port did over time: green charging, grey idle, red closed for safety, purple fault.").
		Datasource(*influxRef()).
		WithTarget(target("A", PortStateSeries)).
		Mappings(stateMappings()).
		ColorScheme(fixedColor(colorIdle)).
		ShowValue(common.VisibilityModeAuto).
		MergeValues(true).
		Legend(legendList()).
		Tooltip(tooltipAll()).
		Span(12).Height(8))

	b.WithRow(dashboard.NewRowBuilder("What chargeguard did"))
	b.WithPanel(table.NewPanelBuilder().
		Title("Command audit").
		Description("Every command about this port or its whole pile (port 0), newest first. A safety cut reads: sent, CLOSE, attempt 1, then an ack from the pile; RETRIED means the pile did not answer within 3 s (up to 3 retries, then a close_failed alert and a whole-pile close). Who: the rule (rule:overheat), the operator (operator:alice) or the pile. Why: the rule's alert name or the operator's reason; Detail says more.").
		Datasource(*influxRef()).
		WithTarget(target("A", PortAudit)).
		WithTransformation(organize(nil, map[string]string{
			"action": "What", "command": "Command", "port": "Port", "actor": "Who", "reason": "Why", "detail": "Detail", "attempt": "Attempt", "ok": "Ok", "id": "Command id",
		}, []string{"Time", "action", "command", "port", "actor", "reason", "detail", "attempt", "ok", "id"})).
		OverrideByName("What", []dashboard.DynamicConfigValue{mappingsProp(actionMappings()), coloredText(), width(230)}).
		OverrideByName("Command", []dashboard.DynamicConfigValue{mappingsProp(commandMappings()), coloredText(), width(90)}).
		OverrideByName("Ok", []dashboard.DynamicConfigValue{mappingsProp(okMappings()), coloredText(), width(80)}).
		OverrideByName("Port", []dashboard.DynamicConfigValue{mappingsProp(valueMap("0", "whole pile", colorWarn)), width(90)}).
		OverrideByName("Time", []dashboard.DynamicConfigValue{width(170)}).
		Span(24).Height(10))
	b.WithPanel(table.NewPanelBuilder().
		Title("Acks from the pile").
		Description("The pile's answers to commands for this port or the whole pile, newest first: the command id (matches the audit), whether it obeyed, the state it reports, and its error text when it did not.").
		Datasource(*influxRef()).
		WithTarget(target("A", PortAcks)).
		WithTransformation(organize(nil, map[string]string{
			"id": "Command id", "port": "Port", "ok": "Ok", "state": "State", "err": "Error",
		}, []string{"Time", "id", "port", "ok", "state", "err"})).
		OverrideByName("Ok", []dashboard.DynamicConfigValue{mappingsProp(okMappings()), coloredText()}).
		OverrideByName("State", []dashboard.DynamicConfigValue{mappingsProp(stateMappings()), coloredText()}).
		Span(12).Height(8))
	b.WithPanel(table.NewPanelBuilder().
		Title("Alerts").
		Description("Alerts about this port or its whole pile, newest first.").
		Datasource(*influxRef()).
		WithTarget(target("A", PortAlerts)).
		WithTransformation(organize(nil, map[string]string{
			"alertname": "Alert", "severity": "Severity", "port": "Port", "state": "State", "summary": "Summary", "value": "Reading",
		}, []string{"Time", "alertname", "severity", "port", "state", "summary", "value"})).
		OverrideByName("State", []dashboard.DynamicConfigValue{mappingsProp(alertStateMappings()), coloredText()}).
		OverrideByName("Severity", []dashboard.DynamicConfigValue{mappingsProp(severityMappings()), coloredText()}).
		Span(12).Height(8))
	b.WithPanel(table.NewPanelBuilder().
		Title("Pile events").
		Description("What the pile reported happening on this port or the whole pile: plug in/out, smoke, its own trips, the door opened.").
		Datasource(*influxRef()).
		WithTarget(target("A", PortEvents)).
		WithTransformation(organize(nil, map[string]string{
			"kind": "Event", "port": "Port", "detail": "Detail",
		}, []string{"Time", "kind", "port", "detail"})).
		OverrideByName("Event", []dashboard.DynamicConfigValue{mappingsProp(valueMap(
			"smoke", "SMOKE", colorCut, "local_trip", "pile tripped", colorFault, "door_open", "door opened", colorWarn,
			"plug_in", "plugged in", colorInfo, "plug_out", "unplugged", colorIdle)), coloredText()}).
		Span(24).Height(7))
	return b
}

// nowStat is a stat of the port's last reading.
func nowStat(title, desc string, q Query, u string, decimals float64) *stat.PanelBuilder {
	return newStat().
		Title(title).
		Description(desc).
		Datasource(*influxRef()).
		TimeFrom(NowWindow).
		WithTarget(target("A", q)).
		Unit(u).Decimals(decimals).
		ColorScheme(fixedColor(colorInfo)).
		ColorMode(common.BigValueColorModeValue).
		GraphMode(common.BigValueGraphModeNone).
		ReduceOptions(lastValue()).
		Span(4).Height(4)
}
