package grafana

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/internal/testenv"
)

// selection is one choice of the template variables, as Grafana would
// substitute them into a query.
type selection struct {
	name string
	vars map[string]string
	// full: the fault scenario has data for every query under this
	// selection, so every answer must be non-empty.
	full bool
}

// grafanaTimeFilter is what Grafana's InfluxDB data source writes for
// $timeFilter.
func grafanaTimeFilter(from, to time.Time) string {
	return fmt.Sprintf("time >= %dms and time <= %dms", from.UnixMilli(), to.UnixMilli())
}

// grafanaInterval is $__interval: the range over about 1000 points, never
// below the data source's 10 s (piles report every 10 s).
func grafanaInterval(from, to time.Time) string {
	iv := max(to.Sub(from)/1000, 10*time.Second).Truncate(time.Second)
	return strconv.Itoa(int(iv.Seconds())) + "s"
}

// regexValue is a multi-value variable as Grafana writes it for InfluxQL:
// one value as is, several as (a|b) (ids need no regex escaping).
func regexValue(values ...string) string {
	if len(values) == 1 {
		return values[0]
	}
	return "(" + strings.Join(values, "|") + ")"
}

var leftoverVar = regexp.MustCompile(`\$[A-Za-z_]`)

// substitute replaces Grafana's macros and variables in an InfluxQL query.
func substitute(t *testing.T, text string, vars map[string]string, from, to time.Time) string {
	t.Helper()
	r := []string{"$timeFilter", grafanaTimeFilter(from, to), "$__interval", grafanaInterval(from, to)}
	for _, k := range sortedKeys(vars) {
		r = append(r, "$"+k, vars[k])
	}
	out := strings.NewReplacer(r...).Replace(text)
	require.False(t, leftoverVar.MatchString(out), "unsubstituted variable in %s", out)
	return out
}

// TestBoardQueriesAgainstInfluxDB runs every InfluxQL query of every board —
// panel targets, template variables and annotations — against a real
// InfluxDB 1.8 holding the fault scenario, with Grafana's substitutions, and
// checks that each answers without error, with the columns and series the
// panel reads, non-empty where the scenario has data, and with the numbers
// the scenario implies for the panels an operator acts on.
func TestBoardQueriesAgainstInfluxDB(t *testing.T) {
	influx := testenv.Influx(t)
	sc := newScenario()
	lines := sc.lineProtocol()
	for i := 0; i < len(lines); i += 5000 {
		influx.WriteLines(t, strings.Join(lines[i:min(i+5000, len(lines))], "\n"))
	}
	for _, m := range []string{"port", "pile", "status", "event", "ack", "alert", "audit", "rejected"} {
		require.EqualValues(t, sc.count(m, time.Time{}, sc.now, nil), influx.Count(t, m), "points of %s stored", m)
	}

	registry := map[string]Query{}
	for _, q := range Queries() {
		registry[q.Text] = q
	}
	run := func(q Query, text string) []testenv.Series {
		t.Helper()
		series, err := influx.QueryErr(text)
		require.NoError(t, err, "%s", q.ID)
		want := q.Columns
		if !strings.HasPrefix(text, "SHOW") {
			want = append([]string{"time"}, q.Columns...)
		}
		wantTags := append([]string{}, q.Tags...)
		sort.Strings(wantTags)
		for _, s := range series {
			require.Equal(t, want, s.Columns, "%s: columns of %s", q.ID, text)
			require.Equal(t, wantTags, sortedKeys(s.Tags), "%s: series tags of %s", q.ID, text)
			require.NotEmpty(t, s.Values, "%s: a series without rows", q.ID)
		}
		return series
	}

	// The template variables, resolved as Grafana does: site first, then
	// the piles of that site, then the ports of those piles.
	vals := func(series []testenv.Series) []string {
		var out []string
		for _, s := range series {
			for _, row := range s.Values {
				out = append(out, row[1].(string))
			}
		}
		sort.Strings(out)
		return out
	}
	sites := vals(run(VarSite, VarSite.Text))
	require.Equal(t, sc.sites, sites, "site variable")
	piles := vals(run(VarPile, substitute(t, VarPile.Text, map[string]string{"site": sc.faultSite}, sc.start, sc.now)))
	require.Equal(t, sc.piles[sc.faultSite], piles, "pile variable of %s", sc.faultSite)
	allPorts := []string{"1", "2", "3", "4"}
	ports := vals(run(VarPortsOfPiles, substitute(t, VarPortsOfPiles.Text, map[string]string{"site": sc.faultSite, "pile": regexValue(piles...)}, sc.start, sc.now)))
	require.Equal(t, allPorts, ports, "port variable of all piles")
	ports = vals(run(VarPortOfPile, substitute(t, VarPortOfPile.Text, map[string]string{"site": sc.faultSite, "pile": sc.faultPile}, sc.start, sc.now)))
	require.Equal(t, allPorts, ports, "port variable of %s", sc.faultPile)
	ports = vals(run(VarPortOfPile, substitute(t, VarPortOfPile.Text, map[string]string{"site": "xintang-open", "pile": "p02"}, sc.start, sc.now)))
	require.Equal(t, allPorts, ports)
	require.Empty(t, vals(run(VarPile, substitute(t, VarPile.Text, map[string]string{"site": "no-such-site"}, sc.start, sc.now))), "piles of an unknown site")

	faultPort := strconv.Itoa(sc.faultPort)
	selections := map[string][]selection{
		"fleet.json": {{name: "fleet", vars: map[string]string{}, full: true}},
		"site.json": {
			{name: "site-all", vars: map[string]string{"site": sc.faultSite, "pile": regexValue(piles...), "port": regexValue(allPorts...)}, full: true},
			{name: "site-fault", vars: map[string]string{"site": sc.faultSite, "pile": sc.faultPile, "port": faultPort}, full: true},
			{name: "site-offline", vars: map[string]string{"site": sc.offlineSite, "pile": regexValue(sc.piles[sc.offlineSite]...), "port": regexValue(allPorts...)}},
		},
		"port.json": {
			{name: "port-fault", vars: map[string]string{"site": sc.faultSite, "pile": sc.faultPile, "port": faultPort}, full: true},
			{name: "port-quiet", vars: map[string]string{"site": sc.quietSite, "pile": sc.quietPile, "port": strconv.Itoa(sc.quietPort)}},
		},
	}

	// results[selection][query ID] is the answer of one query.
	results := map[string]map[string][]testenv.Series{}
	ran := map[string]bool{}
	boards := loadBoards(t)
	for _, file := range sortedKeys(boards) {
		for _, bq := range queriesOf(t, file, boards[file]) {
			if bq.datasource != "influxdb" {
				continue
			}
			q, ok := registry[bq.text]
			require.True(t, ok, "%s %s: not a shared query", file, bq.where)
			from := sc.start
			if bq.timeFrom != "" {
				d, err := time.ParseDuration(bq.timeFrom)
				require.NoError(t, err)
				from = sc.now.Add(-d)
			}
			for _, sel := range selections[file] {
				if bq.variable != "" && sel.name != selections[file][0].name {
					continue // variables were resolved above; once is enough
				}
				vars := sel.vars
				if bq.repeated {
					// Grafana repeats the row once per selected pile, each
					// copy with that one pile.
					var each []string
					if strings.HasPrefix(vars["pile"], "(") {
						each = strings.Split(strings.Trim(vars["pile"], "()"), "|")
					} else {
						each = []string{vars["pile"]}
					}
					for _, pile := range each {
						v := map[string]string{"site": vars["site"], "pile": pile, "port": vars["port"]}
						series := run(q, substitute(t, bq.text, v, from, sc.now))
						if sel.full && !(sel.name == "site-all" && pile != sc.faultPile) {
							require.NotEmpty(t, series, "%s %s (%s, pile %s): no data", file, bq.where, q.ID, pile)
						}
					}
					ran[q.ID] = true
					continue
				}
				series := run(q, substitute(t, bq.text, vars, from, sc.now))
				if sel.full {
					require.NotEmpty(t, series, "%s %s (%s, %s): no data", file, bq.where, q.ID, sel.name)
				}
				if results[sel.name] == nil {
					results[sel.name] = map[string][]testenv.Series{}
				}
				results[sel.name][q.ID] = series
				ran[q.ID] = true
			}
		}
	}
	for _, q := range Queries() {
		require.True(t, ran[q.ID], "query %s never ran", q.ID)
	}

	now5 := sc.now.Add(-5 * time.Minute)
	day := sc.now.Add(-24 * time.Hour)

	t.Run("fleet", func(t *testing.T) {
		r := results["fleet"]
		for _, state := range []string{StateClosed, StateFault, StateCharging} {
			want := 0
			for _, n := range sc.statesBySite(state, now5, sc.now) {
				want += n
			}
			require.Equal(t, float64(want), single(t, r["fleet/ports-"+state]), "ports %s now", state)
		}
		require.Equal(t, 1.0, single(t, r["fleet/ports-closed"]), "the overheated port is closed")
		require.Equal(t, 1.0, single(t, r["fleet/ports-fault"]), "the tripped port is faulted")
		for _, state := range PortStates {
			want := map[string]float64{}
			for site, n := range sc.statesBySite(state, now5, sc.now) {
				want[site] = float64(n)
			}
			require.Equal(t, want, bySite(t, r["fleet/site-"+state]), "ports %s per site", state)
		}
		require.Equal(t, float64(len(sc.offlinePiles)), single(t, r["fleet/piles-offline"]))
		wantOff := map[string]float64{}
		for site, n := range sc.offlineBySite() {
			wantOff[site] = float64(n)
		}
		require.Equal(t, map[string]float64{sc.offlineSite: float64(len(sc.offlinePiles))}, wantOff, "the scenario")
		require.Equal(t, wantOff, bySite(t, r["fleet/site-offline"]))
		var offline []string
		for _, s := range r["fleet/offline-list"] {
			offline = append(offline, s.Tags["site"]+"/"+s.Tags["pile"])
			require.Equal(t, false, s.Values[0][1], "offline-list shows dead piles only")
		}
		sort.Strings(offline)
		var wantList []string
		for _, p := range sc.offlinePiles {
			wantList = append(wantList, sc.offlineSite+"/"+p)
		}
		require.Equal(t, wantList, offline)

		hotKey, hotTemp := sc.hottest(now5, sc.now)
		require.Equal(t, portKey{sc.faultSite, sc.faultPile, faultPort}, hotKey, "the scenario's hottest port")
		var topKey portKey
		topTemp := math.Inf(-1)
		for _, s := range r["fleet/hottest-ports"] {
			if v := num(t, s.Values[0][1]); v > topTemp {
				topTemp, topKey = v, portKey{s.Tags["site"], s.Tags["pile"], s.Tags["port"]}
			}
		}
		require.Equal(t, hotKey, topKey, "hottest port now")
		require.InDelta(t, hotTemp, topTemp, 1e-9)
		require.Len(t, r["fleet/hottest-ports"], len(sc.lastPortStates(now5, sc.now)), "one row per port that reported in the last 5 minutes")

		energy := sc.energyBySite(sc.start, sc.now)
		total := 0.0
		for _, v := range energy {
			total += v
		}
		require.Greater(t, total, 1000.0, "the scenario charges for an hour")
		require.InDelta(t, total, single(t, r["fleet/energy-total"]), 1e-6*total)
		got := bySite(t, r["fleet/energy-by-site"])
		for site, v := range energy {
			require.InDelta(t, v, got[site], 1e-6*v, site)
		}
		overTime := map[string]float64{}
		for _, s := range r["fleet/energy-over-time"] {
			for _, row := range s.Values {
				overTime[s.Tags["site"]] += num(t, row[1])
			}
		}
		for site, v := range energy {
			require.InDelta(t, v, overTime[site], 1e-6*v, "energy over time of %s adds up", site)
		}

		cuts := sc.count("audit", day, sc.now, func(p point) bool { return p.tags["action"] == "command" && p.fields["command"] == "close" })
		require.Equal(t, 1, cuts, "the scenario")
		require.Equal(t, float64(cuts), single(t, r["fleet/cuts-count"]))
		require.Len(t, rows(r["fleet/cuts"]), cuts)
		require.Equal(t, "rule:overheat", column(t, r["fleet/cuts"], "actor")[0])
		critical := sc.count("alert", day, sc.now, func(p point) bool {
			return p.tags["severity"] == "critical" && p.fields["state"] == "firing"
		})
		require.Equal(t, 1+len(sc.offlinePiles), critical, "the scenario")
		require.Equal(t, float64(critical), single(t, r["fleet/critical-count"]))
		byName := map[string]float64{}
		for _, s := range r["fleet/alerts-by-name"] {
			byName[s.Tags["alertname"]] = num(t, s.Values[0][1])
		}
		require.Equal(t, map[string]float64{"overheat": 1, "temp_warning": 1, "pile_offline": float64(len(sc.offlinePiles))}, byName)
		events := column(t, r["fleet/alert-events"], "alertname")
		require.Len(t, events, sc.count("alert", day, sc.now, nil))
		times := column(t, r["fleet/alert-events"], "time")
		require.True(t, sort.SliceIsSorted(times, func(i, j int) bool { return times[i].(string) > times[j].(string) }), "newest first")

		var rejected float64
		for _, s := range r["fleet/rejected-by-reason"] {
			for _, row := range s.Values {
				rejected += num(t, row[1])
			}
		}
		require.Equal(t, 3.0, rejected)
		require.Len(t, rows(r["fleet/rejected-latest"]), 3)
	})

	t.Run("site", func(t *testing.T) {
		all, fault, off := results["site-all"], results["site-fault"], results["site-offline"]
		require.Len(t, all["site/ports-now"], len(sc.piles[sc.faultSite])*sc.ports, "every port of the site")
		require.Len(t, fault["site/ports-now"], sc.ports, "the ports of the selected pile")
		for _, s := range fault["site/ports-now"] {
			want := StateCharging
			if s.Tags["port"] == faultPort {
				want = StateClosed
			} else if n, _ := strconv.Atoi(s.Tags["port"]); (n+len(sc.faultPile))%2 != 0 {
				want = StateIdle
			}
			require.Equal(t, want, s.Values[0][1], "state of port %s now", s.Tags["port"])
		}
		alive := len(sc.piles[sc.offlineSite]) - len(sc.offlinePiles)
		require.Len(t, off["site/ports-now"], alive*sc.ports, "only the live piles' ports: a dead pile has reported nothing in the last 5 minutes")
		for _, s := range off["site/ports-now"] {
			require.NotContains(t, sc.offlinePiles, s.Tags["pile"])
		}
		require.Len(t, off["site/piles"], len(sc.piles[sc.offlineSite]), "yet its last telemetry is listed")
		var deaths int
		for _, v := range column(t, off["site/status"], "online") {
			if v == false {
				deaths++
			}
		}
		require.Equal(t, len(sc.offlinePiles), deaths, "births and deaths of the offline site")

		require.Len(t, rows(fault["site/annotation-alerts"]), 2, "temp_warning and overheat")
		require.Len(t, rows(fault["site/annotation-cuts"]), 1, "one close, the retry is not a new cut")
		require.Equal(t, "rule:overheat", column(t, fault["site/annotation-cuts"], "actor")[0])
		require.Len(t, rows(fault["site/annotation-resets"]), 1, "the refused reset")
		require.Len(t, rows(all["site/annotation-resets"]), 2, "the refused reset and the reopen after a full battery")
		require.Equal(t, []any{"door_open"}, column(t, fault["site/annotation-events"], "kind"), "plug events are not marked")
		require.Len(t, rows(all["site/annotation-alerts"]), 2, "no other alert at this site")
	})

	t.Run("port", func(t *testing.T) {
		f, q := results["port-fault"], results["port-quiet"]
		require.Equal(t, StateClosed, column(t, f["port/now-state"], "state")[0])
		lastTemp := 0.0
		for _, p := range sc.points {
			if p.measurement == "port" && p.tags["pile"] == sc.faultPile && p.tags["site"] == sc.faultSite && p.tags["port"] == faultPort {
				lastTemp = p.fields["temp_c"].(float64)
			}
		}
		require.InDelta(t, lastTemp, single(t, f["port/now-temp_c"]), 1e-9)
		require.Equal(t, 0.0, single(t, f["port/now-a"]), "a closed port draws nothing")
		var maxTemp float64
		for _, v := range column(t, f["port/temp"], "temp_c") {
			maxTemp = max(maxTemp, num(t, v))
		}
		require.GreaterOrEqual(t, maxTemp, TempCutC, "the graph shows the overheat")
		states := map[any]bool{}
		for _, v := range column(t, f["port/states"], "state") {
			states[v] = true
		}
		require.True(t, states[StateCharging] && states[StateClosed], "state timeline: charging, then closed: %v", states)

		match := portOrPile(sc.faultSite, sc.faultPile, sc.faultPort)
		actions := column(t, f["port/audit"], "action")
		require.Len(t, actions, sc.count("audit", sc.start, sc.now, match))
		require.Equal(t, []any{"reset_refused", "ack", "retry", "command"}, actions, "the command audit, newest first")
		require.Equal(t, []any{nil, "close", "close", "close"}, column(t, f["port/audit"], "command"), "what was sent")
		require.Equal(t, []any{"operator:alice", "pile", "rule:overheat", "rule:overheat"}, column(t, f["port/audit"], "actor"), "who")
		require.Equal(t, []any{true}, column(t, f["port/acks"], "ok"))
		require.Equal(t, []any{StateClosed}, column(t, f["port/acks"], "state"))
		require.ElementsMatch(t, []any{"overheat", "temp_warning"}, column(t, f["port/alerts"], "alertname"))
		require.ElementsMatch(t, []any{"plug_in", "door_open"}, column(t, f["port/events"], "kind"), "the port's and the whole pile's events")
		require.Len(t, rows(f["port/annotation-commands"]), 3, "close, retry and the refused reset")

		for _, id := range []string{"port/audit", "port/acks", "port/alerts", "port/events", "port/annotation-alerts", "port/annotation-commands"} {
			require.Empty(t, q[id], "%s of a port nothing happened to", id)
		}
		require.NotEmpty(t, q["port/temp"], "yet its readings are there")
		require.Equal(t, StateIdle, column(t, q["port/now-state"], "state")[0])
	})
}

// rows returns the rows of all series.
func rows(series []testenv.Series) [][]any {
	var out [][]any
	for _, s := range series {
		out = append(out, s.Values...)
	}
	return out
}

// column returns one column of all series, in order.
func column(t *testing.T, series []testenv.Series, name string) []any {
	t.Helper()
	var out []any
	for _, s := range series {
		i := -1
		for j, c := range s.Columns {
			if c == name {
				i = j
			}
		}
		require.GreaterOrEqual(t, i, 0, "no column %q in %v", name, s.Columns)
		for _, row := range s.Values {
			out = append(out, row[i])
		}
	}
	return out
}

func num(t *testing.T, v any) float64 {
	t.Helper()
	n, ok := v.(json.Number)
	require.True(t, ok, "%v (%T) is not a number", v, v)
	f, err := n.Float64()
	require.NoError(t, err)
	return f
}

// single is the value of a one-series, one-row answer.
func single(t *testing.T, series []testenv.Series) float64 {
	t.Helper()
	require.Len(t, series, 1)
	require.Len(t, series[0].Values, 1)
	return num(t, series[0].Values[0][1])
}

// bySite is the value per site of an answer grouped by site.
func bySite(t *testing.T, series []testenv.Series) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, s := range series {
		require.Len(t, s.Values, 1)
		out[s.Tags["site"]] = num(t, s.Values[0][1])
	}
	return out
}
