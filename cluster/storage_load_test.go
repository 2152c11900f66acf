package cluster_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/internal/testenv"
)

// These are measurements, not part of make test: each runs real servers and
// several chargeguard processes under a load that fills a 2-core machine.
// docs/benchmarks.md ("Storage spread over replicas", "Rolling restart at
// the box's rate") quotes them with their commands.

// envInt reads an integer setting of a measurement, def when unset.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "%s=%q: want an integer", name, v)
	return n
}

// pilesimBinary is cmd/pilesim, built once per test binary run.
func pilesimBinary(t *testing.T) string { return commandBinary(t, "pilesim") }

// loadSummary is the JSON line `pilesim load` prints.
type loadSummary struct {
	Sent      int64   `json:"sent"`
	Completed int64   `json:"completed"`
	Errors    int64   `json:"publish_errors"`
	Seconds   float64 `json:"seconds"`
	Rate      float64 `json:"msgs_per_sec"`
}

// pilesimLoad starts `pilesim load` (10-port piles, QoS 1, 8 connections)
// and returns a channel that yields its summary when it has finished.
func pilesimLoad(t *testing.T, mqttURL string, piles, rate int, d time.Duration) <-chan loadSummary {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(pilesimBinary(t), "load", "--broker", mqttURL, "--piles", strconv.Itoa(piles),
		"--rate", strconv.Itoa(rate), "--duration", d.String(), "--conns", "8", "--qos", "1", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Start())
	ch := make(chan loadSummary, 1)
	go func() {
		err := cmd.Wait()
		var s loadSummary
		if jerr := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &s); err != nil || jerr != nil {
			t.Errorf("pilesim load: %v %v\n%s\n%s", err, jerr, out.String(), errb.String())
			s.Errors = -1
		}
		ch <- s
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	return ch
}

// cpuTime is the user+system CPU a process has used.
func cpuTime(t *testing.T, pid int) time.Duration { return testenv.ProcCPU(t, pid) }

// scrapeLabeled reads one sample (name{labels}) from a replica's /metrics.
func scrapeLabeled(t *testing.T, r *replica, series string) float64 {
	t.Helper()
	return testenv.Metric(t, r.base+"/metrics", series)
}

// loadMessages counts the telemetry messages of the load's piles (sites
// gen-*) stored in InfluxDB: one `pile` point per message, at the pile's
// ts, so a message stored twice is still one point; -1 on a query error.
func loadMessages(influx *testenv.InfluxServer) int64 {
	series, err := influx.QueryErr(`SELECT count("seq") FROM "pile" WHERE "site" =~ /^gen-/`)
	if err != nil {
		return -1
	}
	if len(series) == 0 || len(series[0].Values) == 0 {
		return 0
	}
	n, err := series[0].Values[0][1].(json.Number).Int64()
	if err != nil {
		return -1
	}
	return n
}

// TestStorageSpread measures storage spread over 1, 2 and 3 replicas on
// the same load: for each N, a fresh Mosquitto, 3-member etcd, InfluxDB and
// N chargeguard replicas in cluster mode; `pilesim load` offers RATE
// msgs/s of 10-port telemetry for SECONDS; once every message is in
// InfluxDB it prints each replica's share, CPU and CPU per port sample.
// It asserts what must hold whatever the numbers: every message landed
// (0 lost), the replicas stored exactly the messages sent between them
// (none stored twice), and with N > 1 every replica stored a share.
//
//	CHARGEGUARD_CLUSTER_STORAGE=1 [CHARGEGUARD_CLUSTER_REPLICAS=3] [CHARGEGUARD_CLUSTER_RATE=2000] \
//	  [CHARGEGUARD_CLUSTER_SECONDS=20] go test -count=1 -v -run TestStorageSpread ./cluster/
func TestStorageSpread(t *testing.T) {
	testenv.Integration(t)
	if os.Getenv("CHARGEGUARD_CLUSTER_STORAGE") == "" {
		t.Skip("set CHARGEGUARD_CLUSTER_STORAGE=1 to measure storage over 1, 2 and 3 replicas")
	}
	rate := envInt(t, "CHARGEGUARD_CLUSTER_RATE", 2000)
	secs := envInt(t, "CHARGEGUARD_CLUSTER_SECONDS", 20)
	ns := []int{1, 2, 3}
	if n := envInt(t, "CHARGEGUARD_CLUSTER_REPLICAS", 0); n > 0 {
		ns = []int{n}
	}
	for _, n := range ns {
		t.Run(fmt.Sprintf("replicas=%d", n), func(t *testing.T) { storageSpread(t, n, rate, secs) })
	}
}

func storageSpread(t *testing.T, n, rate, secs int) {
	const piles, ports = 1000, 10
	mq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	etcd := testenv.Etcd(t, 3)
	rs := startReplicasInflux(t, n, mq.URL, etcd.Endpoints(), influx.URL, influx.Bucket())
	waitOneLeader(t, rs, 20*time.Second)
	pilesimBinary(t) // built before the clock starts

	cpu0 := make([]time.Duration, n)
	for i, r := range rs {
		cpu0[i] = cpuTime(t, r.cmd.Process.Pid)
	}
	mq0, in0 := cpuTime(t, mq.PID()), cpuTime(t, influx.PID())
	start := time.Now()
	sum := <-pilesimLoad(t, mq.URL, piles, rate, time.Duration(secs)*time.Second)
	require.Zero(t, sum.Errors, "pilesim load: publish errors")
	require.Equal(t, sum.Sent, sum.Completed, "every publish PUBACKed by the broker")

	var landed int64
	require.Eventually(t, func() bool { landed = loadMessages(influx); return landed >= sum.Sent }, 180*time.Second, 250*time.Millisecond,
		"messages missing from InfluxDB after 180 s: %d of %d", landed, sum.Sent)
	drained := time.Since(start)

	var stored float64
	hz := float64(ports) * float64(sum.Sent)
	for i, r := range rs {
		share := scrapeLabeled(t, r, `chargeguard_ingest_messages_total{kind="telemetry"}`)
		cpu := cpuTime(t, r.cmd.Process.Pid) - cpu0[i]
		stored += share
		perStored := 0.0
		if share > 0 {
			perStored = float64(cpu.Microseconds()) / (share * ports)
		}
		t.Logf("replica %s: stored %.0f messages (%.1f %%), CPU %.2f s, %.2f µs per port sample of the stream, %.2f µs per port sample it stored",
			r.name, share, 100*share/float64(sum.Sent), cpu.Seconds(), float64(cpu.Microseconds())/hz, perStored)
		if n > 1 {
			require.Positive(t, share, "replica %s stored nothing: storage is not spread", r.name)
		}
	}
	t.Logf("N=%d: offered %d msgs/s, sent %d in %.1f s (%.0f msgs/s = %.0f port samples/s); all %d landed %.1f s after the start (%.0f msgs/s end to end); mosquitto CPU %.2f s, influxd CPU %.2f s",
		n, rate, sum.Sent, sum.Seconds, sum.Rate, sum.Rate*ports, landed, drained.Seconds(), float64(landed)/drained.Seconds(),
		(cpuTime(t, mq.PID()) - mq0).Seconds(), (cpuTime(t, influx.PID()) - in0).Seconds())
	t.Logf("N=%d: landed %d of %d (lost %d); stored by the replicas %.0f (stored twice %.0f)", n, landed, sum.Sent, sum.Sent-landed, stored, stored-float64(sum.Sent))
	require.Equal(t, sum.Sent, landed, "0 lost, nothing extra")
	require.Equal(t, float64(sum.Sent), stored, "every message stored by exactly one replica")
}

// TestRollingRestartAtRate is the rolling restart at a rate set by
// CHARGEGUARD_ROLLING_RATE (msgs/s of 10-port telemetry from `pilesim
// load`, 1,000 piles, QoS 1) for CHARGEGUARD_CLUSTER_SECONDS (default 45):
// 5 s into the load the three replicas are restarted one after the other
// (SIGTERM, start, ready, one leader, 3 s more) while a new pile overheats
// every 0.5 s. It asserts that every hazard is cut within 5 s and that every
// message lands in InfluxDB (0 lost; a redelivered message is the same
// point). It prints what says whether the box sustained the rate: the rate
// the load generator achieved, the hazards' longest wait, and how long
// after the load ended the last message landed (the backlog).
//
// With CHARGEGUARD_ROLLING_NORESTART=1 it runs the same load and hazards
// for 12 s instead of the restart: the control.
//
//	CHARGEGUARD_ROLLING_RATE=2000 go test -count=1 -v -run TestRollingRestartAtRate ./cluster/
func TestRollingRestartAtRate(t *testing.T) {
	testenv.Integration(t)
	rate := envInt(t, "CHARGEGUARD_ROLLING_RATE", 0)
	if rate <= 0 {
		t.Skip("set CHARGEGUARD_ROLLING_RATE=<msgs/s> to run the rolling restart under that load")
	}
	secs := envInt(t, "CHARGEGUARD_CLUSTER_SECONDS", 45)
	mq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	etcd := testenv.Etcd(t, 3)
	rs := startReplicasInflux(t, 3, mq.URL, etcd.Endpoints(), influx.URL, influx.Bucket())
	waitOneLeader(t, rs, 20*time.Second)
	pilesimBinary(t)

	start := time.Now()
	loadEnd := start.Add(time.Duration(secs) * time.Second)
	done := pilesimLoad(t, mq.URL, 1000, rate, time.Duration(secs)*time.Second)
	hz := newHazards(t, mq.URL)
	hz.every = 500 * time.Millisecond
	// The backlog over time: messages landed against messages offered.
	progress := make(chan struct{})
	defer close(progress)
	go func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-progress:
				return
			case <-tick.C:
				el := time.Since(start)
				offered := int64(float64(rate) * min(el.Seconds(), float64(secs)))
				landed := loadMessages(influx)
				fmt.Printf("    at %4.0f s: %d landed, backlog %d messages\n", el.Seconds(), landed, offered-landed)
			}
		}
	}()
	hz.waitFor(func() bool { return time.Since(start) > 5*time.Second }, 10*time.Second, "")
	restartAt := time.Now()
	if os.Getenv("CHARGEGUARD_ROLLING_NORESTART") == "" {
		rollingRestart(t, rs, hz, 3*time.Second)
	} else {
		// The control: the same load and hazards over the same time, no restart.
		hz.waitFor(func() bool { return time.Since(restartAt) > 12*time.Second }, 13*time.Second, "")
	}
	restarted := time.Now()
	t.Logf("rolling restart of 3 replicas took %.1f s, from %.1f s to %.1f s of the %d s load",
		restarted.Sub(restartAt).Seconds(), restartAt.Sub(start).Seconds(), restarted.Sub(start).Seconds(), secs)
	require.True(t, restarted.Before(loadEnd), "the restart outlasted the load: raise CHARGEGUARD_CLUSTER_SECONDS")
	during := 0
	for _, h := range hz.list {
		if !h.at.Before(restartAt) {
			during++
		}
	}
	t.Logf("%d hazards injected during the rolling restart", during)
	hz.waitFor(func() bool { return len(hz.list) >= 6 }, 15*time.Second, "too few hazards injected")
	longest := hz.requireCut(5 * time.Second)

	sum := <-done
	ended := time.Now()
	require.Zero(t, sum.Errors, "pilesim load: publish errors")
	var landed int64
	require.Eventually(t, func() bool { landed = loadMessages(influx); return landed >= sum.Sent }, 300*time.Second, 250*time.Millisecond,
		"messages missing from InfluxDB after 300 s: %d of %d", landed, sum.Sent)
	lag := time.Since(ended)
	time.Sleep(time.Second) // a message stored twice at another time would show by now
	landed = loadMessages(influx)
	t.Logf("offered %d msgs/s: sent %d in %.1f s (%.0f msgs/s, %.0f port samples/s), %d PUBACKed; %d hazards, longest uncut %v; last message landed %.1f s after the load ended; landed %d of %d (lost %d)",
		rate, sum.Sent, sum.Seconds, sum.Rate, sum.Rate*10, sum.Completed, len(hz.list), longest.Round(time.Millisecond), lag.Seconds(), landed, sum.Sent, sum.Sent-landed)
	for _, r := range rs {
		t.Logf("replica %s stored %.0f messages since its restart", r.name, scrapeLabeled(t, r, `chargeguard_ingest_messages_total{kind="telemetry"}`))
	}
	require.Equal(t, sum.Sent, landed, "0 lost, nothing stored twice")
}
