package alerting

import (
	"math"

	"github.com/chargeguard/chargeguard/telemetry"
)

// never is the due time of a pile with nothing for Tick to do.
const never = math.MaxInt64

// reorderWindow is how many seqs behind the newest a message may arrive and
// still be recognised as late (unseen) rather than as a duplicate or a
// restart: the width of pile.seen.
const reorderWindow = 64

// pile is the engine's state of one pile. Times are Unix ms: "At" times
// on the engine's clock (the now of the calls), "TS" times on the pile's.
type pile struct {
	site, id string
	kind     telemetry.SiteKind
	cmdTopic telemetry.Topic
	lim      *limits
	idx      int32

	// From the birth message; zero when unknown.
	birthPorts uint8
	rated      float32

	// Seq tracking: lastSeq is the newest seq seen, bit i of seen says
	// whether lastSeq-i was seen.
	haveSeq bool
	lastSeq uint32
	seen    uint64
	lastTS  int64 // pile ts of the newest in-order telemetry

	everTel      bool // a telemetry arrived since the engine (re)started
	dead         bool // the last status was a death
	anyCharging  bool // a port was charging at the last telemetry
	reportsSmoke bool // the pile reports smoke in its telemetry
	smoke        bool // smoke seen and not cleared by a later reading
	leak         bool // leak_ma at or above the limit and not cleared
	inPending    bool // listed in Engine.pendingPiles
	portState    bool // a port may hold a latch, a close or an alert (Snapshot clears it when none does)
	close0       bool // a port-0 close is held (pending or acked)
	close0Acked  bool
	close0AckTS  int64
	lastTelAt    int64
	smokeTS      int64

	latch     uint16 // pile-wide latch reasons (AlertName bits)
	active    uint16 // alerts active on port 0
	latchedAt int64
	due       int64 // earliest now at which Tick has work here

	pending []*command
	failed  []string // ids of closes given up on, so a late ack is recognised
	ports   []port   // ports[n-1] is port n
}

// port is the state of one port. It is kept small (about 72 bytes, plus a
// 288-byte rise ring once it has charged): a million ports must fit in
// 2 GiB.
type port struct {
	rise         *riseRing
	sessionStart int64 // pile ts of the first charging sample of the session, 0 when not charging
	lowSince     int64 // pile ts since which power has been at or below full_w, 0 when not
	ackTS        int64 // pile TS from which telemetry must show the port cut
	latchedAt    int64
	lastTemp     float32 // NaN when missing or implausible
	prevTemp     float32
	lastA        float32 // NaN when missing
	lastW        float32 // NaN when missing
	latch        uint16  // latch reasons (AlertName bits)
	active       uint16  // alerts active on this port
	ocCount      uint8   // consecutive samples at or above the overcurrent limit
	closeReason  AlertName
	state        uint8 // index in portStates
	closeHeld    bool  // a close of this port is held (pending or acked)
	closeAcked   bool
	charging     bool
}

func newPort() port {
	nan := float32(math.NaN())
	return port{lastTemp: nan, prevTemp: nan, lastA: nan, lastW: nan}
}

// port returns port n (1..64), growing the slice as needed.
func (p *pile) port(n int) *port {
	for len(p.ports) < n {
		p.ports = append(p.ports, newPort())
	}
	return &p.ports[n-1]
}

// portIf returns port n if the engine has state for it.
func (p *pile) portIf(n int) *port {
	if n < 1 || n > len(p.ports) {
		return nil
	}
	return &p.ports[n-1]
}

func (p *pile) activeMask(n int) *uint16 {
	if n == 0 {
		return &p.active
	}
	p.portState = true
	return &p.port(n).active
}

// nports is how many ports the pile has, as far as the engine knows.
func (p *pile) nports() int {
	return max(int(p.birthPorts), len(p.ports))
}

func (p *pile) ratedA() float64 {
	if p.rated > 0 {
		return float64(p.rated)
	}
	return p.lim.DefaultRatedA
}

// held reports whether port n is kept closed by the engine on its own
// account (a port-0 close aside).
func (ps *port) held() bool { return ps.latch != 0 || ps.closeHeld }

type seqClass uint8

const (
	seqNew     seqClass = iota // newer than any seen: evaluate fully
	seqRestart                 // far behind but with a newer ts: a rebooted pile's new stream
	seqLate                    // behind, within the window, unseen: single-sample trips only
	seqDup                     // seen already
	seqStale                   // far behind with an older ts: dropped
)

// classify places a telemetry seq in the pile's stream, with serial-number
// arithmetic (RFC 1982) so that the uint32 wrap from 4294967295 to 0 is
// just the next seq, and records it as seen.
func (p *pile) classify(seq uint32, ts int64) seqClass {
	if !p.haveSeq {
		p.haveSeq, p.lastSeq, p.seen = true, seq, 1
		return seqNew
	}
	d := int32(seq - p.lastSeq)
	switch {
	case d > 0:
		if d >= reorderWindow {
			p.seen = 1
		} else {
			p.seen = p.seen<<uint(d) | 1
		}
		p.lastSeq = seq
		return seqNew
	case d == 0:
		return seqDup
	case d > -reorderWindow:
		bit := uint64(1) << uint(-d)
		if p.seen&bit != 0 {
			return seqDup
		}
		p.seen |= bit
		return seqLate
	}
	// Far behind: a rebooted pile counting from 0 again (its ts moves on),
	// or a very old redelivery (its ts does not).
	if ts > p.lastTS {
		p.lastSeq, p.seen = seq, 1
		return seqRestart
	}
	return seqStale
}

// pileNow is the pile's clock at our time now (ms): its newest in-order
// ts, moved on by the time we have waited since that telemetry arrived.
func (p *pile) pileNow(now int64) int64 {
	return p.lastTS + (now - p.lastTelAt)
}

// ourTime converts a time on the pile's clock to ours (the inverse of
// pileNow).
func (p *pile) ourTime(pileMS int64) int64 {
	return pileMS - p.lastTS + p.lastTelAt
}

// recomputeDue sets when Tick next has work for this pile: staleness while
// charging, a session's maximum duration, a full battery's timer.
func (p *pile) recomputeDue() {
	lim := p.lim
	due := int64(never)
	if p.everTel && p.anyCharging && p.active&AlertPileOffline.bit() == 0 {
		due = p.lastTelAt + lim.staleMS
	}
	for i := range p.ports {
		ps := &p.ports[i]
		if !ps.charging {
			continue
		}
		// The timers run on the pile's clock; due is on ours.
		if ps.sessionStart != 0 && ps.active&AlertMaxDuration.bit() == 0 {
			due = min(due, p.ourTime(ps.sessionStart+lim.maxSessionMS+1))
		}
		if ps.lowSince != 0 && !ps.closeHeld && !p.close0 {
			due = min(due, p.ourTime(ps.lowSince+lim.fullAfterMS))
		}
	}
	p.due = due
}

// command is a command awaiting its ack.
type command struct {
	id         string
	action     telemetry.Action
	reason     string
	ts         int64 // the command's ts field
	sentAt     int64 // At of the latest send
	detectedAt int64
	port       uint8
	attempt    uint8 // sends so far
}

func (c *command) send(p *pile) SendCommand {
	return SendCommand{
		Topic: p.cmdTopic,
		Cmd: telemetry.Command{
			V: telemetry.Version, ID: c.id, TS: c.ts, Port: int(c.port),
			Action: c.action, Reason: c.reason,
		},
		Attempt:    int(c.attempt),
		DetectedAt: timeOf(c.detectedAt),
	}
}

// portStates maps the reported port state to a byte; 0 is unknown.
var portStates = [...]telemetry.PortState{"", telemetry.StateIdle, telemetry.StateCharging, telemetry.StateClosed, telemetry.StateFault}

func stateCode(s telemetry.PortState) uint8 {
	for i, v := range portStates {
		if v == s {
			return uint8(i)
		}
	}
	return 0
}

func f32(v float64, ok bool) float32 {
	if !ok {
		return float32(math.NaN())
	}
	return float32(v)
}

func isNaN32(v float32) bool { return v != v }
