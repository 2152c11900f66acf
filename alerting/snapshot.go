package alerting

import (
	"errors"
	"fmt"
	"time"

	"github.com/chargeguard/chargeguard/telemetry"
)

// StateVersion is the version of State this package writes and reads.
const StateVersion = 1

// State is what an Engine must carry across a restart: latched and closed
// ports, active alerts, and commands awaiting their ack (with their ids
// and attempt counts, so that the resend reuses the id). It marshals to
// JSON. Windows and counters are not in it: they rebuild from the next
// readings, and a reset waits for a reading newer than the trip anyway.
type State struct {
	Version int            `json:"version"`
	Piles   []PileSnapshot `json:"piles"`
}

// PileSnapshot is the state of one pile that holds something worth
// keeping.
type PileSnapshot struct {
	Site        string             `json:"site"`
	Pile        string             `json:"pile"`
	Kind        telemetry.SiteKind `json:"kind,omitempty"`
	Ports       int                `json:"ports,omitempty"`
	RatedA      float64            `json:"rated_a,omitempty"`
	Latch       []AlertName        `json:"latch,omitempty"` // pile-wide latch reasons
	LatchedAt   time.Time          `json:"latched_at,omitzero"`
	Close0      bool               `json:"close0,omitempty"` // a port-0 close is held
	Close0Acked bool               `json:"close0_acked,omitempty"`
	Close0AckTS int64              `json:"close0_ack_ts,omitempty"` // no longer used: acks are ordered by arrival
	// Charging: a port was charging at the last telemetry, so a restarted
	// backend expects the pile to report again (pile_offline otherwise).
	Charging   bool              `json:"charging,omitempty"`
	Smoke      bool              `json:"smoke,omitempty"`
	Leak       bool              `json:"leak,omitempty"`
	Failed     []string          `json:"failed,omitempty"`
	PortStates []PortSnapshot    `json:"port_states,omitempty"`
	Pending    []CommandSnapshot `json:"pending,omitempty"`
	Alerts     []AlertSnapshot   `json:"alerts,omitempty"`
}

// PortSnapshot is the latch and close state of one port.
type PortSnapshot struct {
	Port        int         `json:"port"`
	Latch       []AlertName `json:"latch,omitempty"`
	LatchedAt   time.Time   `json:"latched_at,omitzero"`
	CloseHeld   bool        `json:"close_held,omitempty"`
	CloseAcked  bool        `json:"close_acked,omitempty"`
	AckTS       int64       `json:"ack_ts,omitempty"` // no longer used: acks are ordered by arrival
	CloseReason AlertName   `json:"close_reason,omitempty"`
}

// CommandSnapshot is a command awaiting its ack.
type CommandSnapshot struct {
	ID         string           `json:"id"`
	Port       int              `json:"port"`
	Action     telemetry.Action `json:"action"`
	Reason     string           `json:"reason"`
	TS         int64            `json:"ts"`
	Attempt    int              `json:"attempt"`
	SentAt     time.Time        `json:"sent_at"`
	DetectedAt time.Time        `json:"detected_at"`
	// Failed: the close was escalated to close_failed and is still sent
	// again until acked.
	Failed bool `json:"failed,omitempty"`
}

// AlertSnapshot is an active alert.
type AlertSnapshot struct {
	Alert   Alert     `json:"alert"`
	AckedBy string    `json:"acked_by,omitempty"`
	AckedAt time.Time `json:"acked_at,omitzero"`
}

func maskNames(m alertMask) []AlertName {
	var out []AlertName
	for n := AlertTempWarning; n < alertCount; n++ {
		if m&n.bit() != 0 {
			out = append(out, n)
		}
	}
	return out
}

// ChargingChanged reports whether the set of piles with a charging port
// changed since the last Snapshot.
func (e *Engine) ChargingChanged() bool { return e.chargingChanged }

// Snapshot returns the state to persist. Piles with nothing latched,
// closed, pending or alerting are left out. It shares no memory with the
// engine: the service encodes it on another goroutine while the engine
// goes on.
func (e *Engine) Snapshot() State {
	s := State{Version: StateVersion, Piles: []PileSnapshot{}}
	e.chargingChanged = false
	for _, p := range e.piles {
		if !p.portState && p.latch == 0 && !p.close0 && p.active == 0 && len(p.pending) == 0 && !p.anyCharging {
			continue // the common case, checked without touching the ports
		}
		ps := PileSnapshot{
			Site: p.site, Pile: p.id, Kind: p.kind, Ports: int(p.birthPorts), RatedA: float64(p.rated),
			Latch: maskNames(p.latch), LatchedAt: timeOf(p.latchedAt),
			Close0: p.close0, Close0Acked: p.close0Acked, Charging: p.anyCharging,
			Smoke: p.smoke && p.latch&AlertSmoke.bit() != 0, Leak: p.leak && p.latch&AlertLeakage.bit() != 0,
			Failed: append([]string(nil), p.failed...),
		}
		keep := p.latch != 0 || p.close0 || p.active != 0 || len(p.pending) > 0 || p.anyCharging
		e.snapAlerts(&ps, p, 0, p.active)
		portState := false
		for i := range p.ports {
			pt := &p.ports[i]
			if !pt.held() && pt.active == 0 {
				continue
			}
			keep, portState = true, true
			if pt.held() {
				ps.PortStates = append(ps.PortStates, PortSnapshot{
					Port: i + 1, Latch: maskNames(pt.latch), LatchedAt: timeOf(pt.latchedAt),
					CloseHeld: pt.closeHeld, CloseAcked: pt.closeAcked, CloseReason: pt.closeReason,
				})
			}
			e.snapAlerts(&ps, p, i+1, pt.active)
		}
		p.portState = portState
		for _, c := range p.pending {
			ps.Pending = append(ps.Pending, CommandSnapshot{
				ID: c.id, Port: int(c.port), Action: c.action, Reason: c.reason, TS: c.ts,
				Attempt: int(c.attempt), SentAt: timeOf(c.sentAt), DetectedAt: timeOf(c.detectedAt), Failed: c.failed,
			})
		}
		if keep {
			s.Piles = append(s.Piles, ps)
		}
	}
	return s
}

func (e *Engine) snapAlerts(ps *PileSnapshot, p *pile, n int, mask alertMask) {
	for _, name := range maskNames(mask) {
		if rec := e.alerts[alertKey{p.idx, uint8(n), name}]; rec != nil {
			ps.Alerts = append(ps.Alerts, AlertSnapshot{Alert: rec.alert, AckedBy: rec.ackedBy, AckedAt: rec.ackedAt})
		}
	}
}

func namesMask(names []AlertName) (alertMask, error) {
	var m alertMask
	for _, n := range names {
		if n == 0 || n >= alertCount {
			return 0, fmt.Errorf("unknown alert name %d", n)
		}
		m |= n.bit()
	}
	return m, nil
}

// Restore loads a State written by Snapshot into an engine that holds no
// state yet (ErrNotEmpty otherwise). It checks everything it loads and
// refuses the whole State (ErrBadState, naming the entry) on the first
// problem, leaving the engine empty. Commands awaiting their ack are resent
// with the same id by the first Tick whose now is past their ack timeout.
func (e *Engine) Restore(s State) error {
	if len(e.piles) > 0 {
		return ErrNotEmpty
	}
	if err := e.restore(s); err != nil {
		*e = Engine{rules: e.rules, opts: e.opts, limits: map[limitKey]*limits{}, index: map[pileKey]int32{},
			alerts: map[alertKey]*alertRec{}, audit: map[portKey]*auditLog{}}
		return err
	}
	return nil
}

func (e *Engine) restore(s State) error {
	if s.Version != StateVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrBadState, s.Version, StateVersion)
	}
	bad := func(path string, err error) error { return fmt.Errorf("%w: %s: %w", ErrBadState, path, err) }
	for i, ps := range s.Piles {
		path := fmt.Sprintf("piles[%d]", i)
		if !telemetry.ValidID(ps.Site) || !telemetry.ValidID(ps.Pile) {
			return bad(path, errors.New("site or pile id breaks [A-Za-z0-9_-]{1,64}"))
		}
		if e.pileFor(ps.Site, ps.Pile, false) != nil {
			return bad(path, errors.New("pile listed twice"))
		}
		if ps.Ports < 0 || ps.Ports > telemetry.MaxPort || ps.RatedA < 0 || ps.RatedA > 1e6 || ps.RatedA != ps.RatedA {
			return bad(path, errors.New("ports or rated_a out of range"))
		}
		p := e.pileFor(ps.Site, ps.Pile, true)
		if ps.Kind == telemetry.SiteResidential || ps.Kind == telemetry.SiteOpenAir {
			p.kind = ps.Kind
			p.lim = e.limitsFor(p.site, p.kind)
		}
		p.birthPorts, p.rated = uint8(ps.Ports), float32(ps.RatedA)
		var err error
		if p.latch, err = namesMask(ps.Latch); err != nil {
			return bad(path+".latch", err)
		}
		p.latchedAt = msOf(ps.LatchedAt)
		p.close0, p.close0Acked = ps.Close0, ps.Close0Acked
		if ps.Charging {
			// Expect it to report within the offline window from the
			// first Tick (contract v1.1), whatever retained birth the
			// broker re-delivers meanwhile.
			p.everTel, p.anyCharging = true, true
			e.restored = append(e.restored, p.idx)
		}
		p.smoke, p.leak = ps.Smoke, ps.Leak
		if len(ps.Failed) > 8 {
			return bad(path+".failed", errors.New("more than 8 ids"))
		}
		p.failed = append([]string(nil), ps.Failed...)
		for j, pt := range ps.PortStates {
			pp := fmt.Sprintf("%s.port_states[%d]", path, j)
			if pt.Port < 1 || pt.Port > telemetry.MaxPort {
				return bad(pp, fmt.Errorf("port %d out of 1..%d", pt.Port, telemetry.MaxPort))
			}
			if pt.CloseReason > reasonFull {
				return bad(pp, errors.New("unknown close reason"))
			}
			st := p.port(pt.Port)
			p.portState = true
			if st.latch, err = namesMask(pt.Latch); err != nil {
				return bad(pp+".latch", err)
			}
			st.latchedAt = msOf(pt.LatchedAt)
			st.closeHeld, st.closeAcked, st.closeReason = pt.CloseHeld, pt.CloseAcked, pt.CloseReason
		}
		for j, c := range ps.Pending {
			pp := fmt.Sprintf("%s.pending[%d]", path, j)
			switch {
			case c.ID == "" || len(c.ID) > 128:
				return bad(pp, errors.New("missing or overlong id"))
			case c.Port < 0 || c.Port > telemetry.MaxPort:
				return bad(pp, fmt.Errorf("port %d out of 0..%d", c.Port, telemetry.MaxPort))
			case c.Action != telemetry.ActionClose && c.Action != telemetry.ActionOpen:
				return bad(pp, fmt.Errorf("unknown action %q", truncate(string(c.Action), 20)))
			case c.Attempt < 1 || c.Attempt > 255:
				return bad(pp, fmt.Errorf("attempt %d out of 1..255", c.Attempt))
			}
			p.pending = append(p.pending, &command{
				id: c.ID, action: c.Action, reason: truncate(c.Reason, 64), ts: c.TS,
				sentAt: msOf(c.SentAt), detectedAt: msOf(c.DetectedAt), port: uint8(c.Port), attempt: uint8(c.Attempt),
				failed: c.Failed && c.Action == telemetry.ActionClose,
			})
		}
		if len(p.pending) > 0 {
			p.inPending = true
			e.pendingPiles = append(e.pendingPiles, p.idx)
		}
		for j, a := range ps.Alerts {
			pp := fmt.Sprintf("%s.alerts[%d]", path, j)
			al := a.Alert
			switch {
			case al.Name == 0 || al.Name >= alertCount:
				return bad(pp, errors.New("unknown alert name"))
			case al.Site != p.site || al.Pile != p.id:
				return bad(pp, errors.New("alert of another pile"))
			case al.Port < 0 || al.Port > telemetry.MaxPort:
				return bad(pp, fmt.Errorf("port %d out of 0..%d", al.Port, telemetry.MaxPort))
			}
			act := p.activeMask(al.Port)
			if *act&al.Name.bit() != 0 {
				return bad(pp, errors.New("alert listed twice"))
			}
			*act |= al.Name.bit()
			al.EndsAt = time.Time{}
			e.alerts[alertKey{p.idx, uint8(al.Port), al.Name}] = &alertRec{alert: al, ackedBy: truncate(a.AckedBy, 64), ackedAt: a.AckedAt}
		}
		p.recomputeDue()
	}
	return nil
}
