package alerting

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chargeguard/chargeguard/alerting/notify"
	"github.com/chargeguard/chargeguard/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakes for the service's three outputs.
type sink struct {
	mu       sync.Mutex
	cmds     []telemetry.Command
	fired    []notify.Alert
	resolved []notify.Alert
	lines    []string
}

func (k *sink) Publish(topic string, payload []byte) error {
	m, err := telemetry.DecodeTopic("chargers", topic, payload, time.Now())
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.cmds = append(k.cmds, *m.Command)
	k.mu.Unlock()
	return nil
}
func (k *sink) Fire(a notify.Alert) { k.mu.Lock(); k.fired = append(k.fired, a); k.mu.Unlock() }
func (k *sink) Resolve(a notify.Alert) {
	k.mu.Lock()
	k.resolved = append(k.resolved, a)
	k.mu.Unlock()
}
func (k *sink) Record(l []byte) { k.mu.Lock(); k.lines = append(k.lines, string(l)); k.mu.Unlock() }
func (k *sink) snapshot() (cmds []telemetry.Command, fired []notify.Alert, lines []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append(cmds, k.cmds...), append(fired, k.fired...), append(lines, k.lines...)
}

func runService(t *testing.T, o ServiceOptions) (*Service, func()) {
	t.Helper()
	s, err := NewService(o)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	return s, func() { cancel(); <-done }
}

func telemetryMsg(seq uint32, ts time.Time, temp float64) telemetry.Message {
	return telemetry.Message{
		Topic:    telemetry.Topic{Root: "chargers", Site: "s1", Pile: "p1", Kind: telemetry.KindTelemetry},
		Received: ts,
		Telemetry: &telemetry.Telemetry{V: 1, TS: ts.UnixMilli(), Seq: seq, AmbientC: telemetry.F(25),
			Ports: []telemetry.PortSample{{N: 3, State: telemetry.StateCharging, A: telemetry.F(2), W: telemetry.F(440), TempC: telemetry.F(temp)}}},
	}
}

func TestServiceCutNotifyRecordPersist(t *testing.T) {
	k := &sink{}
	state := filepath.Join(t.TempDir(), "state.json")
	s, stop := runService(t, ServiceOptions{StatePath: state, Publisher: k, Notifier: k, Recorder: k, BoardURL: "http://grafana:3000", ConsoleURL: "https://guard.example/"})
	now := time.Now()
	s.Observe(telemetryMsg(1, now, 50))
	s.Observe(telemetryMsg(2, now.Add(10*time.Second), 72))
	require.Eventually(t, func() bool { c, f, _ := k.snapshot(); return len(c) == 1 && len(f) >= 1 }, 5*time.Second, time.Millisecond)
	cmds, fired, _ := k.snapshot()
	require.Equal(t, telemetry.ActionClose, cmds[0].Action)
	require.Equal(t, 3, cmds[0].Port)
	// 72 °C at 25 °C ambient is also 47 °C above ambient: hot_contact fires
	// beside overheat; the command was published before either was sent.
	var overheat *notify.Alert
	for i := range fired {
		if fired[i].Labels["alertname"] == "overheat" {
			overheat = &fired[i]
		}
	}
	require.NotNil(t, overheat)
	require.Equal(t, "critical", overheat.Labels["severity"])
	require.Contains(t, overheat.Annotations["board_url"], "var-port=3")
	require.Equal(t, "https://guard.example/ports/s1/p1/3", overheat.Annotations["console_url"])
	require.NotEmpty(t, overheat.Annotations["on_site"])
	// The Chinese texts for the WeCom message, with the reading and its unit.
	require.Equal(t, "站点 s1，充电桩 p1，端口 3：端口过热，已断电（读数 72 °C）", overheat.Annotations["summary_zh"])
	require.NotEmpty(t, overheat.Annotations["on_site_zh"])
	require.Contains(t, overheat.Annotations["description"], "Reading: 72 °C.")

	// The alert and the audit record are stored as line protocol.
	require.Eventually(t, func() bool {
		_, _, lines := k.snapshot()
		joined := strings.Join(lines, "")
		return strings.Contains(joined, "alert,alertname=overheat,pile=p1,site=s1,severity=critical port=3i,state=\"firing\"") &&
			strings.Contains(joined, "audit,action=command,pile=p1,site=s1 port=3i")
	}, 5*time.Second, time.Millisecond)

	// Reads come from the view the engine publishes once per tick.
	require.Eventually(t, func() bool {
		ports, err := s.Ports(context.Background(), PortFilter{State: ControlLatched})
		return err == nil && len(ports) == 1
	}, 5*time.Second, time.Millisecond)
	stop()

	// A new service on the same state file still holds the latch and sends
	// no open, whatever it then sees.
	k2 := &sink{}
	s2, stop2 := runService(t, ServiceOptions{StatePath: state, Publisher: k2, Notifier: k2, Recorder: k2})
	defer stop2()
	ports, err := s2.Ports(context.Background(), PortFilter{State: ControlLatched})
	require.NoError(t, err)
	require.Len(t, ports, 1)
	for i := range 30 {
		s2.Observe(telemetryMsg(uint32(3+i), now.Add(time.Duration(20+i)*time.Second), 30))
	}
	// Wait until the engine has seen all 30 (the view shows the last
	// reading), then check it sent no open.
	require.Eventually(t, func() bool {
		ports, _ := s2.Ports(context.Background(), PortFilter{Site: "s1", Pile: "p1"})
		return len(ports) == 3 && ports[2].TempC != nil && *ports[2].TempC == 30
	}, 5*time.Second, time.Millisecond)
	cmds2, _, _ := k2.snapshot()
	for _, c := range cmds2 {
		require.NotEqual(t, telemetry.ActionOpen, c.Action)
	}
	// A reset without an operator is refused.
	require.ErrorIs(t, s2.Reset(context.Background(), "s1", "p1", 3, ""), ErrNoOperator)
}

func TestServiceCorruptStateStopsStart(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, os.WriteFile(state, []byte("{not json"), 0o600))
	_, err := NewService(ServiceOptions{StatePath: state, Publisher: &sink{}})
	require.ErrorContains(t, err, "corrupt")
}

func TestServicePublishFailureIsRetriedNotDropped(t *testing.T) {
	var mu sync.Mutex
	attempts := 0
	failing := PublisherFunc(func(topic string, payload []byte) error {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		return os.ErrDeadlineExceeded
	})
	clock := time.Now()
	var cmu sync.Mutex
	now := func() time.Time { cmu.Lock(); defer cmu.Unlock(); return clock }
	s, stop := runService(t, ServiceOptions{Publisher: failing, TickInterval: time.Millisecond, Now: now})
	defer stop()
	s.Observe(telemetryMsg(1, clock, 80))
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return attempts >= 1 }, 5*time.Second, time.Millisecond)
	// Move the service's clock past ack timeouts: the engine resends the
	// same command, then closes the whole pile.
	for i := 1; i <= 5; i++ {
		cmu.Lock()
		clock = clock.Add(3100 * time.Millisecond)
		cmu.Unlock()
		require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return attempts >= i+1 }, 5*time.Second, time.Millisecond, "round %d", i)
	}
	require.Eventually(t, func() bool {
		alerts, err := s.Alerts(context.Background(), true)
		require.NoError(t, err)
		for _, a := range alerts {
			if a.Name == AlertCloseFailed {
				return true
			}
		}
		return false
	}, 5*time.Second, time.Millisecond, "close_failed never showed in the view")
}

func TestPortViewReadingsPrintAsSent(t *testing.T) {
	e, err := NewEngine(DefaultRules(), EngineOptions{})
	require.NoError(t, err)
	now := time.Now()
	e.Observe(now, telemetryMsg(1, now, 51.4))
	ports := e.Ports(PortFilter{})
	require.Len(t, ports, 3)
	require.NotNil(t, ports[2].TempC)
	require.Equal(t, 51.4, *ports[2].TempC, "a float32 reading must not print as 51.400001525878906")
}

// Contract v1.1: when the command session reconnects, every close awaiting
// its ack is published again at once, with its id, without waiting for the
// ack timeout (which the frozen clock here never reaches).
func TestServiceReconnectResendsPendingCloses(t *testing.T) {
	k := &sink{}
	clock := time.Now()
	s, stop := runService(t, ServiceOptions{Publisher: k, TickInterval: time.Millisecond, Now: func() time.Time { return clock }})
	defer stop()
	s.Observe(telemetryMsg(1, clock, 80))
	require.Eventually(t, func() bool { c, _, _ := k.snapshot(); return len(c) == 1 }, 5*time.Second, time.Millisecond)
	s.Reconnected()
	require.Eventually(t, func() bool { c, _, _ := k.snapshot(); return len(c) == 2 }, 5*time.Second, time.Millisecond)
	cmds, _, _ := k.snapshot()
	require.Equal(t, cmds[0].ID, cmds[1].ID, "a resend reuses the id")
	require.Equal(t, telemetry.ActionClose, cmds[1].Action)
	// Reconnects that pile up fold into one resend each time the engine
	// gets to them; none is lost, none blocks the caller.
	for range 100 {
		s.Reconnected()
	}
	require.Eventually(t, func() bool { c, _, _ := k.snapshot(); return len(c) >= 3 }, 5*time.Second, time.Millisecond)
}

// A pile charging when chargeguard stops is in the state file, so that the
// next start expects it to report (pile_offline otherwise), even though
// nothing was latched.
func TestServicePersistsChargingPiles(t *testing.T) {
	k := &sink{}
	state := filepath.Join(t.TempDir(), "state.json")
	clock := time.Now()
	var cmu sync.Mutex
	now := func() time.Time { cmu.Lock(); defer cmu.Unlock(); return clock }
	s, stop := runService(t, ServiceOptions{StatePath: state, Publisher: k, Notifier: k, TickInterval: time.Millisecond, Now: now})
	s.Observe(telemetryMsg(1, clock, 40))
	// Readers read the published view: once it shows the port, the engine
	// has taken the message.
	require.Eventually(t, func() bool {
		ports, err := s.Ports(context.Background(), PortFilter{State: "charging"})
		return err == nil && len(ports) == 1
	}, 5*time.Second, time.Millisecond)
	stop()
	b, err := os.ReadFile(state)
	require.NoError(t, err)
	require.Contains(t, string(b), `"charging":true`)

	k2 := &sink{}
	s2, stop2 := runService(t, ServiceOptions{StatePath: state, Publisher: k2, Notifier: k2, TickInterval: time.Millisecond, Now: now})
	defer stop2()
	// The offline clock starts at the service's first Tick: move time on
	// a second per poll until the pile has been silent for long enough.
	require.Eventually(t, func() bool {
		cmu.Lock()
		clock = clock.Add(time.Second)
		cmu.Unlock()
		_, fired, _ := k2.snapshot()
		for _, a := range fired {
			if a.Labels["alertname"] == "pile_offline" {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	_ = s2
}
