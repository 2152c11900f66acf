package alerting

import (
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/chargeguard/chargeguard/telemetry"
)

// EngineOptions configures an Engine. The zero value is a safe default.
type EngineOptions struct {
	// Root is the topic root commands are published under; default
	// telemetry.DefaultRoot.
	Root string
	// NewID returns a new, unique command id; default a random UUID. Tests
	// pass a counter to get deterministic ids.
	NewID func() string
	// AuditPerPort is how many audit records Audit keeps in memory per
	// port (the durable audit is what the service stores); default 64.
	AuditPerPort int
	// RecentAlerts is how many resolved alerts Alerts keeps; default 1000.
	RecentAlerts int
}

// Stats counts telemetry the engine set aside, for metrics.
type Stats struct {
	Duplicates    uint64 // telemetry with a seq already seen: single-sample trips only
	Late          uint64 // telemetry older than the newest seen: single-sample trips only
	Stale         uint64 // telemetry far older than the newest seen: single-sample trips only
	Restarts      uint64 // seq at or below the last accepted, starting a new stream (pile restarted its counter)
	Unplaced      uint64 // telemetry without a usable seq or ts: single-sample trips only
	Partial       uint64 // telemetry that broke the protocol, acted on as far as it validated
	ClockDistrust uint64 // piles switched to receive time because their clock broke the rules
	BadID         uint64 // messages whose site or pile id breaks the alphabet, dropped
}

// Engine holds the per-port and per-pile state of the safety policy and
// decides, for each message and each Tick, what must happen. It does no
// I/O and reads no clock. Not safe for concurrent use: one goroutine owns
// it.
type Engine struct {
	rules  Rules
	opts   EngineOptions
	limits map[limitKey]*limits

	index map[pileKey]int32
	piles []*pile

	alerts       map[alertKey]*alertRec
	recent       []AlertView // ring of resolved alerts
	recentNext   int
	audit        map[portKey]*auditLog
	pendingPiles []int32 // piles with commands awaiting an ack, in first-pending order
	restored     []int32 // piles restored as charging: their offline clock starts at the first Tick
	stats        Stats

	// chargingChanged: the set of piles with a charging port changed since
	// the last Snapshot (it is part of the persisted state).
	chargingChanged bool

	// adopted holds ids of commands another replica published that this
	// engine has not decided yet (cluster mode; see mirror).
	adopted map[adoptKey]adoption

	// startMS is the first time the engine was given (Observe, Tick or a
	// publication): for a pile not heard from since, its offline window
	// counts from there (PortView.PileSilentAt).
	startMS int64
}

// started records the engine's first time.
func (e *Engine) started(now int64) {
	if e.startMS == 0 {
		e.startMS = now
	}
}

type limitKey struct {
	site string
	kind telemetry.SiteKind
}

type pileKey struct{ site, pile string }

type portKey struct {
	pile int32
	port uint8
}

type alertKey struct {
	pile int32
	port uint8
	name AlertName
}

type alertRec struct {
	alert   Alert
	ackedBy string
	ackedAt time.Time
}

type auditLog struct {
	recs []AuditRecord
	next int
}

// limits are resolved Thresholds with the derived numbers the hot path
// needs.
type limits struct {
	Thresholds
	warnClear, hotClear, leakClear float64
	riseWindowMS, riseMinStepMS    int64
	staleMS, ackMS, skewMS         int64
	maxSessionMS, fullAfterMS      int64
}

func newLimits(t Thresholds) *limits {
	return &limits{
		Thresholds:    t,
		warnClear:     t.WarnC - t.TempHysteresisC,
		hotClear:      t.HotContactC - t.TempHysteresisC,
		leakClear:     t.LeakMA - t.LeakHysteresisMA,
		riseWindowMS:  t.RiseWindow.Milliseconds(),
		riseMinStepMS: t.RiseWindow.Milliseconds() / (riseCap - 2),
		staleMS:       int64(t.OfflineIntervals) * t.ReportInterval.Milliseconds(),
		ackMS:         t.AckTimeout.Milliseconds(),
		skewMS:        t.MaxClockSkew.Milliseconds(),
		maxSessionMS:  t.MaxSession.Milliseconds(),
		fullAfterMS:   t.FullAfter.Milliseconds(),
	}
}

// NewEngine returns an engine applying cfg, which must validate.
func NewEngine(cfg Rules, opts EngineOptions) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Root == "" {
		opts.Root = telemetry.DefaultRoot
	}
	if opts.NewID == nil {
		opts.NewID = uuid.NewString
	}
	if opts.AuditPerPort <= 0 {
		opts.AuditPerPort = 64
	}
	if opts.RecentAlerts <= 0 {
		opts.RecentAlerts = 1000
	}
	return &Engine{
		rules:  cfg,
		opts:   opts,
		limits: map[limitKey]*limits{},
		index:  map[pileKey]int32{},
		alerts: map[alertKey]*alertRec{},
		audit:  map[portKey]*auditLog{},
	}, nil
}

// Rules returns the rules in force.
func (e *Engine) Rules() Rules { return e.rules }

// Stats returns the counts of telemetry set aside so far.
func (e *Engine) Stats() Stats { return e.stats }

// Reload swaps the rules. State (latches, alerts, pending commands,
// windows) is kept; new thresholds apply from the next message or Tick. An
// invalid cfg is refused and the old rules stay.
func (e *Engine) Reload(cfg Rules) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	e.rules = cfg
	clear(e.limits)
	for _, p := range e.piles {
		p.lim = e.limitsFor(p.site, p.kind)
		p.recomputeDue()
	}
	return nil
}

func (e *Engine) limitsFor(site string, kind telemetry.SiteKind) *limits {
	k := limitKey{site, kind}
	if l, ok := e.limits[k]; ok {
		return l
	}
	l := newLimits(e.rules.Resolve(site, kind))
	e.limits[k] = l
	return l
}

// pileFor returns the state of a pile, creating it when create is set. The
// ids must be valid: the command topic is built from them.
func (e *Engine) pileFor(site, id string, create bool) *pile {
	if i, ok := e.index[pileKey{site, id}]; ok {
		return e.piles[i]
	}
	if !create {
		return nil
	}
	topic, err := telemetry.NewTopic(e.opts.Root, site, id, telemetry.KindCmd)
	if err != nil {
		return nil
	}
	p := &pile{site: site, id: id, cmdTopic: topic, idx: int32(len(e.piles)), lim: e.limitsFor(site, ""), due: never}
	e.index[pileKey{site, id}] = p.idx
	e.piles = append(e.piles, p)
	return p
}

// batch collects the actions of one call. Commands come first in the
// result so that the service publishes them before anything else.
type batch struct {
	now  int64 // ms
	det  int64 // detection time, ms
	cmds []Action
	rest []Action
}

func (b *batch) out() []Action {
	if len(b.cmds) == 0 {
		return b.rest
	}
	return append(b.cmds, b.rest...)
}

func msOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func timeOf(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// Observe evaluates one decoded message received at now and returns what
// must happen. Messages must be given in arrival order. A message whose
// site or pile id breaks the alphabet is dropped (and counted), so no
// command topic is ever built from it.
func (e *Engine) Observe(now time.Time, m telemetry.Message) []Action {
	if !telemetry.ValidID(m.Topic.Site) || !telemetry.ValidID(m.Topic.Pile) {
		e.stats.BadID++
		return nil
	}
	b := batch{now: msOf(now), det: msOf(m.Received)}
	e.started(b.now)
	if b.det == 0 {
		b.det = b.now
	}
	switch {
	case m.Telemetry != nil:
		p := e.pileFor(m.Topic.Site, m.Topic.Pile, true)
		dmg := m.Damage
		if dmg == nil && m.Invalid != nil {
			// The safety exception of protocol v1 (a charging port
			// without a usable temp_c or a) is the one damage a decoder
			// of before v1.1 reports: the rules see it as such.
			dmg = &telemetry.Damage{}
		}
		e.onTelemetry(&b, p, m.Telemetry, dmg)
	case m.Status != nil:
		p := e.pileFor(m.Topic.Site, m.Topic.Pile, m.Status.Online)
		if p != nil {
			e.onStatus(&b, p, m.Status, m.Retained)
		}
	case m.Event != nil:
		p := e.pileFor(m.Topic.Site, m.Topic.Pile, true)
		p.heardAt = b.now
		e.onEvent(&b, p, m.Event)
	case m.Command != nil:
		// Only a cluster's follower is given commands: those the leader
		// published (a single instance never sees its own echo).
		if p := e.pileFor(m.Topic.Site, m.Topic.Pile, false); p != nil {
			e.mirror(&b, p, m.Command)
		}
	case m.Ack != nil:
		if p := e.pileFor(m.Topic.Site, m.Topic.Pile, false); p != nil {
			p.heardAt = b.now
			e.onAck(&b, p, m.Ack)
		}
	case m.Invalid != nil && m.Invalid.Reason == telemetry.ReasonUnknownVersion:
		// A status, event or ack of a protocol version this backend does
		// not speak: the pile may have been updated to firmware that the
		// guard cannot read. Say so.
		p := e.pileFor(m.Topic.Site, m.Topic.Pile, true)
		e.fire(&b, p, 0, AlertPileProtocol, 0)
	}
	return b.out()
}

// fire raises alert name on port n (0: the pile) unless it is already
// active there, and reports whether it did.
func (e *Engine) fire(b *batch, p *pile, n int, name AlertName, value float64) bool {
	act := p.activeMask(n)
	if *act&name.bit() != 0 {
		return false
	}
	*act |= name.bit()
	if math.IsNaN(value) || math.IsInf(value, 0) {
		value = 0
	}
	pol := policies[name]
	a := Alert{
		Name: name, Severity: pol.severity,
		Site: p.site, Pile: p.id, Port: n, Kind: p.kind,
		Summary: e.summary(p, n, name, value), OnSite: pol.onSite,
		Value: value, StartsAt: timeOf(b.now),
	}
	e.alerts[alertKey{p.idx, uint8(n), name}] = &alertRec{alert: a}
	b.rest = append(b.rest, AlertFired{Alert: a})
	return true
}

// resolve ends alert name on port n if it is active.
func (e *Engine) resolve(b *batch, p *pile, n int, name AlertName) {
	act := p.activeMask(n)
	if *act&name.bit() == 0 {
		return
	}
	*act &^= name.bit()
	k := alertKey{p.idx, uint8(n), name}
	rec := e.alerts[k]
	delete(e.alerts, k)
	if rec == nil {
		return
	}
	rec.alert.EndsAt = timeOf(b.now)
	b.rest = append(b.rest, AlertResolved{Alert: rec.alert})
	v := AlertView{Alert: rec.alert, AckedBy: rec.ackedBy, AckedAt: rec.ackedAt}
	if len(e.recent) < e.opts.RecentAlerts {
		e.recent = append(e.recent, v)
	} else {
		e.recent[e.recentNext] = v
		e.recentNext = (e.recentNext + 1) % len(e.recent)
	}
}

// trip fires alert name on port n and applies its policy: close the port
// (or port 0) and latch it.
func (e *Engine) trip(b *batch, p *pile, n int, name AlertName, value float64) {
	e.fire(b, p, n, name, value)
	pol := policies[name]
	if !pol.closes {
		return
	}
	if pol.pileWide {
		if p.latch&name.bit() == 0 {
			p.latch |= name.bit()
			p.latchedAt = b.now
		}
		e.closePile(b, p, name.String())
		return
	}
	ps := p.port(n)
	p.portState = true
	if pol.latches && ps.latch&name.bit() == 0 {
		ps.latch |= name.bit()
		ps.latchedAt = b.now
	}
	e.closePort(b, p, n, name)
}

// record appends an audit record to the batch and to the port's log.
func (e *Engine) record(b *batch, r AuditRecord) {
	b.rest = append(b.rest, Audit{Record: r})
	p := e.pileFor(r.Site, r.Pile, false)
	if p == nil {
		return
	}
	port := r.Port
	if port < 0 || port > telemetry.MaxPort {
		port = 0
	}
	k := portKey{p.idx, uint8(port)}
	l := e.audit[k]
	if l == nil {
		l = &auditLog{}
		e.audit[k] = l
	}
	if len(l.recs) < e.opts.AuditPerPort {
		l.recs = append(l.recs, r)
	} else {
		l.recs[l.next] = r
		l.next = (l.next + 1) % len(l.recs)
	}
}

func (e *Engine) summary(p *pile, n int, name AlertName, v float64) string {
	lim := p.lim
	where := fmt.Sprintf("port %d of pile %s/%s", n, p.site, p.id)
	switch name {
	case AlertTempWarning:
		return fmt.Sprintf("%s at %.1f °C (warning at %g °C)", where, v, lim.WarnC)
	case AlertOverheat:
		return fmt.Sprintf("%s reached %.1f °C (limit %g °C): port closed", where, v, lim.OverheatC)
	case AlertOverheatRate:
		return fmt.Sprintf("%s temperature rising %.1f °C/min over %s (limit %g °C/min): port closed", where, v, lim.RiseWindow, lim.RiseCPerMin)
	case AlertOvercurrent:
		return fmt.Sprintf("%s drew %.2f A, at least %g × rated %g A in %d samples: port closed", where, v, lim.OvercurrentFactor, p.ratedA(), lim.OvercurrentSamples)
	case AlertShortCircuit:
		return fmt.Sprintf("%s drew %.2f A, at least %g × rated %g A: port closed at once", where, v, lim.ShortCircuitFactor, p.ratedA())
	case AlertLeakage:
		return fmt.Sprintf("pile %s/%s residual current %.1f mA (limit %g mA): every port closed", p.site, p.id, v, lim.LeakMA)
	case AlertSmoke:
		return fmt.Sprintf("smoke at pile %s/%s: every port closed", p.site, p.id)
	case AlertSensorFault:
		return fmt.Sprintf("%s is charging without a plausible temp_c or current (temp_c must be within %g…%g °C): port closed", where, lim.SensorMinC, lim.SensorMaxC)
	case AlertPileOffline:
		if v == 0 {
			return fmt.Sprintf("pile %s/%s went offline (death message) while charging: it cannot be switched off remotely", p.site, p.id)
		}
		return fmt.Sprintf("pile %s/%s sent no telemetry for %s while charging: it cannot be switched off remotely", p.site, p.id, time.Duration(v*float64(time.Second)))
	case AlertHotContact:
		return fmt.Sprintf("%s is %.1f °C above ambient while charging (limit %g °C): loose or burnt plug?", where, v, lim.HotContactC)
	case AlertCloseFailed:
		return fmt.Sprintf("close of %s was not acked after %g sends: every port of the pile closed", where, v)
	case AlertRelayWelded:
		return fmt.Sprintf("%s still conducts after its close was acked (reading %.2f, above welded_a %g A or welded_w %g W): every port of the pile closed", where, v, lim.WeldedA, lim.WeldedW)
	case AlertMaxDuration:
		return fmt.Sprintf("%s charged for more than %s in one session: port closed", where, lim.MaxSession)
	case AlertPileStream:
		return fmt.Sprintf("pile %s/%s: %.0f telemetry messages in a row set aside (repeated, old or out-of-order seq): windowed rules degraded, single-reading trips still on", p.site, p.id, v)
	case AlertPileProtocol:
		if v == 0 {
			return fmt.Sprintf("pile %s/%s speaks a protocol version this backend does not: acted on as far as it reads as version 1", p.site, p.id)
		}
		return fmt.Sprintf("pile %s/%s: %.0f telemetry messages in a row break the protocol: acted on as far as they validate, not stored", p.site, p.id, v)
	case AlertPileConfig:
		return fmt.Sprintf("pile %s/%s announces rated_a %g A, above the cap of %g A: the rules use the cap", p.site, p.id, v, lim.MaxRatedA)
	}
	return where
}
