package influx

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/ingest/spool"
	"github.com/chargeguard/chargeguard/internal/testenv"
)

// itBase is the timestamp of point 0 of the integration tests: recent, so no
// retention policy drops it, and fixed, so every run writes the same points.
var itBase = time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// itRecords appends records from..to-1 of ten points each; point k has
// value k and timestamp itBase+k, so every point is distinct.
func itRecords(t testing.TB, sp *spool.Spool, from, to int) {
	t.Helper()
	var recs [][]byte
	for r := from; r < to; r++ {
		var b strings.Builder
		for j := 0; j < 10; j++ {
			k := r*10 + j
			fmt.Fprintf(&b, "it,pile=p%03d,port=%d v=%di %d\n", r%50, j+1, k, itBase+int64(k))
		}
		recs = append(recs, spool.EncodeRecord(nil, time.Now(), []byte(b.String())))
	}
	require.NoError(t, sp.Append(recs))
}

// TestWriterSurvivesInfluxKill writes 20,000 points through a real spool and
// a real InfluxDB 1.8, SIGKILLs InfluxDB mid-run while messages keep coming,
// restarts it on the same data, and checks that every point landed exactly
// once.
func TestWriterSurvivesInfluxKill(t *testing.T) {
	influx := testenv.Influx(t)
	sp, err := spool.Open(spool.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	defer sp.Close()
	o := Options{
		URL:          influx.URL,
		Bucket:       influx.Bucket(),
		BatchRecords: 100, // 1000 points per request: many requests in flight over the run
		MinBackoff:   20 * time.Millisecond,
		MaxBackoff:   500 * time.Millisecond,
		Timeout:      5 * time.Second,
	}
	w, err := New(o, sp)
	require.NoError(t, err)
	require.NoError(t, w.Ping(context.Background()))
	stop := running(t, w)

	for r := 0; r < 800; r += 20 {
		itRecords(t, sp, r, r+20)
	}
	require.Eventually(t, func() bool { return testutil.ToFloat64(w.m.written) >= 3000 },
		30*time.Second, 5*time.Millisecond, "the writer makes progress")

	influx.Kill()
	for r := 800; r < 1600; r += 20 { // messages keep coming during the outage
		itRecords(t, sp, r, r+20)
	}
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(w.m.failures.WithLabelValues("network")) >= 5
	}, 30*time.Second, 5*time.Millisecond, "the writer retries against the dead server")
	require.Equal(t, 0.0, testutil.ToFloat64(w.m.up))
	require.Error(t, w.Ping(context.Background()))
	n, _ := sp.Depth()
	require.GreaterOrEqual(t, n, int64(800), "the backlog stays in the spool")

	influx.Start()
	for r := 1600; r < 2000; r += 20 {
		itRecords(t, sp, r, r+20)
	}
	require.Eventually(t, func() bool { return drained(sp) }, 60*time.Second, 10*time.Millisecond)
	require.NoError(t, stop())
	require.Equal(t, 1.0, testutil.ToFloat64(w.m.up))
	require.Equal(t, 0.0, testutil.ToFloat64(w.m.deadLettered))

	rows := influx.Rows(t, `SELECT count(v), sum(v), min(v), max(v) FROM it`)
	require.Len(t, rows, 1)
	got := make([]int64, 4)
	for i := range got {
		got[i], err = rows[0][i+1].(json.Number).Int64()
		require.NoError(t, err)
	}
	const points = 20000
	require.Equal(t, []int64{points, points * (points - 1) / 2, 0, points - 1}, got,
		"count, sum, min, max of v: every point exactly once")
}

// BenchmarkWriterInflux measures the writer against a real InfluxDB 1.8:
// each iteration drains 50,000 points (5,000 records of 10 lines, as from
// 10-port piles) in requests of 5,000 points.
func BenchmarkWriterInflux(b *testing.B) {
	influx := testenv.Influx(b)
	sp, err := spool.Open(spool.Options{Dir: b.TempDir(), NoSync: true})
	require.NoError(b, err)
	defer sp.Close()
	const records = 5000
	next := 0
	var written, batches float64
	b.ReportAllocs()
	for b.Loop() {
		// The backlog is filled while no writer runs, so that the clock
		// covers all of the draining and nothing else: a writer running
		// while the records were appended drained part of them with the
		// clock stopped.
		b.StopTimer()
		for r := next; r < next+records; r += 500 {
			itRecords(b, sp, r, r+500)
		}
		next += records
		w, err := New(Options{URL: influx.URL, Bucket: influx.Bucket(), BatchRecords: 500}, sp)
		require.NoError(b, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		go func() { done <- w.Run(ctx) }()
		for !drained(sp) {
			time.Sleep(200 * time.Microsecond)
		}
		b.StopTimer()
		cancel()
		require.NoError(b, <-done)
		written += testutil.ToFloat64(w.m.written)
		batches += testutil.ToFloat64(w.m.batches)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*records*10)/b.Elapsed().Seconds(), "points/s")
	b.ReportMetric(written/batches, "points/request")
}

// A real InfluxDB 1.8 answers 400 for a batch holding one point whose field
// type conflicts with the stored series: the writer stores every other
// point of the batch, dead-letters that one line (with InfluxDB's reason),
// and drains the spool; nothing is retried for ever or lost.
func TestRealInfluxRefusesOnePointInABatch(t *testing.T) {
	influx := testenv.Influx(t)
	// v is an integer in this series from now on.
	influx.WriteLines(t, fmt.Sprintf("it,pile=p000,port=1 v=0i %d\n", itBase-1))
	sp := openSpool(t)
	o := Options{URL: influx.URL, Bucket: influx.Bucket(), BatchRecords: 100,
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, Timeout: 5 * time.Second,
		DeadLetterPath: filepath.Join(t.TempDir(), "dead.lp")}
	w, err := New(o, sp)
	require.NoError(t, err)

	// 100 records of 10 points, one batch; point 417 has a string v.
	var recs [][]byte
	for r := 0; r < 100; r++ {
		var b strings.Builder
		for j := 0; j < 10; j++ {
			k := r*10 + j
			if k == 417 {
				fmt.Fprintf(&b, "it,pile=p%03d,port=%d v=\"POISON\" %d\n", r%50, j+1, itBase+int64(k))
				continue
			}
			fmt.Fprintf(&b, "it,pile=p%03d,port=%d v=%di %d\n", r%50, j+1, k, itBase+int64(k))
		}
		recs = append(recs, spool.EncodeRecord(nil, time.Now(), []byte(b.String())))
	}
	require.NoError(t, sp.Append(recs))
	stop := running(t, w)
	require.Eventually(t, func() bool { return drained(sp) }, 30*time.Second, 5*time.Millisecond)
	require.NoError(t, stop())

	require.Equal(t, 1.0, testutil.ToFloat64(w.m.deadLettered))
	require.GreaterOrEqual(t, testutil.ToFloat64(w.m.failures.WithLabelValues("400")), 1.0, "InfluxDB answered 400")
	dead, err := os.ReadFile(o.DeadLetterPath)
	require.NoError(t, err)
	require.Contains(t, string(dead), "field type conflict")
	var deadPoints []string
	for _, l := range strings.Split(string(dead), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			deadPoints = append(deadPoints, l)
		}
	}
	// Only the refused point, not the record or batch around it: 1.8's
	// partial write stores the rest of the first request anyway, but a
	// dead-letter file holding good points would be replayed as lost ones.
	require.Equal(t, []string{fmt.Sprintf(`it,pile=p041,port=8 v="POISON" %d`, itBase+417)}, deadPoints)
	rows := influx.Rows(t, fmt.Sprintf(`SELECT count(v), sum(v) FROM it WHERE time >= %d`, itBase))
	require.Len(t, rows, 1)
	count, err := rows[0][1].(json.Number).Int64()
	require.NoError(t, err)
	sum, err := rows[0][2].(json.Number).Int64()
	require.NoError(t, err)
	require.Equal(t, int64(999), count, "every other point of the batch is stored")
	require.Equal(t, int64(999*1000/2-417), sum)
}
