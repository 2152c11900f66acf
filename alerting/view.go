package alerting

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/chargeguard/chargeguard/telemetry"
)

// View is one publication of the engine's state for readers: the operator
// API, the console, anything that is not the engine. The Service's
// goroutine publishes a new View at most once per tick (and after each
// operator change), through an atomic pointer; a reader loads the pointer
// and reads as long and as slowly as it likes without ever touching the
// engine's goroutine. A View is immutable: every method is safe from any
// goroutine, and a View never changes once published.
//
// A View may be up to one tick (ServiceOptions.TickInterval, 100 ms by
// default) behind the engine. Nothing on the safety path reads it.
type View struct {
	at  time.Time
	seq uint64

	// chunks hold the piles sorted by site, then pile: chunkSize to a
	// chunk after a full build, up to 2*chunkSize as new piles are
	// inserted, then split. A publication copies only the chunks that
	// hold a pile changed since the previous one, re-renders only those
	// piles, and shares everything else with the previous view: its cost
	// follows what changed, not the size of the fleet.
	chunks [][]*pileSnap
	ports  int

	// alerts are the active and recently resolved alerts, newest first
	// (Engine.Alerts' order), re-rendered only when one fired, resolved or
	// was acknowledged.
	alerts []AlertView
}

// chunkSize is how many piles a chunk holds after a full build: at 30,000
// piles a view is about 120 chunk pointers, and a changed pile costs a
// copy of 2 to 4 KiB of pointers.
const chunkSize = 256

func cmpPile(p *pileSnap, site, pile string) int {
	return cmp.Or(strings.Compare(p.site, site), strings.Compare(p.id, pile))
}

// search finds the first pile at or after (site, pile): its chunk and its
// slot there (len(v.chunks) when every pile is before it), and whether it
// is that pile.
func (v *View) search(site, pile string) (ci, si int, found bool) {
	ci = sort.Search(len(v.chunks), func(c int) bool {
		ch := v.chunks[c]
		return cmpPile(ch[len(ch)-1], site, pile) >= 0
	})
	if ci == len(v.chunks) {
		return ci, 0, false
	}
	ch := v.chunks[ci]
	si = sort.Search(len(ch), func(i int) bool { return cmpPile(ch[i], site, pile) >= 0 })
	return ci, si, ch[si].site == site && ch[si].id == pile
}

func (v *View) find(site, pile string) *pileSnap {
	ci, si, ok := v.search(site, pile)
	if !ok {
		return nil
	}
	return v.chunks[ci][si]
}

// At is when the engine published the view (the service's clock).
func (v *View) At() time.Time { return v.at }

// Seq numbers the publications since the service started, from 1.
func (v *View) Seq() uint64 { return v.seq }

// NumPorts is how many ports the view holds (unfiltered).
func (v *View) NumPorts() int { return v.ports }

// PortKey names a port; the ports of a View are ordered by site, pile and
// port, and a page continues after the key of the last port of the
// previous page.
type PortKey struct {
	Site string
	Pile string
	Port int
}

// IsZero reports whether k is the zero key (before every port).
func (k PortKey) IsZero() bool { return k == PortKey{} }

// String is site/pile/port; ids never hold a slash.
func (k PortKey) String() string {
	return k.Site + "/" + k.Pile + "/" + itoa(k.Port)
}

// ParsePortKey reads a key written by String. The ids must be valid
// (telemetry.ValidID) and the port within 0..telemetry.MaxPort.
func ParsePortKey(s string) (PortKey, bool) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 || !telemetry.ValidID(parts[0]) || !telemetry.ValidID(parts[1]) {
		return PortKey{}, false
	}
	n, ok := atoi(parts[2])
	if !ok || n > telemetry.MaxPort {
		return PortKey{}, false
	}
	return PortKey{parts[0], parts[1], n}, true
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// atoi reads a plain decimal of at most two digits without a leading zero.
func atoi(s string) (int, bool) {
	if len(s) == 0 || len(s) > 2 || (len(s) == 2 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// PortQuery selects a page of ports: those matching Filter, after After
// (the zero key: from the first), at most Limit of them (0: all).
type PortQuery struct {
	Filter PortFilter
	After  PortKey
	Limit  int
}

// PortPage is a page of ports. Next is the key to pass as After for the
// following page; it is zero when this page holds the last matching port.
// AsOf and Seq say which publication the page was read from.
type PortPage struct {
	Ports []PortView
	Next  PortKey
	AsOf  time.Time
	Seq   uint64
}

// Ports returns the ports that match q, ordered by site, pile and port.
// The PortViews are rendered for this call: the caller owns them.
func (v *View) Ports(q PortQuery) PortPage {
	page := PortPage{AsOf: v.at, Seq: v.seq}
	f := q.Filter
	// Start at the first pile that may hold a port after q.After: a page
	// costs a binary search plus the piles it covers, never a walk of the
	// fleet from its start.
	from := PortKey{Site: f.Site, Pile: f.Pile}
	if cmpKey(q.After, from) > 0 {
		from = q.After
	}
	ci, si, _ := v.search(from.Site, from.Pile)
	for ; ci < len(v.chunks); ci, si = ci+1, 0 {
		if page.walk(v.chunks[ci][si:], q) {
			return page
		}
	}
	return page
}

// walk appends the ports of piles that match q to the page, and reports
// whether the page is complete (full, or past the piles q can match).
func (page *PortPage) walk(piles []*pileSnap, q PortQuery) bool {
	f := q.Filter
	for _, p := range piles {
		if f.Site != "" && p.site != f.Site {
			return true // sorted by site: past it
		}
		if f.Pile != "" && p.id != f.Pile {
			if f.Site != "" {
				return true // sorted by site then pile: past the one pile asked for
			}
			continue
		}
		first := 1
		if p.site == q.After.Site && p.id == q.After.Pile {
			first = q.After.Port + 1
		}
		for n := first; n <= p.nports; n++ {
			pv := p.portView(n)
			if !f.match(pv) {
				continue
			}
			if q.Limit > 0 && len(page.Ports) == q.Limit {
				last := page.Ports[len(page.Ports)-1]
				page.Next = PortKey{last.Site, last.Pile, last.Port}
				return true
			}
			page.Ports = append(page.Ports, pv)
		}
	}
	return false
}

func cmpKey(a, b PortKey) int {
	return cmp.Or(strings.Compare(a.Site, b.Site), strings.Compare(a.Pile, b.Pile), cmp.Compare(a.Port, b.Port))
}

// Alerts lists the active alerts, and unless activeOnly also the recently
// resolved ones, newest first. The caller owns the slice.
func (v *View) Alerts(activeOnly bool) []AlertView {
	out := make([]AlertView, 0, len(v.alerts))
	for _, a := range v.alerts {
		if a.Active || !activeOnly {
			out = append(out, a)
		}
	}
	return out
}

// Audit returns a port's recent audit records (port 0: the pile as a
// whole), oldest first. The caller owns the slice.
func (v *View) Audit(site, pile string, port int) []AuditRecord {
	if port < 0 || port > telemetry.MaxPort {
		return nil
	}
	p := v.find(site, pile)
	if p == nil {
		return nil
	}
	return slices.Clone(p.audit[uint8(port)])
}

// publisher builds Views on the engine's goroutine. It keeps the set of
// piles changed since the last publication (the service marks them from
// the messages it hands the engine and the actions that come back), so a
// publication costs the changed piles and their chunks, never a render
// and sort of the fleet.
type publisher struct {
	dirty       map[pileKey]map[uint8]struct{} // pile -> ports whose audit changed
	alertsDirty bool
	all         bool // re-render every pile (after a restore)
	seq         uint64
}

func newPublisher() *publisher {
	return &publisher{dirty: map[pileKey]map[uint8]struct{}{}}
}

// pile marks a pile changed.
func (pb *publisher) pile(site, pile string) {
	if _, ok := pb.dirty[pileKey{site, pile}]; !ok {
		pb.dirty[pileKey{site, pile}] = nil
	}
}

// audit marks a port's audit changed.
func (pb *publisher) audit(site, pile string, port int) {
	k := pileKey{site, pile}
	m := pb.dirty[k]
	if m == nil {
		m = map[uint8]struct{}{}
		pb.dirty[k] = m
	}
	if port < 0 || port > telemetry.MaxPort {
		port = 0 // as Engine.record files it
	}
	m[uint8(port)] = struct{}{}
}

// pending reports whether a publication has anything to do.
func (pb *publisher) pending() bool { return pb.all || pb.alertsDirty || len(pb.dirty) > 0 }

// publish builds the next View from prev (nil: none yet) and clears the
// marks. It must run on the engine's goroutine.
func (pb *publisher) publish(e *Engine, prev *View, now time.Time) *View {
	pb.seq++
	e.started(msOf(now))
	v := &View{at: now, seq: pb.seq}
	if prev == nil || pb.all {
		piles := make([]*pileSnap, 0, len(e.piles))
		for _, p := range e.piles {
			var prevSnap *pileSnap
			if prev != nil {
				prevSnap = prev.find(p.site, p.id)
			}
			d := pb.dirty[pileKey{p.site, p.id}]
			if prevSnap != nil && d == nil {
				// Audit unchanged: keep the old slices rather than copy
				// every log again.
				d = map[uint8]struct{}{}
			}
			snap := e.snapPile(p, prevSnap, d)
			piles = append(piles, snap)
			v.ports += snap.nports
		}
		slices.SortFunc(piles, comparePileSnaps)
		v.chunks = make([][]*pileSnap, 0, (len(piles)+chunkSize-1)/chunkSize)
		for len(piles) > 0 {
			n := min(chunkSize, len(piles))
			v.chunks = append(v.chunks, piles[:n:n])
			piles = piles[n:]
		}
		v.alerts = e.Alerts(false)
	} else {
		v.chunks = slices.Clone(prev.chunks)
		v.ports = prev.ports
		copied := make([]bool, len(v.chunks))
		var added []*pileSnap
		for k, auditDirty := range pb.dirty {
			p := e.pileFor(k.site, k.pile, false)
			if p == nil {
				continue // a message the engine dropped or a death of an unknown pile
			}
			ci, si, found := v.search(k.site, k.pile)
			if !found {
				s := e.snapPile(p, nil, nil)
				added = append(added, s)
				v.ports += s.nports
				continue
			}
			if !copied[ci] {
				v.chunks[ci] = slices.Clone(v.chunks[ci])
				copied[ci] = true
			}
			old := v.chunks[ci][si]
			s := e.snapPile(p, old, auditDirty)
			v.chunks[ci][si] = s
			v.ports += s.nports - old.nports
		}
		// New piles go into the chunk where they belong (a copy of it);
		// a chunk grown past twice chunkSize is split. A pile seen for
		// the first time costs one chunk, never a walk of the fleet.
		for _, s := range added {
			v.insert(s)
		}
		if pb.alertsDirty {
			v.alerts = e.Alerts(false)
		} else {
			v.alerts = prev.alerts
		}
	}
	// A new map rather than clear: clearing costs the map's capacity,
	// which a start-up (every pile new) leaves large.
	pb.dirty = map[pileKey]map[uint8]struct{}{}
	pb.alertsDirty, pb.all = false, false
	return v
}

// insert puts a pile that is not in v into its place. v.chunks must be
// v's own copy of the chunk list; the chunk it changes is copied.
func (v *View) insert(s *pileSnap) {
	if len(v.chunks) == 0 {
		v.chunks = append(v.chunks, []*pileSnap{s})
		return
	}
	ci, si, _ := v.search(s.site, s.id)
	if ci == len(v.chunks) { // after every pile: the end of the last chunk
		ci--
		si = len(v.chunks[ci])
	}
	old := v.chunks[ci]
	ch := make([]*pileSnap, 0, len(old)+1)
	ch = append(ch, old[:si]...)
	ch = append(ch, s)
	ch = append(ch, old[si:]...)
	if len(ch) <= 2*chunkSize {
		v.chunks[ci] = ch
		return
	}
	half := len(ch) / 2
	v.chunks[ci] = ch[:half:half]
	v.chunks = slices.Insert(v.chunks, ci+1, ch[half:])
}
