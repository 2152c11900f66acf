package simulators

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/chargeguard/chargeguard/telemetry"
)

// Runner runs a simulated fleet against an MQTT broker: every pile
// connects (by default on its own connection, with its death as last
// will), publishes its retained birth, reports telemetry on the simulated
// clock, and obeys the commands it receives.
type Runner struct {
	o   Options
	log zerolog.Logger

	clock clock
	piles []*livePile
	byKey map[string]*livePile
	conns []*conn
	end   time.Time // model end; zero: none

	sent, pubErrs, offline, hostile atomic.Int64
	lostInDrop                      atomic.Int64
	cmds, closes, opens, badCmds    atomic.Int64
	started                         atomic.Bool

	atEnd    sync.WaitGroup // Options.AtEnd running
	mu       sync.Mutex     // guards the records, delayed and ended
	ended    time.Time      // wall time the simulation loop stopped
	commands []CommandRecord
	mets     []Met
	delayed  []delayedOut

	tokMu     sync.RWMutex
	tokClosed bool
	tokens    chan pendingToken

	wg sync.WaitGroup // hostile publishers
}

type livePile struct {
	mu     sync.Mutex
	p      *Pile
	conn   *conn
	topics [KindCount]string
}

// KindCount bounds telemetry.Kind values, for per-kind topic tables.
const KindCount = int(telemetry.KindAck) + 1

type delayedOut struct {
	lp  *livePile
	ob  Outbound
	due time.Time
}

type pendingToken struct {
	tok      mqtt.Token
	deadline time.Time
	c        *conn
	gen      int64 // the connection's generation when published
}

// CommandRecord is one command delivery a pile received.
type CommandRecord struct {
	Pile     string // "site/pile"
	ID       string
	Port     int
	Action   telemetry.Action
	Reason   string
	Delivery int  // 1 for the first delivery of this id
	Executed bool // false for a repeated id
	Ack      telemetry.Ack
	Wall     time.Time
	Model    time.Time
}

// Stats is a snapshot of a run.
type Stats struct {
	Piles, PilesOnline, Ports, PortsCharging int
	// Sent counts messages handed to the client, PublishErrors the ones it
	// failed to deliver (or to confirm, for QoS 1), LostInDrop the ones in
	// flight when a network-loss fault cut the connection, Offline the ones
	// a pile could not send because it was offline, Hostile the messages
	// sent on throwaway connections because the broker must refuse their
	// topic.
	Sent, PublishErrors, LostInDrop, Offline, Hostile int64
	// Commands counts command deliveries, Closures and Opens the commands
	// executed, BadCommands the deliveries that did not decode.
	Commands, Closures, Opens, BadCommands int64
	Model                                  time.Time
}

func (s Stats) String() string {
	return fmt.Sprintf("pilesim %s | piles online %d/%d | ports charging %d/%d | sent %d (errors %d, offline %d) | commands %d (closures %d, opens %d, bad %d)",
		s.Model.In(Hangzhou).Format("2006-01-02 15:04:05"), s.PilesOnline, s.Piles, s.PortsCharging, s.Ports,
		s.Sent, s.PublishErrors, s.Offline, s.Commands, s.Closures, s.Opens, s.BadCommands)
}

// clock maps the wall clock to model time.
type clock struct {
	wall0, model0 time.Time
	speed         float64
}

func (c clock) model(w time.Time) time.Time {
	return c.model0.Add(time.Duration(float64(w.Sub(c.wall0)) * c.speed))
}

func (c clock) wall(m time.Time) time.Time {
	return c.wall0.Add(time.Duration(float64(m.Sub(c.model0)) / c.speed))
}

func tsStartOr(o Options) time.Time {
	if o.TSStart.IsZero() {
		return o.Start // replaced by the wall clock when Run starts
	}
	return o.TSStart
}

// New checks o and prepares a run.
func New(o Options) (*Runner, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if o.Broker == "" {
		return nil, errors.New("options: no broker")
	}
	u, err := url.Parse(o.Broker)
	if err != nil {
		return nil, fmt.Errorf("options: broker: %w", err)
	}
	if u.Scheme != "tcp" && u.Scheme != "mqtt" {
		return nil, fmt.Errorf("options: broker: scheme %q: only tcp:// is supported", u.Scheme)
	}
	r := &Runner{o: o, log: o.Logger, byKey: map[string]*livePile{}, tokens: make(chan pendingToken, 1<<16)}
	if o.Duration > 0 {
		r.end = o.Start.Add(o.Duration)
	}
	for _, p := range newPiles(&r.o, tsStartOr(r.o)) {
		lp := &livePile{p: p}
		for k := telemetry.KindStatus; int(k) < KindCount; k++ {
			lp.topics[k] = telemetry.Topic{Root: r.o.Root, Site: p.Spec.Site, Pile: p.Spec.ID, Kind: k}.String()
		}
		r.piles = append(r.piles, lp)
		r.byKey[p.Spec.Key()] = lp
	}
	n := len(r.piles)
	if r.o.Conns > 0 && r.o.Conns < n {
		n = r.o.Conns
	}
	for i := 0; i < n; i++ {
		c := &conn{r: r, lost: make(chan error, 1), drop: make(chan time.Time, 1)}
		r.conns = append(r.conns, c)
	}
	for i, lp := range r.piles {
		c := r.conns[i%n]
		lp.conn = c
		c.piles = append(c.piles, lp)
	}
	for i, c := range r.conns {
		if len(c.piles) == 1 {
			c.id = r.o.ClientPrefix + "-" + c.piles[0].p.Spec.Site + "-" + c.piles[0].p.Spec.ID
		} else {
			c.id = fmt.Sprintf("%s-mux-%d", r.o.ClientPrefix, i)
		}
	}

	return r, nil
}

func (r *Runner) modelNow() time.Time {
	if !r.started.Load() {
		return r.o.Start
	}
	m := r.clock.model(r.o.Now())
	if !r.end.IsZero() && m.After(r.end) && r.o.AtEnd == nil {
		return r.end
	}
	return m
}

// Run connects the fleet, runs it until ctx is done or Options.Duration of
// simulated time has passed, then publishes every pile's death, disconnects
// and returns once all its goroutines have exited.
func (r *Runner) Run(ctx context.Context) error {
	// The pile clock starts at the wall clock unless told otherwise, so
	// that at speed 1 ts matches the backend's clock.
	if r.o.TSStart.IsZero() && len(r.piles) > 0 {
		r.piles[0].p.env.tsOffset = r.o.Now().Sub(r.o.Start)
	}

	var reaper sync.WaitGroup
	reaper.Add(1)
	go func() {
		defer reaper.Done()
		r.reap()
	}()

	connCtx, stopConns := context.WithCancel(context.Background())
	var conns, initial sync.WaitGroup
	sem := make(chan struct{}, 32) // connect at most this many at once
	for _, c := range r.conns {
		conns.Add(1)
		initial.Add(1)
		go func() {
			defer conns.Done()
			c.run(connCtx, &initial, sem)
		}()
	}
	// Start the clock once every pile has had its first try to connect,
	// so a sped-up run does not lose its first simulated minutes.
	waitCtx(ctx, &initial)
	r.clock = clock{wall0: r.o.Now(), model0: r.o.Start, speed: r.o.Speed}
	if r.o.TSStart.IsZero() && len(r.piles) > 0 {
		// Re-anchor the pile clock now that the simulated clock starts
		// (the piles share one env; hold every pile while changing it).
		for _, lp := range r.piles {
			lp.mu.Lock()
		}
		r.piles[0].p.env.tsOffset = r.clock.wall0.Sub(r.o.Start)
		for _, lp := range r.piles {
			lp.mu.Unlock()
		}
	}
	r.started.Store(true)
	r.log.Info().Int("piles", len(r.piles)).Int("conns", len(r.conns)).Int("online", r.Stats().PilesOnline).
		Float64("speed", r.o.Speed).Time("model_start", r.o.Start).Msg("fleet connected, clock started")

	var summary sync.WaitGroup
	sumCtx, stopSummary := context.WithCancel(ctx)
	if r.o.Summary != nil {
		summary.Add(1)
		go func() {
			defer summary.Done()
			t := time.NewTicker(r.o.SummaryEvery)
			defer t.Stop()
			for {
				select {
				case <-sumCtx.Done():
					return
				case <-t.C:
					fmt.Fprintln(r.o.Summary, r.Stats())
				}
			}
		}()
	}

	r.loop(ctx)
	r.mu.Lock()
	if r.ended.IsZero() { // not already set when AtEnd was called
		r.ended = r.o.Now()
	}
	r.mu.Unlock()

	stopSummary()
	summary.Wait()
	stopConns()
	conns.Wait()
	r.wg.Wait()
	r.tokMu.Lock()
	r.tokClosed = true
	close(r.tokens)
	r.tokMu.Unlock()
	reaper.Wait()
	r.atEnd.Wait()
	if r.o.Summary != nil {
		fmt.Fprintln(r.o.Summary, r.Stats())
	}
	r.log.Info().Msg("fleet stopped")
	return nil
}

func waitCtx(ctx context.Context, wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// loop advances the simulation on every tick until ctx is done or the run
// reaches its end.
func (r *Runner) loop(ctx context.Context) {
	t := time.NewTicker(r.o.Tick)
	defer t.Stop()
	held := false // Options.AtEnd was called
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := r.o.Now()
		m := r.clock.model(now)
		last := false
		if !r.end.IsZero() && !m.Before(r.end) && !held {
			if r.o.AtEnd == nil {
				m, last = r.end, true
			} else {
				// The scenario is over but the piles live on.
				held = true
				r.mu.Lock()
				r.ended = now
				r.mu.Unlock()
				r.atEnd.Add(1)
				go func() {
					defer r.atEnd.Done()
					r.o.AtEnd()
				}()
			}
		}
		for _, lp := range r.piles {
			lp.mu.Lock()
			outs := lp.p.Advance(m)
			lp.mu.Unlock()
			for _, ob := range outs {
				r.emit(lp, ob, now)
			}
		}
		r.flushDelayed(now, false)
		if last {
			r.flushDelayed(now, true)
			return
		}
	}
}

func (r *Runner) flushDelayed(now time.Time, all bool) {
	r.mu.Lock()
	var due []delayedOut
	keep := r.delayed[:0]
	for _, d := range r.delayed {
		if all || !d.due.After(now) {
			due = append(due, d)
		} else {
			keep = append(keep, d)
		}
	}
	r.delayed = keep
	r.mu.Unlock()
	for _, d := range due {
		d.ob.Delay = 0
		r.emit(d.lp, d.ob, now)
	}
}

// emit carries out one Outbound of a pile at wall time now.
func (r *Runner) emit(lp *livePile, ob Outbound, now time.Time) {
	if ob.Delay > 0 {
		r.mu.Lock()
		r.delayed = append(r.delayed, delayedOut{lp: lp, ob: ob, due: now.Add(ob.Delay)})
		r.mu.Unlock()
		return
	}
	if len(ob.Met) > 0 {
		r.mu.Lock()
		for _, m := range ob.Met {
			m.Wall = now.Add(m.After)
			r.mets = append(r.mets, m)
		}
		r.mu.Unlock()
	}
	switch {
	case ob.Drop > 0:
		r.log.Info().Str("pile", lp.p.Spec.Key()).Dur("for", ob.Drop).Msg("network loss: dropping the connection without DISCONNECT")
		lp.conn.requestDrop(ob.Sent.Add(ob.Drop))
		return
	case ob.Kind == telemetry.KindUnknown:
		return
	}
	topic := ob.Topic
	if topic == "" {
		topic = lp.topics[ob.Kind]
	}
	qos := ob.QoS
	if ob.Kind == telemetry.KindTelemetry && ob.Topic == "" {
		qos = r.o.TelemetryQoS
	}
	if brokerRefuses(topic) {
		r.publishHostile(topic, ob.Payload)
		return
	}
	lp.conn.publish(topic, qos, ob.Retained, ob.Payload)
}

// publishHostile sends a message whose topic the broker must refuse on a
// throwaway connection, so the pile's own survives the broker's reaction.
func (r *Runner) publishHostile(topic string, payload []byte) {
	n := r.hostile.Add(1)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		opts := mqtt.NewClientOptions().AddBroker(r.o.Broker).
			SetClientID(fmt.Sprintf("%s-hostile-%d", r.o.ClientPrefix, n)).
			SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
		c := mqtt.NewClient(opts)
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			return
		}
		tok := c.Publish(topic, 0, false, payload)
		tok.WaitTimeout(2 * time.Second)
		c.Disconnect(100)
	}()
}

func (r *Runner) track(tok mqtt.Token, c *conn, gen int64) {
	r.tokMu.RLock()
	defer r.tokMu.RUnlock()
	if r.tokClosed {
		return
	}
	r.tokens <- pendingToken{tok: tok, deadline: time.Now().Add(10 * time.Second), c: c, gen: gen}
}

// reap waits for every publish token in order and counts failures.
func (r *Runner) reap() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for p := range r.tokens {
		timer.Reset(time.Until(p.deadline))
		failed := false
		select {
		case <-p.tok.Done():
			failed = p.tok.Error() != nil
		case <-timer.C:
			failed = true
		}
		switch {
		case !failed:
		case p.c != nil && p.gen == p.c.droppedGen.Load():
			// In flight when a network-loss fault cut the connection.
			r.lostInDrop.Add(1)
		default:
			r.pubErrs.Add(1)
		}
	}
}

// onCommand handles a delivery on a pile's cmd topic.
func (r *Runner) onCommand(msg mqtt.Message) {
	now := r.o.Now()
	r.cmds.Add(1)
	t, err := telemetry.ParseTopic(r.o.Root, msg.Topic())
	lp := r.byKey[t.Site+"/"+t.Pile]
	if err != nil || lp == nil || t.Kind != telemetry.KindCmd {
		r.badCmds.Add(1)
		return
	}
	m, err := telemetry.Decode(t, msg.Payload(), now)
	if err != nil || m.Command == nil {
		r.badCmds.Add(1)
		r.log.Warn().Err(err).Str("pile", lp.p.Spec.Key()).Msg("undecodable command")
		return
	}
	cmd := m.Command
	model := r.modelNow()
	lp.mu.Lock()
	res := lp.p.HandleCommand(cmd, model)
	lp.mu.Unlock()
	if res.Executed {
		switch cmd.Action {
		case telemetry.ActionClose:
			r.closes.Add(1)
		case telemetry.ActionOpen:
			r.opens.Add(1)
		}
	}
	r.mu.Lock()
	r.commands = append(r.commands, CommandRecord{
		Pile: lp.p.Spec.Key(), ID: cmd.ID, Port: cmd.Port, Action: cmd.Action, Reason: cmd.Reason,
		Delivery: res.Deliveries, Executed: res.Executed, Ack: res.Ack, Wall: now, Model: model,
	})
	r.mu.Unlock()
	r.log.Info().Str("pile", lp.p.Spec.Key()).Str("id", cmd.ID).Int("port", cmd.Port).Str("action", string(cmd.Action)).
		Str("reason", cmd.Reason).Int("delivery", res.Deliveries).Bool("ok", res.Ack.OK).Msg("command")
	for _, ob := range res.Out {
		r.emit(lp, ob, now)
	}
}

// loopEnd is the wall time the simulation stopped (before the piles'
// deaths on a clean stop); the far future while it runs.
func (r *Runner) loopEnd() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended.IsZero() {
		return time.Now().Add(24 * time.Hour)
	}
	return r.ended
}

// Stats returns a snapshot of the run.
func (r *Runner) Stats() Stats {
	s := Stats{
		Sent: r.sent.Load(), PublishErrors: r.pubErrs.Load(), LostInDrop: r.lostInDrop.Load(), Offline: r.offline.Load(), Hostile: r.hostile.Load(),
		Commands: r.cmds.Load(), Closures: r.closes.Load(), Opens: r.opens.Load(), BadCommands: r.badCmds.Load(),
		Model: r.modelNow(),
	}
	for _, c := range r.conns {
		if c.ready.Load() {
			s.PilesOnline += len(c.piles)
		}
	}
	for _, lp := range r.piles {
		lp.mu.Lock()
		s.Piles++
		s.Ports += lp.p.Spec.Ports
		s.PortsCharging += lp.p.Charging()
		lp.mu.Unlock()
	}
	return s
}

// Commands returns the command deliveries so far, in arrival order.
func (r *Runner) Commands() []CommandRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]CommandRecord(nil), r.commands...)
}

// Mets returns the policy conditions the piles' messages met so far, by
// wall time.
func (r *Runner) Mets() []Met {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := append([]Met(nil), r.mets...)
	sort.SliceStable(m, func(i, j int) bool { return m[i].Wall.Before(m[j].Wall) })
	return m
}

// PortState is the relay state of a pile's port now ("" if unknown).
func (r *Runner) PortState(pile string, port int) telemetry.PortState {
	lp := r.byKey[pile]
	if lp == nil {
		return ""
	}
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.p.PortState(port)
}

// conn is one MQTT connection carrying one or more piles.
type conn struct {
	r     *Runner
	id    string
	piles []*livePile

	mu     sync.Mutex
	client mqtt.Client
	net    net.Conn

	gen        atomic.Int64
	droppedGen atomic.Int64 // the generation a network-loss fault cut
	ready      atomic.Bool
	lost       chan error
	drop       chan time.Time // model time to reconnect at
}

func (c *conn) requestDrop(until time.Time) {
	select {
	case c.drop <- until:
	default:
	}
}

func (c *conn) publish(topic string, qos byte, retained bool, payload []byte) {
	if !c.ready.Load() {
		c.r.offline.Add(1)
		return
	}
	gen := c.gen.Load()
	c.mu.Lock()
	cl := c.client
	c.mu.Unlock()
	tok := cl.Publish(topic, qos, retained, payload)
	c.r.sent.Add(1)
	c.r.track(tok, c, gen)
}

// run keeps the connection up until ctx is done, honouring network-loss
// drops, then stops it cleanly.
func (c *conn) run(ctx context.Context, initial *sync.WaitGroup, sem chan struct{}) {
	first := true
	for {
		sem <- struct{}{}
		err := c.connect(ctx)
		<-sem
		if first {
			initial.Done()
			first = false
		}
		if err != nil {
			c.r.log.Warn().Err(err).Str("client", c.id).Msg("connect failed; retrying")
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		select {
		case <-ctx.Done():
			c.shutdown()
			return
		case err := <-c.lost:
			c.ready.Store(false)
			c.r.log.Warn().Err(err).Str("client", c.id).Msg("connection lost; reconnecting")
			if !sleepCtx(ctx, time.Second) {
				return
			}
		case until := <-c.drop:
			c.ready.Store(false)
			c.droppedGen.Store(c.gen.Load())
			c.gen.Add(1) // the loss that follows is ours, not news
			c.mu.Lock()
			nc, cl := c.net, c.client
			c.mu.Unlock()
			if nc != nil {
				nc.Close() // no DISCONNECT: the broker fires the will
			}
			// Let the old client notice and stop its goroutines.
			cl.Disconnect(0)
			if !sleepCtx(ctx, time.Until(c.r.clock.wall(until))) {
				return
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func waitToken(ctx context.Context, tok mqtt.Token, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return errors.New("timed out")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *conn) connect(ctx context.Context) error {
	r := c.r
	gen := c.gen.Add(1)
	opts := mqtt.NewClientOptions().AddBroker(r.o.Broker).SetClientID(c.id).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).SetOrderMatters(false).
		SetKeepAlive(30 * time.Second).SetConnectTimeout(10 * time.Second).SetWriteTimeout(10 * time.Second)
	if len(c.piles) == 1 {
		opts.SetBinaryWill(c.piles[0].topics[telemetry.KindStatus], Death(), 1, true)
	}
	opts.SetCustomOpenConnectionFn(func(uri *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
		d := net.Dialer{Timeout: 10 * time.Second}
		nc, err := d.DialContext(ctx, "tcp", uri.Host)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.net = nc
		c.mu.Unlock()
		return nc, nil
	})
	opts.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		if c.gen.Load() == gen {
			select {
			case c.lost <- err:
			default:
			}
		}
	})
	cl := mqtt.NewClient(opts)
	if err := waitToken(ctx, cl.Connect(), 15*time.Second); err != nil {
		cl.Disconnect(0)
		return fmt.Errorf("connect %s: %w", c.id, err)
	}
	filters := map[string]byte{}
	for _, lp := range c.piles {
		filters[lp.topics[telemetry.KindCmd]] = 1
	}
	if err := waitToken(ctx, cl.SubscribeMultiple(filters, func(_ mqtt.Client, m mqtt.Message) { r.onCommand(m) }), 15*time.Second); err != nil {
		cl.Disconnect(0)
		return fmt.Errorf("subscribe %s: %w", c.id, err)
	}
	c.mu.Lock()
	c.client = cl
	c.mu.Unlock()
	var toks []mqtt.Token
	for _, lp := range c.piles {
		lp.mu.Lock()
		b := lp.p.Birth(r.modelNow())
		lp.mu.Unlock()
		toks = append(toks, cl.Publish(lp.topics[telemetry.KindStatus], 1, true, b))
		r.sent.Add(1)
	}
	for _, t := range toks {
		if err := waitToken(ctx, t, 15*time.Second); err != nil {
			r.pubErrs.Add(1)
		}
	}
	c.ready.Store(true)
	return nil
}

// shutdown publishes every pile's death (a clean DISCONNECT does not fire
// the will) and disconnects.
func (c *conn) shutdown() {
	c.ready.Store(false)
	c.gen.Add(1)
	c.mu.Lock()
	cl := c.client
	c.mu.Unlock()
	var toks []mqtt.Token
	for _, lp := range c.piles {
		toks = append(toks, cl.Publish(lp.topics[telemetry.KindStatus], 1, true, Death()))
		c.r.sent.Add(1)
	}
	for _, t := range toks {
		if !t.WaitTimeout(5*time.Second) || t.Error() != nil {
			c.r.pubErrs.Add(1)
		}
	}
	cl.Disconnect(250)
}

// Reachable reports whether an MQTT client can connect to broker within
// timeout, retrying every second until then; the error says why not. The
// piles themselves retry for ever, as real ones do: a command that needs
// the broker checks it first and gives up with a clear error instead.
func Reachable(ctx context.Context, broker string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).
			SetClientID(fmt.Sprintf("pilesim-probe-%d", time.Now().UnixNano())).
			SetConnectTimeout(5 * time.Second).SetConnectRetry(false).SetAutoReconnect(false))
		err := waitToken(ctx, cl.Connect(), 10*time.Second)
		if err == nil {
			cl.Disconnect(0)
			return nil
		}
		if last == nil || ctx.Err() == nil { // keep the broker's reason over our deadline
			last = err
		}
		if !sleepCtx(ctx, time.Second) {
			return fmt.Errorf("broker %s not reachable within %v: %w", broker, timeout, last)
		}
	}
}
