package alerting

// TestModel is the adversarial model test of the engine: a seeded generator
// of pile lives, in the spirit of Pebble's metamorphic tests. Each life is
// one pile with four ports, played for a few simulated minutes against a
// fresh Engine through the real decoder, with the faults real piles have:
// reboots with and without a birth, seq resets and wraps, duplicates,
// reordering, clock steps back and forward, stuck clocks, clocks in µs,
// bad fields in one port, unknown versions, a rated_a in mA, lost and late
// acks with any ts, welded relays, network loss, reconnects of our command
// session, operator resets and ticks, with hazards injected at random
// times. The invariants (docs/safety.md) are checked after every input:
//
//   - I1: from the first hazardous sample delivered (a single-sample
//     condition in any telemetry message, set aside or not), within two
//     reporting intervals the port, or port 0, has a close in flight or
//     acked;
//   - I2: every close not acked within the ack window (every resend
//     included) has a close_failed page out and is still pending;
//   - I3: no port is ever opened except by an operator's reset, a reset
//     never opens a port whose freshest delivered reading shows a hazard,
//     and an open is never sent again once a newer close of its port (or
//     of port 0) has gone out.
//
// A failing life is replayed from its recorded inputs alone, shrunk to a
// short run of inputs that still breaks the invariant, and printed as a
// scenario file for alerting/testdata (go test -run TestModel -v shows it;
// -model.seed=N replays one life). Every bug found this way is kept there
// as model_*.test.

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chargeguard/chargeguard/telemetry"
)

var (
	modelLives = flag.Int("model.lives", 0, "TestModel: lives to play (default 20000, 1000 with -short)")
	modelSeed  = flag.Uint64("model.seed", 0, "TestModel: play only the life of this seed")
)

const (
	maxTickGap = 1000 // ms: the life ticks the engine at least this often
	modelSite  = "m"
	modelPile  = "p1"
	modelPorts = 4
	modelOp    = "op"
)

type inputKind uint8

const (
	inObserve inputKind = iota
	inTick
	inReset
	inReconnect
)

// input is one call into the engine. A life is its list of inputs: the
// engine is pure, so replaying the list replays the life.
type input struct {
	at       int64 // ms since scenarioEpoch
	kind     inputKind
	topic    telemetry.Kind
	payload  []byte
	retained bool
	port     int // inReset
	// gen orders the pile's telemetry by when it was taken (not by seq or
	// ts, which the faults corrupt): the freshness oracle of I3.
	gen int
}

// checker replays inputs into a fresh engine and checks the invariants.
type checker struct {
	e     *Engine
	lim   Thresholds
	rated float64 // the rated current the rules should use
	ids   int

	hazards []hazard
	closes  map[string]*closeRec
	// lastClose[n] is when the latest close covering port n went out
	// (a port-0 close covers every port).
	lastClose [telemetry.MaxPort + 1]int64
	openMade  map[string]int64 // open id -> when the reset created it
	fresh     [telemetry.MaxPort + 1]reading
	pileFresh reading

	out []stepOut // what each input produced, for the scenario file
}

type hazard struct {
	port int // 0: the pile (smoke, leakage)
	at   int64
	why  string
	done bool
}

type closeRec struct {
	port    int
	firstAt int64
	acked   bool
}

// reading is the freshest (by gen) delivered reading of a port or of the
// pile, and whether it shows a hazard.
type reading struct {
	gen    int
	hazard string
}

type stepOut struct {
	acts []Action
	err  error
}

func newChecker() *checker {
	c := &checker{lim: DefaultRules().Defaults, closes: map[string]*closeRec{}, openMade: map[string]int64{}}
	e, err := NewEngine(DefaultRules(), EngineOptions{NewID: func() string { c.ids++; return "cmd-" + strconv.Itoa(c.ids) }})
	if err != nil {
		panic(err)
	}
	c.e = e
	return c
}

func (c *checker) now(in input) time.Time {
	return scenarioEpoch.Add(time.Duration(in.at) * time.Millisecond)
}

// apply feeds one input to the engine and checks every invariant; it
// returns the engine's actions (for the life to act on) and the first
// violation.
func (c *checker) apply(in input) ([]Action, string) {
	now := c.now(in)
	var acts []Action
	var err error
	from := "engine"
	switch in.kind {
	case inObserve:
		m, derr := telemetry.Decode(telemetry.Topic{Root: telemetry.DefaultRoot, Site: modelSite, Pile: modelPile, Kind: in.topic}, in.payload, now)
		if derr != nil && m.Invalid == nil {
			c.out = append(c.out, stepOut{})
			return nil, "" // dropped by the live session
		}
		m.Retained = in.retained
		c.delivered(in, m)
		acts = c.e.Observe(now, m)
	case inTick:
		acts = c.e.Tick(now)
	case inReconnect:
		acts = c.e.Reconnected(now)
	case inReset:
		from = "reset"
		acts, err = c.e.Reset(now, modelSite, modelPile, in.port, modelOp)
	}
	c.out = append(c.out, stepOut{acts: acts, err: err})
	if v := c.outputs(in, from, acts); v != "" {
		return acts, v
	}
	return acts, c.deadlines(in.at)
}

// delivered updates the oracle with what a delivered message shows.
func (c *checker) delivered(in input, m telemetry.Message) {
	switch {
	case m.Status != nil && m.Status.Online:
		if r := m.Status.RatedA; r > 0 {
			c.rated = min(r, c.lim.MaxRatedA)
		}
	case m.Ack != nil:
		a := m.Ack
		if rec := c.closes[a.ID]; rec != nil && a.OK && (a.State == "" || a.State == telemetry.StateClosed || a.State == telemetry.StateFault) {
			rec.acked = true
		}
	case m.Telemetry != nil:
		t := m.Telemetry
		pileHaz := ""
		if t.Smoke != nil && *t.Smoke {
			pileHaz = "smoke"
		} else if t.LeakMA != nil && *t.LeakMA >= c.lim.LeakMA {
			pileHaz = "leakage"
		}
		if pileHaz != "" {
			c.hazards = append(c.hazards, hazard{port: 0, at: in.at, why: pileHaz})
		}
		if in.gen > c.pileFresh.gen {
			c.pileFresh = reading{gen: in.gen, hazard: pileHaz}
		}
		for _, s := range t.Ports {
			h := c.portHazard(s, m.Damage)
			if h != "" {
				c.hazards = append(c.hazards, hazard{port: s.N, at: in.at, why: h})
			}
			if in.gen > c.fresh[s.N].gen {
				c.fresh[s.N] = reading{gen: in.gen, hazard: h}
			}
		}
	}
}

// portHazard is the single-sample conditions of the policy, read from the
// decoded entry independently of the engine.
func (c *checker) portHazard(s telemetry.PortSample, dmg *telemetry.Damage) string {
	charging := s.State == telemetry.StateCharging
	temp, tempOK := value(s.TempC)
	a, aOK := value(s.A)
	switch {
	case charging && (!tempOK || !aOK || temp < c.lim.SensorMinC || temp > c.lim.SensorMaxC):
		return "sensor_fault"
	case tempOK && temp >= c.lim.OverheatC && temp <= c.lim.SensorMaxC:
		return "overheat"
	case aOK && c.rated > 0 && a >= c.lim.ShortCircuitFactor*c.rated:
		return "short_circuit"
	case (s.State == telemetry.StateClosed || s.State == telemetry.StateFault) && aOK && a > c.lim.WeldedA:
		return "current in a closed port"
	}
	return ""
}

func (c *checker) pile() *pile { return c.e.pileFor(modelSite, modelPile, false) }

// held reports whether port n (0: the pile) has a close in flight or acked.
func (c *checker) held(n int) bool {
	p := c.pile()
	if p == nil {
		return false
	}
	if p.close0 {
		return true
	}
	if n == 0 {
		return false
	}
	ps := p.portIf(n)
	return ps != nil && ps.held()
}

func (c *checker) outputs(in input, from string, acts []Action) string {
	for _, a := range acts {
		sc, ok := a.(SendCommand)
		if !ok {
			continue
		}
		cmd := sc.Cmd
		switch cmd.Action {
		case telemetry.ActionClose:
			if sc.Attempt == 1 {
				c.closes[cmd.ID] = &closeRec{port: cmd.Port, firstAt: in.at}
			}
			if cmd.Port == 0 {
				for n := range c.lastClose {
					c.lastClose[n] = in.at
				}
			} else {
				c.lastClose[cmd.Port] = in.at
			}
		case telemetry.ActionOpen:
			if sc.Attempt == 1 && from != "reset" {
				return fmt.Sprintf("I3: open %s of port %d sent by the %s, not by an operator's reset", cmd.ID, cmd.Port, from)
			}
			if sc.Attempt == 1 {
				c.openMade[cmd.ID] = in.at
				ports := []int{cmd.Port}
				if cmd.Port == 0 {
					ports = []int{1, 2, 3, 4}
					if h := c.pileFresh.hazard; h != "" {
						return fmt.Sprintf("I3: reset opened the pile while its freshest reading shows %s", h)
					}
				}
				for _, n := range ports {
					if h := c.fresh[n].hazard; h != "" {
						return fmt.Sprintf("I3: reset opened port %d while its freshest reading shows %s", n, h)
					}
				}
				continue
			}
			made, ok := c.openMade[cmd.ID]
			if !ok {
				return fmt.Sprintf("I3: open %s resent but never made by a reset", cmd.ID)
			}
			if last := max(c.lastClose[cmd.Port], c.lastClose[0]); last >= made {
				return fmt.Sprintf("I3: open %s of port %d resent after a newer close of the port", cmd.ID, cmd.Port)
			}
		}
	}
	return ""
}

// deadlines checks I1 and I2 at time now.
func (c *checker) deadlines(now int64) string {
	interval := c.lim.ReportInterval.Milliseconds()
	for i := range c.hazards {
		h := &c.hazards[i]
		if h.done {
			continue
		}
		if c.held(h.port) {
			h.done = true
			continue
		}
		if now-h.at > 2*interval {
			return fmt.Sprintf("I1: %s on port %d delivered at %s has no close in flight or acked %s later",
				h.why, h.port, fmtAt(h.at), time.Duration(now-h.at)*time.Millisecond)
		}
	}
	// The ack window: every send waits ack_timeout, seen by the first
	// Tick after it (ticks come at most maxTickGap apart here).
	window := (c.lim.AckTimeout.Milliseconds() + maxTickGap) * int64(c.lim.MaxResends+1)
	p := c.pile()
	for id, rec := range c.closes {
		if rec.acked || now-rec.firstAt <= window {
			continue
		}
		pending := false
		if p != nil {
			for _, pc := range p.pending {
				pending = pending || pc.id == id
			}
		}
		if !pending {
			return fmt.Sprintf("I2: close %s of port %d, not acked, is no longer pending", id, rec.port)
		}
		if p.alertsOn(c.e, rec.port, AlertCloseFailed) == nil {
			return fmt.Sprintf("I2: close %s of port %d not acked after %s, and no close_failed page is out", id, rec.port, time.Duration(now-rec.firstAt)*time.Millisecond)
		}
	}
	return ""
}

func (p *pile) alertsOn(e *Engine, n int, name AlertName) *alertRec {
	return e.alerts[alertKey{p.idx, uint8(n), name}]
}

func fmtAt(ms int64) string { return (time.Duration(ms) * time.Millisecond).String() }

// replay runs inputs through a fresh checker and returns the index of the
// input after which an invariant broke, with the violation; -1 if none.
func replay(inputs []input) (int, string) {
	c := newChecker()
	for i, in := range inputs {
		if _, v := c.apply(in); v != "" {
			return i, v
		}
	}
	return -1, ""
}

// --- the pile model --------------------------------------------------------

// faults are what can go wrong in one life, drawn from its seed.
type faults struct {
	dup, reorder, drop     float64 // per telemetry message
	badField, unplaced, v2 float64 // per telemetry message
	ackLoss, cmdLoss       float64
	lateAck, futureAckTS   bool
	microClock, stuckClock bool
	clockStep              int64 // ms, applied at clockStepAt
	clockStepAt            int64
	rebootAt, rebootBirth  int64 // 0: none; rebootBirth 1 with a birth
	rebootSeq              uint32
	netDownAt, netDownFor  int64
	welded                 int // port 1..4 with a welded relay, 0 none
	ratedMA                bool
	resetRate, reconnRate  float64 // per step
	seqStart               uint32
}

type mport struct {
	plugged  bool
	off      bool // relay open by our command
	temp     float64
	hazard   string
	hazardAt int64
}

type life struct {
	rng  *rand.Rand
	f    faults
	c    *checker
	log  []input
	now  int64
	end  int64
	gen  int
	seq  uint32
	ts   int64 // pile clock offset (ms)
	port [modelPorts + 1]mport
	// pile-level hazards
	smokeUntil int64
	leak       bool

	toEngine []input // in flight to the engine, by at
	toPile   []pileCmd
	executed map[string]bool
	nextTel  int64
	down     bool
}

type pileCmd struct {
	at  int64
	cmd telemetry.Command
}

func newLife(seed uint64) *life {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	l := &life{rng: rng, c: newChecker(), executed: map[string]bool{}}
	p := func(x float64) bool { return rng.Float64() < x }
	pick := func(x float64) float64 {
		if p(0.5) {
			return x
		}
		return 0
	}
	l.end = 60_000 + rng.Int64N(120_000)
	f := &l.f
	f.dup, f.reorder, f.drop = pick(0.15), pick(0.15), pick(0.1)
	f.badField, f.unplaced, f.v2 = pick(0.2), pick(0.05), pick(0.05)
	f.ackLoss, f.cmdLoss = pick(0.5), pick(0.3)
	f.lateAck, f.futureAckTS = p(0.3), p(0.3)
	f.microClock, f.stuckClock = p(0.1), p(0.1)
	if p(0.3) {
		f.clockStep = (rng.Int64N(120) - 60) * 60_000
		f.clockStepAt = rng.Int64N(l.end)
	}
	if p(0.4) {
		f.rebootAt = rng.Int64N(l.end)
		if p(0.5) {
			f.rebootBirth = 1
		}
		f.rebootSeq = uint32(rng.IntN(3))
	}
	if p(0.3) {
		f.netDownAt, f.netDownFor = rng.Int64N(l.end), 5_000+rng.Int64N(60_000)
	}
	if p(0.2) {
		f.welded = 1 + rng.IntN(modelPorts)
	}
	f.ratedMA = p(0.1)
	f.resetRate, f.reconnRate = pick(0.02), pick(0.005)
	f.seqStart = uint32(rng.IntN(100))
	if p(0.1) {
		f.seqStart = 0xFFFFFFFF - uint32(rng.IntN(30)) // wraps during the life
	}
	if p(0.3) {
		l.ts = (rng.Int64N(600) - 300) * 1000 // within 5 minutes either way
	}
	l.seq = f.seqStart
	for n := 1; n <= modelPorts; n++ {
		l.port[n] = mport{plugged: p(0.7), temp: 30 + rng.Float64()*8}
	}
	// One or two hazards at random times.
	for range 1 + rng.IntN(2) {
		at := rng.Int64N(l.end)
		switch k := rng.IntN(6); k {
		case 0, 1:
			n := 1 + rng.IntN(modelPorts)
			l.port[n].hazard, l.port[n].hazardAt = "overheat", at
		case 2:
			n := 1 + rng.IntN(modelPorts)
			l.port[n].hazard, l.port[n].hazardAt = "short", at
		case 3:
			n := 1 + rng.IntN(modelPorts)
			l.port[n].hazard, l.port[n].hazardAt = "sensor", at
		case 4:
			l.smokeUntil = -at // negative: starts at -smokeUntil
		case 5:
			l.port[0].hazard, l.port[0].hazardAt = "leak", at
		}
	}
	return l
}

func (l *life) chance(x float64) bool { return x > 0 && l.rng.Float64() < x }

// pileTS is the pile's clock at our time at.
func (l *life) pileTS(at int64) int64 {
	t := scenarioEpoch.UnixMilli() + at + l.ts
	if l.f.clockStep != 0 && at >= l.f.clockStepAt {
		t += l.f.clockStep
	}
	if l.f.stuckClock {
		t = scenarioEpoch.UnixMilli() + l.ts
	}
	if l.f.microClock {
		t *= 1000
	}
	return t
}

// send queues a message from the pile to the engine, through the faults of
// the network.
func (l *life) send(in input, delay int64) {
	if l.down {
		return
	}
	in.at = l.now + delay
	l.toEngine = append(l.toEngine, in)
}

func (l *life) birth() {
	rated := 5.0
	if l.f.ratedMA {
		rated = 5000
	}
	l.send(input{kind: inObserve, topic: telemetry.KindStatus, payload: fmt.Appendf(nil,
		`{"v":1,"ts":%d,"online":true,"ports":%d,"rated_a":%g,"fw":"m","kind":"residential"}`, l.pileTS(l.now), modelPorts, rated)}, 10)
}

func (l *life) conducts(n int) bool {
	pt := &l.port[n]
	return pt.plugged && (!pt.off || l.f.welded == n)
}

// physics moves the ports on by dt ms.
func (l *life) physics(dt int64) {
	s := float64(dt) / 1000
	for n := 1; n <= modelPorts; n++ {
		pt := &l.port[n]
		hot := pt.hazard == "overheat" && l.now >= pt.hazardAt
		switch {
		case l.conducts(n) && hot:
			pt.temp = min(pt.temp+1.5*s, 110)
		case l.conducts(n):
			pt.temp += (40 - pt.temp) * min(1, 0.003*s)
		default:
			pt.temp += (28 - pt.temp) * min(1, 0.1*s)
		}
	}
}

func (l *life) telemetry() {
	l.gen++
	l.seq++
	ts := l.pileTS(l.now)
	var b strings.Builder
	v := 1
	if l.chance(l.f.v2) {
		v = 2
	}
	fmt.Fprintf(&b, `{"v":%d,"ts":%d`, v, ts)
	if !l.chance(l.f.unplaced) {
		fmt.Fprintf(&b, `,"seq":%d`, l.seq)
	}
	b.WriteString(`,"ambient_c":25`)
	if l.smokeUntil < 0 && l.now >= -l.smokeUntil {
		l.smokeUntil = l.now + 30_000
	}
	fmt.Fprintf(&b, `,"smoke":%t`, l.smokeUntil > 0 && l.now < l.smokeUntil)
	leak := 1.0
	if l.port[0].hazard == "leak" && l.now >= l.port[0].hazardAt {
		for n := 1; n <= modelPorts; n++ {
			if l.conducts(n) {
				leak = 80
			}
		}
	}
	fmt.Fprintf(&b, `,"leak_ma":%g,"ports":[`, leak)
	bad := 0
	if l.chance(l.f.badField) {
		bad = 1 + l.rng.IntN(4)
	}
	badPort := 1 + l.rng.IntN(modelPorts)
	for n := 1; n <= modelPorts; n++ {
		pt := &l.port[n]
		if n > 1 {
			b.WriteByte(',')
		}
		state := "idle"
		switch {
		case pt.off:
			state = "closed"
		case pt.plugged:
			state = "charging"
		}
		a := 0.0
		if l.conducts(n) {
			a = 2
			if pt.hazard == "short" && l.now >= pt.hazardAt {
				a = 12
			}
		}
		temp := fmt.Sprintf(`,"temp_c":%.1f`, pt.temp)
		if pt.hazard == "sensor" && l.now >= pt.hazardAt && state == "charging" {
			temp = ""
		}
		wh := `,"wh":1.5`
		if bad != 0 && n == badPort {
			switch bad {
			case 1:
				wh = `,"wh":"12"`
			case 2:
				state = "burning"
			case 3:
				temp = `,"temp_c":"hot"`
			}
		}
		fmt.Fprintf(&b, `{"n":%d,"state":%q,"v":220,"a":%g,"w":%g%s%s}`, n, state, a, a*220, wh, temp)
	}
	if bad == 4 {
		b.WriteString(`,{"n":65,"state":"idle"}`)
	}
	b.WriteString(`]}`)
	in := input{kind: inObserve, topic: telemetry.KindTelemetry, payload: []byte(b.String()), gen: l.gen}
	if l.chance(l.f.drop) {
		return
	}
	delay := 5 + l.rng.Int64N(50)
	if l.chance(l.f.reorder) {
		delay += 1000 + l.rng.Int64N(4000)
	}
	l.send(in, delay)
	if l.chance(l.f.dup) {
		l.send(in, delay+l.rng.Int64N(3000))
	}
}

// onCommand is the pile executing a command (at most once per id) and
// acking it.
func (l *life) onCommand(cmd telemetry.Command) {
	if !l.executed[cmd.ID] {
		l.executed[cmd.ID] = true
		ports := []int{cmd.Port}
		if cmd.Port == 0 {
			ports = []int{1, 2, 3, 4}
		}
		for _, n := range ports {
			l.port[n].off = cmd.Action == telemetry.ActionClose
		}
	}
	if l.chance(l.f.ackLoss) {
		return
	}
	state := "closed"
	if cmd.Action == telemetry.ActionOpen {
		state = "idle"
	}
	ts := l.pileTS(l.now)
	if l.f.futureAckTS {
		ts += 10 * 3600_000
	}
	delay := 20 + l.rng.Int64N(300)
	if l.f.lateAck {
		delay += l.rng.Int64N(8000)
	}
	l.send(input{kind: inObserve, topic: telemetry.KindAck, payload: fmt.Appendf(nil,
		`{"v":1,"id":%q,"ts":%d,"port":%d,"ok":true,"state":%q}`, cmd.ID, ts, cmd.Port, state)}, delay)
}

// feed gives the engine one input, records it, and hands its commands to
// the pile.
func (l *life) feed(in input) string {
	l.log = append(l.log, in)
	acts, v := l.c.apply(in)
	for _, a := range acts {
		if sc, ok := a.(SendCommand); ok && !l.down && !l.chance(l.f.cmdLoss) {
			l.toPile = append(l.toPile, pileCmd{at: l.now + 10 + l.rng.Int64N(200), cmd: sc.Cmd})
		}
	}
	return v
}

// run plays the life and returns the first violation.
func (l *life) run() string {
	l.birth()
	for l.now < l.end {
		dt := 100 + l.rng.Int64N(900)
		l.now += dt
		l.physics(dt)
		// Network loss: the pile's will (death) goes out, then nothing
		// until it is back, with a birth.
		wasDown := l.down
		l.down = l.f.netDownFor > 0 && l.now >= l.f.netDownAt && l.now < l.f.netDownAt+l.f.netDownFor
		if l.down && !wasDown {
			l.down = false
			l.send(input{kind: inObserve, topic: telemetry.KindStatus, payload: []byte(`{"v":1,"online":false}`)}, 1)
			l.down = true
			l.toPile = nil
		}
		if !l.down && wasDown {
			l.birth()
			if l.chance(0.5) {
				l.feed(input{at: l.now, kind: inReconnect})
			}
		}
		if l.f.rebootAt != 0 && l.now >= l.f.rebootAt {
			l.f.rebootAt = 0
			l.seq = l.f.rebootSeq
			l.executed = map[string]bool{}
			for n := 1; n <= modelPorts; n++ {
				l.port[n].off = false // relays fall back to on after a power cycle
			}
			if l.f.rebootBirth == 1 {
				l.birth()
			}
		}
		// Deliver what is due, in order of arrival.
		for len(l.toEngine) > 0 {
			i := 0
			for j := range l.toEngine {
				if l.toEngine[j].at < l.toEngine[i].at {
					i = j
				}
			}
			if l.toEngine[i].at > l.now {
				break
			}
			in := l.toEngine[i]
			l.toEngine = append(l.toEngine[:i], l.toEngine[i+1:]...)
			if v := l.feed(in); v != "" {
				return v
			}
		}
		for len(l.toPile) > 0 && l.toPile[0].at <= l.now {
			cmd := l.toPile[0].cmd
			l.toPile = l.toPile[1:]
			if !l.down {
				l.onCommand(cmd)
			}
		}
		if l.now >= l.nextTel {
			l.telemetry()
			interval := int64(10_000)
			for n := 1; n <= modelPorts; n++ {
				if l.port[n].temp >= 55 {
					interval = 1000
				}
			}
			l.nextTel = l.now + interval
		}
		if l.chance(l.f.resetRate) {
			if v := l.feed(input{at: l.now, kind: inReset, port: l.rng.IntN(modelPorts + 1)}); v != "" {
				return v
			}
		}
		if l.chance(l.f.reconnRate) {
			if v := l.feed(input{at: l.now, kind: inReconnect}); v != "" {
				return v
			}
		}
		if v := l.feed(input{at: l.now, kind: inTick}); v != "" {
			return v
		}
	}
	return ""
}

// shrink returns a shorter list of inputs that still breaks an invariant:
// the shortest failing prefix, then chunks and single inputs dropped while
// it still fails, within a time budget.
func shrink(inputs []input, budget time.Duration) ([]input, string) {
	deadline := time.Now().Add(budget)
	i, v := replay(inputs)
	if i < 0 {
		return inputs, ""
	}
	// Ticks stay: the time-driven rules (resends, escalation, offline)
	// need them as the service gives them, and a run without them breaks
	// I2 for want of a clock, not for a bug. The shrunk run must break the
	// same invariant.
	class := v[:3]
	cur := append([]input(nil), inputs[:i+1]...)
	for chunk := len(cur) / 2; chunk >= 1 && time.Now().Before(deadline); chunk /= 2 {
		for start := 0; start+chunk < len(cur) && time.Now().Before(deadline); {
			try := make([]input, 0, len(cur))
			try = append(try, cur[:start]...)
			for _, in := range cur[start : start+chunk] {
				if in.kind == inTick {
					try = append(try, in)
				}
			}
			try = append(try, cur[start+chunk:]...)
			if len(try) == len(cur) {
				start += chunk
				continue
			}
			if j, tv := replay(try); j >= 0 && strings.HasPrefix(tv, class) {
				cur, v = try[:j+1], tv
				continue
			}
			start += chunk
		}
	}
	return cur, v
}

// scenario writes inputs as a scenario file (testdata/README.md): each
// input as a step, and what the engine did as its expectations, so that it
// replays as a regression once the bug is fixed and its expectations are
// brought up to date.
func scenario(seed uint64, inputs []input, violation string) string {
	c := newChecker()
	var b strings.Builder
	fmt.Fprintf(&b, "# Found by TestModel (seed %d): %s\n# Replay: go test ./alerting -run TestModel -model.seed=%d -v\n", seed, violation, seed)
	pile := modelSite + "/" + modelPile
	for _, in := range inputs {
		acts, _ := c.apply(in)
		o := c.out[len(c.out)-1]
		at := fmtAt(in.at)
		switch in.kind {
		case inTick:
			fmt.Fprintf(&b, "at %s tick\n", at)
		case inReconnect:
			fmt.Fprintf(&b, "at %s reconnect\n", at)
		case inReset:
			fmt.Fprintf(&b, "at %s reset %s port %d by %s\n", at, pile, in.port, modelOp)
		case inObserve:
			ret := ""
			if in.retained {
				ret = " retained"
			}
			fmt.Fprintf(&b, "at %s raw %s%s %s %s\n", at, pile, ret, in.topic, in.payload)
		}
		if o.err != nil {
			fmt.Fprintf(&b, "expect error %s\n", ErrorReason(o.err))
		}
		for _, a := range acts {
			switch a := a.(type) {
			case SendCommand:
				fmt.Fprintf(&b, "expect %s %s port %d reason %s attempt %d id %s\n", a.Cmd.Action, pile, a.Cmd.Port, a.Cmd.Reason, a.Attempt, a.Cmd.ID)
			case AlertFired:
				fmt.Fprintf(&b, "expect alert %s %s port %d %s firing\n", a.Alert.Name, pile, a.Alert.Port, a.Alert.Severity)
			case AlertResolved:
				fmt.Fprintf(&b, "expect alert %s %s port %d %s resolved\n", a.Alert.Name, pile, a.Alert.Port, a.Alert.Severity)
			case Info:
				fmt.Fprintf(&b, "expect info %s %s port %d\n", a.Kind, pile, a.Port)
			}
		}
	}
	fmt.Fprintf(&b, "# Here the invariant broke: %s\n", violation)
	return b.String()
}

func TestModel(t *testing.T) {
	lives := *modelLives
	if lives == 0 {
		lives = 20000
		if testing.Short() {
			lives = 1000
		}
	}
	seeds := make(chan uint64)
	var played atomic.Int64
	var mu sync.Mutex
	var failed []uint64
	var fails []string
	var wg sync.WaitGroup
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range seeds {
				l := newLife(seed)
				v := l.run()
				played.Add(1)
				if v == "" {
					continue
				}
				min, mv := shrink(l.log, 10*time.Second)
				mu.Lock()
				failed = append(failed, seed)
				fails = append(fails, fmt.Sprintf("life %d: %s\nshrunk from %d to %d inputs; as a scenario file (alerting/testdata/model_%d.test):\n%s",
					seed, v, len(l.log), len(min), seed, scenario(seed, min, mv)))
				mu.Unlock()
			}
		}()
	}
	if *modelSeed != 0 {
		seeds <- *modelSeed
	} else {
		for s := range uint64(lives) {
			mu.Lock()
			n := len(failed)
			mu.Unlock()
			if n >= 3 {
				break // enough to go on
			}
			seeds <- s + 1
		}
	}
	close(seeds)
	wg.Wait()
	fmt.Printf("TestModel: %d pile lives played in %s, %d broke an invariant\n", played.Load(), time.Since(start).Round(time.Millisecond), len(failed))
	for _, f := range fails {
		t.Error(f)
	}
}
