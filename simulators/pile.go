package simulators

import (
	"errors"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"time"

	"github.com/chargeguard/chargeguard/telemetry"
)

// Thermal model of a socket: a first-order lag towards
// enclosure + thermalKPerW * I² * R_contact.
const (
	thermalTau   = 4 * time.Minute // time constant of socket and plug
	thermalKPerW = 30.0            // kelvin per watt dissipated in the contact
	// tempNoise is the standard deviation of the sensor noise, kelvin.
	tempNoise = 0.15
	// replugGap is the least time between an unplug and the next plug-in.
	replugGap = 5 * time.Minute
	// ackMemory is how many command ids a pile remembers for at-most-once
	// execution.
	ackMemory = 1024
)

// Outbound is one thing a pile wants done on the wire.
type Outbound struct {
	Kind     telemetry.Kind
	Payload  []byte
	QoS      byte
	Retained bool
	// Topic overrides the pile's own topic for Kind (hostile ids).
	Topic string
	// Delay holds the message back this long on the wall clock (late acks).
	Delay time.Duration
	// Drop, when > 0, asks the runner to drop the pile's connection without
	// a DISCONNECT now and reconnect after Drop of simulated time; such an
	// Outbound carries no payload.
	Drop time.Duration
	// Model is the simulated time the message was made at, Sent the one it
	// leaves at (later for held-back, reordered telemetry).
	Model time.Time
	Sent  time.Time
	// Reject is the reason the decoder must reject this message with; empty
	// for a valid message.
	Reject telemetry.Reason
	// Met lists the policy conditions this message completes.
	Met []Met
}

// pileEnv is what every pile of a run shares.
type pileEnv struct {
	start    time.Time     // model time the run starts at
	tsOffset time.Duration // ts = model time + tsOffset (+ clock skew)
	interval time.Duration // reporting interval
	warm     time.Duration // reporting interval while warm
	weather  *Weather
	seed     uint64
	root     string
}

type port struct {
	n   int
	rng *rand.Rand
	rc  float64 // healthy contact resistance, ohm
	// temp is the true socket temperature.
	temp float64

	sess      *Session
	faultSess bool          // sess was made by a fault
	plugged   time.Time     // when sess was plugged in
	charged   time.Duration // time sess has drawn power
	done      bool          // the charge is full and the pile stopped the port
	arrival   time.Time     // next plug-in when no session
	wh        float64
	wasOn     bool
	lastW     float64

	closed  bool // relay opened by order
	tripped bool // the pile's own protection opened it
	welded  bool
}

// Pile is the simulated state of one pile: its ports, relays, sessions,
// faults and the messages it sends. It is not safe for concurrent use; the
// runner serializes access.
type Pile struct {
	Spec PileSpec
	env  *pileEnv
	rng  *rand.Rand

	ports   []*port // index 0 unused
	now     time.Time
	next    time.Time
	seq     uint32
	mainOff bool // port-0 close opened the main contactor
	leak    float64
	vBase   float64

	faults []*activeFault
	skew   time.Duration
	held   *Outbound // reordered telemetry waiting for its successor

	acks       map[string]telemetry.Ack
	ackOrder   []string
	deliveries map[string]int

	oracle *oracle
}

type activeFault struct {
	Fault
	target  Target
	started bool
	ended   bool
	start   time.Time
	// kind-specific state
	extraR   float64 // loose/hot contact: full extra resistance
	baseA    float64 // thermal runaway: current when it started
	baseT    float64 // thermal runaway / stuck sensor: temperature when it started
	left     int     // duplicate/reorder: repetitions left
	leakFrom float64
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

func newPile(spec PileSpec, env *pileEnv, faults []Fault) *Pile {
	key := spec.Key()
	p := &Pile{
		Spec:       spec,
		env:        env,
		rng:        rand.New(rand.NewPCG(env.seed, hash64(key))),
		now:        env.start,
		acks:       map[string]telemetry.Ack{},
		deliveries: map[string]int{},
		oracle:     newOracle(key, spec.Ports, spec.RatedA),
	}
	p.vBase = 222 + 4*p.rng.Float64()
	p.leak = 0.5 + 2*p.rng.Float64()
	p.next = env.start.Add(time.Duration(p.rng.Float64() * float64(env.interval)))
	amb := env.weather.Enclosure(env.start, spec.Kind)
	lt := env.start.In(Hangzhou)
	hour := float64(lt.Hour()) + float64(lt.Minute())/60
	p.ports = make([]*port, spec.Ports+1)
	for n := 1; n <= spec.Ports; n++ {
		r := rand.New(rand.NewPCG(env.seed^hash64(key), uint64(n)))
		pt := &port{n: n, rng: r, rc: 0.010 + 0.015*r.Float64()}
		if r.Float64() < occupancy(spec.Kind, hour) {
			// A charge already under way when the run starts.
			pt.sess = newSession(r)
			el := time.Duration(r.Float64() * 0.8 * float64(min(pt.sess.FullAt(), pt.sess.Unplug)))
			pt.plugged = env.start.Add(-el)
			pt.charged = el
			pt.wh = pt.sess.Energy(el)
			pt.wasOn = true
			a := pt.sess.Power(el) / (p.vBase * pt.sess.PF)
			pt.temp = amb + thermalKPerW*a*a*pt.rc
		} else {
			pt.arrival = nextArrival(r, spec.Kind, env.start)
			pt.temp = amb
		}
		p.ports[n] = pt
	}
	for _, f := range faults {
		t, err := ParseTarget(f.Target)
		if err != nil || t.Key() != key || t.Port > spec.Ports {
			continue
		}
		af := &activeFault{Fault: f, target: t}
		af.left = max(f.Count, 1)
		p.faults = append(p.faults, af)
	}
	return p
}

// ts is the pile's clock at model time t, in Unix milliseconds.
func (p *Pile) ts(t time.Time) int64 { return t.Add(p.env.tsOffset + p.skew).UnixMilli() }

// Next is the model time of the pile's next telemetry.
func (p *Pile) Next() time.Time { return p.next }

// Charging counts the ports drawing current now.
func (p *Pile) Charging() int {
	n := 0
	for _, pt := range p.ports[1:] {
		if pt.wasOn {
			n++
		}
	}
	return n
}

// Advance runs the pile up to model time to and returns what it sent, in
// order.
func (p *Pile) Advance(to time.Time) []Outbound {
	var out []Outbound
	for !p.next.After(to) {
		out = append(out, p.sample(p.next)...)
	}
	return out
}

// Birth is the pile's retained birth message at model time t.
func (p *Pile) Birth(t time.Time) []byte {
	b, _ := telemetry.Encode(&telemetry.Status{
		TS: p.ts(t), Online: true, Ports: p.Spec.Ports, RatedA: p.Spec.RatedA, FW: p.Spec.FW, Kind: p.Spec.Kind,
	})
	return b
}

// Death is the pile's death message, used as its last will and published on
// a clean stop.
func Death() []byte {
	b, _ := telemetry.Encode(&telemetry.Status{Online: false})
	return b
}

func (p *Pile) event(t time.Time, n int, kind telemetry.EventKind, detail string) Outbound {
	ev := &telemetry.Event{TS: p.ts(t), Port: n, Kind: kind, Detail: detail}
	b, _ := telemetry.Encode(ev)
	p.oracle.event(ev, t)
	return Outbound{Kind: telemetry.KindEvent, Payload: b, QoS: 1, Model: t, Met: p.oracle.take()}
}

// faultSession is the charge a fault-bearing port carries: a 300 W lithium
// charger in a long constant-current phase, so heating faults meet a steady
// current.
func faultSession() *Session {
	return &Session{Chem: Lithium, PeakW: 300, CC: 5 * time.Hour, Taper: 30 * time.Minute, PF: 0.95, Unplug: 7 * time.Hour}
}

// ensureSession gives port pt a fault session unless it already has one.
func (p *Pile) ensureSession(pt *port, t time.Time, s *Session, out *[]Outbound) {
	if pt.faultSess && s == nil {
		return
	}
	if s == nil {
		s = faultSession()
	}
	if pt.sess != nil {
		*out = append(*out, p.event(t, pt.n, telemetry.EventPlugOut, ""))
	}
	pt.sess, pt.faultSess, pt.plugged, pt.charged, pt.done, pt.wh, pt.wasOn = s, true, t, 0, false, 0, false
	*out = append(*out, p.event(t, pt.n, telemetry.EventPlugIn, ""))
}

func (p *Pile) active(kind FaultKind, port int, t time.Time) *activeFault {
	for _, f := range p.faults {
		if f.Kind == kind && f.started && !f.ended && (port < 0 || f.target.Port == port || f.target.Port == 0) {
			return f
		}
	}
	return nil
}

// activeAt reports a fault of kind whose window covers t, whether or not a
// sample has started it yet (for acks, which come between samples).
func (p *Pile) activeAt(kind FaultKind, t time.Time) *activeFault {
	for _, f := range p.faults {
		from := p.env.start.Add(time.Duration(f.At))
		if f.Kind == kind && !t.Before(from) && (f.For == 0 || t.Before(from.Add(time.Duration(f.For)))) {
			return f
		}
	}
	return nil
}

// startFaults starts and ends faults whose time has come, at sample time t.
func (p *Pile) startFaults(t time.Time, amb, v float64, out *[]Outbound) {
	for _, f := range p.faults {
		from := p.env.start.Add(time.Duration(f.At))
		if !f.started && !t.Before(from) {
			f.started, f.start = true, t
			p.begin(f, t, amb, v, out)
		}
		if f.started && !f.ended && f.For > 0 && !t.Before(f.start.Add(time.Duration(f.For))) {
			f.ended = true
			p.end(f)
		}
	}
}

func (p *Pile) begin(f *activeFault, t time.Time, amb, v float64, out *[]Outbound) {
	var pt *port
	if f.target.Port > 0 {
		pt = p.ports[f.target.Port]
	}
	switch f.Kind {
	case FaultLooseContact, FaultHotContact, FaultOvercurrent, FaultShortCircuit, FaultThermalRunaway,
		FaultSensorStuck, FaultSensorMissing, FaultSensorRange, FaultWeldedRelay:
		p.ensureSession(pt, t, nil, out)
	case FaultLongSession:
		w := f.value(220)
		p.ensureSession(pt, t, &Session{Chem: LeadAcid, PeakW: w, PF: 0.93, Flat: true, Unplug: 100 * time.Hour}, out)
	case FaultFullBattery:
		w := f.value(8)
		p.ensureSession(pt, t, &Session{Chem: LeadAcid, PeakW: w, PF: 0.6, Flat: true, Unplug: 100 * time.Hour}, out)
	}
	switch f.Kind {
	case FaultLooseContact, FaultHotContact:
		i := pt.sess.Power(pt.charged) / (v * pt.sess.PF)
		target := f.value(95) - amb
		if f.Kind == FaultHotContact {
			target = f.value(35)
		}
		f.extraR = math.Max(0, target/(thermalKPerW*i*i)-pt.rc)
	case FaultThermalRunaway:
		f.baseA = pt.sess.Power(pt.charged) / (v * pt.sess.PF)
		f.baseT = pt.temp
	case FaultSensorStuck:
		f.baseT = round1(pt.temp)
	case FaultWeldedRelay:
		pt.welded = true
	case FaultLeakage:
		f.leakFrom = p.leak
	case FaultSmoke:
		if f.Via == "event" || f.Via == "both" || f.Via == "" {
			*out = append(*out, p.event(t, 0, telemetry.EventSmoke, "detector 1"))
		}
	case FaultClockSkew:
		p.skew = f.dur(f.Offset, 10*time.Minute)
	case FaultNetworkLoss:
		o := Outbound{Drop: f.dur(f.For, time.Minute), Model: t}
		if p.Charging() > 0 {
			p.oracle.hit(0, CondPileOffline, t, 0)
			o.Met = p.oracle.take()
		}
		*out = append(*out, o)
	case FaultMalformed:
		for i := 0; i < f.left; i++ {
			topic, payload := MalformedMessage(f.Payload, p.env.root, p.Spec.Site, p.Spec.ID, p.ts(t), p.seq)
			r := malformedReasons[f.Payload]
			*out = append(*out, Outbound{Kind: telemetry.KindTelemetry, Topic: topic, Payload: payload, Model: t, Reject: r})
		}
	}
}

func (p *Pile) end(f *activeFault) {
	switch f.Kind {
	case FaultWeldedRelay:
		p.ports[f.target.Port].welded = false
	case FaultClockSkew:
		p.skew = 0
	}
}

// voltage is the supply voltage at t: lower at the evening peak.
func (p *Pile) voltage(t time.Time) float64 {
	lt := t.In(Hangzhou)
	h := float64(lt.Hour()) + float64(lt.Minute())/60
	peak := math.Exp(-(h - 20) * (h - 20) / 8)
	return p.vBase - 7*peak + p.rng.NormFloat64()*0.3
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }
func round2(x float64) float64 { return math.Round(x*100) / 100 }

// sample advances the physics to t and makes the telemetry of t.
func (p *Pile) sample(t time.Time) []Outbound {
	var out []Outbound
	dt := t.Sub(p.now)
	if dt < 0 {
		dt = 0
	}
	amb := p.env.weather.Enclosure(t, p.Spec.Kind)
	v := p.voltage(t)
	p.startFaults(t, amb, v, &out)

	tel := &telemetry.Telemetry{TS: p.ts(t), Seq: p.seq}
	p.seq++
	ambR := round1(amb + p.rng.NormFloat64()*0.1)
	tel.AmbientC = &ambR
	smoke := p.active(FaultSmoke, -1, t) != nil && p.active(FaultSmoke, -1, t).Via != "event"
	tel.Smoke = &smoke
	warm := false
	reject := telemetry.Reason("")
	charging := 0

	for _, pt := range p.ports[1:] {
		// Session life cycle, quantized to samples.
		if pt.sess != nil && t.Sub(pt.plugged) >= pt.sess.Unplug {
			out = append(out, p.event(t, pt.n, telemetry.EventPlugOut, ""))
			pt.sess, pt.faultSess, pt.wasOn = nil, false, false
			pt.arrival = nextArrival(pt.rng, p.Spec.Kind, t.Add(replugGap))
		}
		if pt.sess == nil && !pt.closed && !pt.tripped && !t.Before(pt.arrival) && !pt.arrival.IsZero() {
			pt.sess, pt.plugged, pt.charged, pt.done, pt.wh, pt.wasOn = newSession(pt.rng), t, 0, false, 0, false
			out = append(out, p.event(t, pt.n, telemetry.EventPlugIn, ""))
		}
		on := pt.sess != nil && !pt.done && (!pt.closed || pt.welded) && !p.mainOff && !pt.tripped
		if on && pt.wasOn && pt.sess.Power(pt.charged+dt) <= 0 {
			// The charger reached FullW: the pile ends the session.
			pt.wh += pt.sess.Energy(pt.sess.FullAt()) - pt.sess.Energy(pt.charged)
			pt.charged = pt.sess.FullAt()
			pt.done, on = true, false
		}
		var w, a float64
		if on {
			if pt.wasOn {
				pt.charged += dt
			}
			w = pt.sess.Power(pt.charged)
			a = w / (v * pt.sess.PF)
			override := false
			if f := p.active(FaultOvercurrent, pt.n, t); f != nil {
				a, override = f.value(1.2)*p.Spec.RatedA, true
			}
			if f := p.active(FaultShortCircuit, pt.n, t); f != nil {
				a, override = f.value(2.5)*p.Spec.RatedA, true
			}
			if f := p.active(FaultThermalRunaway, pt.n, t); f != nil {
				a, override = f.baseA*(1.25+0.3*pt.rng.Float64()), true
			}
			if override {
				w = a * v * pt.sess.PF
				if pt.wasOn {
					pt.wh += (pt.lastW + w) / 2 * dt.Hours()
				}
			} else if pt.wasOn {
				pt.wh += pt.sess.Energy(pt.charged) - pt.sess.Energy(pt.charged-dt)
			}
		}
		pt.wasOn, pt.lastW = on, w

		// Socket temperature.
		r := pt.rc
		for _, k := range []FaultKind{FaultLooseContact, FaultHotContact} {
			if f := p.active(k, pt.n, t); f != nil {
				ramp := f.dur(f.Ramp, 8*time.Minute)
				if k == FaultHotContact {
					ramp = f.dur(f.Ramp, 5*time.Minute)
				}
				r += f.extraR * math.Min(1, float64(t.Sub(f.start))/float64(ramp))
			}
		}
		tss := amb + thermalKPerW*a*a*r
		if f := p.active(FaultThermalRunaway, pt.n, t); f != nil && on {
			pt.temp = math.Min(f.baseT+f.value(20)*t.Sub(f.start).Minutes(), 400)
		} else {
			pt.temp = tss + (pt.temp-tss)*math.Exp(-float64(dt)/float64(thermalTau))
		}

		s := telemetry.PortSample{N: pt.n, State: telemetry.StateIdle}
		switch {
		case pt.closed:
			s.State = telemetry.StateClosed
		case pt.tripped:
			s.State = telemetry.StateFault
		case on:
			s.State = telemetry.StateCharging
		}
		vr := round1(v)
		ar, wr, whr := round2(a), round1(w), round1(pt.wh)
		s.V, s.A, s.W, s.WH = &vr, &ar, &wr, &whr
		tr := round1(pt.temp + pt.rng.NormFloat64()*tempNoise)
		if f := p.active(FaultSensorStuck, pt.n, t); f != nil {
			tr = f.baseT
		}
		if f := p.active(FaultSensorRange, pt.n, t); f != nil {
			tr = f.value(180)
		}
		s.TempC = &tr
		if p.active(FaultSensorMissing, pt.n, t) != nil {
			s.TempC = nil
			if s.State == telemetry.StateCharging {
				reject = telemetry.ReasonMissingField
			}
		}
		if tr >= WarnTempC || ar >= OvercurrentX*p.Spec.RatedA {
			warm = true
		}
		if on {
			charging++
		}
		tel.Ports = append(tel.Ports, s)

		if f := p.active(FaultShortCircuit, pt.n, t); f != nil && f.Trip && on && !pt.tripped {
			// The pile's own protection opens the port after this sample.
			pt.tripped = true
			out = append(out, p.event(t, pt.n, telemetry.EventLocalTrip, "overcurrent protection"))
		}
	}

	// Residual current: a baseline, a little per charging port, more when
	// rain reaches an open-air pile.
	leak := p.leak + 0.15*float64(charging)
	if p.Spec.Kind == telemetry.SiteOpenAir && p.env.weather.Raining(t) {
		leak += 2
	}
	if f := p.active(FaultLeakage, 0, t); f != nil {
		ramp := f.dur(f.Ramp, time.Minute)
		leak += (f.value(45) - leak) * math.Min(1, float64(t.Sub(f.start))/float64(ramp))
	}
	leak = math.Max(0, round1(leak+p.rng.NormFloat64()*0.1))
	tel.LeakMA = &leak

	p.now = t
	p.next = t.Add(p.env.interval)
	if warm {
		p.next = t.Add(p.env.warm)
	}

	b, err := telemetry.Encode(tel)
	if err != nil {
		// Deliberately invalid (a missing sensor), or a bug: send it as it
		// is and say what the decoder will make of it.
		b, _ = telemetry.EncodeUnchecked(tel)
		var rej *telemetry.RejectError
		if errors.As(err, &rej) {
			reject = rej.Reason
		}
	} else if reject != "" {
		panic("simulators: a message meant to be invalid passed the encoder")
	}
	p.oracle.telemetry(tel, t)
	o := Outbound{Kind: telemetry.KindTelemetry, Payload: b, QoS: 0, Model: t, Reject: reject, Met: p.oracle.take()}
	switch {
	case p.held != nil:
		out = append(out, o, *p.held)
		p.held = nil
	case p.take(FaultReorder, t):
		p.held = &o
	case p.take(FaultDuplicate, t):
		out = append(out, o, o)
	default:
		out = append(out, o)
	}
	for i := range out {
		out[i].Sent = t
	}
	return out
}

// take uses one repetition of an active stream fault.
func (p *Pile) take(kind FaultKind, t time.Time) bool {
	f := p.active(kind, -1, t)
	if f == nil || f.left <= 0 {
		return false
	}
	f.left--
	return true
}

// CommandResult is what a pile did with one delivered command.
type CommandResult struct {
	Ack        telemetry.Ack
	Deliveries int  // how often this id has been delivered, this one included
	Executed   bool // false for a repeated id
	Out        []Outbound
}

// HandleCommand executes cmd at model time t (at most once per id) and
// returns the ack to send, subject to the ack faults.
func (p *Pile) HandleCommand(cmd *telemetry.Command, t time.Time) CommandResult {
	p.deliveries[cmd.ID]++
	res := CommandResult{Deliveries: p.deliveries[cmd.ID]}
	ack, seen := p.acks[cmd.ID]
	if !seen {
		res.Executed = true
		ack = p.execute(cmd)
		p.acks[cmd.ID] = ack
		p.ackOrder = append(p.ackOrder, cmd.ID)
		if len(p.ackOrder) > ackMemory {
			delete(p.acks, p.ackOrder[0])
			delete(p.deliveries, p.ackOrder[0])
			p.ackOrder = p.ackOrder[1:]
		}
	}
	ack.TS = p.ts(t)
	res.Ack = ack
	if p.activeAt(FaultLostAcks, t) != nil {
		if cmd.Action == telemetry.ActionClose && res.Deliveries == 1+CloseRetries {
			// The backend's last resend timed out unanswered once more.
			p.oracle.hit(cmd.Port, CondCloseFailed, t, AckTimeout)
			res.Out = append(res.Out, Outbound{Model: t, Met: p.oracle.take()})
		}
		return res
	}
	if ack.OK && ack.State == telemetry.StateClosed {
		p.oracle.ackedClosed(ack.Port)
	}
	b, _ := telemetry.Encode(&ack)
	o := Outbound{Kind: telemetry.KindAck, Payload: b, QoS: 1, Model: t}
	if f := p.activeAt(FaultLateAcks, t); f != nil {
		o.Delay = f.dur(f.Delay, 5*time.Second)
	}
	res.Out = append(res.Out, o)
	for i := range res.Out {
		res.Out[i].Sent = t
	}
	return res
}

func (p *Pile) execute(cmd *telemetry.Command) telemetry.Ack {
	ack := telemetry.Ack{ID: cmd.ID, Port: cmd.Port}
	if cmd.Port < 0 || cmd.Port > p.Spec.Ports {
		ack.Err = "no such port"
		return ack
	}
	var ports []*port
	if cmd.Port == 0 {
		ports = p.ports[1:]
	} else {
		ports = []*port{p.ports[cmd.Port]}
	}
	switch cmd.Action {
	case telemetry.ActionClose:
		for _, pt := range ports {
			pt.closed = true
		}
		if cmd.Port == 0 {
			p.mainOff = true
		}
		ack.OK, ack.State = true, telemetry.StateClosed
	case telemetry.ActionOpen:
		for _, pt := range ports {
			pt.closed, pt.tripped = false, false
		}
		p.mainOff = false
		ack.OK, ack.State = true, telemetry.StateIdle
		for _, pt := range ports {
			if pt.sess != nil && !pt.done {
				ack.State = telemetry.StateCharging
			}
		}
	default:
		ack.Err = "unknown action"
	}
	return ack
}

// PortState is the relay state of port n as the pile would report it now.
func (p *Pile) PortState(n int) telemetry.PortState {
	if n < 1 || n > p.Spec.Ports {
		return ""
	}
	pt := p.ports[n]
	switch {
	case pt.closed:
		return telemetry.StateClosed
	case pt.tripped:
		return telemetry.StateFault
	case pt.wasOn:
		return telemetry.StateCharging
	}
	return telemetry.StateIdle
}
