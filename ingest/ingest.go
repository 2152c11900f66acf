package ingest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/chargeguard/chargeguard/ingest/spool"
	"github.com/chargeguard/chargeguard/telemetry"
)

// Spool is where a message is made durable before it is acked. Append must
// return only once every record is on disk (fsynced), and must wrap
// spool.ErrFull when the disk quota refuses them. Append does not keep recs.
type Spool interface {
	Append(recs [][]byte) error
}

// Observer is the safety engine's side of ingest: it gets every decoded
// message, in arrival order for each pile, straight from the broker. Observe
// must not block for long; it may keep the message.
type Observer interface {
	Observe(m telemetry.Message)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(m telemetry.Message)

// Observe calls f(m).
func (f ObserverFunc) Observe(m telemetry.Message) { f(m) }

// Options configures an Ingester. Spool is required; the rest default.
type Options struct {
	BrokerURL string // default tcp://127.0.0.1:1883
	ClientID  string // storage session's client id, fixed so the broker keeps its session; default "chargeguard"
	Username  string
	Password  string
	KeepAlive time.Duration // default 30s
	Root      string        // topic root, default telemetry.DefaultRoot

	// Workers decode in parallel; a pile's messages always go to the same
	// worker. Default 2.
	Workers int
	// QueueSize bounds the messages between the broker and the spool. It
	// should exceed the broker's in-flight window for this client, so the
	// MQTT reader never waits on the disk. Default 8192.
	QueueSize int
	// MaxBatch bounds one group commit. Default 2048 messages.
	MaxBatch int
	// MaxClockSkew: a message whose ts is further than this from our clock
	// is stored at its receive time. Default 5m.
	MaxClockSkew time.Duration

	Spool    Spool
	Observer Observer // the safety engine; nil: no live session

	// ShareGroup, when set, makes the storage session join the MQTT shared
	// subscription $share/<group>/<root>/#: the broker spreads storage
	// over the replicas of a cluster. The live session never shares: every
	// replica's engine sees everything.
	ShareGroup string
	// Sites, when set, limits both sessions to these sites' topics
	// (<root>/<site>/# each): one process or replica set guards one shard
	// of the sites. Empty: every site (<root>/#).
	Sites []string
	// OnPileStatus, when set, gets every pile's status from a third, clean
	// session subscribed to <root>/+/+/status of every site, whatever
	// Sites says (births and deaths only: cheap): online is false for a
	// death or a cleared retained status. A shard's shard registry finds
	// with it the sites that no shard guards (cluster mode with
	// mqtt.sites). It is called from paho's goroutine: it must not block.
	OnPileStatus func(site, pile string, online bool)
	// ObserveCommands also hands the observer the commands seen on the
	// cmd topics (cluster mode: a follower mirrors the leader's).
	ObserveCommands bool
	// LiveMark is the live session's backlog (messages read from the
	// broker and not yet handed to the observer) above which storage
	// yields: its workers take no new message until the backlog is back
	// under half the mark, for at most StorageYieldMax per message. On a
	// machine that cannot do both, the cut comes first and storage's
	// backlog waits in the broker. Default 256 (25 ms at 10,000
	// messages/s); negative: storage never yields.
	LiveMark int
	// StorageYieldMax bounds one yield of a worker, so that an observer
	// that stops for good slows storage to a crawl but never stops it.
	// Default 100ms; negative: the workers never yield (the embedded
	// broker, which drops what a session's full write queue cannot take,
	// cannot hold storage's backlog; the InfluxDB writer still yields).
	StorageYieldMax time.Duration
	// LiveLagMark is the live session's lag behind the broker (measured
	// by a canary it sends itself, telemetry.CanaryPrefix) above which storage
	// yields too, until the lag is under half of it: a live backlog in
	// the broker's queue or a broker starved of CPU is invisible to
	// LiveMark. Default 20ms; negative: no canary.
	LiveLagMark time.Duration
	// CanaryInterval is the pause between one canary's return and the
	// next. Default 25ms.
	CanaryInterval time.Duration

	Logger     zerolog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Ingester runs the storage and live MQTT sessions.
type Ingester struct {
	o       Options
	log     zerolog.Logger
	rejLog  zerolog.Logger // sampled: a flood of bad input must not flood the log
	m       *metrics
	workers []chan inbound
	live    []chan inbound // the live session's decoders, a pile always on the same
	commit  chan pending

	// liveBacklog counts the live session's messages read from the broker
	// and not yet observed: what storage yields to (LiveMark).
	liveBacklog atomic.Int64
	canary      *canary // nil without a live session or with LiveLagMark < 0
	// storeCanary times how long storage's messages wait in the broker
	// (chargeguard_ingest_storage_lag_seconds); nil when the workers never
	// yield (the embedded broker), as nothing then leaves storage's backlog
	// there.
	storeCanary *canary
	stop        <-chan struct{} // Run's ctx.Done(), for the live handler
	lastBehind  atomic.Int64    // unix nanoseconds: when liveBehind last said so

	storeConnected  atomic.Bool
	liveConnected   atomic.Bool
	statusConnected atomic.Bool
	spoolBlocked    atomic.Bool
}

// inbound is a message as it came off the wire.
type inbound struct {
	topic    string
	payload  []byte
	ack      func()
	received time.Time
	retained bool
}

// pending is a spool record waiting for its group commit, with the ack to
// send once it is durable.
type pending struct {
	rec []byte
	ack func()
}

// New checks the options and builds an Ingester; Run connects.
func New(o Options) (*Ingester, error) {
	if o.Spool == nil {
		return nil, errors.New("ingest: Options.Spool is required")
	}
	if o.BrokerURL == "" {
		o.BrokerURL = "tcp://127.0.0.1:1883"
	}
	if o.ClientID == "" {
		o.ClientID = "chargeguard"
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 30 * time.Second
	}
	if o.Root == "" {
		o.Root = telemetry.DefaultRoot
	}
	if !telemetry.ValidID(o.Root) {
		return nil, fmt.Errorf("ingest: topic root %q must match [A-Za-z0-9_-]{1,64}", o.Root)
	}
	if o.ShareGroup != "" && !telemetry.ValidID(o.ShareGroup) {
		return nil, fmt.Errorf("ingest: share group %q must match [A-Za-z0-9_-]{1,64}", o.ShareGroup)
	}
	for _, site := range o.Sites {
		if !telemetry.ValidID(site) {
			return nil, fmt.Errorf("ingest: site %q must match [A-Za-z0-9_-]{1,64}", site)
		}
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 8192
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 2048
	}
	if o.MaxClockSkew <= 0 {
		o.MaxClockSkew = 5 * time.Minute
	}
	if o.LiveMark == 0 {
		o.LiveMark = 256
	}
	if o.StorageYieldMax == 0 {
		o.StorageYieldMax = 100 * time.Millisecond
	}
	if o.LiveLagMark == 0 {
		o.LiveLagMark = 20 * time.Millisecond
	}
	if o.CanaryInterval <= 0 {
		o.CanaryInterval = 25 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	in := &Ingester{
		o:      o,
		log:    o.Logger.With().Str("component", "ingest").Logger(),
		commit: make(chan pending, o.QueueSize),
	}
	if o.Observer != nil && o.LiveLagMark > 0 {
		in.canary = newCanary(telemetry.CanaryPrefix+o.ClientID+"-live", o.CanaryInterval, 0)
	}
	if o.Observer != nil && o.StorageYieldMax > 0 {
		in.storeCanary = newCanary(telemetry.CanaryPrefix+o.ClientID+"-storage", 250*time.Millisecond, 1)
		if in.canary != nil {
			in.storeCanary.carried = in.canary.echoed.Load
		}
	}
	in.m = newMetrics(o.Registerer, func() float64 { return float64(in.liveBacklog.Load()) },
		func() float64 { return in.canary.lag(time.Now()).Seconds() },
		func() float64 { return in.storeCanary.lag(time.Now()).Seconds() })
	in.rejLog = in.log.Sample(&zerolog.BurstSampler{Burst: 10, Period: 10 * time.Second})
	per := max(o.QueueSize/o.Workers, 16)
	for range o.Workers {
		in.workers = append(in.workers, make(chan inbound, per))
		if o.Observer != nil {
			in.live = append(in.live, make(chan inbound, per))
		}
	}
	return in, nil
}

// Ready reports whether the storage session (and the live one, when there is
// an observer) is connected.
func (in *Ingester) Ready() error {
	if !in.storeConnected.Load() {
		return errors.New("MQTT storage session not connected")
	}
	if in.o.Observer != nil && !in.liveConnected.Load() {
		return errors.New("MQTT live session not connected")
	}
	return nil
}

// SpoolBlocked reports whether messages are being held unacked because the
// spool refuses them (full or failing).
func (in *Ingester) SpoolBlocked() bool { return in.spoolBlocked.Load() }

// Run connects both sessions and processes messages until ctx is done. On
// return every goroutine it started has exited; messages not yet durable are
// not acked, so the broker delivers them again.
func (in *Ingester) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	// Sinks first, sources last (Telegraf's agent order), so shutdown drains.
	commitDone := make(chan struct{})
	go func() {
		defer close(commitDone)
		in.runCommitter(ctx)
	}()
	for i, ch := range in.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in.runWorker(ctx, i, ch)
		}()
	}
	in.stop = ctx.Done()
	var liveWG sync.WaitGroup
	drain := make(chan struct{}) // closed once the live session is down
	for _, ch := range in.live {
		liveWG.Add(1)
		go func() {
			defer liveWG.Done()
			in.runLiveWorker(ch, drain)
		}()
	}

	store := paho.NewClient(in.clientOptions(in.o.ClientID, "storage", &in.storeConnected, in.onStoreMessage))
	if in.storeCanary != nil {
		// Routed before connecting: canaries a previous process left in
		// the persistent queue may come before the subscription is
		// renewed, and an echo no route takes is never acked.
		store.AddRoute(in.storeCanary.topic, in.storeCanary.onEcho)
	}
	store.Connect() // with ConnectRetry it keeps trying in the background
	if in.storeCanary != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in.storeCanary.run(ctx, store, &in.storeConnected, 2*time.Second, in.log.With().Str("session", "storage").Logger())
		}()
	}
	var live, status paho.Client
	if in.o.Observer != nil {
		live = paho.NewClient(in.clientOptions(in.o.ClientID+"-live", "live", &in.liveConnected, in.onLiveMessage))
		live.Connect()
		if in.canary != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in.canary.run(ctx, live, &in.liveConnected, 2*time.Second, in.log.With().Str("session", "live").Logger())
			}()
		}
	}
	if in.o.OnPileStatus != nil {
		status = paho.NewClient(in.clientOptions(in.o.ClientID+"-status", "status", &in.statusConnected, in.onStatusMessage))
		status.Connect()
	}
	<-ctx.Done()
	// Stop the sources. The live channels are never closed: paho may still
	// be in the handler when Disconnect returns, and the handler gives up
	// on ctx instead. A live worker waits for the engine only while it
	// takes messages; one whose engine has stopped for good (failed before
	// ingest was stopped) is not waited for.
	if status != nil {
		status.Disconnect(250)
	}
	if live != nil {
		live.Disconnect(250)
	}
	close(drain) // the engine still runs: hand it what was already read
	liveDone := make(chan struct{})
	go func() {
		liveWG.Wait()
		close(liveDone)
	}()
	select {
	case <-liveDone:
	case <-time.After(2 * time.Second):
		in.log.Warn().Msg("the safety engine takes no messages; stopping without its live workers")
	}
	// The worker channels are never closed either (paho may still be in
	// the handler); the workers stop on ctx, and the handler gives up on it.
	store.Disconnect(250)
	wg.Wait()
	close(in.commit)
	<-commitDone
	return nil
}

func (in *Ingester) clientOptions(id, session string, connected *atomic.Bool, h paho.MessageHandler) *paho.ClientOptions {
	// Only storage needs history (and manual acks): the live and status
	// sessions want what is happening now.
	live := session != "storage"
	log := in.log.With().Str("session", session).Logger()
	var conn atomic.Pointer[bufferedConn] // the session's current connection
	opts := paho.NewClientOptions().
		AddBroker(in.o.BrokerURL).
		SetClientID(id).
		SetUsername(in.o.Username).
		SetPassword(in.o.Password).
		SetKeepAlive(in.o.KeepAlive).
		SetPingTimeout(10 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		SetCustomOpenConnectionFn(func(u *url.URL, o paho.ClientOptions) (net.Conn, error) {
			bc, err := openBuffered(u, o)
			if err != nil {
				return nil, err
			}
			conn.Store(bc)
			return bc, nil
		}).
		// The live session needs no history: the engine wants what is
		// happening now. The storage session must keep what we have not acked.
		SetCleanSession(live).
		// Handlers run one at a time in paho's router goroutine, which keeps
		// each pile's messages in order; they only enqueue, to the workers
		// of the message's pile.
		SetOrderMatters(true).
		SetAutoAckDisabled(!live).
		SetOnConnectHandler(func(c paho.Client) {
			group := ""
			if !live {
				group = in.o.ShareGroup
			}
			filters := subscriptionFilters(in.o.Root, group, in.o.Sites)
			if session == "status" {
				filters = []string{in.o.Root + "/+/+/status"}
			}
			subs := make(map[string]byte, len(filters))
			for _, f := range filters {
				subs[f] = 1
			}
			// Subscribing again on every connect covers a broker that lost
			// the session (restarted without persistence).
			tok := c.SubscribeMultiple(subs, h)
			var err error
			if !tok.WaitTimeout(10 * time.Second) {
				err = errors.New("no answer within 10s")
			} else if err = tok.Error(); err == nil {
				err = refused(tok)
			}
			if err != nil {
				log.Error().Err(err).Strs("filters", filters).Msg("subscribe failed; reconnecting")
				// Dropping the connection, not Disconnect: after Disconnect
				// paho never reconnects, and this session would stay down.
				if bc := conn.Load(); bc != nil {
					bc.drop(fmt.Errorf("subscribe failed: %w", err))
				}
				return
			}
			// Not waited on: a broker that refuses a canary leaves that lag
			// unmeasured (the canary says so), never the session down.
			if session == "live" && in.canary != nil {
				c.Subscribe(in.canary.topic, 0, in.canary.onEcho)
			}
			if session == "storage" && in.storeCanary != nil {
				c.Subscribe(in.storeCanary.topic, 1, in.storeCanary.onEcho)
			}
			connected.Store(true)
			in.m.connected.WithLabelValues(session).Set(1)
			log.Info().Str("broker", redactURL(in.o.BrokerURL)).Strs("filters", filters).Msg("MQTT connected and subscribed")
		}).
		SetConnectionNotificationHandler(connectFailureLogger(log, in.o.BrokerURL)).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			connected.Store(false)
			switch session {
			case "live":
				in.canary.reset()
			case "storage":
				in.storeCanary.reset()
			}
			in.m.connected.WithLabelValues(session).Set(0)
			in.m.connectionLost.WithLabelValues(session).Inc()
			log.Warn().Err(err).Msg("MQTT connection lost; reconnecting")
		})
	if !live {
		// A persistent session's broker sends what it kept (up to its
		// inflight window) as soon as it accepts the connection, before
		// OnConnect has subscribed and so given paho a route for it; paho
		// neither hands on nor acks a message no route takes, and the
		// broker then waits for that ack until the next reconnect: the
		// readings are stuck, not stored. The default handler takes them.
		opts.SetDefaultPublishHandler(h)
	}
	return opts
}

// refused is the error for the filters a broker refused in its SUBACK
// (0x80, or mochi's 0x87, when an ACL does not grant them): paho reports
// those as a success, and a session that looked subscribed would receive
// nothing. (Mosquitto 2.0.11 grants such a subscription and drops the
// messages instead; only its log tells.)
func refused(tok paho.Token) error {
	st, ok := tok.(*paho.SubscribeToken)
	if !ok {
		return nil
	}
	var bad []string
	for f, rc := range st.Result() {
		if rc >= 0x80 {
			bad = append(bad, f)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	return fmt.Errorf("the broker refused %s (does its ACL let this account read them?)", strings.Join(bad, ", "))
}

// subscriptionFilters are a session's topic filters: <root>/# or, for a
// shard, <root>/<site>/# per site, each inside $share/<group>/ when group
// is set (the storage session of a cluster).
func subscriptionFilters(root, group string, sites []string) []string {
	var filters []string
	if len(sites) == 0 {
		filters = []string{root + "/#"}
	}
	for _, site := range sites {
		filters = append(filters, root+"/"+site+"/#")
	}
	if group != "" {
		for i, f := range filters {
			filters[i] = "$share/" + group + "/" + f
		}
	}
	return filters
}

// onStoreMessage is the storage session's handler. It only routes the
// message to its pile's worker; if the workers are behind it blocks, which
// stops paho reading the socket: back-pressure reaches the broker, which
// holds the backlog.
func (in *Ingester) onStoreMessage(_ paho.Client, msg paho.Message) {
	ib := inbound{topic: msg.Topic(), payload: msg.Payload(), received: in.o.Now()}
	if msg.Qos() > 0 {
		ib.ack = msg.Ack
	}
	in.m.received.Inc()
	select {
	case in.workers[in.shard(ib.topic)] <- ib:
	case <-in.stop: // stopping: not acked, the broker delivers it again
	}
}

// shard picks the worker for a topic by its site/pile part, so one pile's
// messages stay in order.
func (in *Ingester) shard(topic string) int {
	if len(in.workers) == 1 {
		return 0
	}
	if i := strings.LastIndexByte(topic, '/'); i > 0 {
		topic = topic[:i]
	}
	h := fnv.New32a()
	h.Write([]byte(topic))
	return int(h.Sum32() % uint32(len(in.workers)))
}

// onLiveMessage hands the message to its pile's live worker, which decodes
// it for the engine. If the live workers are behind it blocks, and the
// backlog waits in the broker, as the storage session's does.
func (in *Ingester) onLiveMessage(_ paho.Client, msg paho.Message) {
	// A retained status re-delivered on (re)subscribing is not news of
	// the pile: the engine must not restart its offline clock for it.
	ib := inbound{topic: msg.Topic(), payload: msg.Payload(), received: in.o.Now(), retained: msg.Retained()}
	in.liveBacklog.Add(1)
	select {
	case in.live[in.shard(ib.topic)] <- ib:
	case <-in.stop:
		in.liveBacklog.Add(-1)
	}
}

// runLiveWorker decodes the live session's messages of its piles, in
// arrival order, and hands them to the observer; once drain is closed it
// hands over what is left in ch and returns. It never touches the disk.
func (in *Ingester) runLiveWorker(ch <-chan inbound, drain <-chan struct{}) {
	for {
		select {
		case ib := <-ch:
			in.observe(ib)
			in.liveBacklog.Add(-1)
		case <-drain:
			for {
				select {
				case ib := <-ch:
					in.observe(ib)
					in.liveBacklog.Add(-1)
				default:
					return
				}
			}
		}
	}
}

func (in *Ingester) observe(ib inbound) {
	m, err := telemetry.DecodeTopic(in.o.Root, ib.topic, ib.payload, ib.received)
	if err != nil && m.Invalid == nil {
		return // counted and kept by the storage session
	}
	if m.Command != nil && !in.o.ObserveCommands {
		return // our own commands echo back through root/#
	}
	m.Retained = ib.retained
	in.o.Observer.Observe(m)
}

// YieldToLive holds its caller (storage: a worker before its next message,
// the InfluxDB writer before its next request) while the live session is
// behind: its backlog over LiveMark or its lag behind the broker over
// LiveLagMark. It returns once both are under half their mark, after at
// most maxWait, or when ctx is done. Both measures fall as the live
// session catches up, whether or not more traffic arrives. While storage
// holds, its queue fills, paho stops reading the storage socket and the
// broker keeps the rest; on a machine shared with InfluxDB, the writer's
// pause gives the broker and the engine InfluxDB's CPU.
// waiter names the caller in chargeguard_ingest_storage_yield_seconds_total.
func (in *Ingester) YieldToLive(ctx context.Context, maxWait time.Duration, waiter string) {
	if !in.liveBehind(1) {
		return
	}
	start := time.Now()
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for in.liveBehind(2) && time.Since(start) < maxWait {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	in.m.yielded.WithLabelValues(waiter).Add(time.Since(start).Seconds())
}

// LivePressed reports whether the live session is behind now or was within
// the last 10 s: storage then keeps one InfluxDB request in flight at a
// time (influx.Options.OneAtATime), since on a machine that could not do
// both a moment ago, two requests at once would take it back there.
func (in *Ingester) LivePressed() bool {
	return in.liveBehind(1) || time.Since(time.Unix(0, in.lastBehind.Load())) < 10*time.Second
}

// liveBehind reports whether the live session's backlog or lag is over
// its mark divided by div, and notes the time when it is.
func (in *Ingester) liveBehind(div int) bool {
	behind := in.o.LiveMark >= 0 && in.liveBacklog.Load() > int64(in.o.LiveMark/div) ||
		in.o.LiveLagMark > 0 && in.canary.lag(time.Now()) > in.o.LiveLagMark/time.Duration(div)
	if behind {
		in.lastBehind.Store(time.Now().UnixNano())
	}
	return behind
}

// onStatusMessage hands a pile's status to OnPileStatus: a birth (or a
// status that does not decode: a pile is there all the same) is online, a
// death or an empty retained message (the status cleared) is not.
func (in *Ingester) onStatusMessage(_ paho.Client, msg paho.Message) {
	t, err := telemetry.ParseTopic(in.o.Root, msg.Topic())
	if err != nil || t.Kind != telemetry.KindStatus {
		return
	}
	online := len(msg.Payload()) > 0
	if m, err := telemetry.Decode(t, msg.Payload(), in.o.Now()); err == nil && m.Status != nil && !m.Status.Online {
		online = false
	}
	in.o.OnPileStatus(t.Site, t.Pile, online)
}

func (in *Ingester) runWorker(ctx context.Context, _ int, ch <-chan inbound) {
	buf := make([]byte, 0, 4096)
	for {
		var ib inbound
		select {
		case <-ctx.Done():
			return // what is left is not acked: the broker delivers it again
		case ib = <-ch:
		}
		if in.o.StorageYieldMax > 0 {
			in.YieldToLive(ctx, in.o.StorageYieldMax, "worker")
		}
		buf = in.encode(buf[:0], ib)
		if len(buf) == 0 {
			// Nothing to store (our own command echo): ack at once.
			if ib.ack != nil {
				ib.ack()
			}
			continue
		}
		rec := spool.EncodeRecord(nil, ib.received, buf)
		select {
		case in.commit <- pending{rec: rec, ack: ib.ack}:
		case <-ctx.Done():
			return // not durable, not acked: the broker delivers it again
		}
	}
}

// encode decodes one message and appends its line protocol (a rejected
// message becomes a `rejected` point).
func (in *Ingester) encode(dst []byte, ib inbound) []byte {
	m, err := telemetry.DecodeTopic(in.o.Root, ib.topic, ib.payload, ib.received)
	if err != nil {
		var rej *telemetry.RejectError
		if !errors.As(err, &rej) {
			rej = &telemetry.RejectError{Reason: telemetry.ReasonBadJSON, Detail: err.Error()}
		}
		kind := telemetry.KindUnknown
		if t, terr := telemetry.ParseTopic(in.o.Root, ib.topic); terr == nil {
			kind = t.Kind
		}
		in.m.rejected.WithLabelValues(string(rej.Reason)).Inc()
		in.rejLog.Warn().Str("reason", string(rej.Reason)).Str("field", rej.Field).
			Str("detail", rej.Detail).Int("size", len(ib.payload)).
			Msg("message rejected; kept in measurement rejected")
		return appendRejected(dst, rej.Reason, kind, ib.topic, ib.payload, rej.Detail, ib.received)
	}
	if m.Command != nil {
		return dst
	}
	in.m.messages.WithLabelValues(m.Topic.Kind.String()).Inc()
	if m.Telemetry != nil {
		in.m.portSamples.Add(float64(len(m.Telemetry.Ports)))
	}
	dst, skewed := appendMessage(dst, &m, in.o.MaxClockSkew)
	if skewed {
		in.m.skewed.Inc()
	}
	return dst
}

// runCommitter group-commits records to the spool and acks them once they
// are durable. While the spool refuses (full, or a disk error) it holds the
// batch and retries: nothing is acked, so the broker stops sending once its
// in-flight window is full and keeps the backlog.
func (in *Ingester) runCommitter(ctx context.Context) {
	batch := make([]pending, 0, in.o.MaxBatch)
	recs := make([][]byte, 0, in.o.MaxBatch)
	for p := range in.commit {
		batch = append(batch[:0], p)
	fill:
		for len(batch) < in.o.MaxBatch {
			select {
			case p, ok := <-in.commit:
				if !ok {
					break fill
				}
				batch = append(batch, p)
			default:
				break fill
			}
		}
		recs = recs[:0]
		for _, p := range batch {
			recs = append(recs, p.rec)
		}
		in.m.queue.Set(float64(len(in.commit)))
		if !in.appendDurably(ctx, recs) {
			continue // shutting down with the batch unacked
		}
		for _, p := range batch {
			if p.ack != nil {
				p.ack()
			}
		}
		in.m.acked.Add(float64(len(batch)))
	}
}

func (in *Ingester) appendDurably(ctx context.Context, recs [][]byte) bool {
	backoff := 50 * time.Millisecond
	for {
		err := in.o.Spool.Append(recs)
		if err == nil {
			if in.spoolBlocked.Swap(false) {
				in.m.blocked.Set(0)
				in.log.Info().Msg("spool accepts again; acking resumed")
			}
			return true
		}
		if !in.spoolBlocked.Swap(true) {
			in.m.blocked.Set(1)
			ev := in.log.Error()
			if errors.Is(err, spool.ErrFull) {
				ev = in.log.Warn()
			}
			ev.Err(err).Int("batch", len(recs)).Msg("spool refuses messages; holding them unacked, the broker keeps the backlog")
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// redactURL drops credentials from a URL for logging.
func redactURL(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "<redacted>" + s[i:]
		}
	}
	return s
}

// connectFailureLogger logs failed connection attempts, which paho
// otherwise retries in silence (a wrong address, a refused password, a
// broker certificate that does not verify): the first of a kind at once,
// then at most one line per 30 s while the same error repeats.
func connectFailureLogger(log zerolog.Logger, broker string) paho.ConnectionNotificationHandler {
	var (
		mu     sync.Mutex
		last   string
		logged time.Time
		n      int
	)
	return func(_ paho.Client, cn paho.ConnectionNotification) {
		f, ok := cn.(paho.ConnectionNotificationFailed)
		if !ok || f.Reason == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		n++
		msg := f.Reason.Error()
		if msg == last && time.Since(logged) < 30*time.Second {
			return
		}
		log.Error().Str("broker", redactURL(broker)).Str("error", msg).Int("attempts", n).
			Msg("MQTT connect failed; retrying")
		last, logged, n = msg, time.Now(), 0
	}
}
