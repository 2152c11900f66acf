package grafana

import (
	"github.com/grafana/grafana-foundation-sdk/go/barchart"
	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
	"github.com/grafana/grafana-foundation-sdk/go/units"
)

// fleetBoard is the first board an operator opens: every site at a glance,
// what is hot now, and what the guard did in the last 24 hours.
func fleetBoard() *dashboard.DashboardBuilder {
	b := newBoard("chargeguard — Fleet overview", FleetUID,
		"Every charging site at a glance: which ports are charging, closed for safety or faulted, which sockets are hot right now, what chargeguard cut in the last 24 hours, energy delivered and piles offline.")

	b.WithRow(dashboard.NewRowBuilder("Now"))
	b.WithPanel(portCountStat(StateClosed, "Ports closed by chargeguard",
		"Ports whose last report (last 5 minutes) says the relay is open by order: almost always a safety cut, which stays latched until an operator resets it on the Port board; sometimes a full battery (audit action \"full\"). Above 0: find them in \"Sites: ports by state now\" and \"Safety cuts, last 24 h\".",
		colorCut))
	b.WithPanel(portCountStat(StateFault, "Ports faulted",
		"Ports whose pile tripped its own protection (state fault). The pile cut them itself; check the pile's events on its Site board.",
		colorFault))
	b.WithPanel(portCountStat(StateCharging, "Ports charging",
		"Ports charging now (last report in the last 5 minutes).", ""))
	b.WithPanel(alarmCount("Piles offline",
		"Piles whose last status message is a death (their last will, sent by the broker when the pile vanished). No command can reach an offline pile: if one was charging, on-call has a pile_offline alert. A pile removed from service for good stays here until its status series is deleted.").
		Datasource(*influxRef()).
		WithTarget(target("A", FleetPilesOffline)).
		ReduceOptions(lastValue()).
		Span(4).Height(4))
	b.WithPanel(alarmCount("Alerts firing now",
		"Alerts chargeguard is raising right now, by severity (from chargeguard's own metrics in Prometheus). Critical ones page on-call. Where they are: the alert table below and the Site boards.").
		Datasource(promRef()).
		WithTarget(promInstant("A", PromFleetFiring)).
		TextMode(common.BigValueTextModeValueAndName).
		ReduceOptions(lastValue()).
		Span(4).Height(4))
	b.WithPanel(alarmCount("Ports latched closed",
		"Ports chargeguard keeps closed after a safety cut until an operator resets them (from chargeguard's metrics).").
		Datasource(promRef()).
		WithTarget(promInstant("A", PromFleetLatched)).
		ReduceOptions(lastValue()).
		Span(4).Height(4))

	// Port states by site: one query per state, merged on the site column.
	states := table.NewPanelBuilder().
		Title("Sites: ports by state now").
		Description("For every site, how many ports last reported charging, idle, closed (red: cut for safety) or fault, and how many piles are offline. Click a site to open its board. Counts use each port's last report of the last 5 minutes, so ports of an offline pile are not counted here but under offline piles.").
		Datasource(*influxRef()).
		TimeFrom(NowWindow).
		WithTarget(target("A", FleetSiteStates(StateCharging))).
		WithTarget(target("B", FleetSiteStates(StateIdle))).
		WithTarget(target("C", FleetSiteStates(StateClosed))).
		WithTarget(target("D", FleetSiteStates(StateFault))).
		WithTarget(target("E", FleetSiteOffline)).
		WithTransformation(merge()).
		WithTransformation(organize([]string{"Time"}, map[string]string{
			"site": "Site", StateCharging: "Charging", StateIdle: "Idle", StateClosed: "Closed (safety)", StateFault: "Fault", "offline_piles": "Piles offline",
		}, []string{"site", StateClosed, StateFault, "offline_piles", StateCharging, StateIdle})).
		WithTransformation(sortBy("Closed (safety)", true)).
		NoValue("0").
		OverrideByName("Site", []dashboard.DynamicConfigValue{link("Open the site's board", siteLinkURL)}).
		OverrideByName("Closed (safety)", []dashboard.DynamicConfigValue{colored(), thresholdsProp(countThresholds(colorCut))}).
		OverrideByName("Fault", []dashboard.DynamicConfigValue{colored(), thresholdsProp(countThresholds(colorFault))}).
		OverrideByName("Piles offline", []dashboard.DynamicConfigValue{colored(), thresholdsProp(countThresholds(colorCut))}).
		Span(12).Height(9)
	b.WithPanel(states)

	b.WithPanel(table.NewPanelBuilder().
		Title("Hottest ports now").
		Description("The 15 hottest sockets of the last 5 minutes, hottest first. Orange from 55 °C (warning alert), red from 70 °C (chargeguard closes the port). A hot port that is not charging is cooling down after a cut. Click a row to open the port's board.").
		Datasource(*influxRef()).
		TimeFrom(NowWindow).
		WithTarget(target("A", FleetHottestPorts)).
		WithTransformation(organize([]string{"Time"}, map[string]string{
			"site": "Site", "pile": "Pile", "port": "Port", "temp_c": "Socket temperature", "state": "State", "a": "Current",
		}, []string{"site", "pile", "port", "temp_c", "state", "a"})).
		WithTransformation(sortBy("Socket temperature", true)).
		WithTransformation(limit(15)).
		OverrideByName("Socket temperature", []dashboard.DynamicConfigValue{unit(units.Celsius), prop("decimals", 1), colored(), thresholdsProp(tempThresholds())}).
		OverrideByName("State", []dashboard.DynamicConfigValue{mappingsProp(stateMappings()), coloredText()}).
		OverrideByName("Current", []dashboard.DynamicConfigValue{unit(units.Ampere), prop("decimals", 2)}).
		OverrideByName("Port", []dashboard.DynamicConfigValue{link("Open the port's board", portLinkURL)}).
		OverrideByName("Pile", []dashboard.DynamicConfigValue{link("Open the pile on its site's board", pileLinkURL)}).
		Span(12).Height(9))

	b.WithRow(dashboard.NewRowBuilder("Temperatures and energy"))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Hottest socket per site").
		Description("The highest socket temperature of each site over time. Dashed lines: 55 °C (warning alert) and 70 °C (chargeguard closes the port). A site above the orange line has a hot plug: open its board.").
		Datasource(*influxRef()).
		WithTarget(target("A", FleetHottestBySite)).
		Unit(units.Celsius).Decimals(1).
		Thresholds(tempThresholds()).
		ThresholdsStyle(dashedThresholds()).
		Legend(legendTable()).
		Tooltip(tooltipAll()).
		Span(10).Height(9))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Energy delivered").
		Description("Energy delivered to e-bikes per site and time step, summed from the session energy counters of every port.").
		Datasource(*influxRef()).
		WithTarget(target("A", FleetEnergyOverTime)).
		Unit(units.WattHour).Decimals(0).
		DrawStyle(common.GraphDrawStyleBars).
		FillOpacity(80).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).
		Legend(legendList()).
		Tooltip(tooltipAll()).
		Span(8).Height(9))
	b.WithPanel(bargauge.NewPanelBuilder().
		Title("Energy delivered per site").
		Description("Energy delivered in the selected time range, per site.").
		Datasource(*influxRef()).
		WithTarget(target("A", FleetEnergyBySite)).
		Unit(units.WattHour).Decimals(0).
		ColorScheme(fixedColor(colorInfo)).
		Orientation(common.VizOrientationHorizontal).
		DisplayMode(common.BarGaugeDisplayModeBasic).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"sum"})).
		Span(3).Height(9))
	b.WithPanel(newStat().
		Title("Energy delivered, whole fleet").
		Description("Energy delivered by every port of every site in the selected time range.").
		Datasource(*influxRef()).
		WithTarget(target("A", FleetEnergyTotal)).
		Unit(units.WattHour).Decimals(1).NoValue("0").
		ColorMode(common.BigValueColorModeNone).
		GraphMode(common.BigValueGraphModeNone).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"sum"})).
		Span(3).Height(9))

	b.WithRow(dashboard.NewRowBuilder("Alerts and safety cuts, last 24 h"))
	b.WithPanel(alarmCount("Safety cuts, last 24 h",
		"Close commands chargeguard sent in the last 24 hours (first sends; retries are not counted again).").
		Datasource(*influxRef()).
		TimeFrom(DayWindow).
		WithTarget(target("A", FleetCutsCount)).
		ReduceOptions(lastValue()).
		Span(4).Height(5))
	b.WithPanel(alarmCount("Critical alerts raised, last 24 h",
		"Critical alerts (each one paged on-call) raised in the last 24 hours.").
		Datasource(*influxRef()).
		TimeFrom(DayWindow).
		WithTarget(target("A", FleetCriticalCount)).
		ReduceOptions(lastValue()).
		Span(4).Height(5))
	b.WithPanel(barchart.NewPanelBuilder().
		Title("Alerts raised by kind, last 24 h").
		Description("How often each kind of alert fired in the last 24 hours. Many temp_warning or hot_contact alerts at one site point to worn sockets or plugs.").
		Datasource(*influxRef()).
		TimeFrom(DayWindow).
		WithTarget(target("A", FleetAlertsByName)).
		WithTransformation(dashboard.DataTransformerConfig{Id: "reduce", Options: map[string]any{"reducers": []string{"sum"}, "mode": "seriesToRows"}}).
		Unit(units.Short).Decimals(0).
		ColorScheme(fixedColor(colorWarn)).
		Orientation(common.VizOrientationHorizontal).
		Tooltip(tooltipAll()).
		Span(16).Height(5))
	b.WithPanel(table.NewPanelBuilder().
		Title("Alert events, last 24 h").
		Description("Every alert chargeguard raised or resolved in the last 24 hours, newest first. FIRING without a later \"resolved\" for the same pile, port and alert is still open. Click the port to see its history and commands.").
		Datasource(*influxRef()).
		TimeFrom(DayWindow).
		WithTarget(target("A", FleetAlertEvents)).
		WithTransformation(organize(nil, map[string]string{
			"site": "Site", "pile": "Pile", "port": "Port", "alertname": "Alert", "severity": "Severity", "state": "State", "summary": "Summary", "value": "Reading",
		}, []string{"Time", "site", "pile", "port", "alertname", "severity", "state", "summary", "value"})).
		OverrideByName("State", []dashboard.DynamicConfigValue{mappingsProp(alertStateMappings()), coloredText(), width(90)}).
		OverrideByName("Severity", []dashboard.DynamicConfigValue{mappingsProp(severityMappings()), coloredText(), width(90)}).
		OverrideByName("Port", []dashboard.DynamicConfigValue{link("Open the port's board", portLinkURL), width(60)}).
		OverrideByName("Time", []dashboard.DynamicConfigValue{width(170)}).
		Span(24).Height(10))
	b.WithPanel(table.NewPanelBuilder().
		Title("Safety cuts, last 24 h").
		Description("Every close command chargeguard sent in the last 24 hours, newest first: which port, which rule (actor) and why. Whether the pile confirmed it is on the Port board (command audit).").
		Datasource(*influxRef()).
		TimeFrom(DayWindow).
		WithTarget(target("A", FleetCuts)).
		WithTransformation(organize(nil, map[string]string{
			"site": "Site", "pile": "Pile", "port": "Port", "actor": "Who", "reason": "Why", "attempt": "Attempt", "id": "Command id",
		}, []string{"Time", "site", "pile", "port", "actor", "reason", "attempt", "id"})).
		OverrideByName("Port", []dashboard.DynamicConfigValue{link("Open the port's board", portLinkURL), width(60)}).
		OverrideByName("Time", []dashboard.DynamicConfigValue{width(170)}).
		Span(24).Height(10))

	b.WithRow(dashboard.NewRowBuilder("Offline piles and protocol errors").
		WithPanel(table.NewPanelBuilder().
			Title("Offline piles").
			Description("Piles whose last status is a death message, with the time it came. Go and check the pile's power and network; no command reaches it while it is offline.").
			Datasource(*influxRef()).
			WithTarget(target("A", FleetOfflineList)).
			WithTransformation(organize([]string{"online"}, map[string]string{
				"Time": "Offline since", "site": "Site", "pile": "Pile",
			}, []string{"Time", "site", "pile"})).
			OverrideByName("Pile", []dashboard.DynamicConfigValue{link("Open the pile on its site's board", pileLinkURL)}).
			Span(8).Height(8)).
		WithPanel(timeseries.NewPanelBuilder().
			Title("Rejected messages by reason").
			Description("Messages that broke the protocol and were not used (docs/schema.md, measurement rejected). A steady stream usually means one pile's firmware is wrong; the table on the right shows the payloads.").
			Datasource(*influxRef()).
			WithTarget(target("A", FleetRejectedByReason)).
			Unit(units.Short).Decimals(0).
			DrawStyle(common.GraphDrawStyleBars).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).
			Legend(legendList()).
			Tooltip(tooltipAll()).
			Span(8).Height(8)).
		WithPanel(table.NewPanelBuilder().
			Title("Latest rejected messages").
			Description("The last 100 rejected messages: the topic tells which pile sent it, the detail what was wrong.").
			Datasource(*influxRef()).
			WithTarget(target("A", FleetRejectedLatest)).
			Span(8).Height(8)))
	return b
}

// portCountStat counts the ports in one state now, coloured when not zero.
func portCountStat(state, title, desc, color string) *stat.PanelBuilder {
	p := newStat().
		Title(title).
		Description(desc).
		Datasource(*influxRef()).
		TimeFrom(NowWindow).
		WithTarget(target("A", FleetPortsInState(state))).
		Unit(units.Short).Decimals(0).NoValue("0").
		GraphMode(common.BigValueGraphModeNone).
		ReduceOptions(lastValue()).
		Span(4).Height(4)
	if color == "" {
		return p.ColorScheme(fixedColor(colorOK)).ColorMode(common.BigValueColorModeValue)
	}
	return p.Thresholds(countThresholds(color)).ColorMode(common.BigValueColorModeBackground)
}

// alarmCount is a stat panel that counts something that should be zero:
// a whole number, 0 when there is no data, red background above 0.
func alarmCount(title, description string) *stat.PanelBuilder {
	return newStat().
		Title(title).
		Description(description).
		Unit(units.Short).Decimals(0).NoValue("0").
		Thresholds(countThresholds(colorCut)).
		ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeNone)
}
