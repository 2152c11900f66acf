package grafana

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
	"github.com/grafana/grafana-foundation-sdk/go/units"
)

// siteBoard shows every pile and port of one site, one row per pile.
func siteBoard() *dashboard.DashboardBuilder {
	b := newBoard("chargeguard — Site", SiteUID,
		"Every pile and port of one site: socket temperatures against the enclosure's, current, power and port states, with chargeguard's alerts and safety cuts marked on every graph.").
		WithVariable(queryVar("site", "Site", VarSite, false)).
		WithVariable(queryVar("pile", "Pile", VarPile, true)).
		WithVariable(queryVar("port", "Port", VarPortsOfPiles, true).Sort(dashboard.VariableSortNumericalAsc)).
		Annotation(annotation("Alerts", "orange", SiteAnnoAlerts)).
		Annotation(annotation("Safety cuts", colorCut, SiteAnnoCuts)).
		Annotation(annotation("Resets and opens", colorInfo, SiteAnnoResets)).
		Annotation(annotation("Smoke, trips, door", colorFault, SiteAnnoEvents))

	b.WithRow(dashboard.NewRowBuilder("$site now"))
	b.WithPanel(table.NewPanelBuilder().
		Title("Ports of $site now").
		Description("Every port's last report of the last 5 minutes. Red state: closed for safety (reset it on the Port board once the cause is gone). Temperature orange from 55 °C, red from 70 °C. A port missing here has not reported for 5 minutes: check its pile in the table on the right. Click a port to open its board.").
		Datasource(*influxRef()).
		TimeFrom(NowWindow).
		WithTarget(target("A", SitePortsNow)).
		WithTransformation(organize([]string{"Time"}, map[string]string{
			"pile": "Pile", "port": "Port", "state": "State", "temp_c": "Socket temperature", "a": "Current", "w": "Power", "wh": "Session energy",
		}, []string{"pile", "port", "state", "temp_c", "a", "w", "wh"})).
		OverrideByName("State", []dashboard.DynamicConfigValue{mappingsProp(stateMappings()), colored()}).
		OverrideByName("Socket temperature", []dashboard.DynamicConfigValue{unit(units.Celsius), prop("decimals", 1), colored(), thresholdsProp(tempThresholds())}).
		OverrideByName("Current", []dashboard.DynamicConfigValue{unit(units.Ampere), prop("decimals", 2)}).
		OverrideByName("Power", []dashboard.DynamicConfigValue{unit(units.Watt), prop("decimals", 0)}).
		OverrideByName("Session energy", []dashboard.DynamicConfigValue{unit(units.WattHour), prop("decimals", 0)}).
		OverrideByName("Port", []dashboard.DynamicConfigValue{link("Open the port's board", "/d/"+PortUID+"/chargeguard-port?var-site=${site}&var-pile=${__data.fields.pile}&var-port=${__data.fields.port}&${__url_time_range}")}).
		Span(14).Height(10))
	b.WithPanel(table.NewPanelBuilder().
		Title("Piles of $site").
		Description("Each pile's last telemetry in the selected time range: when it came (Time), the enclosure temperature, the residual current (red from 30 mA: chargeguard closes the whole pile), the smoke detector, and the pile clock's offset. A pile whose last telemetry is minutes old is offline.").
		Datasource(*influxRef()).
		WithTarget(target("A", SitePiles)).
		WithTransformation(organize(nil, map[string]string{
			"Time": "Last telemetry", "pile": "Pile", "seq": "Seq", "ambient_c": "Enclosure", "leak_ma": "Leakage", "smoke": "Smoke", "skew_ms": "Clock offset",
		}, []string{"Time", "pile", "ambient_c", "leak_ma", "smoke", "skew_ms", "seq"})).
		OverrideByName("Enclosure", []dashboard.DynamicConfigValue{unit(units.Celsius), prop("decimals", 1)}).
		OverrideByName("Leakage", []dashboard.DynamicConfigValue{unit(units.MilliAmpere), prop("decimals", 1), colored(), thresholdsProp(thresholds(colorOK, LeakCutMA, colorCut))}).
		OverrideByName("Smoke", []dashboard.DynamicConfigValue{mappingsProp(valueMap("true", "SMOKE", colorCut, "false", "no", colorOK)), colored()}).
		OverrideByName("Clock offset", []dashboard.DynamicConfigValue{unit(units.Milliseconds)}).
		Span(10).Height(5))
	b.WithPanel(table.NewPanelBuilder().
		Title("Births and deaths").
		Description("The piles' status messages in the selected time range, newest first: \"online\" when a pile (re)connected, OFFLINE when it vanished (its last will). Firmware, number of ports and rated current come with each birth.").
		Datasource(*influxRef()).
		WithTarget(target("A", SiteStatus)).
		WithTransformation(organize(nil, map[string]string{
			"pile": "Pile", "online": "Status", "fw": "Firmware", "ports": "Ports", "rated_a": "Rated current", "kind": "Kind",
		}, []string{"Time", "pile", "online", "fw", "ports", "rated_a", "kind"})).
		OverrideByName("Status", []dashboard.DynamicConfigValue{mappingsProp(onlineMappings()), coloredText()}).
		OverrideByName("Rated current", []dashboard.DynamicConfigValue{unit(units.Ampere)}).
		// Below "Piles of $site", beside the ports table.
		GridPos(dashboard.GridPos{X: 14, Y: 6, W: 10, H: 5}))

	// One row per selected pile.
	b.WithRow(dashboard.NewRowBuilder("Pile $pile").Repeat("pile"))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Socket temperature vs ambient — $pile").
		Description("Each port's hottest socket reading per time step, and the pile's enclosure temperature (dashed grey). Dashed lines: 55 °C warning, 70 °C cut. A socket far above the enclosure while charging is a loose or burnt plug (hot_contact alert at +30 °C). Markers: alerts (orange), safety cuts (red), resets (blue), smoke/trips (purple).").
		Datasource(*influxRef()).
		WithTarget(target("A", SiteTemp)).
		WithTarget(target("B", SiteAmbient)).
		Unit(units.Celsius).Decimals(1).
		Thresholds(tempThresholds()).
		ThresholdsStyle(dashedThresholds()).
		OverrideByRegexp(".*ambient$", ambientStyle()).
		Legend(legendTable()).
		Tooltip(tooltipAll()).
		Span(12).Height(9))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Current — $pile").
		Description("Each port's highest current per time step. chargeguard closes a port drawing 1.1 × its rated current for 3 samples, or 2 × at once (short circuit). A closed port must draw nothing: current after a cut means a welded relay.").
		Datasource(*influxRef()).
		WithTarget(target("A", SiteCurrent)).
		Unit(units.Ampere).Decimals(2).Min(0).
		Legend(legendTable()).
		Tooltip(tooltipAll()).
		Span(12).Height(9))
	b.WithPanel(statetimeline.NewPanelBuilder().
		Title("Port states — $pile").
		Description("What each port did over time: green charging, grey idle, red closed for safety, purple fault (the pile tripped on its own).").
		Datasource(*influxRef()).
		WithTarget(target("A", SiteStates)).
		Mappings(stateMappings()).
		ColorScheme(fixedColor(colorIdle)).
		ShowValue(common.VisibilityModeNever).
		MergeValues(true).
		RowHeight(0.8).
		Legend(legendList()).
		Tooltip(tooltipAll()).
		Span(12).Height(8))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Power — $pile").
		Description("Each port's mean power per time step. A full battery draws little (≤ 15 W): chargeguard then closes the port as \"full\", which is not an alert.").
		Datasource(*influxRef()).
		WithTarget(target("A", SitePower)).
		Unit(units.Watt).Decimals(0).Min(0).
		Legend(legendTable()).
		Tooltip(tooltipAll()).
		Span(8).Height(8))
	b.WithPanel(timeseries.NewPanelBuilder().
		Title("Leakage — $pile").
		Description("The pile's residual (leakage) current. At 30 mA (red line) chargeguard closes every port of the pile: a leak is a shock and fire risk.").
		Datasource(*influxRef()).
		WithTarget(target("A", SiteLeak)).
		Unit(units.MilliAmpere).Decimals(1).Min(0).
		Thresholds(thresholds(colorOK, LeakCutMA, colorCut)).
		ThresholdsStyle(dashedThresholds()).
		Legend(legendList()).
		Tooltip(tooltipAll()).
		Span(4).Height(8))
	return b
}

// ambientStyle draws the enclosure temperature as a dashed grey line, so it
// reads as the reference the sockets are compared with.
func ambientStyle() []dashboard.DynamicConfigValue {
	return []dashboard.DynamicConfigValue{
		prop("color", map[string]any{"mode": "fixed", "fixedColor": colorIdle}),
		prop("custom.lineStyle", map[string]any{"fill": "dash", "dash": []int{10, 10}}),
	}
}

// queryVar is a template variable filled by an InfluxQL SHOW TAG VALUES.
// A multi-value variable offers "All".
func queryVar(name, label string, q Query, multi bool) *dashboard.QueryVariableBuilder {
	v := dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(*influxRef()).
		Query(dashboard.StringOrMap{String: ptr(q.Text)}).
		Definition(q.Text).
		Refresh(dashboard.VariableRefreshOnDashboardLoad).
		Sort(dashboard.VariableSortNaturalAsc)
	if multi {
		v = v.Multi(true).IncludeAll(true)
	}
	return v
}

// annotation marks the events of q on every graph of the board.
func annotation(name, color string, q Query) *dashboard.AnnotationQueryBuilder {
	return dashboard.NewAnnotationQueryBuilder().
		Name(name).
		Datasource(*influxRef()).
		Enable(true).
		IconColor(color).
		Target(influxTarget{annotationTarget(q)})
}
