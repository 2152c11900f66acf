package notify

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func firing(key string, note string) update {
	return update{key: key, alert: Alert{Annotations: map[string]string{"n": note}}}
}

func resolved(key string, note string) update {
	u := firing(key, note)
	u.resolved = true
	return u
}

// contents lists the queue as key:note, with a ! for resolves.
func contents(q *queue) []string {
	var out []string
	for e := q.order.Front(); e != nil; e = e.Next() {
		u := e.Value.(*update)
		s := u.key + ":" + u.alert.Annotations["n"]
		if u.resolved {
			s += "!"
		}
		out = append(out, s)
	}
	return out
}

func TestQueueCoalescesAnAlertsUpdatesInPlace(t *testing.T) {
	q := newQueue(10)
	all := func(string) bool { return true }
	q.push(firing("a", "1"), all)
	q.push(firing("b", "1"), all)
	q.push(firing("a", "2"), all)
	assert.Equal(t, []string{"a:2", "b:1"}, contents(q), "a storm of updates takes one slot")

	// A change of status queues behind, so the log receiver sees both and
	// the latest state is last.
	q.push(resolved("a", "3"), all)
	q.push(resolved("a", "4"), all)
	q.push(firing("a", "5"), all)
	assert.Equal(t, []string{"a:2", "b:1", "a:4!", "a:5"}, contents(q))
	assert.Equal(t, []update{firing("a", "2"), firing("b", "1")}, q.take(2))
	assert.Equal(t, []string{"a:4!", "a:5"}, contents(q))
}

func TestQueueDropsSupersededThenActiveThenOldest(t *testing.T) {
	active := map[string]bool{"b": true, "c": true}
	isActive := func(k string) bool { return active[k] }
	q := newQueue(3)
	q.push(firing("a", "1"), isActive)
	q.push(firing("b", "1"), isActive)
	q.push(resolved("a", "2"), isActive) // a was resolved meanwhile
	assert.Equal(t, 1, q.push(firing("c", "1"), isActive))
	assert.Equal(t, []string{"b:1", "a:2!", "c:1"}, contents(q), "a's superseded firing update went first")

	assert.Equal(t, 1, q.push(resolved("d", "1"), isActive))
	assert.Equal(t, []string{"a:2!", "c:1", "d:1!"}, contents(q), "then the oldest update of an active alert")

	assert.Equal(t, 1, q.push(resolved("e", "1"), isActive))
	assert.Equal(t, []string{"a:2!", "d:1!", "e:1!"}, contents(q))
	// Only resolves left: the oldest goes.
	assert.Equal(t, 1, q.push(resolved("f", "1"), isActive))
	assert.Equal(t, []string{"d:1!", "e:1!", "f:1!"}, contents(q))
	assert.Equal(t, 3, q.len())
}

func TestQueuePushFrontKeepsNewerUpdates(t *testing.T) {
	all := func(string) bool { return true }
	q := newQueue(4)
	q.push(firing("a", "1"), all)
	q.push(firing("b", "1"), all)
	batch := q.take(10)
	// While the batch was in flight, b changed and c appeared.
	q.push(firing("b", "2"), all)
	q.push(firing("c", "1"), all)
	assert.Equal(t, 0, q.pushFront(batch, all))
	assert.Equal(t, []string{"a:1", "b:2", "c:1"}, contents(q), "b's failed old state is not put back")

	// A failed batch holding two updates of one alert puts both back.
	q2 := newQueue(4)
	assert.Equal(t, 0, q2.pushFront([]update{firing("a", "1"), resolved("a", "2")}, all))
	assert.Equal(t, []string{"a:1", "a:2!"}, contents(q2))
	q2.push(resolved("a", "3"), all)
	assert.Equal(t, []string{"a:1", "a:3!"}, contents(q2), "the latest pending update is the one replaced")

	// Over capacity after a requeue: drops are counted.
	q3 := newQueue(2)
	q3.push(firing("x", "1"), all)
	q3.push(firing("y", "1"), all)
	assert.Equal(t, 2, q3.pushFront([]update{firing("a", "1"), firing("b", "1")}, all))
	assert.Equal(t, 2, q3.len())
	assert.Equal(t, 2, q3.clear())
	assert.Equal(t, 0, q3.len())
	assert.Empty(t, q3.byKey)
}
