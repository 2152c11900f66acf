package cluster_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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

var (
	pilesimOnce sync.Once
	pilesimPath string
	pilesimErr  error
)

// pilesimBinary builds cmd/pilesim once per test binary run.
func pilesimBinary(t *testing.T) string {
	t.Helper()
	pilesimOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cg-cluster-pilesim")
		if err != nil {
			pilesimErr = err
			return
		}
		pilesimPath = filepath.Join(dir, "pilesim")
		cmd := exec.Command("go", "build", "-o", pilesimPath, "./cmd/pilesim")
		cmd.Dir = testenv.RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			pilesimErr = fmt.Errorf("go build pilesim: %v\n%s", err, out)
		}
	})
	require.NoError(t, pilesimErr)
	return pilesimPath
}

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

// cpuTime is the user+system CPU a process has used, from /proc/<pid>/stat.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15 (1-based).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	require.NoError(t, err1)
	require.NoError(t, err2)
	const hz = 100 // USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK)
	return time.Duration(ut+st) * time.Second / hz
}

// scrapeLabeled reads one sample (name{labels}) from a replica's /metrics.
func scrapeLabeled(t *testing.T, r *replica, series string) float64 {
	t.Helper()
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(r.base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			require.NoError(t, err, line)
			return f
		}
	}
	t.Fatalf("replica %s: no %s in /metrics", r.name, series)
	return 0
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
