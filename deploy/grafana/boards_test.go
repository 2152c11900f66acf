package grafana

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

const regenerate = "the committed dashboards are stale: run `go run ./deploy/grafana/gen` from the repository root and commit deploy/grafana/dashboards"

// TestCommittedBoardsAreGenerated holds the committed JSON to what the
// generator produces now, byte for byte, and allows no other file there.
func TestCommittedBoardsAreGenerated(t *testing.T) {
	boards, err := Boards()
	require.NoError(t, err)
	var want []string
	for _, b := range boards {
		want = append(want, b.File)
		gen, err := b.JSON()
		require.NoError(t, err)
		committed, err := os.ReadFile(filepath.Join("dashboards", b.File))
		require.NoError(t, err, regenerate)
		if !bytes.Equal(gen, committed) {
			t.Errorf("dashboards/%s differs from the generator's output: %s", b.File, regenerate)
		}
	}
	entries, err := os.ReadDir("dashboards")
	require.NoError(t, err)
	var have []string
	for _, e := range entries {
		have = append(have, e.Name())
	}
	sort.Strings(want)
	require.Equal(t, want, have, "dashboards/ must hold exactly the generated boards")
}

// TestGeneratorIsDeterministic builds the boards twice.
func TestGeneratorIsDeterministic(t *testing.T) {
	a, err := Boards()
	require.NoError(t, err)
	b, err := Boards()
	require.NoError(t, err)
	require.Len(t, b, len(a))
	for i := range a {
		ja, err := a[i].JSON()
		require.NoError(t, err)
		jb, err := b[i].JSON()
		require.NoError(t, err)
		require.Equal(t, string(ja), string(jb), a[i].File)
	}
}

// TestWriteWritesTheBoards runs the generator's entry point into a temporary
// directory, as `go run ./deploy/grafana/gen -out DIR` does.
func TestWriteWritesTheBoards(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Write(dir))
	for _, f := range []string{"fleet.json", "site.json", "port.json", "health.json"} {
		got, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		committed, err := os.ReadFile(filepath.Join("dashboards", f))
		require.NoError(t, err)
		require.True(t, bytes.Equal(committed, got), "%s: %s", f, regenerate)
	}
}

// obj is a decoded JSON object.
type obj = map[string]any

// loadBoards decodes the committed boards generically, the way Grafana reads
// them, so the tests see the JSON rather than the SDK's structs.
func loadBoards(t *testing.T) map[string]obj {
	t.Helper()
	boards := map[string]obj{}
	for _, f := range []string{"fleet.json", "site.json", "port.json", "health.json"} {
		data, err := os.ReadFile(filepath.Join("dashboards", f))
		require.NoError(t, err)
		var d obj
		require.NoError(t, json.Unmarshal(data, &d), f)
		boards[f] = d
	}
	return boards
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// panelsOf returns every panel of a board, rows and the panels inside
// collapsed rows included.
func panelsOf(d obj) []obj {
	var out []obj
	for _, p := range list(d["panels"]) {
		po := p.(obj)
		out = append(out, po)
		for _, inner := range list(po["panels"]) {
			out = append(out, inner.(obj))
		}
	}
	return out
}

// boardQuery is one query found in a board's JSON.
type boardQuery struct {
	board, where string
	datasource   string // "influxdb" or "prometheus"
	text         string
	format       string // resultFormat of InfluxDB panel targets
	timeFrom     string // the panel's relative time, if it has one
	repeated     bool   // inside a row repeated per pile
	annotation   obj    // the annotation target, for annotations
	textColumn   string
	tagsColumn   string
	variable     string // the variable's name, for template variables
}

// queriesOf extracts every query of a board: panel targets, template
// variables and annotations.
func queriesOf(t *testing.T, file string, d obj) []boardQuery {
	t.Helper()
	var out []boardQuery
	repeating := false
	for _, p := range list(d["panels"]) {
		po := p.(obj)
		panels := []obj{po}
		if str(po["type"]) == "row" {
			repeating = str(po["repeat"]) != ""
			panels = nil
			for _, inner := range list(po["panels"]) {
				panels = append(panels, inner.(obj))
			}
		}
		for _, panel := range panels {
			for _, tg := range list(panel["targets"]) {
				to := tg.(obj)
				ds := str(to["datasource"].(obj)["type"])
				q := boardQuery{
					board: file, where: "panel " + str(panel["title"]), datasource: ds,
					timeFrom: str(panel["timeFrom"]), repeated: repeating,
				}
				switch ds {
				case "influxdb":
					q.text, q.format = str(to["query"]), str(to["resultFormat"])
					require.Equal(t, true, to["rawQuery"], "%s %s: InfluxQL targets are raw queries", file, q.where)
				case "prometheus":
					q.text = str(to["expr"])
				default:
					t.Fatalf("%s %s: unexpected data source type %q", file, q.where, ds)
				}
				out = append(out, q)
			}
		}
	}
	for _, v := range list(d["templating"].(obj)["list"]) {
		vo := v.(obj)
		out = append(out, boardQuery{
			board: file, where: "variable " + str(vo["name"]), variable: str(vo["name"]),
			datasource: str(vo["datasource"].(obj)["type"]), text: str(vo["query"]),
		})
	}
	if a, ok := d["annotations"].(obj); ok {
		for _, an := range list(a["list"]) {
			ao := an.(obj)
			tg := ao["target"].(obj)
			out = append(out, boardQuery{
				board: file, where: "annotation " + str(ao["name"]), annotation: tg,
				datasource: str(ao["datasource"].(obj)["type"]), text: str(tg["query"]),
				textColumn: str(tg["textColumn"]), tagsColumn: str(tg["tagsColumn"]),
			})
		}
	}
	return out
}

// TestBoardsUseExactlyTheSharedQueries ties the boards to queries.go: every
// query on a board is one of Queries() or PromQueries(), in the format the
// Query says, and every one of those is on a board, so the integration test
// (which runs Queries()) runs what the boards run.
func TestBoardsUseExactlyTheSharedQueries(t *testing.T) {
	influx := map[string]Query{}
	for _, q := range Queries() {
		require.NoError(t, q.Validate())
		_, dup := influx[q.Text]
		require.False(t, dup, "query %s is registered twice", q.ID)
		influx[q.Text] = q
	}
	prom := map[string]PromQuery{}
	for _, q := range PromQueries() {
		prom[q.Expr] = q
	}
	usedInflux, usedProm := map[string]bool{}, map[string]bool{}
	for file, d := range loadBoards(t) {
		for _, bq := range queriesOf(t, file, d) {
			switch bq.datasource {
			case "influxdb":
				q, ok := influx[bq.text]
				if !ok {
					t.Errorf("%s %s: query not in Queries(): %s", file, bq.where, bq.text)
					continue
				}
				usedInflux[q.ID] = true
				if bq.format != "" {
					require.Equal(t, string(q.Format), bq.format, "%s %s (%s)", file, bq.where, q.ID)
				}
				if bq.annotation != nil {
					require.NotEmpty(t, q.TextColumn, "%s %s: annotation query %s has no text column", file, bq.where, q.ID)
					require.Equal(t, q.TextColumn, bq.textColumn, "%s %s", file, bq.where)
					require.Equal(t, strings.Join(q.TagsColumns, ","), bq.tagsColumn, "%s %s", file, bq.where)
				}
			case "prometheus":
				q, ok := prom[bq.text]
				if !ok {
					t.Errorf("%s %s: expression not in PromQueries(): %s", file, bq.where, bq.text)
					continue
				}
				usedProm[q.ID] = true
			}
		}
	}
	for _, q := range Queries() {
		require.True(t, usedInflux[q.ID], "query %s is on no board", q.ID)
	}
	for _, q := range PromQueries() {
		require.True(t, usedProm[q.ID], "PromQL %s is on no board", q.ID)
	}
}

// TestBoardsAreReadableAt3AM checks what an operator relies on: every panel
// says what it shows, uses a provisioned data source and a unit, every
// temperature graph shows the 55/70 °C lines, panels fit the grid and have
// unique ids, and the UIDs are stable.
func TestBoardsAreReadableAt3AM(t *testing.T) {
	uids := map[string]string{"fleet.json": FleetUID, "site.json": SiteUID, "port.json": PortUID, "health.json": HealthUID}
	for file, d := range loadBoards(t) {
		require.Equal(t, uids[file], d["uid"], file)
		require.Contains(t, list(d["tags"]), boardTag, file)
		require.NotEmpty(t, str(d["description"]), file)
		ids := map[float64]bool{}
		for _, p := range panelsOf(d) {
			title := str(p["title"])
			require.NotEmpty(t, title, "%s: a panel without a title", file)
			id, _ := p["id"].(float64)
			require.NotZero(t, id, "%s %q: no id", file, title)
			require.False(t, ids[id], "%s %q: id %v used twice", file, title, id)
			ids[id] = true
			gp := p["gridPos"].(obj)
			require.LessOrEqual(t, gp["x"].(float64)+gp["w"].(float64), 24.0, "%s %q: wider than the grid", file, title)
			if str(p["type"]) == "row" {
				continue
			}
			require.GreaterOrEqual(t, len(str(p["description"])), 40, "%s %q: describe the panel for the operator", file, title)
			uid := str(p["datasource"].(obj)["uid"])
			require.Contains(t, []string{InfluxUID, PrometheusUID}, uid, "%s %q", file, title)
			fc, _ := p["fieldConfig"].(obj)
			defaults, _ := fc["defaults"].(obj)
			u := str(defaults["unit"])
			switch str(p["type"]) {
			case "timeseries", "stat", "bargauge", "barchart":
				if len(list(defaults["mappings"])) == 0 {
					require.NotEmpty(t, u, "%s %q: no unit", file, title)
				}
			}
			if u == "celsius" {
				var steps []float64
				for _, s := range list(defaults["thresholds"].(obj)["steps"]) {
					if v, ok := s.(obj)["value"].(float64); ok {
						steps = append(steps, v)
					}
				}
				require.Equal(t, []float64{TempWarnC, TempCutC}, steps, "%s %q: temperature thresholds", file, title)
				if str(p["type"]) == "timeseries" {
					style := defaults["custom"].(obj)["thresholdsStyle"].(obj)["mode"]
					require.Equal(t, "dashed", style, "%s %q: draw the 55/70 °C lines", file, title)
				}
			}
		}
	}
}

// TestStateColours: red means closed for safety, everywhere a state is shown.
func TestStateColours(t *testing.T) {
	for file, d := range loadBoards(t) {
		raw, err := json.Marshal(d)
		require.NoError(t, err)
		if !bytes.Contains(raw, []byte(`"closed":{`)) {
			continue
		}
		for _, p := range panelsOf(d) {
			walkMappings(p, func(opts obj) {
				if c, ok := opts[StateClosed].(obj); ok {
					require.Equal(t, colorCut, c["color"], "%s %q: closed must be red", file, p["title"])
					require.NotEqual(t, colorCut, opts[StateCharging].(obj)["color"], "%s %q", file, p["title"])
				}
			})
		}
	}
	require.Equal(t, "red", colorCut, "red is reserved for a cut")
}

// walkMappings calls fn with the options of every value mapping under v.
func walkMappings(v any, fn func(obj)) {
	switch x := v.(type) {
	case obj:
		if x["type"] == "value" {
			if o, ok := x["options"].(obj); ok {
				fn(o)
			}
		}
		for _, c := range x {
			walkMappings(c, fn)
		}
	case []any:
		for _, c := range x {
			walkMappings(c, fn)
		}
	}
}

// TestDescriptionsNameRealAlerts: a panel that tells the operator to look at
// an alert's runbook must name a rule that exists in deploy/prometheus.
func TestDescriptionsNameRealAlerts(t *testing.T) {
	rulesFile, err := os.ReadFile(filepath.Join("..", "prometheus", "rules", "chargeguard.rules.yml"))
	require.NoError(t, err)
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(rulesFile, &rules))
	var names []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			names = append(names, r.Alert)
		}
	}
	re := regexp.MustCompile(`Chargeguard[A-Z][A-Za-z]+`)
	mentioned := 0
	for file, d := range loadBoards(t) {
		for _, p := range panelsOf(d) {
			for _, n := range re.FindAllString(str(p["description"]), -1) {
				mentioned++
				require.True(t, slices.Contains(names, n), "%s %q names alert %s, which deploy/prometheus/rules does not define", file, p["title"], n)
			}
		}
	}
	require.NotZero(t, mentioned)
}

// TestProvisioning checks the data sources and the dashboard provider that
// Grafana reads at start.
func TestProvisioning(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name     string         `yaml:"name"`
			UID      string         `yaml:"uid"`
			Type     string         `yaml:"type"`
			Access   string         `yaml:"access"`
			URL      string         `yaml:"url"`
			JSONData map[string]any `yaml:"jsonData"`
			Secure   map[string]any `yaml:"secureJsonData"`
		} `yaml:"datasources"`
	}
	data, err := os.ReadFile(filepath.Join("provisioning", "datasources", "chargeguard.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &ds))
	require.Equal(t, 1, ds.APIVersion)
	byUID := map[string]int{}
	for i, d := range ds.Datasources {
		byUID[d.UID] = i
		require.Equal(t, "proxy", d.Access, d.Name)
		require.NotEmpty(t, d.URL, d.Name)
	}
	require.Contains(t, byUID, InfluxUID)
	require.Contains(t, byUID, PrometheusUID)
	influx := ds.Datasources[byUID[InfluxUID]]
	require.Equal(t, "influxdb", influx.Type)
	require.Equal(t, "InfluxQL", influx.JSONData["version"], "the boards are InfluxQL")
	require.NotEmpty(t, influx.JSONData["dbName"])
	require.Equal(t, "Authorization", influx.JSONData["httpHeaderName1"])
	require.True(t, strings.HasPrefix(str(influx.Secure["httpHeaderValue1"]), "Token "), "the token goes in a secure field")
	require.Equal(t, "prometheus", ds.Datasources[byUID[PrometheusUID]].Type)

	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string         `yaml:"type"`
			Folder  string         `yaml:"folder"`
			Options map[string]any `yaml:"options"`
			UI      bool           `yaml:"allowUiUpdates"`
		} `yaml:"providers"`
	}
	data, err = os.ReadFile(filepath.Join("provisioning", "dashboards", "chargeguard.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &dp))
	require.Equal(t, 1, dp.APIVersion)
	require.Len(t, dp.Providers, 1)
	require.Equal(t, "file", dp.Providers[0].Type)
	require.False(t, dp.Providers[0].UI, "generated boards must not be edited in the UI")
	require.NotEmpty(t, dp.Providers[0].Options["path"])
}
