package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	mochiauth "github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/chargeguard/chargeguard/broker/auth"
)

// Defaults of Options.
const (
	// DefaultMaxPacketBytes accepts a payload four times over the protocol's
	// 64 KiB limit, so that an oversized message still reaches ingest and is
	// stored as rejected, while a packet cannot cost the process more.
	DefaultMaxPacketBytes  = 256 << 10
	DefaultMaxConnectBytes = 16 << 10
	DefaultConnectTimeout  = 10 * time.Second
	// DefaultMaxPreAuthConns is per pool (loopback, other). mochi gives
	// every connection, before login, an outbound queue of MaxWritesPending
	// pointers (512 KiB at the default 1<<16) and a read buffer: 64 pending
	// logins cost at most about 33 MiB per pool. A fleet reconnecting at
	// once is refused in part and retries within seconds.
	DefaultMaxPreAuthConns = 64
)

// Options configures the embedded broker. The zero value listens on
// 127.0.0.1:1883 and allows anonymous clients to publish and read anything;
// New refuses anonymous access on any other address unless AllowAnonymous
// says so.
type Options struct {
	// Addr is the TCP address to listen on; default 127.0.0.1:1883. Port 0
	// picks a free port (see Broker.Addr).
	Addr string
	// AllowAnonymous lets the broker listen on a non-loopback address
	// without Auth.PasswordFile: anyone who reaches it can then publish
	// telemetry and commands. Off, New refuses such a listener.
	AllowAnonymous bool
	// MaxPacketBytes bounds any packet a client sends (mochi's
	// MaximumPacketSize); default DefaultMaxPacketBytes. A larger one
	// closes the connection before it is read.
	MaxPacketBytes int
	// MaxConnectBytes bounds the first packet of a connection (its
	// CONNECT, with the will); default DefaultMaxConnectBytes.
	MaxConnectBytes int
	// ConnectTimeout is how long a new connection has to complete its
	// CONNECT; default DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// MaxPreAuthConns bounds the connections that have not logged in yet,
	// separately for loopback and other clients; default
	// DefaultMaxPreAuthConns. Past it a new connection is closed at once.
	MaxPreAuthConns int
	// MaxInflight bounds the QoS 1 messages queued for one client (for
	// chargeguard's own persistent session: its backlog while it is not
	// acking). mochi drops, and counts, what does not fit. mochi caps it at
	// 65535, the default.
	MaxInflight int
	// MaxWritesPending bounds a client's outbound buffer; default 1<<16.
	// mochi allocates it for every connection (8 bytes a slot).
	MaxWritesPending int
	// Hold makes QoS 1 publishers wait while chargeguard's storage or live
	// session is behind, instead of the broker dropping; see HoldOptions.
	Hold HoldOptions
	// Auth turns on authentication and the topic ACL when
	// Auth.PasswordFile is set: the same Mosquitto password file and the
	// same rules as deploy/mosquitto (see package broker/auth). The hook
	// logs with the broker's Logger; its Registerer defaults to the
	// broker's.
	Auth       auth.Options
	Logger     zerolog.Logger
	Registerer prometheus.Registerer
}

// Broker is a running embedded broker.
type Broker struct {
	srv     *mqtt.Server
	preAuth *guard
	ln      net.Listener
	addr    string
	log     zerolog.Logger
	done    atomic.Bool
}

// New creates the broker and binds its listener, so that Addr is known and a
// port conflict is reported before Run.
func New(o Options) (*Broker, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:1883"
	}
	if o.MaxInflight <= 0 || o.MaxInflight > 65535 {
		o.MaxInflight = 65535
	}
	if o.MaxWritesPending <= 0 {
		o.MaxWritesPending = 1 << 16
	}
	if o.MaxPacketBytes <= 0 {
		o.MaxPacketBytes = DefaultMaxPacketBytes
	}
	if o.MaxConnectBytes <= 0 {
		o.MaxConnectBytes = DefaultMaxConnectBytes
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.MaxPreAuthConns <= 0 {
		o.MaxPreAuthConns = DefaultMaxPreAuthConns
	}
	log := o.Logger.With().Str("component", "broker").Logger()
	if o.Auth.PasswordFile == "" && !IsLoopbackAddr(o.Addr) {
		if !o.AllowAnonymous {
			return nil, fmt.Errorf("broker: %s is not a loopback address and no password file is set: "+
				"anyone who reaches it could publish forged telemetry and commands; "+
				"set a password file, or allow anonymous access explicitly", o.Addr)
		}
		log.Warn().Str("addr", o.Addr).Msg("embedded MQTT broker accepts anonymous clients on a non-loopback address: anyone who reaches it can publish telemetry and commands")
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(o.MaxPacketBytes)
	caps.MaximumInflight = uint16(o.MaxInflight)
	caps.MaximumClientWritesPending = int32(o.MaxWritesPending)
	caps.MaximumMessageExpiryInterval = 0 // keep queued QoS 1 messages until delivered
	srv := mqtt.New(&mqtt.Options{
		Capabilities:           caps,
		Logger:                 newSlog(log),
		InlineClient:           false,
		SysTopicResendInterval: 0,
	})
	if err := srv.AddHook(new(loginHook), nil); err != nil {
		return nil, fmt.Errorf("broker: add hook: %w", err)
	}
	if o.Auth.PasswordFile != "" {
		ao := o.Auth
		ao.Logger = log
		if ao.Registerer == nil {
			ao.Registerer = o.Registerer
		}
		hook, err := auth.NewHook(ao)
		if err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
		if err := srv.AddHook(hook, nil); err != nil {
			return nil, fmt.Errorf("broker: add auth hook: %w", err)
		}
	} else if err := srv.AddHook(new(mochiauth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("broker: add auth hook: %w", err)
	}
	var hold *holdHook
	if len(o.Hold.Watch) > 0 {
		hold = newHoldHook(srv, o.Hold, o.MaxWritesPending)
		if err := srv.AddHook(hold, nil); err != nil {
			return nil, fmt.Errorf("broker: add hold hook: %w", err)
		}
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("broker: listen on %s: %w", o.Addr, err)
	}
	g := newGuard(o, log)
	tcp := listeners.NewNet("tcp", &listener{Listener: ln, g: g})
	if err := srv.AddListener(tcp); err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker: add listener: %w", err)
	}
	b := &Broker{srv: srv, preAuth: g, ln: ln, addr: ln.Addr().String(), log: o.Logger}
	if o.Registerer != nil {
		o.Registerer.MustRegister(b.collectors()...)
		if hold != nil {
			o.Registerer.MustRegister(hold.collectors()...)
		}
	}
	return b, nil
}

// Addr is the address the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// URL is the address as an MQTT URL for clients.
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Run serves until ctx is done, then closes every connection.
func (b *Broker) Run(ctx context.Context) error {
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("broker: serve: %w", err)
	}
	b.log.Info().Str("addr", b.addr).Msg("embedded MQTT broker listening")
	<-ctx.Done()
	if b.done.Swap(true) {
		return nil
	}
	b.drainHandoffs()
	err := b.srv.Close()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("broker: close: %w", err)
	}
	return nil
}

func (b *Broker) collectors() []prometheus.Collector {
	info := b.srv.Info
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	return []prometheus.Collector{
		b.preAuth.refused,
		gauge("chargeguard_broker_preauth_connections", "Connections to the embedded broker that have not logged in yet.",
			func() float64 { return float64(b.preAuth.inUse(true) + b.preAuth.inUse(false)) }),
		gauge("chargeguard_broker_clients_connected", "Clients connected to the embedded broker.",
			func() float64 { return float64(atomic.LoadInt64(&info.ClientsConnected)) }),
		gauge("chargeguard_broker_inflight_messages", "QoS 1/2 messages the embedded broker holds unacknowledged.",
			func() float64 { return float64(atomic.LoadInt64(&info.Inflight)) }),
		counter("chargeguard_broker_messages_received_total", "PUBLISH packets the embedded broker received.",
			func() float64 { return float64(atomic.LoadInt64(&info.MessagesReceived)) }),
		counter("chargeguard_broker_messages_dropped_total", "Messages the embedded broker dropped because a client's write buffer was full.",
			func() float64 { return float64(atomic.LoadInt64(&info.MessagesDropped)) }),
		counter("chargeguard_broker_inflight_dropped_total", "QoS messages the embedded broker dropped because a client's in-flight store was full.",
			func() float64 { return float64(atomic.LoadInt64(&info.InflightDropped)) }),
	}
}

// drainHandoffs stops accepting and waits (a second at most) until mochi
// has started every connection already accepted, so that mochi's Close does
// not race with a connection registering itself.
func (b *Broker) drainHandoffs() {
	_ = b.ln.Close()
	done := make(chan struct{})
	go func() {
		b.preAuth.handoff.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
	}
}

// Close releases the listener of a broker that never ran (a failed start);
// Run closes it itself.
func (b *Broker) Close() error {
	if b.done.Swap(true) {
		return nil
	}
	return b.srv.Close()
}
