package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chargeguard/chargeguard/internal/testenv"
	"github.com/chargeguard/chargeguard/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func pilesim(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code = run(ctx, args, &o, &e)
	return code, o.String(), e.String()
}

const fleet = "../../simulators/fleets/changhe.yaml"

func TestDryRunIsDeterministicAndValid(t *testing.T) {
	args := []string{"--dry-run", "--fleet", fleet, "--duration", "30s", "--start", "2025-07-01T20:00:00+08:00",
		"--fault", "malformed@baimahu/p01@5s@payload=bad_state"}
	code, a, _ := pilesim(t, args...)
	require.Zero(t, code)
	_, b, _ := pilesim(t, args...)
	require.Equal(t, a, b)
	n, rejected := 0, 0
	sc := bufio.NewScanner(strings.NewReader(a))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		topic, payload, _ := strings.Cut(sc.Text(), " ")
		_, err := telemetry.DecodeTopic("chargers", topic, []byte(payload), time.Now())
		if err != nil {
			rejected++
			require.ErrorContains(t, err, "bad_value")
		}
		n++
	}
	require.Greater(t, n, 400, "169 piles report at least every 10 s")
	require.Equal(t, 1, rejected)
}

func TestBadInvocations(t *testing.T) {
	code, _, stderr := pilesim(t, "--fleet", "nowhere.yaml")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "read fleet")
	code, _, stderr = pilesim(t, "--fleet", fleet, "--fault", "loose_contact@nowhere/p01/1@1m", "--broker", "tcp://127.0.0.1:1")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no pile nowhere/p01")
	code, _, stderr = pilesim(t, "run")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "no scenario file")
	code, _, _ = pilesim(t, "--no-such-flag")
	require.Equal(t, 1, code)
}

func TestHelpListsTheCommandsAndExitsZero(t *testing.T) {
	code, _, stderr := pilesim(t, "--help")
	require.Zero(t, code)
	for _, want := range []string{"pilesim run", "pilesim load", "-fleet", "-broker"} {
		require.Contains(t, stderr, want)
	}
	code, _, stderr = pilesim(t, "run", "--help")
	require.Zero(t, code)
	require.Contains(t, stderr, "-hold")
	require.Contains(t, stderr, "-connect-timeout")
	code, _, stderr = pilesim(t, "load", "--help")
	require.Zero(t, code)
	require.Contains(t, stderr, "-rate")
}

// A mistyped command is an error, not a fleet run against the default
// broker (which would run until the test's minute is up).
func TestUnknownCommandIsAnError(t *testing.T) {
	code, stdout, stderr := pilesim(t, "rnu", "scenario.yaml")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `unknown command "rnu"`)
	require.Contains(t, stderr, "pilesim run")
	require.Empty(t, stdout)
}

// run against a broker that is not there gives up after --connect-timeout
// with an error naming the broker (the piles alone would retry for ever).
func TestRunGivesUpOnUnreachableBroker(t *testing.T) {
	broker := fmt.Sprintf("tcp://127.0.0.1:%d", testenv.FreePort(t))
	code, _, stderr := pilesim(t, "run", "--connect-timeout", "2s", "--broker", broker, "../../simulators/demo/overheat.yaml")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "broker "+broker+" not reachable within 2s")
	require.Contains(t, stderr, "connection refused")
}

func TestFleetRunScenarioAndLoadAgainstMosquitto(t *testing.T) {
	broker := testenv.Mosquitto(t)

	// A sped-up fleet run, 20 piles over 3 connections, that ends by
	// itself, with a summary line.
	code, _, stderr := pilesim(t, "--broker", broker.URL, "--generate", "20", "--speed", "120", "--duration", "4m",
		"--interval", "30s", "--summary", "1s", "--log-level", "warn", "--conns", "3")
	require.Zero(t, code, stderr)
	require.Contains(t, stderr, "piles online 20/20")
	require.Contains(t, stderr, "sent ")

	// A scenario with no backend to close the port fails, and says why.
	dir := t.TempDir()
	sc := filepath.Join(dir, "short.yaml")
	require.NoError(t, os.WriteFile(sc, []byte(`name: short
sites: [{id: s, kind: open_air, rated_a: 5, piles: [{id: p, ports: 8}]}]
start: 2025-06-08T11:00:00+08:00
duration: 6s
interval: 2s
speed_note: a test
faults: [{kind: short_circuit, target: s/p/2, at: 1s}]
expect:
  - close: {target: s/p/2, reason: short_circuit}
`), 0o644))
	code, stdout, stderr := pilesim(t, "run", sc, "--broker", broker.URL, "--root", "cmdtest")
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stdout, "FAIL short")
	require.Contains(t, stdout, "no such close command was received")

	// Load prints one JSON line, and every message it counts as sent
	// reached the broker as valid telemetry of one of its piles (how fast
	// is for the benchmarks, not for a test).
	var received atomic.Int64
	var bad atomic.Int64
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL).SetClientID("load-watcher"))
	tok := sub.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer sub.Disconnect(100)
	tok = sub.Subscribe("loadtest/#", 1, func(_ paho.Client, m paho.Message) {
		msg, err := telemetry.DecodeTopic("loadtest", m.Topic(), m.Payload(), time.Now())
		switch {
		case err != nil:
			bad.Add(1)
		case msg.Telemetry != nil && len(msg.Telemetry.Ports) == 10:
			received.Add(1)
		case msg.Telemetry != nil:
			bad.Add(1)
		}
	})
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	code, stdout, stderr = pilesim(t, "load", "--broker", broker.URL, "--root", "loadtest", "--piles", "10",
		"--rate", "200", "--duration", "1s", "--conns", "2", "--qos", "1", "--log-level", "warn")
	require.Zero(t, code, stderr)
	var res struct {
		Sent   int64 `json:"sent"`
		Errors int64 `json:"publish_errors"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &res), stdout)
	require.Positive(t, res.Sent)
	require.Zero(t, res.Errors)
	require.Eventually(t, func() bool { return received.Load() == res.Sent }, 10*time.Second, 10*time.Millisecond,
		"the broker delivered %d of the %d messages sent", received.Load(), res.Sent)
	require.Zero(t, bad.Load(), "load sent messages that are not valid protocol v1 (or telemetry without 10 ports)")
}
