package notify

import "container/list"

// update is one pending post of an alert's state to one receiver.
type update struct {
	key   string
	alert Alert
	// resolved is true for the final post of a resolved alert; a firing
	// update's endsAt is computed when it is sent.
	resolved bool
}

// queue holds the pending updates of one receiver, oldest first, at most
// capacity of them. A newer update of an alert replaces its latest pending
// update in place when both are firing or both resolved, so a storm of
// updates of one alert takes one slot. A change of status (firing to resolved
// or back) is queued behind instead: the log receiver reports both, and the
// latest state is always the last one sent.
// It is not safe for concurrent use; the Notifier's mutex guards it.
type queue struct {
	capacity int
	order    *list.List               // of *update, oldest first
	byKey    map[string]*list.Element // the latest pending update of each alert
}

func newQueue(capacity int) *queue {
	return &queue{capacity: capacity, order: list.New(), byKey: make(map[string]*list.Element)}
}

func (q *queue) len() int { return q.order.Len() }

// push queues u (see queue). When the queue is full it drops one update to
// make room (see victim) and returns 1, else 0. isActive tells whether an
// alert's latest state is kept in the active set. A resolve is dropped only
// when the queue holds nothing else; Alertmanager then resolves that alert by
// itself when the endsAt of its last firing post passes.
func (q *queue) push(u update, isActive func(key string) bool) (dropped int) {
	if e, ok := q.byKey[u.key]; ok && e.Value.(*update).resolved == u.resolved {
		e.Value = &u
		return 0
	}
	if q.order.Len() >= q.capacity {
		if v := q.victim(isActive); v != nil {
			q.remove(v)
			dropped = 1
		}
	}
	q.byKey[u.key] = q.order.PushBack(&u)
	return dropped
}

// pushFront puts back updates that failed to send, ahead of everything else,
// except those of alerts that got a newer update meanwhile. It returns
// how many updates were dropped to stay within capacity (see push).
func (q *queue) pushFront(us []update, isActive func(key string) bool) (dropped int) {
	newer := make(map[string]bool, len(us))
	for _, u := range us {
		_, pending := q.byKey[u.key]
		newer[u.key] = pending
	}
	// Backwards, so that the batch keeps its order and the first update
	// seen of an alert is its latest.
	for i := len(us) - 1; i >= 0; i-- {
		u := us[i]
		if newer[u.key] {
			continue
		}
		e := q.order.PushFront(&u)
		if _, ok := q.byKey[u.key]; !ok {
			q.byKey[u.key] = e
		}
	}
	for q.order.Len() > q.capacity {
		q.remove(q.victim(isActive))
		dropped++
	}
	return dropped
}

// victim picks the update to drop from a full queue, in order of preference:
// the oldest update superseded by a newer one of the same alert; the oldest
// update of an alert still active (its state goes out again at the next
// resend); the oldest update. The scan is linear, but it runs only when the
// queue is full.
func (q *queue) victim(isActive func(key string) bool) *list.Element {
	var firstActive *list.Element
	for e := q.order.Front(); e != nil; e = e.Next() {
		p := e.Value.(*update)
		if q.byKey[p.key] != e {
			return e
		}
		if firstActive == nil && !p.resolved && isActive(p.key) {
			firstActive = e
		}
	}
	if firstActive != nil {
		return firstActive
	}
	return q.order.Front()
}

// take removes and returns up to max of the oldest updates.
func (q *queue) take(max int) []update {
	n := min(max, q.order.Len())
	if n == 0 {
		return nil
	}
	out := make([]update, 0, n)
	for range n {
		e := q.order.Front()
		out = append(out, *e.Value.(*update))
		q.remove(e)
	}
	return out
}

// clear empties the queue and returns how many updates it held.
func (q *queue) clear() int {
	n := q.order.Len()
	q.order.Init()
	clear(q.byKey)
	return n
}

func (q *queue) remove(e *list.Element) {
	if key := e.Value.(*update).key; q.byKey[key] == e {
		delete(q.byKey, key)
	}
	q.order.Remove(e)
}
