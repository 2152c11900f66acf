package app_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/app"
	"github.com/chargeguard/chargeguard/internal/testenv"
)

// 100,000 telemetry messages of 10 ports through Mosquitto -> chargeguard ->
// InfluxDB: exactly 1,000,000 port points land, none twice.
func TestIngestMillionPortPoints(t *testing.T) {
	mosq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	cg := start(t, testConfig(t, mosq.URL, influx, t.TempDir()), app.Options{})

	const piles, perPile = 100, 1000
	pub := newFleetPublisher(mosq.URL, piles, 4)
	pub.publish(t, context.Background(), 0, perPile, 0)
	require.EqualValues(t, piles*perPile, pub.sent.Load())

	require.Eventually(t, func() bool {
		return influx.CountField(t, "port", "temp_c") >= piles*perPile*10
	}, 5*time.Minute, 500*time.Millisecond, "port points never reached 1,000,000")
	require.EqualValues(t, piles*perPile*10, influx.CountField(t, "port", "temp_c"), "a point landed twice")
	require.EqualValues(t, piles*perPile, influx.CountField(t, "pile", "seq"))
	require.EqualValues(t, 0, influx.Count(t, "rejected"))
	require.EqualValues(t, piles*perPile*10, metric(t, cg.reg, "chargeguard_ingest_port_samples_total"))
}

// InfluxDB killed for 60 s during a steady load, then restarted: 0 points
// lost. The spool holds the readings and the writer retries.
func TestIngestSurvivesInfluxOutage(t *testing.T) {
	t.Parallel() // mostly waiting on servers and timeouts; the heavy tests run alone
	mosq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	cg := start(t, testConfig(t, mosq.URL, influx, t.TempDir()), app.Options{})

	const piles, perPile = 50, 160 // 8,000 messages at 100/s: 80 s of load
	pub := newFleetPublisher(mosq.URL, piles, 2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pub.publish(t, context.Background(), 0, perPile, 100)
	}()
	require.Eventually(t, func() bool { return influx.CountField(t, "port", "temp_c") > 0 }, time.Minute, 100*time.Millisecond)
	influx.Kill()
	killedAt := time.Now()
	require.Eventually(t, func() bool {
		return metric(t, cg.reg, "chargeguard_influx_up") == 0
	}, 30*time.Second, 100*time.Millisecond, "the writer never noticed InfluxDB was down")
	outage := 60*time.Second - time.Since(killedAt)
	time.Sleep(outage) // the outage itself is the scenario, not a wait for a result
	require.Positive(t, metric(t, cg.reg, "chargeguard_spool_records"), "readings must be held in the spool during the outage")
	influx.Start()
	<-done
	require.EqualValues(t, piles*perPile, pub.sent.Load())
	require.Eventually(t, func() bool {
		return influx.CountField(t, "port", "temp_c") >= piles*perPile*10
	}, 3*time.Minute, 500*time.Millisecond, "points were lost across the InfluxDB outage")
	require.EqualValues(t, piles*perPile*10, influx.CountField(t, "port", "temp_c"))
	require.Eventually(t, func() bool { return metric(t, cg.reg, "chargeguard_spool_records") == 0 }, time.Minute, 100*time.Millisecond)
}

// chargeguard killed with SIGKILL mid-load and restarted: 0 points lost. The
// broker keeps what was not acked (persistent session), the spool keeps what
// was acked but not yet in InfluxDB.
func TestIngestSurvivesSIGKILL(t *testing.T) {
	t.Parallel() // mostly waiting on servers and timeouts; the heavy tests run alone
	mosq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	bin := filepath.Join(t.TempDir(), "chargeguard")
	build := exec.Command("go", "build", "-o", bin, "./cmd/chargeguard")
	build.Dir = testenv.RepoRoot(t)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	dataDir := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	logPath := filepath.Join(t.TempDir(), "chargeguard.log")
	startProc := func() *exec.Cmd {
		logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		require.NoError(t, err)
		cmd := exec.Command(bin, "--mqtt-url", mosq.URL, "--influx-url", influx.URL,
			"--influx-bucket", influx.Bucket(), "--data-dir", dataDir, "--http-addr", httpAddr,
			"--log-format", "json")
		cmd.Stdout, cmd.Stderr = logf, logf
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
			logf.Close()
		})
		waitReady(t, "http://"+httpAddr)
		return cmd
	}
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("chargeguard log:\n%s", tail(string(b), 4000))
		}
	}()

	proc := startProc()
	const piles, perPile = 50, 400 // 20,000 messages at 1,000/s
	pub := newFleetPublisher(mosq.URL, piles, 2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pub.publish(t, context.Background(), 0, perPile, 1000)
	}()
	require.Eventually(t, func() bool { return pub.sent.Load() > 5000 }, time.Minute, 20*time.Millisecond)
	require.NoError(t, proc.Process.Signal(syscall.SIGKILL))
	_ = proc.Wait()
	time.Sleep(2 * time.Second) // chargeguard stays dead while the load goes on: that is the scenario
	startProc()
	<-done
	require.EqualValues(t, piles*perPile, pub.sent.Load())
	require.Eventually(t, func() bool {
		return influx.CountField(t, "port", "temp_c") >= piles*perPile*10
	}, 3*time.Minute, 500*time.Millisecond, "points were lost across the SIGKILL")
	require.EqualValues(t, piles*perPile*10, influx.CountField(t, "port", "temp_c"), "a point landed twice")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Hostile input mixed into valid traffic: every bad message is rejected
// with its reason counted and kept, the process stays healthy, and every
// valid message around them is stored.
func TestIngestHostileInput(t *testing.T) {
	t.Parallel() // mostly waiting on servers and timeouts; the heavy tests run alone
	mosq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	cg := start(t, testConfig(t, mosq.URL, influx, t.TempDir()), app.Options{})
	cl := connect(t, mosq.URL, "hostile")

	valid := telemetryPayload(1, time.Now().UnixMilli())
	deep := strings.Repeat("[", 30000) + strings.Repeat("]", 30000) // under 64 KiB, far too deep
	huge := `{"v":1,"ts":1,"seq":1,"ports":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`
	// A newline or a NUL in a topic never gets past Mosquitto (it drops the
	// client for a malformed packet), and '+' and '#' cannot be published to:
	// ids holding those are covered by the decoder's own tests.
	hostile := []struct {
		topic, payload, reason string
	}{
		{"chargers/s,1/p1/telemetry", string(valid), "bad_id"},
		{"chargers/s=1/p1/telemetry", string(valid), "bad_id"},
		{"chargers/s 1/p1/telemetry", string(valid), "bad_id"},
		{"chargers/s1/p/1/telemetry", string(valid), "bad_id"},
		{"chargers/s1/p1/telemetry", `{"v":1,"ts":1751371200000,"seq":1,"ports":[{"n":1,"state":"idle","a":NaN}]}`, "not_finite"},
		{"chargers/s1/p1/telemetry", `{"v":1,"ts":1751371200000,"seq":1,"ports":[{"n":1,"state":"idle","a":1e999}]}`, "not_finite"},
		{"chargers/s1/p1/telemetry", `{"v":1,"ts":1751371200000,"seq":1,"ports":[{"n":1,"state":"idle","a":Infinity}]}`, "not_finite"},
		{"chargers/s1/p1/telemetry", huge, "too_large"},
		{"chargers/s1/p1/telemetry", deep, "bad_json"},
		{"chargers/s1/p1/telemetry", `{"v":1,"ts":1751371200000,"seq":1,"ports":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`, "bad_json"},
		{"chargers/s1/p1/telemetry", `{"v":1,"ts":"yesterday","seq":1,"ports":[]}`, "wrong_type"},
		{"chargers/s1/p1/telemetry", `{"v":2,"ts":1751371200000,"seq":1,"ports":[]}`, "unknown_version"},
		{"chargers/s1/p1/telemetry", `not json at all`, "bad_json"},
		{"chargers/s1/p1/status", `{"v":1,"online":true}`, "missing_field"},
	}
	want := map[string]float64{}
	pub := newFleetPublisher(mosq.URL, 20, 1)
	for i, h := range hostile {
		pub.publish(t, context.Background(), i*5, i*5+5, 0) // valid traffic around every bad message
		publishRaw(t, cl, h.topic, []byte(h.payload))
		want[h.reason]++
	}
	pub.publish(t, context.Background(), len(hostile)*5, len(hostile)*5+5, 0)
	total := int64(len(hostile)+1) * 5 * 20

	require.Eventually(t, func() bool {
		return influx.CountField(t, "port", "temp_c") >= total*10 && influx.CountField(t, "rejected", "size") >= int64(len(hostile))
	}, time.Minute, 200*time.Millisecond, "port points %d of %d, rejected %d of %d",
		influx.CountField(t, "port", "temp_c"), total*10, influx.CountField(t, "rejected", "size"), len(hostile))
	require.EqualValues(t, total*10, influx.CountField(t, "port", "temp_c"), "every valid message around the bad ones is stored")
	require.EqualValues(t, len(hostile), influx.CountField(t, "rejected", "size"), "every bad message is kept for inspection")
	for reason, n := range want {
		require.EqualValues(t, n, metric(t, cg.reg, "chargeguard_ingest_rejected_total", "reason", reason), "reason %s", reason)
	}
	code, _ := httpGet(t, "http://"+cg.app.HTTPAddr()+"/healthz")
	require.Equal(t, 200, code)
	code, body := httpGet(t, "http://"+cg.app.HTTPAddr()+"/readyz")
	require.Equal(t, 200, code, body)
	// Hostile content is never a tag: the only tag values are fixed reasons and kinds.
	tags := influx.Rows(t, `SHOW TAG VALUES FROM "rejected" WITH KEY IN ("reason", "kind")`)
	for _, row := range tags {
		v := fmt.Sprint(row[1])
		require.Regexp(t, `^[a-z_]+$`, v)
	}
}
