package app_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/internal/testenv"
)

// procStats reads a process's CPU time (user+system) and peak resident
// memory from /proc.
func procStats(tb testing.TB, pid int) (cpu time.Duration, peakRSS int64) {
	tb.Helper()
	cpu = testenv.ProcCPU(tb, pid)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(tb, err)
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			peakRSS = kb * 1024
		}
	}
	return cpu, peakRSS
}

// BenchmarkIngestEndToEnd publishes b.N telemetry messages of 10 ports (QoS
// 1) from 1,000 piles through a real Mosquitto into a chargeguard process
// and measures until every port point is in a real InfluxDB: the
// end-to-end rate, chargeguard's CPU per port sample, and its peak memory.
// Run it with a fixed count, e.g.
//
//	go test -run '^$' -bench IngestEndToEnd -benchtime 200000x -count 3 ./app
func BenchmarkIngestEndToEnd(b *testing.B) {
	mosq := testenv.Mosquitto(b)
	influx := testenv.Influx(b)
	cmd, _ := startChargeguardProcess(b, mosq.URL, influx)

	const piles = 1000
	perPile := max(b.N/piles, 1)
	msgs := piles * perPile
	pub := newFleetPublisher(mosq.URL, piles, 4)
	cpu0, _ := procStats(b, cmd.Process.Pid)
	b.ResetTimer()
	start := time.Now()
	pub.publish(b, context.Background(), 0, perPile, 0)
	published := time.Since(start)
	for influx.CountField(b, "port", "temp_c") < int64(msgs*10) {
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("only %d of %d port points landed", influx.CountField(b, "port", "temp_c"), msgs*10)
		}
		time.Sleep(100 * time.Millisecond) // polling the database for the end of the run
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cpu1, peak := procStats(b, cmd.Process.Pid)
	require.EqualValues(b, msgs*10, influx.CountField(b, "port", "temp_c"))
	b.ReportMetric(float64(msgs)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(msgs*10)/elapsed.Seconds(), "port_samples/s")
	b.ReportMetric(float64(msgs)/published.Seconds(), "published_msgs/s")
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(msgs*10), "cpu_us/port_sample")
	b.ReportMetric(float64(peak)/(1<<20), "peak_rss_MiB")
	b.ReportMetric(0, "ns/op")
}
