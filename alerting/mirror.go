package alerting

import "github.com/chargeguard/chargeguard/telemetry"

// adoptMS is how long the id of a command another replica published is
// kept for this engine to take when it decides the same command itself: a
// follower's engine runs a few messages behind the leader's at most.
const adoptMS = 30 * 1000

// adoptKey names what a command is about: one action on one port of one
// pile. Two replicas deciding from the same stream decide the same closes,
// each under its own random id; this is how they agree on one.
type adoptKey struct {
	pile   int32
	port   uint8
	action telemetry.Action
}

type adoption struct {
	id string
	at int64 // engine time it was seen
}

// mirror takes a command that another replica (the cluster's leader)
// published to pile p. This engine is a follower's: it publishes nothing,
// but it must track the commands the pile actually receives, so that the
// pile's acks settle them here too and a failover resends the leader's ids,
// not commands no pile ever saw.
//
//   - A pending command of the same port and action takes the leader's id
//     (it keeps its attempts: they are this engine's own count).
//   - Otherwise the id is kept for adoptMS: the engine takes it when it
//     decides that command itself (it is a few messages behind).
//   - An open is an operator's reset that the leader carried out after
//     checking its evidence: this engine resets the port too, under the
//     leader's id. If its own evidence check refuses (it saw other
//     readings), the port stays latched here: the safe side.
func (e *Engine) mirror(b *batch, p *pile, c *telemetry.Command) {
	if c.Port < 0 || c.Port > telemetry.MaxPort || (c.Action != telemetry.ActionClose && c.Action != telemetry.ActionOpen) {
		return
	}
	for _, pc := range p.pending {
		if int(pc.port) == c.Port && pc.action == c.Action {
			pc.id = c.ID
			return
		}
	}
	if e.adopted == nil {
		e.adopted = map[adoptKey]adoption{}
	}
	// Keep the map bounded by age: drop what no engine decision took.
	if len(e.adopted) > 1024 {
		for k, a := range e.adopted {
			if b.now-a.at > adoptMS {
				delete(e.adopted, k)
			}
		}
	}
	e.adopted[adoptKey{p.idx, uint8(c.Port), c.Action}] = adoption{id: c.ID, at: b.now}
	if c.Action == telemetry.ActionOpen {
		actions, _ := e.Reset(timeOf(b.now), p.site, p.id, c.Port, "leader")
		for _, a := range actions {
			if _, ok := a.(SendCommand); ok {
				b.cmds = append(b.cmds, a)
			} else {
				b.rest = append(b.rest, a)
			}
		}
	}
}

// newID is the id of a new command: the one another replica already
// published for the same action on the same port, when there is one, and a
// fresh one otherwise.
func (e *Engine) newID(b *batch, p *pile, port int, action telemetry.Action) string {
	if len(e.adopted) > 0 {
		k := adoptKey{p.idx, uint8(port), action}
		if a, ok := e.adopted[k]; ok {
			delete(e.adopted, k)
			if b.now-a.at <= adoptMS {
				return a.id
			}
		}
	}
	return e.opts.NewID()
}
