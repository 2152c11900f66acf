package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	mochiauth "github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/chargeguard/chargeguard/broker/auth"
)

// Options configures the embedded broker. The zero value listens on
// 127.0.0.1:1883 and allows anonymous clients to publish and read anything.
type Options struct {
	// Addr is the TCP address to listen on; default 127.0.0.1:1883. Port 0
	// picks a free port (see Broker.Addr).
	Addr string
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
	srv  *mqtt.Server
	ln   net.Listener
	addr string
	log  zerolog.Logger
	done atomic.Bool
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
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumInflight = uint16(o.MaxInflight)
	caps.MaximumClientWritesPending = int32(o.MaxWritesPending)
	caps.MaximumMessageExpiryInterval = 0 // keep queued QoS 1 messages until delivered
	srv := mqtt.New(&mqtt.Options{
		Capabilities:           caps,
		Logger:                 newSlog(o.Logger.With().Str("component", "broker").Logger()),
		InlineClient:           false,
		SysTopicResendInterval: 0,
	})
	if o.Auth.PasswordFile != "" {
		ao := o.Auth
		ao.Logger = o.Logger.With().Str("component", "broker").Logger()
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
	tcp := listeners.NewNet("tcp", ln)
	if err := srv.AddListener(tcp); err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker: add listener: %w", err)
	}
	b := &Broker{srv: srv, ln: ln, addr: ln.Addr().String(), log: o.Logger}
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

// Close releases the listener of a broker that never ran (a failed start);
// Run closes it itself.
func (b *Broker) Close() error {
	if b.done.Swap(true) {
		return nil
	}
	return b.srv.Close()
}
