package app_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/app"
	"github.com/chargeguard/chargeguard/internal/testenv"
)

// After a restart the port page's chart shows the hour before it from
// InfluxDB's port measurement (written here as the ingest stores it), next
// to what the fresh console saw itself. The console's memory is empty at
// the start, so without the stored readings the chart would hold one
// point at 36 °C and a 60° scale.
func TestPortChartAfterRestartReadsInflux(t *testing.T) {
	testenv.Integration(t)
	mosq := testenv.Mosquitto(t)
	db := testenv.Influx(t)
	now := time.Now()
	var lines []string
	for i, temp := range []float64{40, 55, 95, 60, 45} {
		at := now.Add(time.Duration(-50+10*i) * time.Minute)
		lines = append(lines, fmt.Sprintf(`port,site=load,pile=p0001,port=1 a=3.2,state="charging",temp_c=%g,seq=%di %d`, temp, i+1, at.UnixNano()))
	}
	db.WriteLines(t, strings.Join(lines, "\n"))

	cg := start(t, testConfig(t, mosq.URL, db, t.TempDir()), app.Options{})
	base := "http://" + cg.app.HTTPAddr()
	publishRaw(t, connect(t, mosq.URL, "pile-p0001"), "chargers/load/p0001/telemetry", telemetryPayload(1, time.Now().UnixMilli()))

	var body string
	require.Eventually(t, func() bool {
		var code int
		code, body = httpGet(t, base+"/ports/load/p0001/1")
		return code == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "the port never showed in the console")
	m := regexp.MustCompile(`<polyline class="temp" points="([^"]*)"`).FindStringSubmatch(body)
	require.NotNil(t, m, "no temperature line: %s", body)
	require.GreaterOrEqual(t, len(strings.Fields(m[1])), 6, "five stored steps and the console's own reading")
	require.Contains(t, body, ">120°<", "the scale holds the stored 95 °C")
	require.NotContains(t, body, `id="chart-note"`)
}
