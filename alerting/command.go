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

// send issues a new command with a new id and tracks it until its ack. A
// close cancels every open awaiting its ack that it contradicts (contract
// v1.1): one of the same port or of port 0, and for a port-0 close every
// open of the pile, so that no resend of an older open can undo it.
func (e *Engine) send(b *batch, p *pile, port int, action telemetry.Action, reason, actor string, kind AuditKind, detail string) {
	if action == telemetry.ActionClose {
		e.cancelOpens(b, p, port)
	}
	c := &command{
		id: e.newID(b, p, port, action), action: action, reason: reason,
		ts: b.now, sentAt: b.now, detectedAt: b.det,
		port: uint8(port), attempt: 1,
	}
	p.pending = append(p.pending, c)
	e.track(p)
	b.cmds = append(b.cmds, c.send(p))
	e.record(b, AuditRecord{
		At: timeOf(b.now), Site: p.site, Pile: p.id, Port: port, Kind: kind,
		Actor: actor, Reason: reason, CommandID: c.id, Action: action, Attempt: 1, Detail: detail,
	})
}

func (e *Engine) cancelOpens(b *batch, p *pile, port int) {
	kept := p.pending[:0]
	for _, c := range p.pending {
		if c.action == telemetry.ActionOpen && (port == 0 || int(c.port) == port || c.port == 0) {
			e.record(b, AuditRecord{
				At: timeOf(b.now), Site: p.site, Pile: p.id, Port: int(c.port), Kind: AuditOpenCanceled,
				Actor: "rule:close", Reason: c.reason, CommandID: c.id, Action: c.action,
				Attempt: int(c.attempt), Detail: "a newer close of the port supersedes it",
			})
			continue
		}
		kept = append(kept, c)
	}
	clear(p.pending[len(kept):])
	p.pending = kept
}

// resendCloses sends again, with their ids, every close of p awaiting its
// ack: on the pile's birth and when our command session reconnects
// (contract v1.1), rather than waiting out the ack timeout.
func (e *Engine) resendCloses(b *batch, p *pile, why string) {
	for _, c := range p.pending {
		if c.action != telemetry.ActionClose {
			continue
		}
		e.resend(b, p, c, "rule:resend", why)
	}
}

// resend sends pending command c again with its id.
func (e *Engine) resend(b *batch, p *pile, c *command, actor, why string) {
	if c.attempt < 255 {
		c.attempt++
	}
	c.sentAt = b.now
	b.cmds = append(b.cmds, c.send(p))
	e.record(b, AuditRecord{
		At: timeOf(b.now), Site: p.site, Pile: p.id, Port: int(c.port), Kind: AuditRetry,
		Actor: actor, Reason: c.reason, CommandID: c.id, Action: c.action,
		Attempt: int(c.attempt), Detail: why,
	})
}

// Reconnected tells the engine that the session commands are published on
// has (re)connected to the broker: every close awaiting its ack is sent
// again at once, since whatever was published while it was down may be
// lost.
func (e *Engine) Reconnected(now time.Time) []Action {
	b := batch{now: msOf(now), det: msOf(now)}
	for _, i := range e.pendingPiles {
		e.resendCloses(&b, e.piles[i], "command session reconnected")
	}
	return b.out()
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
			// A refused close is not abandoned: it stays pending, is
			// escalated like one never acked, and is sent again.
			p.pending = append(p.pending, c)
			e.track(p)
			if !c.failed {
				e.closeFailed(b, p, c, "the pile refused the close")
			}
		}
		return
	}
	rec.Kind = AuditAck
	switch {
	case late:
		rec.Detail = "late ack of a close given up on"
	case c.failed:
		rec.Detail = "acked after close_failed"
	}
	e.record(b, rec)
	if c.action != telemetry.ActionClose {
		return
	}
	// Telemetry that arrives from now on must show the port cut. The ack's
	// ts is not used: a pile's clock may be anything.
	if c.port == 0 {
		if p.close0 {
			p.close0Acked = true
		}
	} else if ps := p.portIf(int(c.port)); ps != nil && ps.closeHeld {
		ps.closeAcked = true
	}
}

// track lists p among the piles with commands awaiting an ack.
func (e *Engine) track(p *pile) {
	if !p.inPending {
		p.inPending = true
		e.pendingPiles = append(e.pendingPiles, p.idx)
	}
}

// closeFailed escalates close c, which its resends did not get acked:
// close_failed, and the whole pile closed. c is not abandoned (contract
// v1.1): it stays pending and Tick sends it again every resendFailedMS
// while the pile is online, as a birth and a reconnect of our command
// session do, until the pile acks it.
func (e *Engine) closeFailed(b *batch, p *pile, c *command, why string) {
	c.failed = true
	c.sentAt = b.now
	e.record(b, AuditRecord{
		At: timeOf(b.now), Site: p.site, Pile: p.id, Port: int(c.port), Kind: AuditCloseFailed,
		Actor: "rule:" + AlertCloseFailed.String(), Reason: c.reason, CommandID: c.id,
		Action: c.action, Attempt: int(c.attempt), Detail: why,
	})
	e.trip(b, p, int(c.port), AlertCloseFailed, float64(c.attempt))
}

// Tick evaluates the time-driven rules at now: ack timeouts (resend with
// the same id, then close_failed), staleness (pile_offline), a session's
// maximum duration and the full-battery timer. Call it regularly (every
// few hundred ms); its cost is one comparison per pile with nothing due.
func (e *Engine) Tick(now time.Time) []Action {
	b := batch{now: msOf(now), det: msOf(now)}
	e.started(b.now)
	for _, i := range e.restored {
		// Piles that were charging when the backend stopped: their offline
		// clock starts now.
		p := e.piles[i]
		if p.lastTelAt == 0 {
			p.lastTelAt, p.anyTelAt = b.now, b.now
			p.recomputeDue()
		}
	}
	e.restored = e.restored[:0]
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
		case c.failed:
			// Escalated already: keep sending it while the pile is
			// online, until acked.
			p.pending = append(p.pending, c)
			if b.now-c.sentAt >= resendFailedMS && p.online(b.now) {
				e.resend(b, p, c, "rule:close_failed", "close not acked yet: sent again every "+(resendFailedMS*time.Millisecond).String()+" while the pile is online")
			}
		case c.action == telemetry.ActionClose && b.now-c.ts >= lim.ackMS*int64(lim.MaxResends+1):
			// The ack window is counted from the first send: resends
			// out of turn (a birth, a reconnect) must not postpone the
			// page (found by TestModel).
			p.pending = append(p.pending, c)
			expired = append(expired, c)
		case b.now-c.sentAt < lim.ackMS:
			p.pending = append(p.pending, c)
		case int(c.attempt) <= lim.MaxResends:
			p.pending = append(p.pending, c)
			e.resend(b, p, c, "rule:ack_timeout", "no ack within "+lim.AckTimeout.String())
		case c.action == telemetry.ActionClose:
			p.pending = append(p.pending, c)
			expired = append(expired, c)
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
	if p.everTel && p.anyCharging && b.now-p.anyTelAt >= lim.staleMS {
		e.fire(b, p, 0, AlertPileOffline, float64(b.now-p.anyTelAt)/1000)
	} else if !p.dead {
		for i := range p.ports {
			e.timers(b, p, i+1, &p.ports[i])
		}
	}
	p.recomputeDue()
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
