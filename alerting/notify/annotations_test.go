package notify

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The alert names of the safety policy (docs/protocol.md and issue 4), by
// severity. Written out here so that a name dropped from the catalogue or a
// severity changed by mistake fails a test.
var (
	wantCritical = []string{"close_failed", "leakage", "overcurrent", "overheat", "overheat_rate", "pile_offline", "relay_welded", "sensor_fault", "short_circuit", "smoke"}
	wantWarning  = []string{"hot_contact", "max_duration", "pile_config", "pile_protocol", "pile_stream", "temp_warning"}
)

func TestCatalogueCoversThePolicy(t *testing.T) {
	var crit, warn []string
	for _, n := range Alertnames() {
		switch Severity(n) {
		case SeverityCritical:
			crit = append(crit, n)
		case SeverityWarning:
			warn = append(warn, n)
		default:
			t.Errorf("%s has severity %q", n, Severity(n))
		}
	}
	assert.Equal(t, wantCritical, crit)
	assert.Equal(t, wantWarning, warn)
	assert.Empty(t, Severity("no_such_alert"))
}

func TestAnnotationsNameThePlaceAndWhatToDo(t *testing.T) {
	for _, name := range Alertnames() {
		t.Run(name, func(t *testing.T) {
			port := 3
			if catalogue[name].pile {
				port = 0
			}
			a := Annotations(name, "site-9", "pile-4", port, "42 units", "https://board.example/d/x")
			for _, k := range []string{"summary", "description", "on_site", "board_url"} {
				require.NotEmpty(t, a[k], k)
			}
			assert.Contains(t, a["summary"], "site site-9, pile pile-4")
			if port > 0 {
				assert.Contains(t, a["summary"], "port 3")
			} else {
				assert.NotContains(t, a["summary"], ", port ")
			}
			assert.Contains(t, a["description"], "42 units")
			assert.Equal(t, "https://board.example/d/x", a["board_url"])
			// Short enough for an SMS-sized pager screen, roughly.
			assert.Less(t, len(a["summary"]), 160, a["summary"])
			assert.Less(t, len(a["on_site"]), 400, a["on_site"])
		})
	}
}

func TestAnnotationsSaySpecificThings(t *testing.T) {
	on := func(name string) string { return Annotations(name, "s", "p", 1, "", "")["on_site"] }
	assert.Contains(t, on("smoke"), "119")
	assert.Contains(t, strings.ToLower(on("smoke")), "evacuate")
	assert.Contains(t, on("smoke"), "extinguisher")
	assert.Contains(t, on("overheat"), "burn marks")
	assert.Contains(t, on("relay_welded"), "breaker")
	assert.Contains(t, on("close_failed"), "breaker")
	assert.Contains(t, Annotations("pile_offline", "s", "p", 0, "", "")["summary"], "no cut can reach it")
	assert.Contains(t, Annotations("overheat", "s", "p", 0, "", "")["summary"], "(whole pile)")

	a := Annotations("new_alert", "s", "p", 2, "", "")
	assert.Contains(t, a["summary"], "new_alert")
	assert.NotEmpty(t, a["on_site"])
	assert.NotContains(t, a, "board_url")
}

func TestRunbookURL(t *testing.T) {
	assert.Equal(t, DefaultRunbookBase+"/docs/runbooks/smoke.md", RunbookURL("", "smoke"))
	assert.Equal(t, "https://wiki.city.example/cg/docs/runbooks/leakage.md", RunbookURL("https://wiki.city.example/cg/", "leakage"))
}

func TestChineseTextsNameThePlaceAndReading(t *testing.T) {
	assert.Equal(t, "站点 changhe-3，充电桩 p12，端口 4：端口过热，已断电（读数 72.5 °C）",
		SummaryZH("overheat", "changhe-3", "p12", 4, Reading("overheat", 72.5)))
	assert.Equal(t, "站点 s，充电桩 p：烟雾报警：可能起火，整桩已断电", SummaryZH("smoke", "s", "p", 0, ""))
	assert.Contains(t, SummaryZH("overheat", "s", "p", 0, ""), "（整桩）")
	assert.Contains(t, OnSiteZH("smoke"), "119")
	assert.Contains(t, SummaryZH("new_alert", "s", "p", 1, ""), "new_alert")
	assert.NotEmpty(t, OnSiteZH("new_alert"))

	a := Annotations("leakage", "s", "p", 0, Reading("leakage", 31), "")
	assert.Equal(t, SummaryZH("leakage", "s", "p", 0, "31 mA"), a["summary_zh"])
	assert.Equal(t, OnSiteZH("leakage"), a["on_site_zh"])
	assert.Contains(t, a["description"], "Reading: 31 mA.")
}

func TestReading(t *testing.T) {
	assert.Equal(t, "72.5 °C", Reading("overheat", 72.5))
	assert.Equal(t, "2.5 °C/min", Reading("overheat_rate", 2.5))
	assert.Equal(t, "12.35 A", Reading("short_circuit", 12.3456))
	assert.Equal(t, "3", Reading("close_failed", 3))
	assert.Empty(t, Reading("smoke", 0))
	assert.Empty(t, Reading("overheat", math.NaN()))
}
