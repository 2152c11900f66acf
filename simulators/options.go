package simulators

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/chargeguard/chargeguard/telemetry"
)

// Options configures a Runner. The zero value is not runnable (it has no
// fleet); every other field has a safe default.
type Options struct {
	// Broker is the MQTT broker, tcp://host:port.
	Broker string
	// Root is the topic root; default telemetry.DefaultRoot.
	Root string
	// Fleet is the fleet to simulate.
	Fleet *Fleet
	// Seed makes the run reproducible: the same seed, fleet, start and
	// options give byte-identical messages (until a command arrives).
	Seed uint64
	// Speed is how many simulated seconds pass per wall-clock second;
	// default 1.
	Speed float64
	// Start is the model time the run starts at: it sets the season, the
	// time of day, the weather and the charging demand. Default: now.
	Start time.Time
	// TSStart is the pile clock (the ts the piles send) at the start.
	// Default: the wall clock when the run starts, so that at speed 1 the
	// piles' ts matches the backend's clock whatever the model time.
	TSStart time.Time
	// Interval is the reporting interval (default 10 s) and WarmInterval
	// the interval while a port is at the warning temperature or current
	// (default 1 s), both in simulated time.
	Interval     time.Duration
	WarmInterval time.Duration
	// Conns, when > 0, multiplexes the piles over that many MQTT
	// connections (for load). Default: one connection per pile, each with
	// the pile's death as its last will. A multiplexed connection has no
	// will (MQTT allows one per connection) and a fault that drops it
	// drops all its piles.
	Conns int
	// TelemetryQoS is the QoS of telemetry, 0 (default) or 1.
	TelemetryQoS byte
	// Faults to inject.
	Faults []Fault
	// Weather overrides; Seed is taken from the run's seed.
	Weather Weather
	// Duration, when > 0, ends the run after that much simulated time.
	Duration time.Duration
	// AtEnd, when set with Duration, is called (on a goroutine of its own)
	// once Duration of simulated time has passed, and the run goes on: the
	// piles stay online, reporting and obeying commands as real piles
	// would, until ctx is done.
	AtEnd func()
	// Logger; default zerolog.Nop().
	Logger zerolog.Logger
	// Summary, when set, receives a live summary line every SummaryEvery
	// (default 5 s).
	Summary      io.Writer
	SummaryEvery time.Duration
	// ClientPrefix prefixes MQTT client ids; default "pilesim".
	ClientPrefix string
	// Now is the wall clock; default time.Now.
	Now func() time.Time
	// Tick is how often the runner advances the simulation; default 20 ms.
	Tick time.Duration
}

func (o *Options) defaults() error {
	if o.Fleet == nil {
		return errors.New("options: no fleet")
	}
	if err := o.Fleet.Validate(); err != nil {
		return fmt.Errorf("options: fleet: %w", err)
	}
	if o.Root == "" {
		o.Root = telemetry.DefaultRoot
	}
	if o.Speed <= 0 {
		o.Speed = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Start.IsZero() {
		o.Start = o.Now()
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.WarmInterval <= 0 {
		o.WarmInterval = time.Second
	}
	if o.WarmInterval > o.Interval {
		o.WarmInterval = o.Interval
	}
	if o.TelemetryQoS > 1 {
		return fmt.Errorf("options: telemetry qos %d: want 0 or 1", o.TelemetryQoS)
	}
	if o.SummaryEvery <= 0 {
		o.SummaryEvery = 5 * time.Second
	}
	if o.ClientPrefix == "" {
		o.ClientPrefix = "pilesim"
	}
	if o.Tick <= 0 {
		o.Tick = 20 * time.Millisecond
	}
	keys := map[string]PileSpec{}
	for _, p := range o.Fleet.Piles() {
		keys[p.Key()] = p
	}
	for i := range o.Faults {
		f := &o.Faults[i]
		if err := f.Validate(); err != nil {
			return fmt.Errorf("options: faults[%d]: %w", i, err)
		}
		t, _ := ParseTarget(f.Target)
		spec, ok := keys[t.Key()]
		if !ok {
			return fmt.Errorf("options: faults[%d]: target: no pile %s in the fleet", i, t.Key())
		}
		if t.Port > spec.Ports {
			return fmt.Errorf("options: faults[%d]: target: pile %s has %d ports", i, t.Key(), spec.Ports)
		}
	}
	return nil
}

// newPiles builds the piles of a run whose pile clock starts at tsStart.
func newPiles(o *Options, tsStart time.Time) []*Pile {
	w := o.Weather
	w.Seed = o.Seed
	w.start = o.Start
	env := &pileEnv{
		start:    o.Start,
		tsOffset: tsStart.Sub(o.Start),
		interval: o.Interval,
		warm:     o.WarmInterval,
		weather:  &w,
		seed:     o.Seed,
		root:     o.Root,
	}
	var piles []*Pile
	for _, spec := range o.Fleet.Piles() {
		piles = append(piles, newPile(spec, env, o.Faults))
	}
	return piles
}

// Emitted is one message of an offline simulation.
type Emitted struct {
	Pile  PileSpec
	Topic string
	Outbound
}

// Simulate runs the fleet of o offline, without a broker and as fast as the
// machine allows, for d of simulated time, calling fn with every message in
// the order a single-threaded runner would send them (by model time, then
// by pile order). The pile clock starts at o.TSStart, or at o.Start when
// that is zero, so the output depends only on o. fn must not keep
// Outbound.Payload past its return if it modifies it.
func Simulate(o Options, d time.Duration, fn func(Emitted)) error {
	if err := o.defaults(); err != nil {
		return err
	}
	ts := o.TSStart
	if ts.IsZero() {
		ts = o.Start
	}
	piles := newPiles(&o, ts)
	end := o.Start.Add(d)
	// Step in slices of the reporting interval so messages interleave by
	// time across piles.
	for t := o.Start; !t.After(end); {
		var batch []Emitted
		for _, p := range piles {
			for _, ob := range p.Advance(t) {
				batch = append(batch, Emitted{Pile: p.Spec, Topic: topicFor(o.Root, p.Spec, ob), Outbound: ob})
			}
		}
		sortEmitted(batch)
		for _, e := range batch {
			fn(e)
		}
		if t.Equal(end) {
			break
		}
		t = t.Add(o.WarmInterval)
		if t.After(end) {
			t = end
		}
	}
	return nil
}

func topicFor(root string, spec PileSpec, ob Outbound) string {
	if ob.Topic != "" {
		return ob.Topic
	}
	if ob.Kind == telemetry.KindUnknown {
		return ""
	}
	return telemetry.Topic{Root: root, Site: spec.Site, Pile: spec.ID, Kind: ob.Kind}.String()
}
