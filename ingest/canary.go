package ingest

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/chargeguard/chargeguard/telemetry"
)

// canary measures how far behind the broker a session is: it publishes a
// small message to telemetry.CanaryPrefix + its client id and reads it
// back. A canary that has not come back counts from the moment it was
// sent, even after a newer one was sent because it seemed lost: the lag is
// the age of the oldest canary not yet answered (one is answered when it or
// a later one comes back: one connection keeps order). The live session's
// goes at QoS 0; the storage session's at QoS 1, so that it waits in the
// session's persistent queue behind storage's backlog.
type canary struct {
	topic    string
	interval time.Duration
	qos      byte
	// carried, when set, says the broker carries canaries at all (the
	// storage canary asks the live one, which is back in milliseconds: its
	// own may wait minutes behind a backlog a restart found).
	carried func() bool

	echoed atomic.Bool // one has come back since start: the broker carries them
	// resend lets one more go out though one is in flight (QoS 1 sends
	// one at a time): set on connection loss.
	resend bool

	mu       sync.Mutex
	out      []int64 // send times (unix ns) of the canaries in flight, oldest first; out[i] is seq first+i
	first    uint64
	next     uint64
	lastRTT  time.Duration
	lastSent int64
}

// maxOut bounds the canaries remembered in flight (one more every lostAfter
// while none comes back): past it the oldest is forgotten, and the lag,
// already minutes by then, stops growing.
const maxOut = 64

// newCanary returns a canary on topic. Its sequence starts at the clock's
// nanoseconds, so that canaries a previous process left in a persistent
// queue (numbered from its own, earlier start) never answer this one's.
func newCanary(topic string, interval time.Duration, qos byte) *canary {
	c := &canary{topic: topic, interval: interval, qos: qos}
	c.next = uint64(time.Now().UnixNano())
	c.first = c.next + 1
	return c
}

// isCarried reports whether canaries are known to come back through the
// broker.
func (c *canary) isCarried() bool {
	return c.echoed.Load() || c.carried != nil && c.carried()
}

// lag is the session's delay behind the broker as far as the canary
// knows: the age of the oldest canary not yet answered, or the last round
// trip, whichever is more. Zero until canaries are known to come back (a
// broker whose ACL drops them must not look like a session that is
// behind).
func (c *canary) lag(now time.Time) time.Duration {
	if c == nil || !c.isCarried() {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	lag := c.lastRTT
	if len(c.out) > 0 {
		lag = max(lag, now.Sub(time.Unix(0, c.out[0])))
	}
	return lag
}

// reset is called from the connection-lost handler. QoS 0 canaries in
// flight are forgotten: the connection they went out on is gone, and they
// cannot come back. QoS 1 ones stay counted: a persistent session keeps
// them in the broker, behind the backlog they measure; one more goes out
// on the new connection, which answers them all if the broker lost them.
func (c *canary) reset() {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.qos > 0 {
		c.resend = true
	} else {
		c.out, c.first = c.out[:0], c.next+1
	}
	c.mu.Unlock()
}

// run sends a canary every interval once the last one is back, while the
// session is connected; at QoS 0 also another when the last has been out
// for lostAfter (the broker may have dropped it). A QoS 1 one is not lost
// but waits, and its age is the lag, however long.
func (c *canary) run(ctx context.Context, cl paho.Client, connected *atomic.Bool, lostAfter time.Duration, log zerolog.Logger) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	var payload [8]byte
	started, warned := time.Now(), false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !connected.Load() {
			continue
		}
		now := time.Now()
		if !warned && !c.isCarried() && now.Sub(started) > 10*time.Second {
			warned = true
			log.Warn().Str("topic", c.topic).Msg("no canary came back through the broker: this session's lag is not measured " +
				"(the live session's: storage yields only to its backlog); let chargeguard's account publish and read " + telemetry.CanaryPrefix + "# (deploy/mosquitto/acl)")
		}
		c.mu.Lock()
		if len(c.out) > 0 && !c.resend && (c.qos > 0 || now.UnixNano()-c.lastSent < int64(lostAfter)) {
			c.mu.Unlock()
			continue
		}
		c.resend = false
		c.next++
		if len(c.out) == 0 {
			c.first = c.next
		}
		if len(c.out) == maxOut {
			c.out, c.first = c.out[1:], c.first+1
		}
		c.out = append(c.out, now.UnixNano())
		c.lastSent = now.UnixNano()
		binary.BigEndian.PutUint64(payload[:], c.next)
		c.mu.Unlock()
		cl.Publish(c.topic, c.qos, false, payload[:])
	}
}

// onEcho is the canary subscription's handler (paho's router goroutine, in
// order with the session's messages).
func (c *canary) onEcho(_ paho.Client, msg paho.Message) {
	if msg.Qos() > 0 {
		msg.Ack() // the storage session acks by hand; an unacked echo would hold its inflight window
	}
	p := msg.Payload()
	if len(p) != 8 {
		return
	}
	seq := binary.BigEndian.Uint64(p)
	now := time.Now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.out) == 0 || seq < c.first || seq >= c.first+uint64(len(c.out)) {
		return // already answered, or from a connection since lost
	}
	i := int(seq - c.first)
	c.lastRTT = time.Duration(now - c.out[i])
	// It and every older one are answered (come back or dropped).
	c.out = append(c.out[:0], c.out[i+1:]...)
	c.first = seq + 1
	c.echoed.Store(true)
}
