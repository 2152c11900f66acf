package prometheus

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/app"
	"github.com/chargeguard/chargeguard/config"
	"github.com/chargeguard/chargeguard/internal/testenv"
)

var metricLiteral = regexp.MustCompile(`"(chargeguard_[a-z_]+)"`)

// TestMetricContractMatchesTheCode: every metric the rules and boards rely
// on is defined in chargeguard's code, so renaming a metric there fails here
// instead of silencing an alert.
func TestMetricContractMatchesTheCode(t *testing.T) {
	root := testenv.RepoRoot(t)
	defined := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == "deploy" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range metricLiteral.FindAllSubmatch(src, -1) {
			defined[string(m[1])] = true
		}
		return nil
	})
	require.NoError(t, err)
	for _, m := range Metrics {
		require.True(t, defined[m], "%s is in the metric contract but no Go file of chargeguard defines it", m)
	}
}

// TestPromtoolCheckMetrics runs chargeguard (embedded broker, a real
// InfluxDB 1.8) and lints its /metrics with promtool check metrics.
func TestPromtoolCheckMetrics(t *testing.T) {
	influx := testenv.Influx(t)
	bin := testenv.Binary(t, "promtool", "promtool", "/usr/bin/promtool")

	cfg := config.Default()
	cfg.MQTT.URL = "" // the embedded broker, so its metrics are there too
	cfg.MQTT.Listen = "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	cfg.Influx.URL = influx.URL
	cfg.Influx.Bucket = influx.Bucket()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	a, err := app.New(cfg, app.Options{Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("chargeguard did not stop within 30 s")
		}
	})

	base := "http://" + a.HTTPAddr()
	client := &http.Client{Timeout: 5 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	var metrics []byte
	require.Eventually(t, func() bool {
		resp, err := client.Get(base + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		metrics, err = io.ReadAll(resp.Body)
		return err == nil && resp.StatusCode == http.StatusOK && bytes.Contains(metrics, []byte("chargeguard_ingest_mqtt_connected"))
	}, 30*time.Second, 50*time.Millisecond, "chargeguard never served /metrics")

	for _, m := range []string{"chargeguard_influx_up", "chargeguard_spool_quota_bytes", "chargeguard_commands_pending", "chargeguard_broker_clients_connected"} {
		require.Contains(t, string(metrics), "\n"+m, "a metric the rules watch is on /metrics")
	}
	pctx, pcancel := context.WithTimeout(context.Background(), time.Minute)
	defer pcancel()
	cmd := exec.CommandContext(pctx, bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(metrics)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics on chargeguard's /metrics:\n%s", out)
}
