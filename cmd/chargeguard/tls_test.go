package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/internal/testenv"
	"github.com/chargeguard/chargeguard/telemetry"
)

// buildChargeguard builds this command into the test's temporary directory.
func buildChargeguard(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chargeguard")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// startProcess starts a command whose output goes to the returned buffer;
// it is stopped (SIGTERM, by its pid) when the test ends.
func startProcess(t *testing.T, cmd *exec.Cmd, name string) *lockedBuffer {
	t.Helper()
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	return &out
}

func readyz(addr string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// chargeguard connects to Mosquitto over ssl:// with the certificates
// deploy/mosquitto/pki.sh makes, verifying the broker's certificate against
// the CA named by SSL_CERT_FILE (it has no TLS setting of its own: it trusts
// the system's CAs, which SSL_CERT_FILE replaces); it ingests and cuts over
// that connection. Without the CA it refuses the broker and never gets
// ready: the certificate is really checked.
func TestConnectsToMosquittoOverSSL(t *testing.T) {
	testenv.Integration(t)
	root := testenv.RepoRoot(t)
	pki := t.TempDir()
	for _, args := range [][]string{{"ca"}, {"server", "localhost", "127.0.0.1"}} {
		cmd := exec.Command("sh", append([]string{filepath.Join(root, "deploy/mosquitto/pki.sh")}, args...)...)
		cmd.Env = append(os.Environ(), "PKI_DIR="+pki)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "pki.sh %v: %s", args, out)
	}
	mqttPort := testenv.FreePort(t)
	conf := fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nallow_anonymous true\npersistence false\nlog_dest stderr\n",
		mqttPort, filepath.Join(pki, "ca.crt"), filepath.Join(pki, "server.crt"), filepath.Join(pki, "server.key"))
	if os.Geteuid() == 0 {
		conf += "user root\n" // else Mosquitto switches to a user that cannot read the test's files
	}
	confPath := filepath.Join(t.TempDir(), "mosquitto.conf")
	require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o644))
	mosqLog := startProcess(t, exec.Command(testenv.Binary(t, "mosquitto", "mosquitto", "/usr/sbin/mosquitto"), "-c", confPath), "mosquitto")
	brokerURL := fmt.Sprintf("ssl://localhost:%d", mqttPort)

	bin := buildChargeguard(t)
	run := func(caFile string) (httpAddr string, logs *lockedBuffer) {
		httpAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		cmd := exec.Command(bin, "--mqtt-url", brokerURL,
			"--influx-url", fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)), // nobody there: readings wait in the spool
			"--data-dir", t.TempDir(), "--http-addr", httpAddr, "--log-format", "json")
		cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+caFile, "SSL_CERT_DIR="+t.TempDir())
		return httpAddr, startProcess(t, cmd, "chargeguard")
	}

	// Without the CA: chargeguard refuses the broker's certificate (the
	// broker sees the TLS alert), says why in its log, and is not ready.
	untrusted, logs := run(filepath.Join(t.TempDir(), "none.crt"))
	require.Eventually(t, func() bool { return strings.Contains(mosqLog.String(), "bad certificate") },
		20*time.Second, 50*time.Millisecond, "chargeguard did not reject the broker's certificate")
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "MQTT connect failed; retrying") && strings.Contains(logs.String(), "certificate")
	}, 20*time.Second, 50*time.Millisecond, "the failed connection was not logged with its reason")
	require.Equal(t, http.StatusServiceUnavailable, readyz(untrusted), "ready with a broker it cannot verify")

	// With the CA: ready, and the safety path works over TLS.
	httpAddr, _ := run(filepath.Join(pki, "ca.crt"))
	require.Eventually(t, func() bool { return readyz(httpAddr) == http.StatusOK },
		30*time.Second, 50*time.Millisecond, "chargeguard never connected over ssl://")

	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	var mu sync.Mutex
	var closed []int
	pile := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID("pile-s1-p1").
		SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	tok := pile.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer pile.Disconnect(100)
	tok = pile.Subscribe("chargers/s1/p1/cmd", 1, func(_ paho.Client, m paho.Message) {
		msg, err := telemetry.DecodeTopic("chargers", m.Topic(), m.Payload(), time.Now())
		if err == nil && msg.Command != nil && msg.Command.Action == telemetry.ActionClose {
			mu.Lock()
			closed = append(closed, msg.Command.Port)
			mu.Unlock()
		}
	})
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	b, err := telemetry.Encode(&telemetry.Telemetry{TS: time.Now().UnixMilli(), Seq: 1, AmbientC: telemetry.F(25),
		Ports: []telemetry.PortSample{{N: 2, State: telemetry.StateCharging, A: telemetry.F(2), W: telemetry.F(440), TempC: telemetry.F(80)}}})
	require.NoError(t, err)
	tok = pile.Publish("chargers/s1/p1/telemetry", 1, false, b)
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(closed) > 0 && closed[0] == 2
	}, 10*time.Second, 10*time.Millisecond, "no close command over the TLS connection")
}
