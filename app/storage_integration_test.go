package app_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/app"
	"github.com/chargeguard/chargeguard/ingest/spool"
	"github.com/chargeguard/chargeguard/internal/testenv"
	"github.com/chargeguard/chargeguard/telemetry"
)

// cutPort3 makes pile p overheat on port 3 and returns how long the close
// command took to reach it. The close must arrive.
func cutPort3(t *testing.T, p *testPile) time.Duration { return cutPort(t, p, 3) }

// cutPort makes port n of pile p (other ports idle) overheat and returns
// how long the close took from the publish of the hot reading to its
// arrival at the pile. The close must arrive.
func cutPort(t *testing.T, p *testPile, n int) time.Duration {
	t.Helper()
	before := len(p.commands())
	p.seq++
	tm := telemetry.Telemetry{TS: time.Now().UnixMilli(), Seq: p.seq, AmbientC: telemetry.F(25), Smoke: telemetry.B(false), LeakMA: telemetry.F(1)}
	for k := 1; k <= 10; k++ {
		s := telemetry.PortSample{N: k, State: telemetry.StateIdle, A: telemetry.F(0), W: telemetry.F(0), TempC: telemetry.F(25)}
		if k == n {
			s = telemetry.PortSample{N: n, State: telemetry.StateCharging, A: telemetry.F(2), W: telemetry.F(440), TempC: telemetry.F(72)}
		}
		tm.Ports = append(tm.Ports, s)
	}
	b, err := telemetry.Encode(&tm)
	require.NoError(t, err)
	sent := time.Now()
	publishRaw(t, p.cl, "chargers/"+p.site+"/"+p.pile+"/telemetry", b)
	var took time.Duration
	require.Eventually(t, func() bool {
		for _, c := range p.commands()[before:] {
			if c.Action == telemetry.ActionClose && c.Port == n {
				took = time.Since(sent)
				return true
			}
		}
		return false
	}, 30*time.Second, time.Millisecond, "overheating port %d was never closed", n)
	return took
}

// A spool segment with a flipped length byte in the middle: chargeguard
// starts, cuts a hazard, reports the corruption (readiness, metric), keeps
// the segment in quarantine and stores every record that still checks out.
// Before, the records after the damage were cut as a "torn tail"; damage in
// an older segment stopped chargeguard from starting at all.
func TestCorruptSpoolSegmentStartsCutsAndReports(t *testing.T) {
	t.Parallel() // mostly waiting on servers and timeouts; the heavy tests run alone
	mosq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	dataDir := t.TempDir()

	sp, err := spool.Open(spool.Options{Dir: filepath.Join(dataDir, "spool")})
	require.NoError(t, err)
	base := time.Now().Add(-time.Hour).UnixNano()
	var recs [][]byte
	for i := range 10 {
		line := []byte("pre,site=s9,pile=p1 v=" + string(rune('0'+i)) + "i " + itoa(base+int64(i)) + "\n")
		recs = append(recs, spool.EncodeRecord(nil, time.Now(), line))
	}
	require.NoError(t, sp.Append(recs))
	require.NoError(t, sp.Close())
	segs, err := filepath.Glob(filepath.Join(dataDir, "spool", "wal", "0*"))
	require.NoError(t, err)
	require.Len(t, segs, 1)
	data, err := os.ReadFile(segs[0])
	require.NoError(t, err)
	i := bytes.Index(data, recs[4])
	require.Positive(t, i)
	var lb [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(lb[:], uint64(len(recs[4])+4))
	data[i-4-n] ^= 0x20 // the length of record 4
	require.NoError(t, os.WriteFile(segs[0], data, 0o640))

	cg := start(t, testConfig(t, mosq.URL, influx, dataDir), app.Options{})
	pile := newTestPile(t, mosq.URL, "s1", "p1")
	took := cutPort3(t, pile)
	t.Logf("detection to the pile's close with a quarantined spool segment: %v", took)

	code, body := httpGet(t, "http://"+cg.app.HTTPAddr()+"/readyz")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"storage":"degraded: 1 corrupt spool segment(s)`)
	require.Equal(t, 1.0, metric(t, cg.reg, "chargeguard_spool_quarantined_segments"))
	require.Equal(t, 5.0, metric(t, cg.reg, "chargeguard_spool_recovered_records_total"))
	q, err := os.ReadDir(filepath.Join(dataDir, "spool", "quarantine"))
	require.NoError(t, err)
	require.Len(t, q, 1)
	require.Eventually(t, func() bool { return influx.CountField(t, "pre", "v") == 9 }, 30*time.Second, 100*time.Millisecond,
		"every record but the damaged one reaches InfluxDB")
}

// A spool that cannot be opened at all (here its directory is a file)
// used to stop chargeguard from starting, and the safety engine with it.
// Now the safety path runs, storage is reported degraded, and nothing is
// acked: the broker keeps the readings for a restart that fixes the disk.
func TestUnopenableSpoolStillCuts(t *testing.T) {
	t.Parallel() // mostly waiting on servers and timeouts; the heavy tests run alone
	mosq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	dataDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dataDir, "spool"), []byte("not a directory"), 0o640))

	cfg := testConfig(t, mosq.URL, influx, dataDir)
	cg := start(t, cfg, app.Options{})
	pile := newTestPile(t, mosq.URL, "s1", "p1")
	took := cutPort3(t, pile)
	t.Logf("detection to the pile's close without a spool: %v", took)
	require.Eventually(t, func() bool {
		return metric(t, cg.reg, "chargeguard_commands_acked_total", "action", "close", "ok", "true") == 1
	}, 10*time.Second, 20*time.Millisecond, "the cut was never confirmed")

	code, body := httpGet(t, "http://"+cg.app.HTTPAddr()+"/readyz")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"storage":"degraded: open spool`)
	require.Equal(t, 1.0, metric(t, cg.reg, "chargeguard_storage_degraded"))
	require.Eventually(t, func() bool { return metric(t, cg.reg, "chargeguard_ingest_spool_blocked") == 1 },
		10*time.Second, 20*time.Millisecond, "readings are held unacked")
	require.Zero(t, metric(t, cg.reg, "chargeguard_ingest_acked_total"))

	// Fixed and restarted: the broker's backlog is stored.
	cg.stop(t)
	require.NoError(t, os.Remove(filepath.Join(dataDir, "spool")))
	start(t, cfg, app.Options{})
	require.Eventually(t, func() bool { return influx.CountField(t, "port", "temp_c") >= 10 }, 30*time.Second, 100*time.Millisecond,
		"the readings held by the broker were never stored")
}

// The spool quota full (InfluxDB down): acks stop, Mosquitto keeps the
// backlog, a hazard is still cut, and once InfluxDB is back every reading
// is stored exactly once.
func TestSpoolFullStillCutsAndLosesNothing(t *testing.T) {
	t.Parallel() // mostly waiting on servers and timeouts; the heavy tests run alone
	mosq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	cfg := testConfig(t, mosq.URL, influx, t.TempDir())
	cfg.Spool.MaxBytes = 1 << 20 // the smallest quota: ~700 readings of 10 ports
	cg := start(t, cfg, app.Options{})
	pile := newTestPile(t, mosq.URL, "s1", "p1")
	influx.Kill()

	const piles, perPile = 20, 100 // 2,000 readings: about three quotas' worth
	pub := newFleetPublisher(mosq.URL, piles, 2)
	pub.publish(t, context.Background(), 0, perPile, 0)
	require.EqualValues(t, piles*perPile, pub.sent.Load(), "Mosquitto took every reading")
	require.Eventually(t, func() bool { return metric(t, cg.reg, "chargeguard_ingest_spool_blocked") == 1 },
		30*time.Second, 20*time.Millisecond, "the spool never filled")
	acked := metric(t, cg.reg, "chargeguard_ingest_acked_total")
	require.Less(t, acked, float64(piles*perPile), "acks stop at the quota")

	// Right after the burst the live session is still delivering the
	// fleet's 2,000 readings to the engine, ahead of the hazard; measured
	// again once that backlog is gone.
	t.Logf("detection to the pile's close with the spool full, right after the burst: %v", cutPort(t, pile, 3))
	require.Eventually(t, func() bool { return metric(t, cg.reg, "chargeguard_alerting_queue_length") == 0 },
		30*time.Second, 50*time.Millisecond)
	t.Logf("detection to the pile's close with the spool full, burst delivered: %v", cutPort(t, pile, 6))
	require.Equal(t, 1.0, metric(t, cg.reg, "chargeguard_ingest_spool_blocked"), "the spool is still full")
	require.Equal(t, acked, metric(t, cg.reg, "chargeguard_ingest_acked_total"), "nothing more is acked while the spool is full")

	influx.Start()
	const want = piles*perPile*10 + 2*10 // the fleet's, and the pile's two hot readings
	require.Eventually(t, func() bool {
		return influx.CountField(t, "port", "temp_c") >= want
	}, 3*time.Minute, 500*time.Millisecond, "readings held by the broker were lost")
	require.EqualValues(t, want, influx.CountField(t, "port", "temp_c"), "a reading landed twice")
}

// A pre-auth flood against the embedded broker: oversized CONNECT headers
// and idle sockets that never log in. The heap stays bounded, the flood is
// refused and counted, and a cut still reaches a pile connected before it.
// Before, four 5-byte headers made the broker allocate 1 GiB.
func TestPreAuthFloodOnEmbeddedBroker(t *testing.T) {
	influx := testenv.Influx(t)
	cfg := testConfig(t, "", influx, t.TempDir())
	cfg.MQTT.Listen = "127.0.0.1:" + itoa(int64(testenv.FreePort(t)))
	cfg.MQTT.MaxPreAuthConnections = 64
	cg := start(t, cfg, app.Options{})
	pile := newTestPile(t, cg.app.BrokerURL(), "s1", "p1")
	cutPort3(t, pile) // warm up: the engine knows the pile

	before := heapInUse()
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for i := range 300 {
		c, err := net.Dial("tcp", cfg.MQTT.Listen)
		require.NoError(t, err)
		flood = append(flood, c)
		if i%75 == 0 { // four CONNECT headers announcing 256 MiB each
			_, err = c.Write([]byte{0x10, 0xff, 0xff, 0xff, 0x7f})
			require.NoError(t, err)
		}
	}
	require.Eventually(t, func() bool {
		return metric(t, cg.reg, "chargeguard_broker_connections_refused_total", "reason", "preauth_limit") > 0 &&
			metric(t, cg.reg, "chargeguard_broker_connections_refused_total", "reason", "connect_too_large") > 0
	}, 10*time.Second, 20*time.Millisecond, "the flood was never refused")

	// A new overheat on another port of the known pile, during the flood.
	t.Logf("detection to the pile's close during the flood: %v", cutPort(t, pile, 5))

	grown := int64(heapInUse()) - int64(before)
	t.Logf("heap in use grew by %.1f MiB during the flood of %d connections", float64(grown)/(1<<20), len(flood))
	require.Less(t, grown, int64(64<<20), "a pre-auth flood must not grow the safety process's heap")
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A failing save of the safety state used to be only logged. Now the
// newest failure is later than the newest success until a save works
// again: what ChargeguardStateSaveFailing alerts on.
func TestStateSaveFailureIsVisible(t *testing.T) {
	t.Parallel() // mostly waiting on servers and timeouts; the heavy tests run alone
	mosq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	dataDir := t.TempDir()
	cg := start(t, testConfig(t, mosq.URL, influx, dataDir), app.Options{})
	pile := newTestPile(t, mosq.URL, "s1", "p1")
	const ok, failed = "chargeguard_alerting_persist_last_success_timestamp_seconds", "chargeguard_alerting_persist_last_failure_timestamp_seconds"
	cutPort(t, pile, 3)
	require.Eventually(t, func() bool { return metric(t, cg.reg, ok) > 0 }, 10*time.Second, 20*time.Millisecond,
		"the latch is saved")
	require.Zero(t, metric(t, cg.reg, failed))

	// A directory where the state file goes: the atomic rename fails.
	state := filepath.Join(dataDir, "safety-state.json")
	require.NoError(t, os.Remove(state))
	require.NoError(t, os.Mkdir(state, 0o750))
	cutPort(t, pile, 5)
	require.Eventually(t, func() bool { return metric(t, cg.reg, failed) > metric(t, cg.reg, ok) }, 10*time.Second, 20*time.Millisecond,
		"a failed save shows as a failure newer than the last success")
	require.Positive(t, metric(t, cg.reg, "chargeguard_alerting_persist_failures_total"))

	require.NoError(t, os.Remove(state))
	cutPort(t, pile, 6)
	require.Eventually(t, func() bool { return metric(t, cg.reg, ok) >= metric(t, cg.reg, failed) }, 10*time.Second, 20*time.Millisecond,
		"a save that works again clears the condition")
	_, err := os.Stat(state)
	require.NoError(t, err)
}
