package broker

import (
	"cmp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
)

// HoldOptions makes the broker push back on publishers instead of dropping
// what a slow subscriber cannot take. mochi queues a bounded number of
// packets per client and drops (and counts) a delivery when that queue is
// full, even a QoS 1 one it has already PUBACKed. With Watch set, a QoS 1
// PUBLISH from any client but the watched and exempt ones waits, before the
// broker takes it and PUBACKs it, while a watched session has its mark or
// more QoS 1 messages unacknowledged: the backlog stays in the piles (which keep
// it until PUBACK), not in the broker's memory, and nothing is dropped.
//
// The wait is bounded so that storage trouble never blinds the safety
// engine, which reads the same messages through another session: a
// publish waits at most Max, and not at all once a watched session has
// acknowledged nothing for Stall (its spool is full or its disk hangs);
// the broker then queues and, past its bound, drops as before. QoS 0
// messages are never held: their sender chose to have them dropped rather
// than delayed.
type HoldOptions struct {
	// Watch maps the client ids whose unacknowledged QoS 1 messages are
	// watched (chargeguard's storage and live sessions) to their mark and
	// longest hold. Empty: no hold.
	Watch map[string]Watch
	// Exempt lists client ids whose publishes are never held
	// (chargeguard's command session: a close order must not wait).
	Exempt []string
	// Topics: when set, only publishes whose topic ends with one of these
	// are held (chargeguard: "/telemetry", the bulk; a pile's events, acks
	// and status are few and go through at once).
	Topics []string
	// Above is the default mark; default half of Options.MaxWritesPending,
	// so the watched session's write queue does not fill with QoS 1
	// messages even when many held publishers are let go at once.
	Above int
	// Max is the default longest wait of one publish; default 2 s.
	Max time.Duration
	// Stall: a watched session that acknowledged nothing for this long is
	// not waited for; default 1 s.
	Stall time.Duration
}

// watched is what the hook knows of one watched session, in unix nanos.
type watched struct {
	mark    int
	max     time.Duration
	lastAck atomic.Int64
	over    atomic.Int64 // when it was first seen at or over the mark; 0: below it
}

// Watch is how one watched session holds publishers.
type Watch struct {
	// Mark is the unacknowledged count from which publishers wait; 0 is
	// HoldOptions.Above. A mark above Options.MaxWritesPending is safe
	// only for a client that keeps reading its socket while it has that
	// many unacknowledged (the storage session: its own queue,
	// ingest.queue_size, takes them), else its write queue fills first
	// and the broker drops.
	Mark int
	// Max bounds a wait on this session; 0 is HoldOptions.Max. When
	// several are behind, the longest applies.
	Max time.Duration
}

// holdHook implements HoldOptions.
type holdHook struct {
	mqtt.HookBase
	srv    *mqtt.Server
	watch  map[string]*watched
	exempt map[string]bool
	o      HoldOptions

	mu      sync.Mutex
	wake    chan struct{} // closed, and replaced, when a watched session falls below its mark
	waiting atomic.Int32
	// gate admits held publishers one at a time, in arrival order (a
	// channel's blocked senders queue FIFO): a broadcast wake-up would let
	// the same lucky ones through while others wait out Max.
	gate chan struct{}

	held     prometheus.Counter
	heldSecs prometheus.Counter
	timeouts prometheus.Counter
	stalled  prometheus.Counter
}

func newHoldHook(srv *mqtt.Server, o HoldOptions, writesPending int) *holdHook {
	if o.Above <= 0 {
		o.Above = max(writesPending/2, 1)
	}
	if o.Max <= 0 {
		o.Max = 2 * time.Second
	}
	if o.Stall <= 0 {
		o.Stall = time.Second
	}
	h := &holdHook{
		srv:    srv,
		watch:  map[string]*watched{},
		exempt: map[string]bool{},
		o:      o,
		wake:   make(chan struct{}),
		gate:   make(chan struct{}, 1),
		held: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_broker_publishes_held_total",
			Help: "QoS 1 publishes the embedded broker held back (no PUBACK yet) because chargeguard's storage or live session was behind.",
		}),
		heldSecs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_broker_publish_hold_seconds_total",
			Help: "Time publishers spent held back by the embedded broker.",
		}),
		timeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_broker_publish_hold_timeouts_total",
			Help: "Held publishes let through after the longest hold while chargeguard's session was still behind (they may then be dropped).",
		}),
		stalled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_broker_publish_hold_stalled_total",
			Help: "QoS 1 publishes let through unheld because chargeguard's storage or live session was behind and had acknowledged nothing for the stall time (they may then be dropped).",
		}),
	}
	for id, w := range o.Watch {
		h.watch[id] = &watched{mark: cmp.Or(w.Mark, o.Above), max: cmp.Or(w.Max, o.Max)}
	}
	for _, id := range o.Exempt {
		h.exempt[id] = true
	}
	return h
}

func (h *holdHook) collectors() []prometheus.Collector {
	return []prometheus.Collector{h.held, h.heldSecs, h.timeouts, h.stalled}
}

// ID names the hook for mochi.
func (h *holdHook) ID() string { return "chargeguard-hold" }

// Provides says which mochi events the hook handles.
func (h *holdHook) Provides(b byte) bool {
	return b == mqtt.OnPublish || b == mqtt.OnQosComplete
}

// OnQosComplete notes a watched session's ack, and wakes the held
// publishers once it is below the mark.
func (h *holdHook) OnQosComplete(cl *mqtt.Client, _ packets.Packet) {
	w, ok := h.watch[cl.ID]
	if !ok {
		return
	}
	w.lastAck.Store(time.Now().UnixNano())
	if h.waiting.Load() > 0 && cl.State.Inflight.Len() < w.mark {
		h.mu.Lock()
		close(h.wake)
		h.wake = make(chan struct{})
		h.mu.Unlock()
	}
}

// behind reports whether a watched session is at or over its mark and
// still acknowledging, and then the longest hold of those that are; and
// whether one is over its mark and stalled.
func (h *holdHook) behind(now time.Time) (behind, stalled bool, limit time.Duration) {
	for id, w := range h.watch {
		cl, ok := h.srv.Clients.Get(id)
		if !ok || cl.Closed() || cl.State.Inflight.Len() < w.mark {
			w.over.Store(0)
			continue
		}
		// The stall clock starts at the last ack or when the session went
		// over the mark, whichever is later: a session idle before a burst
		// has not stalled.
		w.over.CompareAndSwap(0, now.UnixNano())
		if now.UnixNano()-max(w.lastAck.Load(), w.over.Load()) < int64(h.o.Stall) {
			behind, limit = true, max(limit, w.max)
		} else {
			stalled = true
		}
	}
	return behind, stalled && !behind, limit
}

// OnPublish holds a QoS 1 publish while a watched session is behind. It
// runs on the publisher's read goroutine, so waiting here stops that
// connection only.
func (h *holdHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Qos == 0 || cl.Net.Inline || h.exempt[cl.ID] || h.watch[cl.ID] != nil || !h.holds(pk.TopicName) {
		return pk, nil
	}
	start := time.Now()
	behind, stalled, limit := h.behind(start)
	if !behind {
		if stalled {
			h.stalled.Inc()
		}
		return pk, nil
	}
	h.held.Inc()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	timeout := func() (packets.Packet, error) {
		h.timeouts.Inc()
		h.heldSecs.Add(time.Since(start).Seconds())
		return pk, nil
	}
	select {
	case h.gate <- struct{}{}:
		defer func() { <-h.gate }()
	case <-timer.C:
		return timeout()
	}
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	// Registered as waiting before taking the wake channel and checking
	// again, so an ack in between closes the channel we hold: no lost
	// wake-up. The poll only notices a session that stopped acking (Stall).
	h.waiting.Add(1)
	defer h.waiting.Add(-1)
	for {
		h.mu.Lock()
		wake := h.wake
		h.mu.Unlock()
		now := time.Now()
		behind, stalled, limit = h.behind(now)
		if !behind {
			if stalled {
				h.stalled.Inc()
			}
			h.heldSecs.Add(now.Sub(start).Seconds())
			return pk, nil
		}
		// The session that is behind now may allow a shorter wait than
		// the one that was.
		left := limit - now.Sub(start)
		if left <= 0 {
			return timeout()
		}
		timer.Reset(left)
		select {
		case <-wake:
		case <-poll.C:
		case <-timer.C:
		}
	}
}

func (h *holdHook) holds(topic string) bool {
	if len(h.o.Topics) == 0 {
		return true
	}
	for _, suffix := range h.o.Topics {
		if strings.HasSuffix(topic, suffix) {
			return true
		}
	}
	return false
}
