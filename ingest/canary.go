package ingest

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/chargeguard/chargeguard/telemetry"
)

// canary measures how far behind the broker the live session is: it
// publishes a small QoS 0 message to telemetry.CanaryPrefix + its client id
// and reads it back, behind every message the broker has queued for it.
// The topic is outside the pile topics, so neither storage nor the engine
// sees it; the broker's ACL must let chargeguard's account publish and read
// it (deploy/mosquitto/acl; the embedded broker allows it). It uses its
// own traffic, so the measure does not depend on the piles': a canary that
// has not come back counts from the moment it was sent.
type canary struct {
	topic string

	seq      atomic.Uint64 // of the canary in flight; 0: none
	sentAt   atomic.Int64  // unix nanoseconds
	lastRTT  atomic.Int64  // nanoseconds, of the last one that came back
	echoed   atomic.Bool   // one has come back since start: the broker carries them
	next     uint64
	interval time.Duration
}

// lag is the live session's delay behind the broker as far as the canary
// knows: the age of the one in flight or the last one's round trip,
// whichever is more. Zero until a canary has ever come back (a broker whose
// ACL drops them must not look like a live session that is behind).
func (c *canary) lag(now time.Time) time.Duration {
	if c == nil || !c.echoed.Load() {
		return 0
	}
	lag := time.Duration(c.lastRTT.Load())
	if c.seq.Load() != 0 {
		lag = max(lag, now.Sub(time.Unix(0, c.sentAt.Load())))
	}
	return lag
}

// run sends a canary every interval once the last one is back, or a new
// one when the last has been out for lostAfter (a QoS 0 message the broker
// dropped), while the session is connected.
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
		if !warned && !c.echoed.Load() && now.Sub(started) > 10*time.Second {
			warned = true
			log.Warn().Str("topic", c.topic).Msg("no canary came back through the broker: the live session's lag is not measured " +
				"and storage yields only to its own backlog; let chargeguard's account publish and read " + telemetry.CanaryPrefix + "# (deploy/mosquitto/acl)")
		}
		if c.seq.Load() != 0 && now.Sub(time.Unix(0, c.sentAt.Load())) < lostAfter {
			continue
		}
		c.next++
		binary.BigEndian.PutUint64(payload[:], c.next)
		// sentAt first: a canary that comes back at once finds its time.
		c.sentAt.Store(now.UnixNano())
		c.seq.Store(c.next)
		cl.Publish(c.topic, 0, false, payload[:]) // QoS 0: nothing to wait for
	}
}

// onEcho is the canary subscription's handler (paho's router goroutine, in
// order with the live session's messages).
func (c *canary) onEcho(_ paho.Client, msg paho.Message) {
	p := msg.Payload()
	if len(p) != 8 {
		return
	}
	seq := binary.BigEndian.Uint64(p)
	sent := c.sentAt.Load() // before the swap: the next canary may follow at once
	if seq == 0 || !c.seq.CompareAndSwap(seq, 0) {
		return // an older one, already given up
	}
	c.lastRTT.Store(time.Now().UnixNano() - sent)
	c.echoed.Store(true)
}
