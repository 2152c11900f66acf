package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/chargeguard/chargeguard/alerting/notify"
	lp "github.com/chargeguard/chargeguard/lineproto"
	"github.com/chargeguard/chargeguard/telemetry"
)

// Publisher sends a command to a pile (QoS 1). It must not block: the
// engine's goroutine calls it on the path of every cut. An error is logged;
// the engine resends the command with the same id after its ack timeout,
// so a publish that fails is retried, never dropped.
type Publisher interface {
	Publish(topic string, payload []byte) error
}

// PublisherFunc adapts a function to Publisher.
type PublisherFunc func(topic string, payload []byte) error

// Publish calls f.
func (f PublisherFunc) Publish(topic string, payload []byte) error { return f(topic, payload) }

// Notifier tells people. notify.Notifier is the real one. Fire and Resolve
// must not block.
type Notifier interface {
	Fire(notify.Alert)
	Resolve(notify.Alert)
}

// Recorder stores line-protocol points (alerts and audit records) for the
// boards. It must not block: storage trouble never delays a cut.
type Recorder interface {
	Record(lines []byte)
}

// ServiceOptions configures a Service. Publisher is required.
type ServiceOptions struct {
	Rules  Rules // zero: DefaultRules
	Engine EngineOptions

	// StatePath is the file the latched ports, open alerts and commands
	// awaiting their ack are kept in across restarts; "" keeps nothing.
	StatePath string
	// OnState, when set, is also given every state written to StatePath
	// (the JSON of State), from the persister's goroutine, never the
	// engine's: cluster mode keeps it in etcd. It must not keep b beyond
	// the call unless it never changes it.
	OnState func(b []byte)

	Publisher Publisher
	Notifier  Notifier // nil: alerts are only logged and stored
	Recorder  Recorder // nil: alerts and audit are only logged

	// BoardURL is the Grafana base URL; alerts link to the port's board.
	BoardURL string
	// ConsoleURL is the web console's base URL; alerts link to the port's
	// page in it (console_url).
	ConsoleURL string

	// TickInterval is how often time-driven rules run (ack timeouts,
	// staleness); default 100ms.
	TickInterval time.Duration
	// QueueSize bounds the messages waiting for the engine; default 65536.
	// A full queue blocks the caller (ingest's live session): the engine
	// never drops a message.
	QueueSize int

	Logger     zerolog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Service runs the engine in one goroutine and does what its actions say:
// publishes commands, notifies, records, persists. Its query and control
// methods are safe from any goroutine.
type Service struct {
	o      ServiceOptions
	log    zerolog.Logger
	engine *Engine
	inbox  chan telemetry.Message
	calls  chan func()
	m      *serviceMetrics
	stats  *engineStats
	buf    []byte

	sentAt map[string]time.Time // first send of each command awaiting its ack, for the ack latency
	online map[[2]string]bool   // piles by (site, pile): online per their last status message

	// dirty says the engine's state changed since the last snapshot. The
	// engine's goroutine takes a snapshot at most every TickInterval and
	// hands it to the persister, which encodes and writes the newest one
	// it has: no cut ever waits for the disk or for the encoding (three
	// quarters of the work with thousands of ports latched), and a storm
	// of alerts costs one write per tick, not one per alert.
	dirty     bool
	snapshots chan State
	gaugesDue time.Time
	// chargingSaved is when the state was last written for a change of
	// the charging piles alone (see snapshot).
	chargingSaved time.Time

	reconnected chan struct{} // the command session (re)connected

	// view is what readers read (Ports, Alerts, Audit, View): published by
	// the engine's goroutine once per tick when something changed, and
	// after each operator change. pub tracks what changed since.
	view atomic.Pointer[View]
	pub  *publisher
}

// NewService builds the engine and restores the state kept in StatePath.
func NewService(o ServiceOptions) (*Service, error) {
	if o.Publisher == nil {
		return nil, errors.New("alerting: ServiceOptions.Publisher is required")
	}
	if o.Rules.Defaults == (Thresholds{}) {
		o.Rules = DefaultRules()
	}
	if o.TickInterval <= 0 {
		o.TickInterval = 100 * time.Millisecond
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 65536
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	e, err := NewEngine(o.Rules, o.Engine)
	if err != nil {
		return nil, err
	}
	s := &Service{
		o:         o,
		log:       o.Logger.With().Str("component", "alerting").Logger(),
		engine:    e,
		inbox:     make(chan telemetry.Message, o.QueueSize),
		calls:     make(chan func()),
		m:         newServiceMetrics(o.Registerer),
		stats:     newEngineStats(o.Registerer),
		sentAt:    map[string]time.Time{},
		online:    map[[2]string]bool{},
		snapshots: make(chan State, 1),
		pub:       newPublisher(),

		reconnected: make(chan struct{}, 1),
	}
	if o.StatePath != "" {
		if err := s.restore(); err != nil {
			return nil, err
		}
	}
	s.updateGauges()
	// The first view holds what was restored, so a reader sees the latched
	// ports before the engine has run at all.
	s.publishView()
	return s, nil
}

func (s *Service) restore() error {
	b, err := os.ReadFile(s.o.StatePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("alerting: read state %s: %w", s.o.StatePath, err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		// A corrupt state file must stop the start: guessing could reopen
		// a latched port.
		return fmt.Errorf("alerting: state %s is corrupt (move it aside only after checking every latched port on site): %w", s.o.StatePath, err)
	}
	if err := s.engine.Restore(st); err != nil {
		return fmt.Errorf("alerting: restore state %s: %w", s.o.StatePath, err)
	}
	s.pub.all = true
	s.log.Info().Int("latched_ports", s.engine.Counts().Latched).Int("piles", len(st.Piles)).Msg("restored safety state")
	return nil
}

// Observe hands a decoded message to the engine. It blocks only while the
// engine's queue is full: messages are never dropped.
func (s *Service) Observe(m telemetry.Message) {
	select {
	case s.inbox <- m:
	default:
		s.m.queueFull.Inc()
		s.inbox <- m
	}
}

// Reconnected tells the service that the session commands are published on
// has (re)connected: the engine sends every close awaiting its ack again.
// It never blocks; reconnects that come faster than the engine handles
// them fold into one.
func (s *Service) Reconnected() {
	select {
	case s.reconnected <- struct{}{}:
	default:
	}
}

// Run owns the engine until ctx is done. On return the state has been
// written one last time.
func (s *Service) Run(ctx context.Context) error {
	persisted := make(chan struct{})
	go func() {
		defer close(persisted)
		for st := range s.snapshots {
			// A State shares no memory with the engine (Snapshot copies),
			// so it is encoded here, off the engine's goroutine.
			b, err := json.Marshal(st)
			if err != nil {
				s.m.persistFailures.Inc()
				s.log.Error().Err(err).Msg("encode safety state")
				continue
			}
			s.write(b)
			if s.o.OnState != nil {
				s.o.OnState(b)
			}
		}
	}()
	tick := time.NewTicker(s.o.TickInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.snapshot()
			close(s.snapshots)
			<-persisted
			return nil
		case m := <-s.inbox:
			s.handle(m)
		case <-tick.C:
			s.tick()
		case f := <-s.calls:
			f()
		case <-s.reconnected:
			s.apply(s.engine.Reconnected(s.o.Now()))
		}
	}
}

// handle gives one message to the engine and carries out its actions.
func (s *Service) handle(m telemetry.Message) {
	if m.Status != nil {
		s.pileStatus(m.Topic.Site, m.Topic.Pile, m.Status.Online)
	}
	s.apply(s.engine.Observe(s.o.Now(), m))
	s.pub.pile(m.Topic.Site, m.Topic.Pile)
}

// tick runs the time-driven rules, then hands the state to the persister
// and publishes the readers' view if anything changed.
func (s *Service) tick() {
	now := s.o.Now()
	s.apply(s.engine.Tick(now))
	s.snapshot()
	if s.pub.pending() {
		s.publishView()
	}
	if !now.Before(s.gaugesDue) {
		s.updateGauges()
		s.gaugesDue = now.Add(time.Second)
	}
}

// do runs f on the engine's goroutine and waits for it.
func (s *Service) do(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case s.calls <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// apply carries out the engine's actions in order: commands first, so that
// nothing (not a notification, not the disk) stands before a cut.
func (s *Service) apply(actions []Action) {
	if len(actions) == 0 {
		return
	}
	changed := false
	for _, a := range actions {
		if c, ok := a.(SendCommand); ok {
			s.sendCommand(c)
			changed = true
		}
	}
	for _, a := range actions {
		switch a := a.(type) {
		case SendCommand:
			s.pub.pile(a.Topic.Site, a.Topic.Pile)
		case AlertFired:
			s.alert(a.Alert, true)
			s.pub.pile(a.Alert.Site, a.Alert.Pile)
			s.pub.alertsDirty = true
			changed = true
		case AlertResolved:
			s.alert(a.Alert, false)
			s.pub.pile(a.Alert.Site, a.Alert.Pile)
			s.pub.alertsDirty = true
			changed = true
		case Audit:
			s.audit(a.Record)
			s.pub.audit(a.Record.Site, a.Record.Pile, a.Record.Port)
			if a.Record.Kind == AuditAlertAck {
				s.pub.alertsDirty = true // the alert now shows who acknowledged it
			}
			changed = true
		case Info:
			s.pub.pile(a.Site, a.Pile)
			s.log.Info().Str("kind", a.Kind).Str("site", a.Site).Str("pile", a.Pile).Int("port", a.Port).Str("detail", a.Detail).Msg("info event")
			s.record(func(b []byte) []byte {
				b = append(b, "audit,action="...)
				b = lp.Tag(b, a.Kind)
				b = appendPileTags(b, a.Site, a.Pile)
				b = append(b, " port="...)
				b = strconv.AppendInt(b, int64(a.Port), 10)
				b = append(b, 'i')
				b = lp.Str(b, "actor", "rule:"+a.Kind, 64)
				b = lp.Str(b, "reason", a.Detail, 256)
				return lp.Time(b, a.At.UnixNano())
			})
		}
	}
	if changed {
		s.dirty = true
	}
}

func (s *Service) sendCommand(c SendCommand) {
	payload, err := telemetry.Encode(&c.Cmd)
	if err != nil {
		// Cannot happen for a command the engine built; if it does, the
		// ack timeout resends and close_failed pages someone.
		s.log.Error().Err(err).Str("id", c.Cmd.ID).Msg("encode command")
		return
	}
	now := s.o.Now()
	action := string(c.Cmd.Action)
	err = s.o.Publisher.Publish(c.Topic.String(), payload)
	ev := s.log.Info()
	if c.Cmd.Action == telemetry.ActionClose {
		ev = s.log.Warn()
	}
	if err != nil {
		ev = s.log.Error().Err(err)
	}
	ev.Str("site", c.Topic.Site).Str("pile", c.Topic.Pile).Int("port", c.Cmd.Port).
		Str("action", action).Str("reason", c.Cmd.Reason).Str("id", c.Cmd.ID).Int("attempt", c.Attempt).
		Msg("command sent")
	if c.Attempt <= 1 {
		s.sentAt[c.Cmd.ID] = now
		s.m.commandsSent.WithLabelValues(action).Inc()
		if !c.DetectedAt.IsZero() {
			s.m.detectToCmd.Observe(now.Sub(c.DetectedAt).Seconds())
		}
	} else {
		s.m.commandsRetried.Inc()
	}
}

// notifyAlert builds what on-call reads: notify's catalogue gives the
// description and the on-site steps of the alert kind; the engine's summary
// names the reading that tripped it.
func (s *Service) notifyAlert(a Alert) notify.Alert {
	board := ""
	if s.o.BoardURL != "" {
		q := url.Values{"var-site": {a.Site}, "var-pile": {a.Pile}, "var-port": {strconv.Itoa(a.Port)}}
		board = s.o.BoardURL + "/d/chargeguard-port/chargeguard-port?" + q.Encode()
	}
	ann := notify.Annotations(a.Name.String(), a.Site, a.Pile, a.Port, notify.Reading(a.Name.String(), a.Value), board)
	// The engine's summary names the limits too; the Chinese one
	// (summary_zh) is the catalogue's, built from the same fields.
	if a.Summary != "" {
		ann["summary"] = a.Summary
	}
	if s.o.ConsoleURL != "" {
		ann["console_url"] = ConsoleLink(s.o.ConsoleURL, a)
	}
	return notify.Alert{Labels: a.Labels(), Annotations: ann, StartsAt: a.StartsAt, EndsAt: a.EndsAt}
}

func (s *Service) alert(a Alert, firing bool) {
	state := "resolved"
	ev := s.log.Info()
	if firing {
		state = "firing"
		s.m.alerts.WithLabelValues(a.Name.String(), string(a.Severity)).Inc()
		if a.Severity == SeverityCritical {
			ev = s.log.Error()
		} else {
			ev = s.log.Warn()
		}
	}
	ev.Str("alertname", a.Name.String()).Str("severity", string(a.Severity)).Str("site", a.Site).
		Str("pile", a.Pile).Int("port", a.Port).Float64("value", asReading(a.Value)).Str("state", state).Msg(a.Summary)
	if s.o.Notifier != nil {
		if firing {
			s.o.Notifier.Fire(s.notifyAlert(a))
		} else {
			s.o.Notifier.Resolve(s.notifyAlert(a))
		}
	}
	at := a.StartsAt
	if !firing && !a.EndsAt.IsZero() {
		at = a.EndsAt
	}
	s.record(func(b []byte) []byte {
		b = append(b, "alert,alertname="...)
		b = lp.Tag(b, a.Name.String())
		b = appendPileTags(b, a.Site, a.Pile)
		b = append(b, ",severity="...)
		b = lp.Tag(b, string(a.Severity))
		b = append(b, " port="...)
		b = strconv.AppendInt(b, int64(a.Port), 10)
		b = append(b, 'i')
		b = lp.Str(b, "state", state, 16)
		b = lp.Str(b, "summary", a.Summary, 512)
		if !math.IsNaN(a.Value) {
			b = lp.Float(b, "value", a.Value)
		}
		return lp.Time(b, at.UnixNano())
	})
}

func (s *Service) audit(r AuditRecord) {
	switch r.Kind {
	case AuditAck, AuditAckFailed:
		s.m.commandsAcked.WithLabelValues(string(r.Action), strconv.FormatBool(r.Kind == AuditAck)).Inc()
		if t, ok := s.sentAt[r.CommandID]; ok {
			s.m.cmdToAck.Observe(s.o.Now().Sub(t).Seconds())
			delete(s.sentAt, r.CommandID)
		}
	case AuditCloseFailed, AuditOpenFailed:
		s.m.commandsFailed.Inc()
		delete(s.sentAt, r.CommandID)
	}
	s.log.Info().Str("audit", string(r.Kind)).Str("site", r.Site).Str("pile", r.Pile).Int("port", r.Port).
		Str("actor", r.Actor).Str("reason", r.Reason).Str("id", r.CommandID).Int("attempt", r.Attempt).
		Str("detail", r.Detail).Msg("audit")
	s.record(func(b []byte) []byte {
		b = append(b, "audit,action="...)
		b = lp.Tag(b, string(r.Kind))
		b = appendPileTags(b, r.Site, r.Pile)
		b = append(b, " port="...)
		b = strconv.AppendInt(b, int64(r.Port), 10)
		b = append(b, 'i')
		b = lp.Str(b, "actor", r.Actor, 128)
		b = lp.Str(b, "reason", r.Reason, 256)
		if r.CommandID != "" {
			b = lp.Str(b, "id", r.CommandID, 64)
		}
		if r.Action != "" {
			b = lp.Str(b, "command", string(r.Action), 16)
		}
		if r.Attempt > 0 {
			b = lp.Int(b, "attempt", int64(r.Attempt))
		}
		b = lp.Bool(b, "ok", r.Kind == AuditAck || r.Kind == AuditReset || r.Kind == AuditCommand || r.Kind == AuditRetry)
		if r.Detail != "" {
			b = lp.Str(b, "detail", r.Detail, 512)
		}
		return lp.Time(b, r.At.UnixNano())
	})
}

func appendPileTags(b []byte, site, pile string) []byte {
	b = append(b, ",pile="...)
	b = lp.Tag(b, pile)
	b = append(b, ",site="...)
	return lp.Tag(b, site)
}

func (s *Service) record(f func([]byte) []byte) {
	if s.o.Recorder == nil {
		return
	}
	s.buf = f(s.buf[:0])
	s.o.Recorder.Record(s.buf)
}

// snapshot hands the engine's state, if it changed, to the persister. When
// the persister is still busy with an older one, the older one is dropped:
// only the newest state matters.
//
// The piles with a charging port are part of the state too (after a
// restart each must report within the offline window), but they change
// all the time: a change of them alone is written at most every
// chargingSaveInterval, so a crash forgets at most that much of them.
func (s *Service) snapshot() {
	if s.o.StatePath == "" {
		return
	}
	if !s.dirty {
		now := s.o.Now()
		if !s.engine.ChargingChanged() || now.Sub(s.chargingSaved) < chargingSaveInterval {
			return
		}
		s.chargingSaved = now
	}
	s.dirty = false
	st := s.engine.Snapshot()
	for {
		select {
		case s.snapshots <- st:
			return
		default:
			select {
			case <-s.snapshots: // superseded
			default:
			}
		}
	}
}

// chargingSaveInterval bounds how often a change of the charging piles
// alone is written to the state file.
const chargingSaveInterval = 5 * time.Second

// write stores one snapshot atomically (temp file, fsync, rename).
func (s *Service) write(b []byte) {
	start := time.Now()
	if err := writeFileAtomic(s.o.StatePath, b); err != nil {
		s.m.persistFailures.Inc()
		s.m.persistFailed.SetToCurrentTime()
		s.log.Error().Err(err).Str("path", s.o.StatePath).Msg("persist safety state failed; latched ports are held in memory and written with the next change")
		return
	}
	s.m.persistDuration.Observe(time.Since(start).Seconds())
	s.m.persistOK.SetToCurrentTime()
}

func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".state-*")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	tmp := f.Name()
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("sync state: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("close state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// pileStatus follows births and deaths for the piles-online and
// piles-offline gauges, incrementally: a city's worth of births at start-up
// must not cost a scan each.
func (s *Service) pileStatus(site, pile string, online bool) {
	k := [2]string{site, pile}
	was, seen := s.online[k]
	if seen && was == online {
		return
	}
	s.online[k] = online
	if seen {
		if was {
			s.m.pilesOnline.Dec()
		} else {
			s.m.pilesOffline.WithLabelValues(site).Dec()
		}
	}
	if online {
		s.m.pilesOnline.Inc()
		s.m.pilesOffline.WithLabelValues(site).Add(0)
	} else {
		s.m.pilesOffline.WithLabelValues(site).Inc()
	}
}

// updateGauges refreshes the latched, pending and firing gauges; Run calls
// it once a second, not per action, so a storm of alerts does not walk the
// fleet once per alert.
func (s *Service) updateGauges() {
	s.stats.update(s.engine.Stats())
	c := s.engine.Counts()
	s.m.latched.Set(float64(c.Latched))
	s.m.pending.Set(float64(c.Pending))
	s.m.firing.Reset()
	for a, n := range c.Firing {
		s.m.firing.WithLabelValues(a.Name.String(), string(a.Severity)).Set(float64(n))
	}
}

// publishView builds the next View and swaps it in. It runs on the
// engine's goroutine (or in NewService, before that goroutine exists).
func (s *Service) publishView() {
	start := time.Now()
	v := s.pub.publish(s.engine, s.view.Load(), s.o.Now())
	s.view.Store(v)
	s.m.viewPublish.Observe(time.Since(start).Seconds())
	s.m.viewPorts.Set(float64(v.NumPorts()))
}

// View returns the newest published view of the engine's state. It never
// waits for the engine: readers that want several answers from one
// consistent picture (a console page, an SSE stream) hold on to a View.
func (s *Service) View() *View { return s.view.Load() }

// Ports lists the ports that match f, by site, pile and port, from the
// newest published view (at most one tick old). It never waits for the
// engine's goroutine; ctx is accepted for the interface's sake.
func (s *Service) Ports(ctx context.Context, f PortFilter) ([]PortView, error) {
	return s.View().Ports(PortQuery{Filter: f}).Ports, ctx.Err()
}

// PortsPage returns one page of the ports that match q.Filter, from the
// newest published view. It never waits for the engine's goroutine.
func (s *Service) PortsPage(ctx context.Context, q PortQuery) (PortPage, error) {
	if err := ctx.Err(); err != nil {
		return PortPage{}, err
	}
	return s.View().Ports(q), nil
}

// Alerts lists the active alerts, and unless activeOnly the recently
// resolved ones, newest first, from the newest published view.
func (s *Service) Alerts(ctx context.Context, activeOnly bool) ([]AlertView, error) {
	return s.View().Alerts(activeOnly), ctx.Err()
}

// Audit returns a port's recent audit records (port 0: the pile), oldest
// first, from the newest published view.
func (s *Service) Audit(ctx context.Context, site, pile string, port int) ([]AuditRecord, error) {
	return s.View().Audit(site, pile, port), ctx.Err()
}

// Reset is an operator's reset of a latched port; the engine refuses it
// unless the condition has cleared.
func (s *Service) Reset(ctx context.Context, site, pile string, port int, operator string) error {
	var rerr error
	err := s.do(ctx, func() { rerr = s.reset(site, pile, port, operator) })
	if err != nil {
		return err
	}
	return rerr
}

// AckAlert records an operator's acknowledgement of an alert.
func (s *Service) AckAlert(ctx context.Context, key, operator string) error {
	var aerr error
	err := s.do(ctx, func() { aerr = s.ackAlert(key, operator) })
	if err != nil {
		return err
	}
	return aerr
}

// reset and ackAlert run on the engine's goroutine. They publish the view
// at once, so the operator who made the change reads its outcome in the
// next request.
func (s *Service) reset(site, pile string, port int, operator string) error {
	actions, err := s.engine.Reset(s.o.Now(), site, pile, port, operator)
	s.apply(actions)
	s.publishView()
	return err
}

func (s *Service) ackAlert(key, operator string) error {
	actions, err := s.engine.Ack(s.o.Now(), key, operator)
	s.apply(actions)
	s.publishView()
	return err
}

// Reload swaps the rules without forgetting state.
func (s *Service) Reload(ctx context.Context, r Rules) error {
	var rerr error
	if err := s.do(ctx, func() { rerr = s.engine.Reload(r) }); err != nil {
		return err
	}
	if rerr == nil {
		s.log.Info().Msg("rules reloaded")
	}
	return rerr
}

// asReading rounds an alert's value to a reading's precision (seven
// significant digits, as the engine keeps readings in float32), so a log
// line shows 30.1 and not the 30.099999999999998 of the subtraction behind it.
func asReading(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 7, 64), 64)
	return f
}
