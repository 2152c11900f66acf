package alerting

import (
	"math"

	"github.com/chargeguard/chargeguard/telemetry"
)

// onTelemetry applies the policy to one telemetry message. dmg, when not
// nil, says which parts of it did not validate (contract v1.1: the rules
// still run on every part that did).
func (e *Engine) onTelemetry(b *batch, p *pile, t *telemetry.Telemetry, dmg *telemetry.Damage) {
	// Any telemetry shows the pile connected, whether or not its
	// contents can be used.
	p.heardAt, p.anyTelAt, p.dead = b.now, b.now, false
	e.resolve(b, p, 0, AlertPileOffline)
	e.protocolRuns(b, p, dmg)
	if dmg != nil && dmg.NoSeq {
		// It cannot be placed in the stream: only the single-sample
		// rules, which are harmless to repeat.
		e.stats.Unplaced++
		e.asideTrips(b, p, t, dmg)
		p.recomputeDue()
		return
	}
	// A message without a usable ts is placed by its seq alone (its ts is
	// never newer than anything) and puts the pile on receive time.
	tsOK := dmg == nil || !dmg.NoTS
	ts := t.TS
	if !tsOK {
		ts = math.MinInt64
	}
	class := p.classify(t.Seq, ts)
	switch class {
	case seqDup:
		e.stats.Duplicates++
	case seqStale:
		e.stats.Stale++
	case seqLate:
		e.stats.Late++
	case seqRestart:
		e.stats.Restarts++
	}
	if class == seqDup || class == seqStale || class == seqLate {
		e.asideTrips(b, p, t, dmg)
		p.acceptRun = 0
		if p.asideRun < 255 {
			p.asideRun++
		}
		if p.asideRun >= streamRun {
			e.fire(b, p, 0, AlertPileStream, float64(p.asideRun))
		}
		p.recomputeDue()
		return
	}
	p.asideRun = 0
	if p.acceptRun < 255 {
		p.acceptRun++
	}
	if p.acceptRun >= streamRun {
		e.resolve(b, p, 0, AlertPileStream)
	}

	tb := e.timeBase(b, p, t.TS, tsOK)
	lim := p.lim
	p.everTel, p.lastTelAt, p.lastTS = true, b.now, tb
	if tsOK {
		p.sentTS, p.haveSent = t.TS, true
	}

	// Pile-wide conditions first: their port-0 close covers the ports.
	// Smoke clears with a reading taken after the last smoke report, on
	// the pile's time base (arrival order once its clock is distrusted).
	switch {
	case t.Smoke != nil && *t.Smoke:
		p.reportsSmoke, p.smoke = true, true
		p.smokeTB = max(p.smokeTB, tb)
		e.trip(b, p, 0, AlertSmoke, 1)
	case t.Smoke != nil:
		p.reportsSmoke = true
		if tb >= p.smokeTB {
			p.smoke = false
		}
	case !p.reportsSmoke && tb > p.smokeTB:
		// A pile without a smoke reading in its telemetry reports smoke
		// by event only; a reading taken after the event clears it.
		p.smoke = false
	}
	if v, ok := value(t.LeakMA); ok {
		switch {
		case v >= lim.LeakMA:
			p.leak = true
			e.trip(b, p, 0, AlertLeakage, v)
		case v < lim.leakClear:
			p.leak = false
		}
	}

	for i := range t.Ports {
		if s := &t.Ports[i]; s.N >= 1 && s.N <= telemetry.MaxPort {
			e.evalPort(b, p, s, t, tb, dmg.PortBroken(s.N))
		}
	}
	any := false
	for i := range p.ports {
		any = any || p.ports[i].charging
	}
	if any != p.anyCharging {
		e.chargingChanged = true
	}
	p.anyCharging = any
	p.recomputeDue()
}

// protocolRuns keeps the runs behind pile_protocol: three rejected
// telemetry messages in a row, or any of an unknown version, raise it; ten
// valid in a row resolve it.
func (e *Engine) protocolRuns(b *batch, p *pile, dmg *telemetry.Damage) {
	if dmg == nil {
		p.rejectRun = 0
		if p.validRun < 255 {
			p.validRun++
		}
		if p.validRun >= protocolClearRun {
			e.resolve(b, p, 0, AlertPileProtocol)
		}
		return
	}
	e.stats.Partial++
	p.validRun = 0
	if p.rejectRun < 255 {
		p.rejectRun++
	}
	switch {
	case dmg.BadVersion:
		e.fire(b, p, 0, AlertPileProtocol, 0)
	case p.rejectRun >= protocolRun:
		e.fire(b, p, 0, AlertPileProtocol, float64(p.rejectRun))
	}
}

// timeBase returns the time an accepted telemetry message counts at for
// the timed rules, and keeps the pile's time base (contract v1.1): the
// pile's ts while every accepted message's ts is within max_clock_skew of our
// receive time and later than the previous accepted one's; from the first
// message that breaks either, our receive time until the next birth. A
// switch of base moves the running timers onto the new base and restarts
// the rate-of-rise windows, whose samples from before it would mix clocks.
func (e *Engine) timeBase(b *batch, p *pile, ts int64, tsOK bool) int64 {
	recv := b.det
	if !p.recvClock {
		skew := ts - recv
		if !tsOK || skew > p.lim.skewMS || skew < -p.lim.skewMS || (p.haveSent && ts <= p.sentTS) {
			p.recvClock = true
			e.stats.ClockDistrust++
		}
	}
	tb := ts
	if p.recvClock {
		tb = max(recv, p.lastTS)
		if !p.baseRecv {
			tb = recv
		}
	}
	if p.everTel && p.recvClock != p.baseRecv {
		shift := tb - p.pileNow(b.now)
		if p.smokeTB != 0 {
			p.smokeTB += shift
		}
		for i := range p.ports {
			ps := &p.ports[i]
			if ps.sessionStart != 0 {
				ps.sessionStart += shift
			}
			if ps.lowSince != 0 {
				ps.lowSince += shift
			}
			if ps.rise != nil {
				ps.rise.reset()
			}
		}
	}
	p.baseRecv = p.recvClock
	return tb
}

func value(v *float64) (float64, bool) {
	if v == nil || *v != *v {
		return 0, false
	}
	return *v, true
}

// power is the port's power: w, or v × a when w is not reported.
func power(s *telemetry.PortSample) (float64, bool) {
	if w, ok := value(s.W); ok {
		return w, true
	}
	v, okV := value(s.V)
	a, okA := value(s.A)
	return v * a, okV && okA
}

// evalPort applies the per-port rows of the policy to one in-order sample.
//
// tb is the message's time on the pile's time base. broken says that the
// entry's state, a or temp_c did not validate: a port that says it is
// charging, or was charging in the last accepted message, is then a
// sensor_fault (the guard is blind on it), and its last state is kept.
func (e *Engine) evalPort(b *batch, p *pile, s *telemetry.PortSample, t *telemetry.Telemetry, tb int64, broken bool) {
	lim := p.lim
	n := s.N
	ps := p.port(n)
	if !broken {
		// A reading a reset may take as evidence; a broken one is none.
		ps.readAt = b.now
	}
	charging := s.State == telemetry.StateCharging
	if broken && s.State == "" {
		// The state did not validate: keep the last one for the session
		// and timers; the sensor_fault below closes the port anyway.
		charging = ps.charging
	}
	temp, tempOK := value(s.TempC)
	tempValid := tempOK && temp >= lim.SensorMinC && temp <= lim.SensorMaxC
	a, aOK := value(s.A)
	w, wOK := power(s)

	if s.State != "" {
		ps.state = stateCode(s.State)
	}
	wasCharging := ps.charging
	if !charging || !ps.charging {
		// A session starts with the first charging sample and ends with
		// the first that is not.
		ps.sessionStart, ps.lowSince = 0, 0
		if charging {
			ps.sessionStart = tb
		}
		if ps.rise != nil {
			ps.rise.reset()
		}
	}
	ps.charging = charging
	ps.prevTemp, ps.lastTemp = ps.lastTemp, f32(temp, tempValid)
	ps.lastA, ps.lastW = f32(a, aOK), f32(w, wOK)

	// The cut did not happen: current after an acked close (in telemetry
	// that arrived after the ack: acks are ordered by arrival, their ts is
	// never used), or current in a port the pile itself reports closed or
	// faulted without any close of ours.
	off := ps.state == stateCode(telemetry.StateClosed) || ps.state == stateCode(telemetry.StateFault)
	if ps.closeAcked || p.close0Acked || (off && !ps.closeHeld && !p.close0) {
		if aOK && a > lim.WeldedA {
			e.trip(b, p, n, AlertRelayWelded, a)
		} else if wOK && w > lim.WeldedW {
			e.trip(b, p, n, AlertRelayWelded, w)
		}
	}

	rated := p.ratedA()
	if aOK && rated > 0 && a >= lim.ShortCircuitFactor*rated {
		e.trip(b, p, n, AlertShortCircuit, a)
	}
	if (charging && (!tempValid || !aOK)) || (broken && (charging || wasCharging)) {
		e.trip(b, p, n, AlertSensorFault, temp)
	}
	if tempValid {
		if temp >= lim.OverheatC {
			e.trip(b, p, n, AlertOverheat, temp)
		}
		if charging {
			if ps.rise == nil {
				ps.rise = new(riseRing)
			}
			if ps.rise.push(tb, float32(temp), lim.riseMinStepMS) {
				if r, ok := ps.rise.slope(lim.riseWindowMS, lim.RiseMinSamples); ok && r >= lim.RiseCPerMin {
					if m := ps.rise.medianSlope(lim.riseWindowMS); m >= lim.RiseCPerMin {
						e.trip(b, p, n, AlertOverheatRate, min(r, m))
					}
				}
			}
		}
	}
	if aOK && rated > 0 && a >= lim.OvercurrentFactor*rated {
		if ps.ocCount < 255 {
			ps.ocCount++
		}
		if int(ps.ocCount) >= lim.OvercurrentSamples {
			e.trip(b, p, n, AlertOvercurrent, a)
		}
	} else {
		ps.ocCount = 0
	}

	// Warnings: fire at the threshold, clear below it minus hysteresis.
	// The warning is not raised on top of an overheat: that alert says it.
	switch {
	case tempValid && temp >= lim.WarnC:
		if ps.active&AlertOverheat.bit() == 0 {
			e.fire(b, p, n, AlertTempWarning, temp)
		}
	case tempValid && temp < lim.warnClear, !tempOK && !charging:
		e.resolve(b, p, n, AlertTempWarning)
	}
	if charging && tempValid && t.AmbientC != nil {
		switch d := temp - *t.AmbientC; {
		case d >= lim.HotContactC:
			e.fire(b, p, n, AlertHotContact, d)
		case d < lim.hotClear:
			e.resolve(b, p, n, AlertHotContact)
		}
	} else if !charging {
		e.resolve(b, p, n, AlertHotContact)
	}

	if charging && wOK {
		if w > lim.FullW {
			ps.lowSince = 0
		} else if ps.lowSince == 0 {
			ps.lowSince = tb
		}
	}
	e.timers(b, p, n, ps)
}

// timers applies the time-driven port rules: maximum session duration and
// full battery. Observe and Tick both call it.
//
// Both durations are measured on the pile's clock (its ts), like the rate of
// rise: a difference of two readings of the same clock does not care about
// the pile's offset from ours, nor about a backlog delaying delivery. Between
// readings, Tick extrapolates the pile's clock by our elapsed time.
func (e *Engine) timers(b *batch, p *pile, n int, ps *port) {
	if !ps.charging {
		return
	}
	lim := p.lim
	now := p.pileNow(b.now)
	if ps.sessionStart != 0 && now-ps.sessionStart > lim.maxSessionMS {
		e.trip(b, p, n, AlertMaxDuration, float64(now-ps.sessionStart)/3.6e6)
	}
	if ps.lowSince != 0 && now-ps.lowSince >= lim.fullAfterMS && e.closePort(b, p, n, reasonFull) {
		b.rest = append(b.rest, Info{
			Kind: "full", Site: p.site, Pile: p.id, Port: n, At: timeOf(b.now),
			Detail: "at most " + ftoa(lim.FullW) + " W for " + lim.FullAfter.String(),
		})
	}
}

// asideTrips applies the single-sample rows of the policy (overheat, short
// circuit, leakage, smoke, sensor fault) to a telemetry message that is set
// aside: a duplicate, a stale or late one, or one that cannot be placed in
// the stream. Its readings were true when taken, so a trip in them still
// closes (repeating one is harmless, missing one is not); but it updates
// no window, counter or last reading, so it never counts twice and never
// moves a window back.
func (e *Engine) asideTrips(b *batch, p *pile, t *telemetry.Telemetry, dmg *telemetry.Damage) {
	lim := p.lim
	if t.Smoke != nil && *t.Smoke {
		// Only a reading taken from now on clears it.
		p.smoke = true
		p.smokeTB = max(p.smokeTB, p.pileNow(b.now))
		e.trip(b, p, 0, AlertSmoke, 1)
	}
	if v, ok := value(t.LeakMA); ok && v >= lim.LeakMA {
		p.leak = true
		e.trip(b, p, 0, AlertLeakage, v)
	}
	rated := p.ratedA()
	for i := range t.Ports {
		s := &t.Ports[i]
		if s.N < 1 || s.N > telemetry.MaxPort {
			continue
		}
		temp, tempOK := value(s.TempC)
		tempValid := tempOK && temp >= lim.SensorMinC && temp <= lim.SensorMaxC
		a, aOK := value(s.A)
		if aOK && rated > 0 && a >= lim.ShortCircuitFactor*rated {
			e.trip(b, p, s.N, AlertShortCircuit, a)
		}
		charging := s.State == telemetry.StateCharging
		wasCharging := false
		if ps := p.portIf(s.N); ps != nil {
			wasCharging = ps.charging
		}
		if (charging && (!tempValid || !aOK)) || (dmg.PortBroken(s.N) && (charging || wasCharging)) {
			e.trip(b, p, s.N, AlertSensorFault, temp)
		}
		if tempValid && temp >= lim.OverheatC {
			e.trip(b, p, s.N, AlertOverheat, temp)
		}
	}
}

// onStatus handles a birth or a death. A retained one is the broker's copy
// of the pile's latest status, re-delivered because we (re)subscribed: it
// is not news of the pile. Its configuration is taken, and a retained death
// still marks the pile dead; but it starts no new stream and no new
// offline clock (contract v1.1), and resends nothing.
func (e *Engine) onStatus(b *batch, p *pile, s *telemetry.Status, retained bool) {
	if !s.Online {
		p.dead = true
		if p.anyCharging {
			e.fire(b, p, 0, AlertPileOffline, 0)
		}
		p.recomputeDue()
		return
	}
	kind := s.Kind
	if kind != telemetry.SiteResidential && kind != telemetry.SiteOpenAir {
		kind = ""
	}
	if kind != p.kind {
		p.kind = kind
		p.lim = e.limitsFor(p.site, kind)
	}
	if s.Ports >= 0 && s.Ports <= telemetry.MaxPort {
		p.birthPorts = uint8(s.Ports)
		if cap(p.ports) < s.Ports {
			// Size the ports once rather than growing them by appends.
			ports := make([]port, len(p.ports), s.Ports)
			copy(ports, p.ports)
			p.ports = ports
		}
	}
	if s.RatedA > 0 && s.RatedA == s.RatedA {
		// Stored as sent (within float32), used only up to the cap.
		p.rated = float32(min(s.RatedA, 1e6))
		if s.RatedA > p.lim.MaxRatedA {
			e.fire(b, p, 0, AlertPileConfig, s.RatedA)
		} else {
			e.resolve(b, p, 0, AlertPileConfig)
		}
	}
	if retained {
		// The latest status is a birth, but nothing says the pile is
		// there now: its clocks stay as they are.
		p.dead = false
		p.recomputeDue()
		return
	}
	// A birth starts a new seq stream, a new time base (the pile's own
	// clock, trusted again until it breaks the rules) and a new staleness
	// clock.
	p.dead, p.haveSeq, p.haveCand, p.haveSent, p.recvClock = false, false, false, false, false
	p.heardAt = b.now
	if p.everTel {
		p.lastTelAt, p.anyTelAt = b.now, b.now
	}
	e.resolve(b, p, 0, AlertPileOffline)

	// The pile (re)connected: resend at once every close still awaiting
	// its ack (contract v1.1: on every birth), and, as it may have lost
	// its relay state, assert again every close that was acked.
	e.resendCloses(b, p, "pile reborn")
	if p.close0 && p.close0Acked {
		p.close0Acked = false
		e.send(b, p, 0, telemetry.ActionClose, firstReason(p.latch), "rule:"+firstReason(p.latch), AuditLatchReassert, "pile reborn")
	}
	for i := range p.ports {
		ps := &p.ports[i]
		if !p.close0 && ps.closeHeld && ps.closeAcked {
			ps.closeAcked = false
			r := ps.closeReason.String()
			e.send(b, p, i+1, telemetry.ActionClose, r, "rule:"+r, AuditLatchReassert, "pile reborn")
		}
	}
	p.recomputeDue()
}

// firstReason names the first latch reason in mask.
func firstReason(mask alertMask) string {
	for n := AlertTempWarning; n < alertCount; n++ {
		if mask&n.bit() != 0 {
			return n.String()
		}
	}
	return "latched"
}

// onEvent handles a pile's event.
func (e *Engine) onEvent(b *batch, p *pile, ev *telemetry.Event) {
	switch ev.Kind {
	case telemetry.EventSmoke:
		p.smoke = true
		// The event's time on the pile's time base: its ts while the
		// pile's clock is trusted and the ts plausible, else now.
		tb := b.det
		if !p.recvClock && ev.TS-b.det <= p.lim.skewMS && b.det-ev.TS <= p.lim.skewMS {
			tb = ev.TS
		}
		p.smokeTB = max(p.smokeTB, tb)
		e.trip(b, p, 0, AlertSmoke, 1)
	case telemetry.EventPlugOut:
		if ps := p.portIf(ev.Port); ps != nil {
			// The session is over: the next charging sample starts a new one
			// (a plug_out that overtakes the new bike's first telemetry must
			// not leave that session untimed).
			ps.sessionStart, ps.lowSince, ps.charging = 0, 0, false
			e.resolve(b, p, ev.Port, AlertMaxDuration)
			// A port closed only because its battery was full reopens when
			// that bike is unplugged, so the next rider can charge without
			// calling an operator. Nothing else reopens by itself: not a
			// latched port, not one under a pile-wide close, not a port
			// stopped for max_duration (a battery that never fills wants a
			// look), and not while its close is still unacked.
			if ps.closeHeld && ps.closeAcked && ps.latch == 0 && ps.closeReason == reasonFull &&
				p.latch == 0 && !p.close0 && !e.pendingFor(p, ev.Port) {
				ps.closeHeld, ps.closeAcked, ps.closeReason = false, false, 0
				e.send(b, p, ev.Port, telemetry.ActionOpen, "plug_out", "rule:full", AuditCommand, "bike unplugged after a full charge")
			}
			p.recomputeDue()
		}
	case telemetry.EventLocalTrip, telemetry.EventDoorOpen:
		b.rest = append(b.rest, Info{
			Kind: string(ev.Kind), Site: p.site, Pile: p.id, Port: ev.Port,
			At: timeOf(b.now), Detail: truncate(ev.Detail, 200),
		})
	}
}

// pendingFor reports whether a command for port n (or port 0) of p awaits
// its ack.
func (e *Engine) pendingFor(p *pile, n int) bool {
	for _, c := range p.pending {
		if int(c.port) == n || c.port == 0 {
			return true
		}
	}
	return false
}
