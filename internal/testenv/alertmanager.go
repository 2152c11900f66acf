package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// DefaultAlertmanagerConfig routes every alert to a receiver that notifies
// nobody: enough for tests that only check which alerts Alertmanager holds.
const DefaultAlertmanagerConfig = `route:
  receiver: blackhole
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: blackhole
`

// AlertmanagerServer is a Prometheus Alertmanager started by Alertmanager.
type AlertmanagerServer struct {
	server

	// URL is "http://127.0.0.1:port", the base of /api/v2/alerts. It stays
	// the same across Stop/Kill and Start.
	URL  string
	Port int

	// Dir holds the configuration (ConfigPath), the storage directory
	// (silences, notification log) and the output (alertmanager.log).
	Dir        string
	ConfigPath string

	client *http.Client
}

// Alertmanager starts Debian's prometheus-alertmanager for the test with
// configYAML as its configuration (DefaultAlertmanagerConfig if empty),
// clustering disabled, and returns once /-/ready answers. The server is
// stopped when the test ends. Under `go test -short` the test is skipped.
func Alertmanager(t testing.TB, configYAML string) *AlertmanagerServer {
	t.Helper()
	Integration(t)
	bin := Binary(t, "prometheus-alertmanager", "/usr/bin/prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	if configYAML == "" {
		configYAML = DefaultAlertmanagerConfig
	}
	dir := t.TempDir()
	a := &AlertmanagerServer{
		Dir:        dir,
		ConfigPath: filepath.Join(dir, "alertmanager.yml"),
		client:     &http.Client{Timeout: 30 * time.Second},
	}
	if err := os.WriteFile(a.ConfigPath, []byte(configYAML), 0o644); err != nil {
		t.Fatalf("testenv: write alertmanager config: %v", err)
	}
	storage := filepath.Join(dir, "data")
	a.server = server{
		t: t,
		proc: &process{
			name:    "alertmanager",
			path:    bin,
			dir:     dir,
			logPath: filepath.Join(dir, "alertmanager.log"),
		},
		ready:        a.readyCheck,
		readyTimeout: 30 * time.Second,
	}
	a.launch(func() error {
		port, err := freePort()
		if err != nil {
			return err
		}
		a.Port = port
		listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		a.URL = "http://" + listen
		a.proc.args = []string{
			"--config.file=" + a.ConfigPath,
			"--storage.path=" + storage,
			"--web.listen-address=" + listen,
			// An empty address disables the gossip cluster, which would
			// otherwise listen on 0.0.0.0:9094 and wait for peers.
			"--cluster.listen-address=",
			"--log.level=info",
		}
		return nil
	})
	return a
}

func (a *AlertmanagerServer) readyCheck() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+"/-/ready", nil)
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /-/ready: %s", resp.Status)
	}
	return nil
}

// Alert is an alert as Alertmanager's v2 API returns it.
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	UpdatedAt    time.Time         `json:"updatedAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
	Status       struct {
		State       string   `json:"state"` // "active", "suppressed", "unprocessed"
		SilencedBy  []string `json:"silencedBy"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
	Receivers []struct {
		Name string `json:"name"`
	} `json:"receivers"`
}

// Alerts returns the alerts Alertmanager holds (GET /api/v2/alerts), active
// and resolved-but-not-yet-expired alike: check EndsAt to tell them apart.
// Errors are reported with t.Errorf, not t.Fatalf, so Alerts may be called
// from require.Eventually's condition; it then returns nil.
func (a *AlertmanagerServer) Alerts(t testing.TB) []Alert {
	t.Helper()
	alerts, err := a.AlertsErr()
	if err != nil {
		t.Errorf("testenv: %v", err)
		return nil
	}
	return alerts
}

// AlertsErr is Alerts that returns its error.
func (a *AlertmanagerServer) AlertsErr() ([]Alert, error) {
	resp, err := a.client.Get(a.URL + "/api/v2/alerts")
	if err != nil {
		return nil, fmt.Errorf("alertmanager alerts: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("alertmanager alerts: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("alertmanager alerts: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	var alerts []Alert
	if err := json.Unmarshal(body, &alerts); err != nil {
		return nil, fmt.Errorf("alertmanager alerts: decode %q: %w", body, err)
	}
	return alerts, nil
}
