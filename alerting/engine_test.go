package alerting

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/telemetry"
)

var t0 = time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)

func newTestEngine(t testing.TB) *Engine {
	n := 0
	e, err := NewEngine(DefaultRules(), EngineOptions{NewID: func() string { n++; return "id-" + strconv.Itoa(n) }})
	require.NoError(t, err)
	return e
}

func msg(site, pile string, at time.Time, payload any) telemetry.Message {
	m := telemetry.Message{Topic: telemetry.Topic{Root: telemetry.DefaultRoot, Site: site, Pile: pile}, Received: at}
	switch p := payload.(type) {
	case *telemetry.Status:
		m.Topic.Kind, m.Status = telemetry.KindStatus, p
	case *telemetry.Telemetry:
		m.Topic.Kind, m.Telemetry = telemetry.KindTelemetry, p
	case *telemetry.Event:
		m.Topic.Kind, m.Event = telemetry.KindEvent, p
	case *telemetry.Ack:
		m.Topic.Kind, m.Ack = telemetry.KindAck, p
	}
	return m
}

func birth(ports int, rated float64) *telemetry.Status {
	return &telemetry.Status{V: 1, Online: true, Ports: ports, RatedA: rated, Kind: telemetry.SiteResidential}
}

func tel(seq uint32, at time.Time, ports ...telemetry.PortSample) *telemetry.Telemetry {
	return &telemetry.Telemetry{V: 1, TS: at.UnixMilli(), Seq: seq, Ports: ports}
}

func charging(n int, a, temp float64) telemetry.PortSample {
	return telemetry.PortSample{N: n, State: telemetry.StateCharging, A: telemetry.F(a), TempC: telemetry.F(temp), W: telemetry.F(a * 220)}
}

func commands(acts []Action) []SendCommand {
	var out []SendCommand
	for _, a := range acts {
		if c, ok := a.(SendCommand); ok {
			out = append(out, c)
		}
	}
	return out
}

func TestClassifySeq(t *testing.T) {
	p := &pile{}
	// accept is what onTelemetry keeps of an accepted message.
	accept := func(seq uint32, ts int64) seqClass {
		c := p.classify(seq, ts)
		if c == seqNew || c == seqRestart {
			p.sentTS = ts
		}
		return c
	}
	require.Equal(t, seqNew, accept(100, 1000))
	require.Equal(t, seqDup, accept(100, 1000))
	require.Equal(t, seqNew, accept(102, 1200))
	require.Equal(t, seqLate, accept(101, 1100))
	require.Equal(t, seqDup, accept(101, 1100))
	require.Equal(t, seqDup, accept(102, 1200))
	// 63 behind is still in the window; a jump of 64 forgets the window.
	require.Equal(t, seqNew, accept(165, 2000))
	require.Equal(t, seqLate, accept(103, 1300))
	require.Equal(t, seqNew, accept(165+64, 3000))
	// Far behind: stale with an older ts; a restart at once with a newer
	// ts (contract v1.1).
	require.Equal(t, seqStale, accept(10, 2500))
	require.Equal(t, seqRestart, accept(0, 4000))
	require.Equal(t, seqNew, accept(1, 4100))
	// At or below the last accepted with no newer ts (a clock that was
	// reset too): set aside, and the next message continuing it starts
	// the new stream.
	require.Equal(t, seqDup, accept(0, 10))
	require.Equal(t, seqRestart, accept(1, 20))
	require.Equal(t, seqNew, accept(2, 30))
	// Continuing only counts for the message right after: 0 and 1 are set
	// aside, 3 is new.
	require.Equal(t, seqLate, accept(0, 5))
	require.Equal(t, seqNew, accept(3, 40))
	require.Equal(t, seqDup, accept(0, 5))
	require.Equal(t, seqNew, accept(4, 50))
	// The newest accepted message redelivered after its predecessor is
	// the same message, not a new stream.
	require.Equal(t, seqDup, accept(3, 40))
	require.Equal(t, seqDup, accept(4, 50))
	// A seq restarted within the reorder window is a duplicate by the bit
	// map, but a newer ts says it is a new stream.
	require.Equal(t, seqRestart, accept(2, 60))

	// Wraparound.
	w := &pile{}
	wa := func(seq uint32, ts int64) seqClass {
		c := w.classify(seq, ts)
		if c == seqNew || c == seqRestart {
			w.sentTS = ts
		}
		return c
	}
	require.Equal(t, seqNew, wa(math.MaxUint32-1, 1))
	require.Equal(t, seqNew, wa(math.MaxUint32, 2))
	require.Equal(t, seqNew, wa(0, 3))
	require.Equal(t, seqDup, wa(math.MaxUint32, 2))
	require.Equal(t, seqLate, wa(math.MaxUint32-2, 0))
	require.Equal(t, seqNew, wa(5, 6))
}

func TestRiseRing(t *testing.T) {
	var r riseRing
	step := int64(30000 / (riseCap - 2))
	// Samples every 100 ms for a minute: the ring keeps a 30 s span.
	for i := int64(0); i <= 600; i++ {
		r.push(i*100, float32(20+float64(i)*0.02), step) // 12 °C/min
	}
	first, _ := r.at(0)
	last, _ := r.at(int(r.n) - 1)
	require.Equal(t, int64(60000), last)
	require.GreaterOrEqual(t, last-first, int64(30000))
	s, ok := r.slope(30000, 3)
	require.True(t, ok)
	require.InDelta(t, 12, s, 0.01)
	require.InDelta(t, 12, r.medianSlope(30000), 0.01)

	// Older or equal ts never enters the window.
	require.False(t, r.push(60000, 99, step))
	require.False(t, r.push(1000, 99, step))
	s2, _ := r.slope(30000, 3)
	require.Equal(t, s, s2)

	// A window that does not span 30 s yet gives no rate.
	r.reset()
	r.push(0, 20, step)
	r.push(10000, 30, step)
	_, ok = r.slope(30000, 2)
	require.False(t, ok)

	// Days apart: offsets are rebased, not overflowed.
	r.reset()
	day := int64(24 * 3600 * 1000)
	r.push(0, 20, step)
	r.push(20*day, 21, step)
	r.push(20*day+30000, 26, step)
	s, ok = r.slope(30000, 2)
	require.True(t, ok)
	require.InDelta(t, 10, s, 0.01)
}

// Same input, same output: the engine is deterministic.
func TestDeterministic(t *testing.T) {
	run := func() string {
		e := newTestEngine(t)
		var all []Action
		all = append(all, e.Observe(t0, msg("s", "p", t0, birth(4, 5)))...)
		for i := 0; i < 50; i++ {
			at := t0.Add(time.Duration(i) * time.Second)
			temp := 40 + float64(i)
			all = append(all, e.Observe(at, msg("s", "p", at, tel(uint32(i), at, charging(1, 2, temp), charging(2, 6, 40), charging(3, 2, 40))))...)
			all = append(all, e.Tick(at)...)
		}
		b, err := json.Marshal(all)
		require.NoError(t, err)
		return string(b)
	}
	require.Equal(t, run(), run())
}

func TestCommandsCarryTopicAndDetection(t *testing.T) {
	e := newTestEngine(t)
	e.Observe(t0, msg("site-1", "pile_2", t0, birth(4, 5)))
	recv := t0.Add(time.Second)
	now := recv.Add(3 * time.Millisecond) // queued in the service for 3 ms
	cmds := commands(e.Observe(now, msg("site-1", "pile_2", recv, tel(1, recv, charging(2, 2, 71)))))
	require.Len(t, cmds, 1)
	c := cmds[0]
	want, err := telemetry.NewTopic(telemetry.DefaultRoot, "site-1", "pile_2", telemetry.KindCmd)
	require.NoError(t, err)
	require.Equal(t, want, c.Topic)
	require.Equal(t, "chargers/site-1/pile_2/cmd", c.Topic.String())
	require.Equal(t, telemetry.Command{V: 1, ID: "id-1", TS: now.UnixMilli(), Port: 2, Action: telemetry.ActionClose, Reason: "overheat"}, c.Cmd)
	require.Equal(t, 1, c.Attempt)
	require.Equal(t, recv, c.DetectedAt)

	// The resend keeps id, payload and detection time.
	cmds = commands(e.Tick(now.Add(3 * time.Second)))
	require.Len(t, cmds, 1)
	require.Equal(t, c.Cmd, cmds[0].Cmd)
	require.Equal(t, 2, cmds[0].Attempt)
	require.Equal(t, recv, cmds[0].DetectedAt)

	// A custom root.
	e2, err := NewEngine(DefaultRules(), EngineOptions{Root: "cg/test"})
	require.NoError(t, err)
	cmds = commands(e2.Observe(now, msg("s", "p", recv, tel(1, recv, charging(1, 2, 90)))))
	require.Len(t, cmds, 1)
	require.Equal(t, "cg/test/s/p/cmd", cmds[0].Topic.String())
	require.Len(t, cmds[0].Cmd.ID, 36) // a UUID by default
}

func TestCommandsComeFirst(t *testing.T) {
	e := newTestEngine(t)
	e.Observe(t0, msg("s", "p", t0, birth(4, 5)))
	acts := e.Observe(t0, msg("s", "p", t0, tel(1, t0, charging(1, 2, 71), charging(2, 12, 40))))
	require.GreaterOrEqual(t, len(acts), 4)
	_, ok0 := acts[0].(SendCommand)
	_, ok1 := acts[1].(SendCommand)
	require.True(t, ok0 && ok1, "%v", acts)
}

func TestResetErrorsAreSentinels(t *testing.T) {
	e := newTestEngine(t)
	e.Observe(t0, msg("s", "p", t0, birth(4, 5)))
	_, err := e.Reset(t0, "s", "p", 1, "")
	require.ErrorIs(t, err, ErrNoOperator)
	_, err = e.Reset(t0, "s", "nope", 1, "op")
	require.ErrorIs(t, err, ErrUnknownPile)
	_, err = e.Reset(t0, "s", "p", -1, "op")
	require.ErrorIs(t, err, ErrBadPort)
	acts, err := e.Reset(t0, "s", "p", 1, "op")
	require.ErrorIs(t, err, ErrNotLatched)
	require.Len(t, acts, 1)
	rec := acts[0].(Audit).Record
	require.Equal(t, AuditResetRefused, rec.Kind)
	require.Equal(t, "not_latched", rec.Reason)
	require.Equal(t, "operator:op", rec.Actor)

	at := t0.Add(time.Second)
	e.Observe(at, msg("s", "p", at, tel(1, at, charging(1, 2, 80))))
	_, err = e.Reset(at, "s", "p", 1, "op")
	require.ErrorIs(t, err, ErrCommandPending)
	require.Equal(t, "command_pending", ErrorReason(err))
	require.Equal(t, "internal", ErrorReason(errors.New("x")))
}

func TestAlertAckAndQueries(t *testing.T) {
	e := newTestEngine(t)
	e.Observe(t0, msg("s", "p", t0, birth(4, 5)))
	at := t0.Add(time.Second)
	e.Observe(at, msg("s", "p", at, tel(1, at, charging(1, 2, 80), charging(2, 2, 56))))

	alerts := e.Alerts(true)
	require.Len(t, alerts, 2)
	var key string
	for _, a := range alerts {
		require.True(t, a.Active)
		if a.Name == AlertOverheat {
			key = a.Key()
			require.Equal(t, map[string]string{"alertname": "overheat", "severity": "critical", "site": "s", "pile": "p", "port": "1", "kind": "residential"}, a.Labels())
			require.Contains(t, a.Annotations()["summary"], "80.0 °C")
			require.NotEmpty(t, a.Annotations()["on_site"])
		}
	}
	require.Equal(t, "overheat/s/p/1", key)

	_, err := e.Ack(at, key, "")
	require.ErrorIs(t, err, ErrNoOperator)
	_, err = e.Ack(at, "overheat/s/p/2", "kim")
	require.ErrorIs(t, err, ErrUnknownAlert)
	_, err = e.Ack(at, "nonsense", "kim")
	require.ErrorIs(t, err, ErrUnknownAlert)
	acts, err := e.Ack(at, key, "kim")
	require.NoError(t, err)
	require.Equal(t, AuditAlertAck, acts[0].(Audit).Record.Kind)
	_, err = e.Ack(at.Add(time.Second), key, "lee")
	require.NoError(t, err)
	for _, a := range e.Alerts(true) {
		if a.Key() == key {
			require.Equal(t, "kim", a.AckedBy)
			require.Equal(t, at, a.AckedAt)
		}
	}

	// Ports: filter by control and by reported state.
	require.Len(t, e.Ports(PortFilter{}), 4)
	latched := e.Ports(PortFilter{State: ControlLatched})
	require.Len(t, latched, 1)
	v := latched[0]
	require.Equal(t, 1, v.Port)
	require.Equal(t, []string{"overheat"}, v.LatchReasons)
	require.Equal(t, "overheat", v.CloseReason)
	require.Equal(t, "id-1", v.PendingCommand)
	require.Equal(t, telemetry.StateCharging, v.Reported)
	require.Equal(t, 80.0, *v.TempC)
	require.Equal(t, []string{"overheat"}, v.Alerts)
	require.Len(t, e.Ports(PortFilter{State: "charging"}), 2)
	require.Len(t, e.Ports(PortFilter{Site: "other"}), 0)

	// Audit of the port: the command.
	audit := e.Audit("s", "p", 1)
	require.Len(t, audit, 3) // the command and both acknowledgements
	require.Equal(t, AuditCommand, audit[0].Kind)
	require.Equal(t, "rule:overheat", audit[0].Actor)
	require.Equal(t, "id-1", audit[0].CommandID)
	require.Equal(t, AuditAlertAck, audit[1].Kind)
	require.Nil(t, e.Audit("s", "nope", 1))

	// Resolved alerts show among the recent ones, not the active ones.
	at2 := at.Add(time.Second)
	e.Observe(at2, msg("s", "p", at2, tel(2, at2, charging(1, 2, 80), charging(2, 2, 40))))
	require.Len(t, e.Alerts(true), 1)
	all := e.Alerts(false)
	require.Len(t, all, 2)
	require.True(t, all[0].Active) // same start: by port
	require.False(t, all[1].Active)
	require.Equal(t, AlertTempWarning, all[1].Name)
	require.Equal(t, at2, all[1].EndsAt)
}

func TestAuditLogIsBounded(t *testing.T) {
	e, err := NewEngine(DefaultRules(), EngineOptions{AuditPerPort: 3})
	require.NoError(t, err)
	e.Observe(t0, msg("s", "p", t0, birth(4, 5)))
	for i := 0; i < 5; i++ {
		_, _ = e.Reset(t0.Add(time.Duration(i)*time.Second), "s", "p", 1, "op"+strconv.Itoa(i))
	}
	a := e.Audit("s", "p", 1)
	require.Len(t, a, 3)
	require.Equal(t, "operator:op2", a[0].Actor)
	require.Equal(t, "operator:op4", a[2].Actor)
}

func TestSnapshotRoundTrip(t *testing.T) {
	e := newTestEngine(t)
	e.Observe(t0, msg("s", "p", t0, birth(4, 5)))
	e.Observe(t0, msg("s", "q", t0, birth(4, 5)))
	at := t0.Add(time.Second)
	e.Observe(at, msg("s", "p", at, tel(1, at, charging(1, 2, 80), charging(2, 2, 40))))
	e.Observe(at, msg("s", "q", at, tel(1, at, charging(1, 2, 40))))
	sm := &telemetry.Telemetry{V: 1, TS: at.UnixMilli(), Seq: 2, Smoke: telemetry.B(true), Ports: []telemetry.PortSample{charging(1, 2, 40)}}
	e.Observe(at, msg("s", "q", at, sm))
	_, err := e.Ack(at, "smoke/s/q/0", "kim")
	require.NoError(t, err)
	e.Observe(at, msg("s", "p", at, &telemetry.Ack{V: 1, ID: "id-1", Port: 1, OK: true, State: telemetry.StateClosed, TS: at.UnixMilli()}))

	s := e.Snapshot()
	data, err := json.Marshal(s)
	require.NoError(t, err)
	var back State
	require.NoError(t, json.Unmarshal(data, &back))
	e2 := newTestEngine(t)
	require.NoError(t, e2.Restore(back))
	require.Equal(t, s, e2.Snapshot())
	require.Equal(t, e.Alerts(true), e2.Alerts(true))
	require.ErrorIs(t, e2.Restore(back), ErrNotEmpty)

	// A pile with nothing latched is in the snapshot only while it
	// charges (a restarted backend expects it to report again).
	e.Observe(at, msg("s", "idle", at, tel(1, at, charging(1, 2, 40))))
	require.Len(t, e.Snapshot().Piles, 3)
	idle := telemetry.PortSample{N: 1, State: telemetry.StateIdle, A: telemetry.F(0), TempC: telemetry.F(30)}
	e.Observe(at, msg("s", "idle", at, tel(2, at, idle)))
	require.Len(t, e.Snapshot().Piles, 2)
}

func TestRestoreRejectsBadState(t *testing.T) {
	good := func() State {
		return State{Version: StateVersion, Piles: []PileSnapshot{{
			Site: "s", Pile: "p", Ports: 4, RatedA: 5,
			PortStates: []PortSnapshot{{Port: 1, Latch: []AlertName{AlertOverheat}, CloseHeld: true}},
			Pending:    []CommandSnapshot{{ID: "c1", Port: 1, Action: telemetry.ActionClose, Reason: "overheat", Attempt: 1, SentAt: t0}},
			Alerts:     []AlertSnapshot{{Alert: Alert{Name: AlertOverheat, Site: "s", Pile: "p", Port: 1, StartsAt: t0}}},
		}}}
	}
	e := newTestEngine(t)
	require.NoError(t, e.Restore(good()))
	for name, mutate := range map[string]func(*State){
		"version":       func(s *State) { s.Version = 9 },
		"bad site":      func(s *State) { s.Piles[0].Site = "a/b" },
		"twice":         func(s *State) { s.Piles = append(s.Piles, s.Piles[0]) },
		"port 0 state":  func(s *State) { s.Piles[0].PortStates[0].Port = 0 },
		"port 65 cmd":   func(s *State) { s.Piles[0].Pending[0].Port = 65 },
		"action":        func(s *State) { s.Piles[0].Pending[0].Action = "explode" },
		"no id":         func(s *State) { s.Piles[0].Pending[0].ID = "" },
		"attempt 0":     func(s *State) { s.Piles[0].Pending[0].Attempt = 0 },
		"alert name":    func(s *State) { s.Piles[0].Alerts[0].Alert.Name = 0 },
		"foreign alert": func(s *State) { s.Piles[0].Alerts[0].Alert.Pile = "other" },
		"latch name":    func(s *State) { s.Piles[0].Latch = []AlertName{99} },
		"ports":         func(s *State) { s.Piles[0].Ports = 65 },
	} {
		s := good()
		mutate(&s)
		e := newTestEngine(t)
		require.ErrorIs(t, e.Restore(s), ErrBadState, name)
		// A refused state leaves the engine empty and usable.
		require.Empty(t, e.Snapshot().Piles, name)
		require.NoError(t, e.Restore(good()), name)
	}
	// An unknown alert name in JSON is refused by the decoder.
	var s State
	require.Error(t, json.Unmarshal([]byte(`{"version":1,"piles":[{"site":"s","pile":"p","latch":["meltdown"]}]}`), &s))
}

func TestObserveIgnoresForeignMessages(t *testing.T) {
	e := newTestEngine(t)
	// Our own command echoed back, an ack or a death for a pile never seen.
	require.Empty(t, e.Observe(t0, msg("s", "p", t0, &telemetry.Ack{V: 1, ID: "x", OK: true})))
	require.Empty(t, e.Observe(t0, msg("s", "p", t0, &telemetry.Status{V: 1})))
	m := msg("s", "p", t0, nil)
	m.Topic.Kind, m.Command = telemetry.KindCmd, &telemetry.Command{V: 1, ID: "x", Action: telemetry.ActionOpen}
	require.Empty(t, e.Observe(t0, m))
	require.Empty(t, e.Snapshot().Piles)
	require.Empty(t, e.Ports(PortFilter{}))
	// Out-of-range port numbers in telemetry are ignored.
	require.Empty(t, e.Observe(t0, msg("s", "p", t0, tel(1, t0, charging(0, 2, 90), charging(65, 2, 90)))))
}

// Every alert the engine raises gets a summary of its own, not the bare
// place: it is the first line on-call reads.
func TestEverySummaryIsSpecific(t *testing.T) {
	e := newTestEngine(t)
	e.Observe(t0, msg("s", "p", t0, birth(4, 5)))
	p := e.pileFor("s", "p", false)
	for _, n := range AlertNames() {
		got := e.summary(p, 1, n, 3)
		require.NotEqual(t, "port 1 of pile s/p", got, "%s has no summary", n)
	}
}

// The published ports say whether their pile is offline as the engine
// counts it, without any alert: silent for the offline window (idle, so no
// pile_offline fires), a death, or, after a restart, not heard from within
// the window since the start.
func TestPortsSayWhetherThePileIsOffline(t *testing.T) {
	e := newTestEngine(t)
	window := DefaultRules().Defaults.ReportInterval * time.Duration(DefaultRules().Defaults.OfflineIntervals)
	idle := telemetry.PortSample{N: 1, State: telemetry.StateIdle, A: telemetry.F(0), TempC: telemetry.F(30)}
	e.Observe(t0, msg("s", "quiet", t0, birth(2, 5)))
	e.Observe(t0, msg("s", "quiet", t0, tel(1, t0, idle)))
	e.Observe(t0, msg("s", "dead", t0, birth(2, 5)))
	e.Observe(t0, msg("s", "dead", t0, &telemetry.Status{V: 1, Online: false}))
	e.Tick(t0.Add(window + time.Second))
	require.Empty(t, e.Alerts(true), "no alert: neither pile was charging")
	pv := map[string]PortView{}
	for _, p := range e.Ports(PortFilter{}) {
		pv[p.Pile] = p
	}
	require.True(t, pv["quiet"].PileSilentAt.Equal(t0.Add(window)), "%v", pv["quiet"].PileSilentAt)
	require.False(t, pv["quiet"].PileOffline(t0.Add(window-time.Millisecond)))
	require.True(t, pv["quiet"].PileOffline(t0.Add(window)))
	require.True(t, pv["dead"].PileDead)
	require.True(t, pv["dead"].PileOffline(t0))

	// After a restart: the state file's piles count from the start.
	e.Observe(t0, msg("s", "hot", t0, birth(2, 5)))
	e.Observe(t0, msg("s", "hot", t0, tel(2, t0, charging(1, 2, 90))))
	e2 := newTestEngine(t)
	require.NoError(t, e2.Restore(e.Snapshot()))
	restart := t0.Add(time.Hour)
	e2.Tick(restart)
	ports := e2.Ports(PortFilter{})
	require.NotEmpty(t, ports)
	for _, p := range ports {
		require.True(t, p.PileSilentAt.Equal(restart.Add(window)), "%s: %v", p.Pile, p.PileSilentAt)
		require.False(t, p.PileOffline(restart))
		require.True(t, p.PileOffline(restart.Add(window)))
	}
}
