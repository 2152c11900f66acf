package alerting

import (
	"fmt"
	"strings"
	"time"

	"github.com/chargeguard/chargeguard/telemetry"
)

// Reset is an operator's request to reopen a port (port 0: the whole pile)
// that the engine holds closed. It is the only way the engine ever sends
// "open", and it succeeds only when the pile is online, no command to it is
// awaiting an ack, a reading has arrived since the trip, and every condition
// that latched the port has cleared. A refusal wraps one of ErrNoOperator,
// ErrUnknownPile, ErrBadPort, ErrNotLatched, ErrPileLatched,
// ErrCommandPending, ErrPileOffline or ErrConditionActive with the reason;
// its actions then hold only the audit record of the refusal.
//
// On success the latched alerts of the port resolve, and the actions hold
// the open command(s) and their audit. Resetting port 0 reopens every port
// that is not latched or closed on its own account: one open for port 0
// when there is none, one open per port otherwise.
func (e *Engine) Reset(now time.Time, site, pileID string, portN int, operator string) ([]Action, error) {
	b := batch{now: msOf(now), det: msOf(now)}
	operator = strings.TrimSpace(truncate(operator, 64))
	if operator == "" {
		return nil, ErrNoOperator
	}
	p := e.pileFor(site, pileID, false)
	if p == nil {
		return nil, fmt.Errorf("%w: %s/%s", ErrUnknownPile, truncate(site, 64), truncate(pileID, 64))
	}
	if portN < 0 || portN > telemetry.MaxPort {
		return nil, fmt.Errorf("%w: %d (want 0..%d)", ErrBadPort, portN, telemetry.MaxPort)
	}
	actor := "operator:" + operator
	var err error
	if portN == 0 {
		err = e.resetPile(&b, p, actor)
	} else {
		err = e.resetPort(&b, p, portN, actor)
	}
	if err != nil {
		e.record(&b, AuditRecord{
			At: timeOf(b.now), Site: p.site, Pile: p.id, Port: portN, Kind: AuditResetRefused,
			Actor: actor, Reason: ErrorReason(err), Detail: err.Error(),
		})
		return b.out(), err
	}
	return b.out(), nil
}

// canReset holds the checks common to a port and a pile (n 0): no command
// for it awaiting its ack (for a pile: none at all), the pile online, and a
// reading newer than the trip.
func (e *Engine) canReset(b *batch, p *pile, n int, latchedAt int64) error {
	for _, c := range p.pending {
		if n == 0 || c.port == 0 || int(c.port) == n {
			return fmt.Errorf("%w: %s of port %d (id %s, attempt %d)", ErrCommandPending, c.action, c.port, c.id, c.attempt)
		}
	}
	if p.dead {
		return fmt.Errorf("%w: its last status was a death message", ErrPileOffline)
	}
	if !p.everTel || b.now-p.lastTelAt >= p.lim.staleMS {
		return fmt.Errorf("%w: no telemetry for %s", ErrPileOffline, p.lim.ReportInterval*time.Duration(p.lim.OfflineIntervals))
	}
	if p.lastTelAt <= latchedAt {
		return fmt.Errorf("%w: no reading has arrived since the trip", ErrConditionActive)
	}
	// Contract v1.1: the evidence that the condition cleared must be
	// fresh, not whatever the pile said last before it went quiet.
	if b.now-p.lastTelAt > evidenceMS {
		return fmt.Errorf("%w: no telemetry in the last %s to show the condition cleared", ErrConditionActive, evidenceMS*time.Millisecond)
	}
	return nil
}

// freshReading reports whether port n's entry was in accepted telemetry
// within evidenceMS of now and after the trip at latchedAt.
func freshReading(b *batch, ps *port, latchedAt int64) bool {
	return ps != nil && ps.readAt > latchedAt && b.now-ps.readAt <= evidenceMS
}

// conductsWhileOff refuses a reset while port n's last reading says it is
// off (closed or fault) yet still draws current: its relay may be welded,
// whether or not relay_welded has fired yet (the reading may have come
// before our close was acked; found by TestModel).
func conductsWhileOff(p *pile, n int, ps *port) error {
	off := ps.state == stateCode(telemetry.StateClosed) || ps.state == stateCode(telemetry.StateFault)
	if off && ((!isNaN32(ps.lastA) && float64(ps.lastA) > p.lim.WeldedA) || (!isNaN32(ps.lastW) && float64(ps.lastW) > p.lim.WeldedW)) {
		return fmt.Errorf("%w: port %d reports %s but still draws %s / %s", ErrConditionActive, n, portStates[ps.state], fmtReading(ps.lastA, "A"), fmtReading(ps.lastW, "W"))
	}
	return nil
}

func fmtReading(v float32, unit string) string {
	if isNaN32(v) {
		return "missing"
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}

func (e *Engine) resetPort(b *batch, p *pile, n int, actor string) error {
	if p.latch != 0 || p.close0 {
		return fmt.Errorf("%w (%s)", ErrPileLatched, firstReason(p.latch))
	}
	ps := p.portIf(n)
	if ps == nil || !ps.held() {
		return fmt.Errorf("%w: port %d", ErrNotLatched, n)
	}
	if err := e.canReset(b, p, n, ps.latchedAt); err != nil {
		return err
	}
	if ps.latch != 0 && !freshReading(b, ps, ps.latchedAt) {
		return fmt.Errorf("%w: no reading of port %d in the last %s to show the condition cleared", ErrConditionActive, n, evidenceMS*time.Millisecond)
	}
	if err := conductsWhileOff(p, n, ps); err != nil {
		return err
	}
	lim := p.lim
	for name := AlertTempWarning; name < alertCount; name++ {
		if ps.latch&name.bit() == 0 {
			continue
		}
		switch name {
		case AlertOverheat, AlertOverheatRate:
			if isNaN32(ps.lastTemp) || float64(ps.lastTemp) >= lim.warnClear {
				return fmt.Errorf("%w: %s: temp_c %s is not below %g °C", ErrConditionActive, name, fmtReading(ps.lastTemp, "°C"), lim.warnClear)
			}
			if name == AlertOverheatRate && !isNaN32(ps.prevTemp) && float64(ps.lastTemp-ps.prevTemp) > lim.TempHysteresisC {
				return fmt.Errorf("%w: %s: temp_c still rising (%.1f → %.1f °C)", ErrConditionActive, name, ps.prevTemp, ps.lastTemp)
			}
		case AlertOvercurrent, AlertShortCircuit:
			// A missing current is no evidence (contract v1.1).
			if ps.ocCount > 0 || isNaN32(ps.lastA) || float64(ps.lastA) >= lim.OvercurrentFactor*p.ratedA() {
				return fmt.Errorf("%w: %s: a %s is not below %g A", ErrConditionActive, name, fmtReading(ps.lastA, "A"), lim.OvercurrentFactor*p.ratedA())
			}
		case AlertSensorFault:
			if isNaN32(ps.lastTemp) {
				return fmt.Errorf("%w: %s: no plausible temp_c reading since the fault", ErrConditionActive, name)
			}
		}
	}
	resolved := ps.latch | AlertMaxDuration.bit()
	ps.latch, ps.closeHeld, ps.closeAcked, ps.closeReason, ps.ocCount = 0, false, false, 0, 0
	for name := AlertTempWarning; name < alertCount; name++ {
		if resolved&name.bit() != 0 {
			e.resolve(b, p, n, name)
		}
	}
	e.send(b, p, n, telemetry.ActionOpen, "reset", actor, AuditCommand, "")
	e.record(b, AuditRecord{At: timeOf(b.now), Site: p.site, Pile: p.id, Port: n, Kind: AuditReset, Actor: actor, Reason: "reset", Action: telemetry.ActionOpen})
	p.recomputeDue()
	return nil
}

func (e *Engine) resetPile(b *batch, p *pile, actor string) error {
	if p.latch == 0 && !p.close0 {
		return fmt.Errorf("%w: the pile is not latched as a whole (reset its ports one by one)", ErrNotLatched)
	}
	if err := e.canReset(b, p, 0, p.latchedAt); err != nil {
		return err
	}
	lim := p.lim
	if p.latch&AlertSmoke.bit() != 0 && p.smoke {
		return fmt.Errorf("%w: smoke: no reading without smoke since the last smoke report", ErrConditionActive)
	}
	if p.latch&AlertLeakage.bit() != 0 && p.leak {
		return fmt.Errorf("%w: leakage: leak_ma is not below %g mA", ErrConditionActive, lim.leakClear)
	}
	for i := range p.ports {
		ps := &p.ports[i]
		if ps.active&AlertRelayWelded.bit() == 0 {
			continue
		}
		// Contract v1.1: only a current reading at or below welded_a,
		// fresh, is evidence; a missing a is none, whatever w says.
		if !freshReading(b, ps, p.latchedAt) || isNaN32(ps.lastA) {
			return fmt.Errorf("%w: relay_welded: no fresh current reading (a) of port %d shows the relay open", ErrConditionActive, i+1)
		}
		if float64(ps.lastA) > lim.WeldedA || (!isNaN32(ps.lastW) && float64(ps.lastW) > lim.WeldedW) {
			return fmt.Errorf("%w: relay_welded: port %d still draws %s / %s", ErrConditionActive, i+1, fmtReading(ps.lastA, "A"), fmtReading(ps.lastW, "W"))
		}
	}

	for i := range p.ports {
		if err := conductsWhileOff(p, i+1, &p.ports[i]); err != nil {
			return err
		}
	}

	latched, acked := p.latch, p.close0Acked
	p.latch, p.close0, p.close0Acked = 0, false, false
	for name := AlertTempWarning; name < alertCount; name++ {
		if !policies[name].pileWide || latched&name.bit() == 0 {
			continue
		}
		e.resolve(b, p, 0, name)
		for i := range p.ports {
			e.resolve(b, p, i+1, name)
		}
	}
	// Ports latched or closed on their own account stay closed: the port-0
	// close keeps holding them, now as their own close.
	var keep []int
	for i := range p.ports {
		if ps := &p.ports[i]; ps.held() {
			keep = append(keep, i+1)
			if !ps.closeHeld {
				ps.closeHeld, ps.closeAcked = true, acked
				ps.closeReason = AlertName(0)
				for name := AlertTempWarning; name < alertCount; name++ {
					if ps.latch&name.bit() != 0 {
						ps.closeReason = name
						break
					}
				}
			}
		}
	}
	if len(keep) == 0 {
		e.send(b, p, 0, telemetry.ActionOpen, "reset", actor, AuditCommand, "")
	} else {
		for n := 1; n <= p.nports(); n++ {
			if ps := p.portIf(n); ps == nil || !ps.held() {
				e.send(b, p, n, telemetry.ActionOpen, "reset", actor, AuditCommand, "")
			}
		}
	}
	detail := ""
	if len(keep) > 0 {
		detail = fmt.Sprintf("ports %v stay closed", keep)
	}
	e.record(b, AuditRecord{At: timeOf(b.now), Site: p.site, Pile: p.id, Port: 0, Kind: AuditReset, Actor: actor, Reason: "reset", Action: telemetry.ActionOpen, Detail: detail})
	p.recomputeDue()
	return nil
}

// Ack records an operator's acknowledgement of an active alert, by its
// Key. It changes nothing about safety: the alert stays active until its
// condition clears (and, for a latched one, the port is reset). The first
// acknowledgement is kept. The actions hold the audit record.
func (e *Engine) Ack(now time.Time, key, operator string) ([]Action, error) {
	operator = strings.TrimSpace(truncate(operator, 64))
	if operator == "" {
		return nil, ErrNoOperator
	}
	name, site, pileID, port, ok := parseAlertKey(key)
	if !ok {
		return nil, fmt.Errorf("%w: %q is not alertname/site/pile/port", ErrUnknownAlert, truncate(key, 100))
	}
	p := e.pileFor(site, pileID, false)
	if p == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownAlert, key)
	}
	rec := e.alerts[alertKey{p.idx, uint8(port), name}]
	if rec == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownAlert, key)
	}
	if rec.ackedBy == "" {
		rec.ackedBy, rec.ackedAt = operator, now.UTC()
	}
	b := batch{now: msOf(now)}
	e.record(&b, AuditRecord{
		At: timeOf(b.now), Site: site, Pile: pileID, Port: port, Kind: AuditAlertAck,
		Actor: "operator:" + operator, Reason: name.String(), Detail: "alert " + key,
	})
	return b.out(), nil
}
