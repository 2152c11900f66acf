package alerting

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chargeguard/chargeguard/telemetry"
)

// Control is what the engine holds a port to.
const (
	ControlOpen    = "open"    // not held closed
	ControlClosing = "closing" // a close was sent and is awaiting its ack
	ControlClosed  = "closed"  // closed (acked), not latched: full, max_duration
	ControlLatched = "latched" // closed for safety: only a reset reopens it
)

// PortFilter selects ports; empty fields match everything. State matches
// either the port's Control (open, closing, closed, latched) or the state
// the pile last reported (idle, charging, closed, fault).
type PortFilter struct {
	Site  string
	Pile  string
	State string
}

// PortView is a port as the operator API shows it.
type PortView struct {
	Site string             `json:"site"`
	Pile string             `json:"pile"`
	Port int                `json:"port"`
	Kind telemetry.SiteKind `json:"kind,omitempty"`
	// Reported is the state in the pile's last telemetry.
	Reported telemetry.PortState `json:"reported,omitempty"`
	// Control is what the engine holds the port to (Control* constants).
	Control string `json:"control"`
	// LatchReasons are the port's own latch reasons; PileLatchReasons
	// those of a port-0 close holding every port of the pile.
	LatchReasons     []string  `json:"latch_reasons,omitempty"`
	PileLatchReasons []string  `json:"pile_latch_reasons,omitempty"`
	CloseReason      string    `json:"close_reason,omitempty"`
	LatchedAt        time.Time `json:"latched_at,omitzero"`
	PendingCommand   string    `json:"pending_command,omitempty"`
	TempC            *float64  `json:"temp_c,omitempty"`
	A                *float64  `json:"a,omitempty"`
	W                *float64  `json:"w,omitempty"`
	Alerts           []string  `json:"alerts,omitempty"`
	// PileDead: the pile's latest status is a death (its last will).
	PileDead bool `json:"pile_dead,omitempty"`
	// PileSilentAt is when the pile counts as offline unless it is heard
	// from again: its latest message plus the offline window
	// (offline_intervals × report_interval), counted from the service's
	// start for a pile not heard from since. A view is not republished
	// when a pile merely falls silent, so a reader judges it against its
	// own clock: PileOffline.
	PileSilentAt time.Time `json:"pile_silent_at,omitzero"`
}

// PileOffline reports whether the port's pile counts as offline at now,
// as the engine counts it (no command can be expected to reach it): its
// latest status is a death, or nothing came from it within the offline
// window. It does not need an alert: pile_offline fires only for a pile
// that falls silent while charging, and an acknowledged or resolved alert
// says nothing about the pile now.
func (v PortView) PileOffline(now time.Time) bool {
	return v.PileDead || (!v.PileSilentAt.IsZero() && !now.Before(v.PileSilentAt))
}

func names(m alertMask) []string {
	var out []string
	for _, n := range maskNames(m) {
		out = append(out, n.String())
	}
	return out
}

func optional(v float32) *float64 {
	if isNaN32(v) {
		return nil
	}
	// The engine keeps readings as float32; print them as the pile sent
	// them (51.4, not 51.400001525878906).
	f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(v), 'g', 7, 32), 64)
	return &f
}

// Ports lists the ports the engine knows that match f, by site, pile and
// port. It renders every pile: the service's readers use the published
// View instead, which re-renders only what changed.
func (e *Engine) Ports(f PortFilter) []PortView {
	snaps := make([]*pileSnap, 0, len(e.piles))
	for _, p := range e.piles {
		if (f.Site != "" && p.site != f.Site) || (f.Pile != "" && p.id != f.Pile) {
			continue
		}
		snaps = append(snaps, snapPorts(p, e.startMS))
	}
	slices.SortFunc(snaps, comparePileSnaps)
	var out []PortView
	for _, ps := range snaps {
		for n := 1; n <= ps.nports; n++ {
			if v := ps.portView(n); f.match(v) {
				out = append(out, v)
			}
		}
	}
	return out
}

func (f PortFilter) match(v PortView) bool {
	return f.State == "" || f.State == v.Control || f.State == string(v.Reported)
}

// pileSnap is a pile's state as the published View holds it: a copy of
// the fields a PortView is rendered from, taken on the engine's goroutine
// (a memcpy of its ports, no per-port allocation) and rendered into
// PortViews on the reader's goroutine. It is never modified once
// published, so Views share the snaps of the piles that did not change.
type pileSnap struct {
	site, id    string
	kind        telemetry.SiteKind
	nports      int
	latch       alertMask
	latchedAt   int64
	close0      bool
	close0Acked bool
	pending     []pendingSnap
	ports       []port // rise cleared: a reader must not follow the engine's pointers
	dead        bool   // the latest status was a death
	silentAt    int64  // ms; when the pile counts as offline unless heard from (0: unknown)

	// audit holds the in-memory audit of the pile's ports (0: the pile),
	// oldest first. Slices are shared with older snaps and never written.
	audit map[uint8][]AuditRecord
}

type pendingSnap struct {
	port uint8
	id   string
}

// snapPile copies p. Audit records are copied only for the ports
// auditDirty names; the others are taken over from prev (with no prev,
// every port's are copied).
func (e *Engine) snapPile(p *pile, prev *pileSnap, auditDirty map[uint8]struct{}) *pileSnap {
	s := snapPorts(p, e.startMS)
	if prev != nil {
		s.audit = prev.audit
		if len(auditDirty) == 0 {
			return s
		}
	} else {
		auditDirty = nil
	}
	s.audit = e.snapAudit(p, s.audit, auditDirty)
	return s
}

// snapPorts copies what the PortViews of p are rendered from. startMS is
// the engine's first time (Engine.startMS).
func snapPorts(p *pile, startMS int64) *pileSnap {
	s := &pileSnap{
		site: p.site, id: p.id, kind: p.kind, nports: p.nports(),
		latch: p.latch, latchedAt: p.latchedAt, close0: p.close0, close0Acked: p.close0Acked,
		ports: slices.Clone(p.ports), dead: p.dead,
	}
	// The pile's offline clock as Pile.online counts it: from its latest
	// message, or from the engine's start for a pile restored from the
	// state file and not heard from since.
	if from := cmp.Or(p.heardAt, startMS); from != 0 {
		s.silentAt = from + p.lim.staleMS
	}
	for i := range s.ports {
		s.ports[i].rise = nil
	}
	if len(p.pending) > 0 {
		s.pending = make([]pendingSnap, len(p.pending))
		for i, c := range p.pending {
			s.pending[i] = pendingSnap{port: c.port, id: c.id}
		}
	}
	return s
}

// snapAudit returns a new audit map: old's slices for the ports not in
// dirty, fresh copies for those in it (for every port when dirty is nil).
func (e *Engine) snapAudit(p *pile, old map[uint8][]AuditRecord, dirty map[uint8]struct{}) map[uint8][]AuditRecord {
	out := make(map[uint8][]AuditRecord, len(old)+len(dirty))
	for n, recs := range old {
		out[n] = recs
	}
	copyPort := func(n int) {
		if _, ok := e.audit[portKey{p.idx, uint8(n)}]; !ok {
			delete(out, uint8(n))
			return
		}
		if recs := e.Audit(p.site, p.id, n); len(recs) > 0 {
			out[uint8(n)] = recs
		} else {
			delete(out, uint8(n))
		}
	}
	if dirty == nil {
		for n := 0; n <= telemetry.MaxPort; n++ {
			copyPort(n)
		}
		return out
	}
	for n := range dirty {
		copyPort(int(n))
	}
	return out
}

func comparePileSnaps(a, b *pileSnap) int {
	return cmp.Or(strings.Compare(a.site, b.site), strings.Compare(a.id, b.id))
}

func (s *pileSnap) portView(n int) PortView {
	v := PortView{Site: s.site, Pile: s.id, Port: n, Kind: s.kind, Control: ControlOpen, PileLatchReasons: names(s.latch),
		PileDead: s.dead}
	if s.silentAt != 0 {
		v.PileSilentAt = timeOf(s.silentAt)
	}
	var ps *port
	if n >= 1 && n <= len(s.ports) {
		ps = &s.ports[n-1]
	} else {
		np := newPort()
		ps = &np
	}
	v.Reported = portStates[ps.state]
	v.LatchReasons = names(ps.latch)
	if ps.latch != 0 {
		v.LatchedAt = timeOf(ps.latchedAt)
	} else if s.latch != 0 {
		v.LatchedAt = timeOf(s.latchedAt)
	}
	v.TempC, v.A, v.W = optional(ps.lastTemp), optional(ps.lastA), optional(ps.lastW)
	v.Alerts = names(ps.active)
	for _, c := range s.pending {
		if int(c.port) == n || c.port == 0 {
			v.PendingCommand = c.id
		}
	}
	switch {
	case ps.latch != 0 || s.latch != 0:
		v.Control = ControlLatched
	case (ps.closeHeld && !ps.closeAcked) || (s.close0 && !s.close0Acked):
		v.Control = ControlClosing
	case ps.closeHeld || s.close0:
		v.Control = ControlClosed
	}
	if ps.closeHeld {
		v.CloseReason = ps.closeReason.String()
	} else if s.close0 {
		v.CloseReason = firstReason(s.latch)
	}
	return v
}

// Alerts lists the active alerts, and unless activeOnly also the most
// recently resolved ones (up to EngineOptions.RecentAlerts), newest first.
func (e *Engine) Alerts(activeOnly bool) []AlertView {
	out := make([]AlertView, 0, len(e.alerts))
	for _, rec := range e.alerts {
		out = append(out, AlertView{Alert: rec.alert, Active: true, AckedBy: rec.ackedBy, AckedAt: rec.ackedAt})
	}
	if !activeOnly {
		out = append(out, e.recent...)
	}
	slices.SortFunc(out, func(a, b AlertView) int {
		return cmp.Or(
			b.StartsAt.Compare(a.StartsAt),
			strings.Compare(a.Site, b.Site), strings.Compare(a.Pile, b.Pile),
			cmp.Compare(a.Port, b.Port), cmp.Compare(a.Name, b.Name),
			a.EndsAt.Compare(b.EndsAt),
		)
	})
	return out
}

// Audit returns the audit records the engine keeps in memory for a port
// (port 0: the pile as a whole), oldest first.
func (e *Engine) Audit(site, pileID string, port int) []AuditRecord {
	p := e.pileFor(site, pileID, false)
	if p == nil || port < 0 || port > telemetry.MaxPort {
		return nil
	}
	l := e.audit[portKey{p.idx, uint8(port)}]
	if l == nil {
		return nil
	}
	out := make([]AuditRecord, 0, len(l.recs))
	out = append(out, l.recs[l.next:]...)
	return append(out, l.recs[:l.next]...)
}

// Counts is what the gauges show: ports latched, ports with a command
// awaiting its ack, and active alerts by name and severity. It walks the
// state once without allocating per port, for a once-a-second refresh.
type Counts struct {
	Latched int
	Pending int
	Firing  map[Alert]int // keyed by Name and Severity only
}

// Counts returns the current counts.
func (e *Engine) Counts() Counts {
	c := Counts{Firing: map[Alert]int{}}
	for _, p := range e.piles {
		n := p.nports()
		for i := 1; i <= n; i++ {
			ps := p.portIf(i)
			latched := p.latch != 0 || (ps != nil && ps.latch != 0)
			if latched {
				c.Latched++
			}
			for _, cmd := range p.pending {
				if int(cmd.port) == i || cmd.port == 0 {
					c.Pending++
					break
				}
			}
		}
	}
	for _, rec := range e.alerts {
		c.Firing[Alert{Name: rec.alert.Name, Severity: rec.alert.Severity}]++
	}
	return c
}
