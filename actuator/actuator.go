package actuator

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// ErrNotConnected is returned by Publish while the session is down. The
// engine's ack timeout resends the command once it is back.
var ErrNotConnected = errors.New("actuator: MQTT not connected")

// Options configures an Actuator; the zero value connects to
// tcp://127.0.0.1:1883 as "chargeguard-cmd".
type Options struct {
	BrokerURL string
	ClientID  string
	Username  string
	Password  string
	KeepAlive time.Duration
	// OnConnect is called, on paho's goroutine, every time the session
	// (re)connects: what was published while it was down may be lost, so
	// the engine sends its pending closes again. It must not block.
	OnConnect  func()
	Logger     zerolog.Logger
	Registerer prometheus.Registerer
}

// Actuator is the command-publishing MQTT session.
type Actuator struct {
	o         Options
	client    paho.Client
	connected atomic.Bool
	log       zerolog.Logger
	published *prometheus.CounterVec
	up        prometheus.Gauge
}

// New builds the session; Run connects it.
func New(o Options) (*Actuator, error) {
	if o.BrokerURL == "" {
		o.BrokerURL = "tcp://127.0.0.1:1883"
	}
	if o.ClientID == "" {
		o.ClientID = "chargeguard-cmd"
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 10 * time.Second
	}
	a := &Actuator{
		o:   o,
		log: o.Logger.With().Str("component", "actuator").Logger(),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_actuator_publish_total",
			Help: "Command publishes handed to the broker, by result (ok, error, not_connected).",
		}, []string{"result"}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_actuator_mqtt_connected",
			Help: "1 while the command session is connected.",
		}),
	}
	for _, r := range []string{"ok", "error", "not_connected"} {
		a.published.WithLabelValues(r)
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(a.published); err != nil {
			return nil, fmt.Errorf("actuator: register metrics: %w", err)
		}
		if err := o.Registerer.Register(a.up); err != nil {
			return nil, fmt.Errorf("actuator: register metrics: %w", err)
		}
	}
	opts := paho.NewClientOptions().
		AddBroker(o.BrokerURL).
		SetClientID(o.ClientID).
		SetUsername(o.Username).
		SetPassword(o.Password).
		SetCleanSession(true).
		SetKeepAlive(o.KeepAlive).
		SetPingTimeout(5 * time.Second).
		SetConnectTimeout(5 * time.Second).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(500 * time.Millisecond).
		SetMaxReconnectInterval(2 * time.Second).
		SetWriteTimeout(5 * time.Second).
		SetOnConnectHandler(func(paho.Client) {
			a.connected.Store(true)
			a.up.Set(1)
			a.log.Info().Msg("command session connected")
			if o.OnConnect != nil {
				o.OnConnect()
			}
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			a.connected.Store(false)
			a.up.Set(0)
			a.log.Error().Err(err).Msg("command session lost; commands are resent by the engine once it is back")
		})
	a.client = paho.NewClient(opts)
	return a, nil
}

// Connected reports whether commands can be published now.
func (a *Actuator) Connected() bool { return a.connected.Load() }

// Run connects and keeps the session up until ctx is done.
func (a *Actuator) Run(ctx context.Context) error {
	a.client.Connect() // retries in the background
	<-ctx.Done()
	a.client.Disconnect(500)
	return nil
}

// Publish hands one command to the broker at QoS 1 without waiting for the
// broker's PUBACK, so the engine's goroutine never blocks on the network.
// The broker's answer is only logged and counted: the pile's ack is what
// the engine waits for.
func (a *Actuator) Publish(topic string, payload []byte) error {
	if !a.connected.Load() {
		a.published.WithLabelValues("not_connected").Inc()
		return ErrNotConnected
	}
	tok := a.client.Publish(topic, 1, false, payload)
	go func() {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			a.published.WithLabelValues("error").Inc()
			a.log.Warn().Err(tok.Error()).Str("topic", topic).Msg("broker did not confirm a command; the engine resends it if the pile does not ack")
			return
		}
		a.published.WithLabelValues("ok").Inc()
	}()
	return nil
}
