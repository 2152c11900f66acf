package cluster

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/alerting/notify"
)

// Roler says what a replica may do now; *Cluster is one.
type Roler interface {
	Role() Role
}

// Gate stands between a replica's safety service and the outside world:
// it carries out the engine's side effects when this replica may (see
// Role), and holds them back otherwise. The engine itself never knows: it
// decides the same closes on every replica, so a failover finds them warm.
//
//	              leader   follower   alone
//	close         send     hold       send (closes are idempotent)
//	open          send     hold       refuse (ErrNoLeader)
//	alert         post     remember   post (Alertmanager deduplicates)
//	alert/audit   write    hold       write
//	points
type Gate struct {
	r Roler
	m *metrics

	mu     sync.Mutex
	active map[string]notify.Alert // firing alerts, by labels, for a new leader to post again
}

// NewGate returns a gate that asks r.
func NewGate(r Roler) *Gate {
	g := &Gate{r: r, active: map[string]notify.Alert{}}
	if c, ok := r.(*Cluster); ok {
		g.m = c.m
	}
	return g
}

func (g *Gate) held(kind string, role Role) {
	if g.m != nil {
		g.m.heldBack.WithLabelValues(kind, role.String()).Inc()
	}
}

// Publisher wraps the command publisher.
func (g *Gate) Publisher(p alerting.Publisher) alerting.Publisher {
	return alerting.PublisherFunc(func(topic string, payload []byte) error {
		switch role := g.r.Role(); role {
		case RoleLeader:
			return p.Publish(topic, payload)
		case RoleFollower:
			// The leader sends it; this engine tracks it warm, mirroring
			// the leader's command from the cmd topic.
			g.held("command", role)
			return nil
		default:
			if isOpen(payload) {
				g.held("open", role)
				return fmt.Errorf("open held back: %w", ErrNoLeader)
			}
			return p.Publish(topic, payload)
		}
	})
}

// isOpen reports whether a command payload is an open. Commands are rare
// (one per cut), so decoding them costs nothing that matters; anything
// that does not decode as an open is treated as a close: the safe side.
func isOpen(payload []byte) bool {
	var c struct {
		Action string `json:"action"`
	}
	return json.Unmarshal(payload, &c) == nil && c.Action == "open"
}

// Notifier wraps the notifier. Every replica remembers the alerts its
// engine has firing, so that the one that comes to lead posts them again
// (Lead): on-call gets one page per condition, whoever leads.
func (g *Gate) Notifier(n alerting.Notifier) alerting.Notifier {
	return &gatedNotifier{g: g, n: n}
}

type gatedNotifier struct {
	g *Gate
	n alerting.Notifier
}

func (gn *gatedNotifier) Fire(a notify.Alert) {
	gn.g.mu.Lock()
	gn.g.active[labelsKey(a.Labels)] = a
	gn.g.mu.Unlock()
	if role := gn.g.r.Role(); role == RoleFollower {
		gn.g.held("alert", role)
		return
	}
	if gn.n != nil {
		gn.n.Fire(a)
	}
}

func (gn *gatedNotifier) Resolve(a notify.Alert) {
	gn.g.mu.Lock()
	delete(gn.g.active, labelsKey(a.Labels))
	gn.g.mu.Unlock()
	if role := gn.g.r.Role(); role == RoleFollower {
		gn.g.held("alert", role)
		return
	}
	if gn.n != nil {
		gn.n.Resolve(a)
	}
}

// Refire posts every firing alert again through n; a new leader calls it
// (Alertmanager deduplicates by labels).
func (g *Gate) Refire(n alerting.Notifier) int {
	g.mu.Lock()
	all := make([]notify.Alert, 0, len(g.active))
	for _, a := range g.active {
		all = append(all, a)
	}
	g.mu.Unlock()
	if n == nil {
		return 0
	}
	for _, a := range all {
		n.Fire(a)
	}
	return len(all)
}

func labelsKey(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(l[k])
		b.WriteByte(0)
	}
	return b.String()
}

// Recorder wraps the recorder of alert and audit points: the leader
// writes them (and every replica while none leads: a duplicate point is
// better than a lost audit).
func (g *Gate) Recorder(r alerting.Recorder) alerting.Recorder {
	return recorderFunc(func(lines []byte) {
		if role := g.r.Role(); role == RoleFollower {
			g.held("record", role)
			return
		}
		r.Record(lines)
	})
}

type recorderFunc func([]byte)

func (f recorderFunc) Record(b []byte) { f(b) }
