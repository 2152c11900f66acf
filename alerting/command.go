package alerting

import (
	"strconv"
	"time"

	"github.com/chargeguard/chargeguard/telemetry"
)

// closePort closes port n for reason unless the engine already holds it
// closed (by its own close or a port-0 close), and reports whether it sent
// a command. A held close that is not acked yet is being resent by Tick.
func (e *Engine) closePort(b *batch, p *pile, n int, reason AlertName) bool {
	ps := p.port(n)
	if p.close0 || ps.closeHeld {
		return false
	}
	ps.closeHeld, ps.closeAcked, ps.closeReason = true, false, reason
	p.portState = true
	r := reason.String()
	e.send(b, p, n, telemetry.ActionClose, r, "rule:"+r, AuditCommand, "")
	return true
}

// closePile closes every port (port 0) unless a port-0 close is held.
func (e *Engine) closePile(b *batch, p *pile, reason string) bool {
	if p.close0 {
		return false
	}
	p.close0, p.close0Acked = true, false
	e.send(b, p, 0, telemetry.ActionClose, reason, "rule:"+reason, AuditCommand, "")
	return true
}

// send issues a new command with a new id and tracks it until its ack.
func (e *Engine) send(b *batch, p *pile, port int, action telemetry.Action, reason, actor string, kind AuditKind, detail string) {
	c := &command{
		id: e.opts.NewID(), action: action, reason: reason,
		ts: b.now, sentAt: b.now, detectedAt: b.det,
		port: uint8(port), attempt: 1,
	}
	p.pending = append(p.pending, c)
	if !p.inPending {
		p.inPending = true
		e.pendingPiles = append(e.pendingPiles, p.idx)
	}
	b.cmds = append(b.cmds, c.send(p))
	e.record(b, AuditRecord{
		At: timeOf(b.now), Site: p.site, Pile: p.id, Port: port, Kind: kind,
		Actor: actor, Reason: reason, CommandID: c.id, Action: action, Attempt: 1, Detail: detail,
	})
}

// onAck settles the command an ack answers.
func (e *Engine) onAck(b *batch, p *pile, a *telemetry.Ack) {
	var c *command
	for i, pc := range p.pending {
		if pc.id == a.ID {
			c = pc
			p.pending = append(p.pending[:i], p.pending[i+1:]...)
			break
		}
	}
	rec := AuditRecord{
		At: timeOf(b.now), Site: p.site, Pile: p.id, Port: a.Port, Actor: "pile",
		CommandID: truncate(a.ID, 64), Detail: truncate(a.Err, 200),
	}
	late := false
	if c == nil {
		for _, id := range p.failed {
			if id == a.ID {
				late = true
			}
		}
		if !late {
			rec.Kind = AuditAckUnknown
			e.record(b, rec)
			return
		}
		// A close given up on is acked after all: the port is cut, but
		// close_failed stays latched until a reset.
		c = &command{id: a.ID, action: telemetry.ActionClose, port: uint8(max(0, min(a.Port, telemetry.MaxPort)))}
	}
	rec.Port, rec.Action, rec.Reason, rec.Attempt = int(c.port), c.action, c.reason, int(c.attempt)
	ok := a.OK
	if c.action == telemetry.ActionClose {
		ok = ok && (a.State == "" || a.State == telemetry.StateClosed || a.State == telemetry.StateFault)
	}
	if !ok {
		rec.Kind = AuditAckFailed
		if rec.Detail == "" {
			rec.Detail = "acked in state " + truncate(string(a.State), 20)
		}
		e.record(b, rec)
		if c.action == telemetry.ActionClose && !late {
			e.closeFailed(b, p, c, "the pile refused the close")
		}
		return
	}
	rec.Kind = AuditAck
	if late {
		rec.Detail = "late ack of a close given up on"
	}
	e.record(b, rec)
	if c.action != telemetry.ActionClose {
		return
	}
	// Telemetry the pile takes from the ack on must show the port cut.
	ackTS := a.TS
	if ackTS <= 0 {
		ackTS = p.lastTS + 1
	}
	if c.port == 0 {
		if p.close0 {
			p.close0Acked, p.close0AckTS = true, ackTS
		}
	} else if ps := p.portIf(int(c.port)); ps != nil && ps.closeHeld {
		ps.closeAcked, ps.ackTS = true, ackTS
	}
}

// closeFailed gives up on close c: close_failed, and the whole pile closed.
func (e *Engine) closeFailed(b *batch, p *pile, c *command, why string) {
	e.record(b, AuditRecord{
		At: timeOf(b.now), Site: p.site, Pile: p.id, Port: int(c.port), Kind: AuditCloseFailed,
		Actor: "rule:" + AlertCloseFailed.String(), Reason: c.reason, CommandID: c.id,
		Action: c.action, Attempt: int(c.attempt), Detail: why,
	})
	if len(p.failed) >= 8 {
		p.failed = p.failed[1:]
	}
	p.failed = append(p.failed, c.id)
	e.trip(b, p, int(c.port), AlertCloseFailed, float64(c.attempt))
}

// Tick evaluates the time-driven rules at now: ack timeouts (resend with
// the same id, then close_failed), staleness (pile_offline), a session's
// maximum duration and the full-battery timer. Call it regularly (every
// few hundred ms); its cost is one comparison per pile with nothing due.
func (e *Engine) Tick(now time.Time) []Action {
	b := batch{now: msOf(now), det: msOf(now)}
	if len(e.pendingPiles) > 0 {
		list := append([]int32(nil), e.pendingPiles...)
		e.pendingPiles = e.pendingPiles[:0]
		for _, i := range list {
			p := e.piles[i]
			p.inPending = false
			e.tickCommands(&b, p)
			if len(p.pending) > 0 && !p.inPending {
				p.inPending = true
				e.pendingPiles = append(e.pendingPiles, i)
			}
		}
	}
	for _, p := range e.piles {
		if p.due <= b.now {
			e.tickPile(&b, p)
		}
	}
	return b.out()
}

func (e *Engine) tickCommands(b *batch, p *pile) {
	lim := p.lim
	pending := p.pending
	p.pending = nil
	var expired []*command
	for _, c := range pending {
		switch {
		case b.now-c.sentAt < lim.ackMS:
			p.pending = append(p.pending, c)
		case int(c.attempt) <= lim.MaxResends:
			c.attempt++
			c.sentAt = b.now
			p.pending = append(p.pending, c)
			b.cmds = append(b.cmds, c.send(p))
			e.record(b, AuditRecord{
				At: timeOf(b.now), Site: p.site, Pile: p.id, Port: int(c.port), Kind: AuditRetry,
				Actor: "rule:ack_timeout", Reason: c.reason, CommandID: c.id, Action: c.action,
				Attempt: int(c.attempt), Detail: "no ack within " + lim.AckTimeout.String(),
			})
		default:
			expired = append(expired, c)
		}
	}
	for _, c := range expired {
		why := "no ack after " + strconv.Itoa(int(c.attempt)) + " sends"
		if c.action == telemetry.ActionClose {
			e.closeFailed(b, p, c, why)
			continue
		}
		// An open that never arrived leaves the port closed: safe, but the
		// operator has to reset again.
		e.record(b, AuditRecord{
			At: timeOf(b.now), Site: p.site, Pile: p.id, Port: int(c.port), Kind: AuditOpenFailed,
			Actor: "rule:ack_timeout", Reason: c.reason, CommandID: c.id, Action: c.action,
			Attempt: int(c.attempt), Detail: why,
		})
	}
}

func (e *Engine) tickPile(b *batch, p *pile) {
	lim := p.lim
	if p.everTel && p.anyCharging && b.now-p.lastTelAt >= lim.staleMS {
		e.fire(b, p, 0, AlertPileOffline, float64(b.now-p.lastTelAt)/1000)
	} else if !p.dead {
		for i := range p.ports {
			e.timers(b, p, i+1, &p.ports[i])
		}
	}
	p.recomputeDue()
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
