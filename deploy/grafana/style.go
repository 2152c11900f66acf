package grafana

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
)

// The data sources the boards use, by the UIDs that
// provisioning/datasources/chargeguard.yaml gives them.
const (
	InfluxUID     = "chargeguard-influxdb"
	PrometheusUID = "chargeguard-prometheus"
)

// The boards' UIDs: stable, so links (and alert annotations such as
// board_url) can point at /d/<uid>/<slug>?var-site=...&var-pile=...&var-port=....
const (
	FleetUID  = "chargeguard-fleet"
	SiteUID   = "chargeguard-site"
	PortUID   = "chargeguard-port"
	HealthUID = "chargeguard-health"
)

// The safety thresholds of the default policy (docs/protocol.md): a warning
// alert at 55 °C, a cut at 70 °C, a pile-wide cut at 30 mA of leakage.
const (
	TempWarnC  = 55.0
	TempCutC   = 70.0
	LeakCutMA  = 30.0
	NowWindow  = "5m"  // the panels that show the present look this far back
	DayWindow  = "24h" // the panels of "the last 24 h"
	boardTag   = "chargeguard"
	colorOK    = "green"
	colorWarn  = "orange"
	colorCut   = "red" // red always means a port closed for safety, or a reason to close one
	colorInfo  = "blue"
	colorIdle  = "#8e8e8e"
	colorFault = "purple"
)

func ptr[T any](v T) *T { return &v }

func influxRef() *common.DataSourceRef {
	return &common.DataSourceRef{Type: ptr("influxdb"), Uid: ptr(InfluxUID)}
}

func promRef() common.DataSourceRef {
	return common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr(PrometheusUID)}
}

// promTarget is the Grafana target of a PromQL expression.
func promTarget(refID string, q PromQuery) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		RefId(refID).
		Datasource(promRef()).
		Expr(q.Expr).
		LegendFormat(q.Legend).
		Range()
}

// promInstant is an instant PromQL target (stat panels).
func promInstant(refID string, q PromQuery) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		RefId(refID).
		Datasource(promRef()).
		Expr(q.Expr).
		LegendFormat(q.Legend).
		Instant()
}

// thresholds builds absolute thresholds: base colour, then value/colour pairs.
func thresholds(base string, steps ...any) *dashboard.ThresholdsConfigBuilder {
	ts := []dashboard.Threshold{{Value: nil, Color: base}}
	for i := 0; i+1 < len(steps); i += 2 {
		ts = append(ts, dashboard.Threshold{Value: ptr(steps[i].(float64)), Color: steps[i+1].(string)})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(ts)
}

// tempThresholds colour a socket temperature: orange from the warning, red
// from the cut.
func tempThresholds() *dashboard.ThresholdsConfigBuilder {
	return thresholds(colorOK, TempWarnC, colorWarn, TempCutC, colorCut)
}

// countThresholds colour a count that should be zero.
func countThresholds(color string) *dashboard.ThresholdsConfigBuilder {
	return thresholds(colorOK, 1.0, color)
}

func fixedColor(color string) *dashboard.FieldColorBuilder {
	return dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdFixed).FixedColor(color)
}

func thresholdColor() *dashboard.FieldColorBuilder {
	return dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds)
}

// valueMap maps exact values to a display text and colour; pairs are
// value, text, colour.
func valueMap(triples ...string) []dashboard.ValueMapping {
	opts := map[string]dashboard.ValueMappingResult{}
	for i := 0; i+2 < len(triples); i += 3 {
		opts[triples[i]] = dashboard.ValueMappingResult{
			Text:  ptr(triples[i+1]),
			Color: ptr(triples[i+2]),
			Index: ptr(int32(i / 3)),
		}
	}
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: opts}}}
}

// stateMappings name and colour a port's state. Red is a port closed for
// safety, purple a port whose pile tripped on its own.
func stateMappings() []dashboard.ValueMapping {
	return valueMap(
		StateCharging, "Charging", colorOK,
		StateIdle, "Idle", colorIdle,
		StateClosed, "CLOSED (safety cut)", colorCut,
		StateFault, "FAULT (pile tripped)", colorFault,
	)
}

func alertStateMappings() []dashboard.ValueMapping {
	return valueMap("firing", "FIRING", colorCut, "resolved", "resolved", colorOK)
}

func severityMappings() []dashboard.ValueMapping {
	return valueMap("critical", "critical", colorCut, "warning", "warning", colorWarn, "info", "info", colorInfo)
}

// actionMappings name the audit actions (alerting.AuditKind, the action
// tag) as an operator reads them.
func actionMappings() []dashboard.ValueMapping {
	return valueMap(
		"command", "sent", colorInfo,
		"retry", "RETRIED (no ack)", colorWarn,
		"ack", "ack from pile", colorInfo,
		"ack_failed", "pile REFUSED it", colorCut,
		"ack_unknown", "ack for an unknown command", colorWarn,
		"close_failed", "CLOSE FAILED (never acked)", colorCut,
		"open_failed", "open failed (port stays closed)", colorWarn,
		"open_canceled", "open canceled by a newer close", colorWarn,
		"reset", "reset by operator", colorOK,
		"reset_refused", "reset REFUSED (condition still there)", colorWarn,
		"alert_ack", "alert acknowledged", colorInfo,
		"latch_reassert", "CLOSE sent again (latched, pile reborn)", colorCut,
	)
}

// commandMappings name the command an audit record is about.
func commandMappings() []dashboard.ValueMapping {
	return valueMap("close", "CLOSE", colorCut, "open", "OPEN", colorOK)
}

func onlineMappings() []dashboard.ValueMapping {
	return valueMap("true", "online", colorOK, "false", "OFFLINE", colorCut)
}

func okMappings() []dashboard.ValueMapping {
	return valueMap("true", "ok", colorOK, "false", "FAILED", colorCut)
}

func connectedMappings() []dashboard.ValueMapping {
	return valueMap("1", "connected", colorOK, "0", "DISCONNECTED", colorCut)
}

// prop is one property of a field override.
func prop(id string, value any) dashboard.DynamicConfigValue {
	return dashboard.DynamicConfigValue{Id: id, Value: value}
}

// colored paints a table column's cells by its thresholds or mappings.
func colored() dashboard.DynamicConfigValue {
	return prop("custom.cellOptions", map[string]any{"type": "color-background", "mode": "basic"})
}

func coloredText() dashboard.DynamicConfigValue {
	return prop("custom.cellOptions", map[string]any{"type": "color-text"})
}

func mappingsProp(ms []dashboard.ValueMapping) dashboard.DynamicConfigValue {
	return prop("mappings", ms)
}

func thresholdsProp(b *dashboard.ThresholdsConfigBuilder) dashboard.DynamicConfigValue {
	t, err := b.Build()
	if err != nil {
		panic(err) // only static values reach here
	}
	return prop("thresholds", t)
}

func displayName(name string) dashboard.DynamicConfigValue { return prop("displayName", name) }

func unit(u string) dashboard.DynamicConfigValue { return prop("unit", u) }

func width(w int) dashboard.DynamicConfigValue { return prop("custom.width", w) }

// link is a data link on a table column.
func link(title, url string) dashboard.DynamicConfigValue {
	return prop("links", []map[string]any{{"title": title, "url": url}})
}

// Links to the Site and Port boards from a table row that has site, pile and
// port columns; the time range goes along.
const (
	siteLinkURL = "/d/" + SiteUID + "/chargeguard-site?var-site=${__data.fields.site}&${__url_time_range}"
	pileLinkURL = "/d/" + SiteUID + "/chargeguard-site?var-site=${__data.fields.site}&var-pile=${__data.fields.pile}&${__url_time_range}"
	portLinkURL = "/d/" + PortUID + "/chargeguard-port?var-site=${__data.fields.site}&var-pile=${__data.fields.pile}&var-port=${__data.fields.port}&${__url_time_range}"
)

// Transformations of table panels.
func organize(exclude []string, rename map[string]string, order []string) dashboard.DataTransformerConfig {
	ex := map[string]bool{}
	for _, e := range exclude {
		ex[e] = true
	}
	idx := map[string]int{}
	for i, o := range order {
		idx[o] = i
	}
	return dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
		"excludeByName": ex,
		"renameByName":  rename,
		"indexByName":   idx,
	}}
}

func merge() dashboard.DataTransformerConfig {
	return dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}}
}

func sortBy(field string, desc bool) dashboard.DataTransformerConfig {
	return dashboard.DataTransformerConfig{Id: "sortBy", Options: map[string]any{
		"sort": []map[string]any{{"field": field, "desc": desc}},
	}}
}

func limit(n int) dashboard.DataTransformerConfig {
	return dashboard.DataTransformerConfig{Id: "limit", Options: map[string]any{"limitField": n}}
}

// legendTable is the legend of graphs with many series: a table with the
// last and highest value, so the hottest port is found without hovering.
func legendTable() *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().
		DisplayMode(common.LegendDisplayModeTable).
		Placement(common.LegendPlacementRight).
		ShowLegend(true).
		Calcs([]string{"lastNotNull", "max"}).
		SortBy("Max").
		SortDesc(true)
}

func legendList() *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().
		DisplayMode(common.LegendDisplayModeList).
		Placement(common.LegendPlacementBottom).
		ShowLegend(true)
}

func tooltipAll() *common.VizTooltipOptionsBuilder {
	return common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending)
}

func lastValue() *common.ReduceDataOptionsBuilder {
	return common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false)
}

func dashedThresholds() *common.GraphThresholdsStyleConfigBuilder {
	return common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)
}

// boardLinks link every chargeguard board to the others, keeping the time
// range and the site/pile/port selection.
func boardLinks() []cog.Builder[dashboard.DashboardLink] {
	return []cog.Builder[dashboard.DashboardLink]{
		dashboard.NewDashboardLinkBuilder("chargeguard boards").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{boardTag}).
			AsDropdown(true).
			IncludeVars(true).
			KeepTime(true),
	}
}

// newStat is a stat panel with the orientation Grafana would pick itself.
func newStat() *stat.PanelBuilder {
	return stat.NewPanelBuilder().Orientation(common.VizOrientationAuto)
}

// newBoard starts a board with what every chargeguard board shares: the
// tag, a 30 s refresh over the last 6 hours in the browser's time zone,
// and the links to the other boards.
func newBoard(title, uid, description string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{boardTag}).
		Refresh("30s").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		Links(boardLinks())
}
