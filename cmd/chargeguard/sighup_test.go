package main

import (
	"bytes"
	"fmt"
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

// lockedBuffer collects a process's output for the test to read while it
// runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// SIGHUP to the chargeguard process re-reads the rules from its --config
// file and applies them to the next reading; a broken file is refused, is
// logged with the field, and leaves the rules in force.
func TestSIGHUPReloadsRulesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "chargeguard")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	path := filepath.Join(dir, "chargeguard.yaml")
	writeRules := func(overheat, warn float64) {
		require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(
			"alerting:\n  rules:\n    defaults:\n      overheat_c: %g\n      warn_c: %g\n", overheat, warn)), 0o600))
	}
	writeRules(75, 55)
	mqttAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cmd := exec.Command(bin, "--config", path, "--mqtt-url", "", "--mqtt-listen", mqttAddr,
		"--influx-url", fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)), // nobody there: readings wait in the spool
		"--data-dir", filepath.Join(dir, "data"), "--http-addr", httpAddr, "--log-format", "json")
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("chargeguard output:\n%s", logs.String())
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "chargeguard never became ready")

	// A pile on the embedded broker, recording the commands it gets.
	var mu sync.Mutex
	var closes []int
	cl := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + mqttAddr).SetClientID("pile-s1-p1"))
	tok := cl.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer cl.Disconnect(100)
	tok = cl.Subscribe("chargers/s1/p1/cmd", 1, func(_ paho.Client, m paho.Message) {
		msg, err := telemetry.DecodeTopic("chargers", m.Topic(), m.Payload(), time.Now())
		if err == nil && msg.Command != nil && msg.Command.Action == telemetry.ActionClose {
			mu.Lock()
			closes = append(closes, msg.Command.Port)
			mu.Unlock()
		}
	})
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	publish := func(kind string, v any) {
		b, err := telemetry.Encode(v)
		require.NoError(t, err)
		tok := cl.Publish("chargers/s1/p1/"+kind, 1, false, b)
		require.True(t, tok.WaitTimeout(10*time.Second))
		require.NoError(t, tok.Error())
	}
	publish("status", &telemetry.Status{TS: time.Now().UnixMilli(), Online: true, Ports: 10, RatedA: 5, FW: "test", Kind: telemetry.SiteResidential})
	seq := uint32(0)
	// send reports port 3 charging at temp and port fence (if not 0)
	// overheating; the fence's close proves the reading before it was
	// evaluated.
	send := func(temp float64, fence int) {
		seq++
		tm := telemetry.Telemetry{TS: time.Now().UnixMilli(), Seq: seq, AmbientC: telemetry.F(25), Smoke: telemetry.B(false), LeakMA: telemetry.F(1)}
		for n := 1; n <= 10; n++ {
			s := telemetry.PortSample{N: n, State: telemetry.StateIdle, A: telemetry.F(0), W: telemetry.F(0), TempC: telemetry.F(25)}
			switch n {
			case 3:
				s = telemetry.PortSample{N: 3, State: telemetry.StateCharging, A: telemetry.F(2), W: telemetry.F(440), TempC: telemetry.F(temp)}
			case fence:
				s = telemetry.PortSample{N: n, State: telemetry.StateCharging, A: telemetry.F(2), W: telemetry.F(440), TempC: telemetry.F(90)}
			}
			tm.Ports = append(tm.Ports, s)
		}
		publish("telemetry", &tm)
	}
	closed := func(port int) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range closes {
			if p == port {
				return true
			}
		}
		return false
	}
	waitClosed := func(port int, why string) {
		require.Eventually(t, func() bool { return closed(port) }, 10*time.Second, 10*time.Millisecond, why)
	}

	send(72, 5)
	waitClosed(5, "the fence on port 5 was never closed")
	require.False(t, closed(3), "72 °C closed the port under a 75 °C limit")

	// A broken file: refused, logged with the field, the 75 °C limit stays.
	writeRules(60, 65)
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "reload refused") },
		10*time.Second, 10*time.Millisecond, "the refused reload was not logged")
	require.Contains(t, logs.String(), "overheat_c")
	send(72, 6)
	waitClosed(6, "the fence on port 6 was never closed")
	require.False(t, closed(3), "72 °C closed the port: the refused reload changed the rules")

	// A good file: applied at once.
	writeRules(60, 55)
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "rules reloaded") },
		10*time.Second, 10*time.Millisecond, "the reload was not logged")
	send(72, 0)
	waitClosed(3, "72 °C did not close the port after SIGHUP reloaded a 60 °C limit")
	require.True(t, cmd.ProcessState == nil, "chargeguard exited on SIGHUP")
}
