package alerting

import (
	"github.com/chargeguard/chargeguard/telemetry"
)

// onTelemetry applies the policy to one telemetry message.
func (e *Engine) onTelemetry(b *batch, p *pile, t *telemetry.Telemetry) {
	switch p.classify(t.Seq, t.TS) {
	case seqDup:
		e.stats.Duplicates++
		return
	case seqStale:
		e.stats.Stale++
		return
	case seqLate:
		e.stats.Late++
		e.lateTrips(b, p, t)
		return
	case seqRestart:
		e.stats.Restarts++
	}
	lim := p.lim
	p.everTel, p.dead, p.lastTelAt = true, false, b.now
	if t.TS > p.lastTS {
		p.lastTS = t.TS
	}
	e.resolve(b, p, 0, AlertPileOffline)

	// Pile-wide conditions first: their port-0 close covers the ports.
	switch {
	case t.Smoke != nil && *t.Smoke:
		p.reportsSmoke, p.smoke = true, true
		p.smokeTS = max(p.smokeTS, t.TS)
		e.trip(b, p, 0, AlertSmoke, 1)
	case t.Smoke != nil:
		p.reportsSmoke = true
		if t.TS >= p.smokeTS {
			p.smoke = false
		}
	case !p.reportsSmoke && t.TS > p.smokeTS:
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
			e.evalPort(b, p, s, t)
		}
	}
	any := false
	for i := range p.ports {
		any = any || p.ports[i].charging
	}
	p.anyCharging = any
	p.recomputeDue()
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
func (e *Engine) evalPort(b *batch, p *pile, s *telemetry.PortSample, t *telemetry.Telemetry) {
	lim := p.lim
	n := s.N
	ps := p.port(n)
	charging := s.State == telemetry.StateCharging
	temp, tempOK := value(s.TempC)
	tempValid := tempOK && temp >= lim.SensorMinC && temp <= lim.SensorMaxC
	a, aOK := value(s.A)
	w, wOK := power(s)

	ps.state = stateCode(s.State)
	if !charging || !ps.charging {
		// A session starts with the first charging sample and ends with
		// the first that is not.
		ps.sessionStart, ps.lowSince = 0, 0
		if charging {
			ps.sessionStart = t.TS
		}
		if ps.rise != nil {
			ps.rise.reset()
		}
	}
	ps.charging = charging
	ps.prevTemp, ps.lastTemp = ps.lastTemp, f32(temp, tempValid)
	ps.lastA, ps.lastW = f32(a, aOK), f32(w, wOK)

	// The cut did not happen: current after an acked close, in telemetry
	// the pile took after its ack.
	if (ps.closeAcked && t.TS >= ps.ackTS) || (p.close0Acked && t.TS >= p.close0AckTS) {
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
	if charging && (!tempValid || !aOK) {
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
			if ps.rise.push(t.TS, float32(temp), lim.riseMinStepMS) {
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
			ps.lowSince = t.TS
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

// lateTrips applies the single-sample rows of the policy to a telemetry
// message that arrived after a newer one. Its readings were true when
// taken, so a trip in them still closes; but it updates no window, counter
// or last reading, so it never counts twice and never moves a window back.
func (e *Engine) lateTrips(b *batch, p *pile, t *telemetry.Telemetry) {
	lim := p.lim
	if t.Smoke != nil && *t.Smoke {
		p.smoke = true
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
		if s.State == telemetry.StateCharging && (!tempValid || !aOK) {
			e.trip(b, p, s.N, AlertSensorFault, temp)
		}
		if tempValid && temp >= lim.OverheatC {
			e.trip(b, p, s.N, AlertOverheat, temp)
		}
	}
}

// onStatus handles a birth or a death.
func (e *Engine) onStatus(b *batch, p *pile, s *telemetry.Status) {
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
	if s.RatedA > 0 && s.RatedA < 1e6 {
		p.rated = float32(s.RatedA)
	}
	// A birth starts a new seq stream and a new staleness clock.
	p.dead, p.haveSeq = false, false
	if p.everTel {
		p.lastTelAt = b.now
	}
	e.resolve(b, p, 0, AlertPileOffline)

	// The pile (re)connected and may have lost its relay state: assert
	// again every close that was acked. Pending ones are being resent.
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
func firstReason(mask uint16) string {
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
		p.smokeTS = max(p.smokeTS, ev.TS)
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
