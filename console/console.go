package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/alerting/api"
)

// Guard is what the console needs of the safety service: the operator API's
// reads and changes, plus the incident records. Every method must be safe
// for concurrent use and return once ctx is done.
type Guard interface {
	Ports(ctx context.Context, f alerting.PortFilter) ([]alerting.PortView, error)
	Alerts(ctx context.Context, activeOnly bool) ([]alerting.AlertView, error)
	Audit(ctx context.Context, site, pile string, port int) ([]alerting.AuditRecord, error)
	Reset(ctx context.Context, site, pile string, port int, operator string) error
	AckAlert(ctx context.Context, key, operator string) error
	MarkOnSite(ctx context.Context, key, operator string) error
	Note(ctx context.Context, key, operator, note string) error
}

// Authenticator checks an API token: *api.API is one, so the console signs
// people in with exactly the operator API's credentials and check.
type Authenticator interface {
	Authenticate(token string) (name string, role api.Role, ok bool)
}

// Options configure the console. Guard is required.
type Options struct {
	Guard Guard
	// Auth checks sign-ins. Nil: no token is configured, and everyone sees
	// the console read-only without signing in (as the API is then open
	// read-only).
	Auth Authenticator

	Logger     zerolog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered

	// SecureCookies marks the session cookie Secure even on plain HTTP
	// requests, for a console behind a TLS-terminating proxy. A request
	// that came over TLS always gets Secure cookies.
	SecureCookies bool
	// SessionTTL is how long a sign-in lasts. Default 12h: an on-call shift.
	SessionTTL time.Duration
	// MaxFailedSignIns is how many failed sign-ins one client address may
	// make per minute before it is refused until the minute is over.
	// Default 5.
	MaxFailedSignIns int
	// Poll is how often the console reads the fleet. Default 1s, so a
	// change shows in the browser within 2s.
	Poll time.Duration
	// IdlePoll is how often the console reads the fleet while nobody is
	// looking (no live stream open, no page asked for in the last 10 s),
	// only to keep the charts' history. Default 30s, or HistoryStep if
	// longer. Every read costs the service a walk of all ports, which until
	// the service reads from published snapshots runs on the engine's
	// goroutine; an idle console should not pay that once a second.
	IdlePoll time.Duration
	// HistoryStep is the spacing of the per-port chart samples kept in
	// memory for the last hour. Default 30s (120 samples a port).
	HistoryStep time.Duration
	// History reads a port's stored readings (InfluxDB), for the part of
	// the chart's hour before the console started: after a restart the
	// in-memory history is empty. Nil: charts show what the console has
	// seen since it started.
	History HistoryFunc
	// HistoryTimeout bounds one History read. Default 2s: a page waits
	// for it, and a slow InfluxDB must not make the console slow.
	HistoryTimeout time.Duration
	// Timeout bounds one read of the Guard. Default 5s.
	Timeout time.Duration
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

// Console serves the web console.
type Console struct {
	o        Options
	log      zerolog.Logger
	m        *metrics
	mux      *http.ServeMux
	sessions *sessions
	limiter  *limiter
	pages    *pages
	hist     *history
	stored   *stored // the hour before the start, from Options.History

	view    atomic.Pointer[fleetView]
	changed atomic.Pointer[chan struct{}] // closed and replaced on every new view
	started time.Time
	// demand is when a page or a live stream last wanted a fresh read
	// (unix ns); streams counts the open live streams.
	demand  atomic.Int64
	streams atomic.Int64
	stopped chan struct{} // closed when Run returns: live streams end

	mu      sync.Mutex
	acked   map[string]bool // alert key@startsAt whose time-to-ack is observed
	onSite  map[string]bool // alert key@startsAt whose time-to-on-site is observed
	fragMu  sync.Mutex
	frags   map[string][]byte // rendered live fragments of the current view
	fragVer uint64
}

// New checks the options and builds the console.
func New(o Options) (*Console, error) {
	if o.Guard == nil {
		return nil, errors.New("console: Options.Guard is required")
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"SessionTTL", &o.SessionTTL, 12 * time.Hour},
		{"Poll", &o.Poll, time.Second},
		{"HistoryStep", &o.HistoryStep, 30 * time.Second},
		{"Timeout", &o.Timeout, 5 * time.Second},
		{"HistoryTimeout", &o.HistoryTimeout, 2 * time.Second},
		{"IdlePoll", &o.IdlePoll, max(o.HistoryStep, 30*time.Second)},
	} {
		if *d.v < 0 {
			return nil, fmt.Errorf("console: %s %s is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if o.IdlePoll < o.Poll {
		o.IdlePoll = o.Poll
	}
	if o.MaxFailedSignIns < 0 {
		return nil, fmt.Errorf("console: MaxFailedSignIns %d is negative", o.MaxFailedSignIns)
	}
	if o.MaxFailedSignIns == 0 {
		o.MaxFailedSignIns = 5
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	p, err := newPages()
	if err != nil {
		return nil, err
	}
	c := &Console{
		o:        o,
		log:      o.Logger.With().Str("component", "console").Logger(),
		m:        m,
		mux:      http.NewServeMux(),
		sessions: newSessions(o.SessionTTL),
		limiter:  newLimiter(o.MaxFailedSignIns, time.Minute),
		pages:    p,
		hist:     newHistory(time.Hour, o.HistoryStep),
		started:  o.Now(),
		stopped:  make(chan struct{}),
		acked:    map[string]bool{},
		onSite:   map[string]bool{},
		frags:    map[string][]byte{},
	}
	if o.History != nil {
		c.stored = newStored(c.log, o.History, c.started, o.HistoryStep, o.HistoryTimeout)
	}
	ch := make(chan struct{})
	c.changed.Store(&ch)
	c.view.Store(&fleetView{})
	c.routes()
	return c, nil
}

// Handler serves the console. Mount it at "/" of the process' mux; more
// specific patterns (/api/, /metrics) keep their handlers.
func (c *Console) Handler() http.Handler { return c.mux }

// Run reads the fleet every Poll until ctx is done, and returns once it has
// stopped. Its end also ends every live stream, so that the HTTP server's
// graceful shutdown is not held up by browsers that never hang up.
func (c *Console) Run(ctx context.Context) error {
	t := time.NewTicker(c.o.Poll)
	defer t.Stop()
	defer close(c.stopped)
	c.poll(ctx)
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if c.watched() || time.Since(last) >= c.o.IdlePoll {
				c.poll(ctx)
				last = time.Now()
			}
			c.sessions.purge(c.o.Now())
			c.limiter.purge(c.o.Now())
		}
	}
}

// demandWindow is how long a page view keeps the console reading every
// Poll: long enough for the browser to open its live stream.
const demandWindow = 10 * time.Second

// want records that someone is looking.
func (c *Console) want() { c.demand.Store(time.Now().UnixNano()) }

// watched reports whether someone is looking: a live stream is open or a
// page was asked for within demandWindow.
func (c *Console) watched() bool {
	return c.streams.Load() > 0 || time.Since(time.Unix(0, c.demand.Load())) < demandWindow
}

// poll takes one read of ports and alerts and publishes it to the pages.
// A failed read keeps the last view, marked stale.
func (c *Console) poll(ctx context.Context) {
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	ports, perr := c.o.Guard.Ports(rctx, alerting.PortFilter{})
	alerts, aerr := c.o.Guard.Alerts(rctx, false)
	c.m.pollSeconds.Observe(time.Since(start).Seconds())
	now := c.o.Now()
	old := c.view.Load()
	if err := errors.Join(perr, aerr); err != nil {
		if ctx.Err() == nil {
			c.log.Warn().Err(err).Msg("console: read of the fleet failed; pages show the last read")
		}
		c.m.pollErrors.Inc()
		stale := *old
		stale.stale = true
		c.publish(&stale)
		return
	}
	v := buildView(now, ports, alerts)
	v.version = old.version + 1
	c.hist.add(now, ports)
	c.observeAcks(v)
	c.publish(v)
}

func (c *Console) publish(v *fleetView) {
	c.view.Store(v)
	ch := make(chan struct{})
	old := c.changed.Swap(&ch)
	close(*old)
}

// observeAcks measures time-to-acknowledge for alerts acknowledged since
// the console started (through the console or the API), each once.
func (c *Console) observeAcks(v *fleetView) {
	c.mu.Lock()
	defer c.mu.Unlock()
	live := make(map[string]bool, len(v.active))
	type siteSev struct{ site, sev string }
	oldest := map[siteSev]time.Time{}
	for _, a := range v.active {
		if a.AckedBy == "" {
			k := siteSev{a.Site, string(a.Severity)}
			if t, ok := oldest[k]; !ok || a.StartsAt.Before(t) {
				oldest[k] = a.StartsAt
			}
		}
	}
	c.m.unackedAge.Reset()
	for k, t := range oldest {
		c.m.unackedAge.WithLabelValues(k.site, k.sev).Set(max(0, v.at.Sub(t).Seconds()))
	}
	for _, a := range v.active {
		id := incidentID(a.AlertView)
		live[id] = true
		if a.AckedAt.IsZero() || c.acked[id] || a.AckedAt.Before(c.started) {
			continue
		}
		c.acked[id] = true
		c.m.timeToAck.WithLabelValues(a.Site).Observe(a.AckedAt.Sub(a.StartsAt).Seconds())
	}
	for id := range c.acked {
		if !live[id] {
			delete(c.acked, id)
		}
	}
	for id := range c.onSite {
		if !live[id] {
			delete(c.onSite, id)
		}
	}
}

// observeOnSite measures time-to-on-site of an alert, once.
func (c *Console) observeOnSite(a alerting.AlertView, at time.Time) {
	id := incidentID(a)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.onSite[id] {
		return
	}
	c.onSite[id] = true
	c.m.timeToOnSite.WithLabelValues(a.Site).Observe(at.Sub(a.StartsAt).Seconds())
}

func incidentID(a alerting.AlertView) string {
	return a.Key() + "@" + a.StartsAt.UTC().Format(time.RFC3339Nano)
}
