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

// Contract v1.1 numbers that are not configurable: they are part of the
// contract with pile vendors, not of a site's policy.
const (
	// streamRun is how many telemetry messages set aside in a row raise
	// pile_stream, and how many accepted in a row resolve it; protocolRun
	// how many rejected in a row raise pile_protocol (protocolClearRun
	// valid in a row resolve it).
	streamRun        = 10
	protocolRun      = 3
	protocolClearRun = 10
	// resendFailedMS is how often a close that outlived its resends (after
	// close_failed) is sent again while its pile is online.
	resendFailedMS = 30 * 1000
	// evidenceMS is how recent the telemetry must be that shows a tripped
	// condition cleared before a reset is allowed.
	evidenceMS = 15 * 1000
)

// pile is the engine's state of one pile. Times are Unix ms: "At" times
// on the engine's clock (the now of the calls), "TS" times on the pile's
// time base: its own clock while that clock keeps the contract's rules,
// our receive time once it broke them (recvClock), until its next birth.
type pile struct {
	site, id string
	kind     telemetry.SiteKind
	cmdTopic telemetry.Topic
	lim      *limits
	idx      int32

	// From the birth message; zero when unknown. rated is as sent (the
	// rules cap it: ratedA).
	birthPorts uint8
	rated      float32

	// Seq tracking: lastSeq is the newest accepted seq, bit i of seen says
	// whether lastSeq-i was seen. candSeq is the seq of the previous
	// message when it was set aside (haveCand): a next message continuing
	// it starts a new stream (a pile that rebooted without a birth).
	haveSeq  bool
	haveCand bool
	haveSent bool // sentTS holds an accepted ts since the last birth
	lastSeq  uint32
	candSeq  uint32
	seen     uint64
	sentTS   int64 // ts as sent of the newest accepted telemetry (haveSeq)
	lastTS   int64 // time base of the newest accepted telemetry
	baseRecv bool  // lastTS and the port timers are on receive time
	// recvClock: the pile's clock broke the rules since its last birth.
	recvClock bool

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
	lastTelAt    int64 // At of the newest accepted telemetry
	heardAt      int64 // At of the newest message of any kind (online)
	smokeTB      int64 // time base of the newest smoke report
	anyTelAt     int64 // At of the newest telemetry, accepted or not (offline)

	// Runs of telemetry for pile_stream and pile_protocol.
	asideRun, acceptRun uint8
	rejectRun, validRun uint8

	latch     alertMask // pile-wide latch reasons (AlertName bits)
	active    alertMask // alerts active on port 0
	latchedAt int64
	due       int64 // earliest now at which Tick has work here

	pending []*command
	failed  []string // ids of closes given up on by an older version (state files), so a late ack is recognised
	ports   []port   // ports[n-1] is port n
}

// port is the state of one port. It is kept small (about 72 bytes, plus a
// 288-byte rise ring once it has charged): a million ports must fit in
// 2 GiB.
type port struct {
	rise         *riseRing
	sessionStart int64 // pile ts of the first charging sample of the session, 0 when not charging
	lowSince     int64 // pile ts since which power has been at or below full_w, 0 when not
	readAt       int64 // At of the newest accepted telemetry with this port's entry
	latchedAt    int64
	lastTemp     float32 // NaN when missing or implausible
	prevTemp     float32
	lastA        float32   // NaN when missing
	lastW        float32   // NaN when missing
	latch        alertMask // latch reasons (AlertName bits)
	active       alertMask // alerts active on this port
	ocCount      uint8     // consecutive samples at or above the overcurrent limit
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

func (p *pile) activeMask(n int) *alertMask {
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

// ratedA is the rated current the rules use: the birth's, capped by the
// configuration (contract v1.1: a birth is trusted only so far), else the
// configured default.
func (p *pile) ratedA() float64 {
	if p.rated > 0 {
		return min(float64(p.rated), p.lim.MaxRatedA)
	}
	return p.lim.DefaultRatedA
}

// online reports whether the pile counts as online at now: its latest
// status is a birth and it was heard from within the offline window.
func (p *pile) online(now int64) bool {
	return !p.dead && p.heardAt != 0 && now-p.heardAt < p.lim.staleMS
}

// held reports whether port n is kept closed by the engine on its own
// account (a port-0 close aside).
func (ps *port) held() bool { return ps.latch != 0 || ps.closeHeld }

type seqClass uint8

const (
	seqNew     seqClass = iota // newer than any accepted: evaluate fully
	seqRestart                 // a new stream of a pile that restarted its counter without a birth
	seqLate                    // behind, within the window, unseen: set aside
	seqDup                     // seen already: set aside
	seqStale                   // far behind: set aside
)

// classify places a telemetry seq in the pile's stream, with serial-number
// arithmetic (RFC 1982) so that the uint32 wrap from 4294967295 to 0 is
// just the next seq, and records it. Contract v1.1: a seq at or below the
// last accepted one starts a new stream at once when its ts (as sent) is
// newer than the last accepted one's, and otherwise when the next message
// continues it (seq + 1); until then it is set aside.
func (p *pile) classify(seq uint32, ts int64) seqClass {
	cand, candSeq := p.haveCand, p.candSeq
	p.haveCand = false
	if !p.haveSeq {
		p.haveSeq, p.lastSeq, p.seen = true, seq, 1
		return seqNew
	}
	d := int32(seq - p.lastSeq)
	if d > 0 {
		if d >= reorderWindow {
			p.seen = 1
		} else {
			p.seen = p.seen<<uint(d) | 1
		}
		p.lastSeq = seq
		return seqNew
	}
	// The one continuation that is surely not a new stream: the newest
	// accepted message itself again (same seq, same ts), as a QoS 1
	// redelivery after its predecessor brings it.
	same := d == 0 && ts == p.sentTS
	if ts > p.sentTS || (cand && seq == candSeq+1 && !same) {
		p.lastSeq, p.seen = seq, 1
		return seqRestart
	}
	p.haveCand, p.candSeq = true, seq
	switch {
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
	return seqStale
}

// pileNow is the pile's time base at our time now (ms): its newest
// accepted ts, moved on by the time we have waited since that telemetry
// arrived. On receive time it is about now.
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
		due = p.anyTelAt + lim.staleMS
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
	attempt    uint8 // sends so far (saturating)
	failed     bool  // escalated to close_failed; still pending until acked
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
