package simulators

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/chargeguard/chargeguard/telemetry"
)

// LoadOptions configures Load. The zero value (plus a Broker) sends 1,000
// msgs/s from 100 ten-port piles for 10 s.
type LoadOptions struct {
	Broker string
	Root   string // default telemetry.DefaultRoot
	// Piles is the number of synthetic piles (GenerateFleet), Ports their
	// size.
	Piles int
	Ports int
	// Rate is the target total of telemetry messages per second.
	Rate float64
	// Duration is how long to send.
	Duration time.Duration
	// Messages, when above 0, stops the run once that many telemetry
	// messages are sent in all (spread over the connections by their share
	// of the piles), even before Duration. With a Rate beyond what the
	// broker takes, it sends a fixed load as fast as possible: what a
	// throughput run (scripts/sidebyside.sh) wants.
	Messages int64
	// Conns is the number of MQTT connections the piles share; default one
	// per pile.
	Conns int
	// QoS of telemetry, 0 or 1.
	QoS          byte
	Seed         uint64
	Logger       zerolog.Logger
	ClientPrefix string // default "pilesim-load"
}

// LoadResult is what a load run did. It marshals as the JSON summary line
// pilesim load prints.
type LoadResult struct {
	Piles   int     `json:"piles"`
	Ports   int     `json:"ports"`
	Conns   int     `json:"conns"`
	QoS     byte    `json:"qos"`
	Target  float64 `json:"target_msgs_per_sec"`
	Sent    int64   `json:"sent"`
	Bytes   int64   `json:"bytes"`
	Errors  int64   `json:"publish_errors"`
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"msgs_per_sec"`
	// Completed counts telemetry publishes the client confirmed (written
	// for QoS 0, PUBACKed for QoS 1); Errors counts every failed publish,
	// births and deaths included.
	Completed int64 `json:"completed"`
}

// Load drives a broker with telemetry from many synthetic piles at a target
// message rate, each pile with unique, increasing ts and seq, and reports
// what it sent and the rate it achieved. Every pile publishes its birth
// first and its death at the end.
func Load(ctx context.Context, o LoadOptions) (LoadResult, error) {
	if o.Broker == "" {
		return LoadResult{}, errors.New("load: no broker")
	}
	if o.Root == "" {
		o.Root = telemetry.DefaultRoot
	}
	if o.Piles <= 0 {
		o.Piles = 100
	}
	if o.Ports <= 0 || o.Ports > telemetry.MaxPort {
		o.Ports = 10
	}
	if o.Rate <= 0 {
		o.Rate = 1000
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Conns <= 0 || o.Conns > o.Piles {
		o.Conns = o.Piles
	}
	if o.QoS > 1 {
		return LoadResult{}, fmt.Errorf("load: qos %d: want 0 or 1", o.QoS)
	}
	if o.ClientPrefix == "" {
		o.ClientPrefix = "pilesim-load"
	}
	specs := GenerateFleet(o.Piles, o.Ports).Piles()
	workers := make([]*loadConn, o.Conns)
	for i := range workers {
		workers[i] = &loadConn{o: &o, id: fmt.Sprintf("%s-%d", o.ClientPrefix, i)}
	}
	for i, s := range specs {
		w := workers[i%o.Conns]
		w.piles = append(w.piles, newLoadPile(s, o.Root, o.Seed))
	}
	res := LoadResult{Piles: o.Piles, Ports: o.Ports, Conns: o.Conns, QoS: o.QoS, Target: o.Rate}

	// Connect everything before the clock starts.
	var wg sync.WaitGroup
	errs := make([]error, len(workers))
	sem := make(chan struct{}, 32)
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = w.connect(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, w := range workers {
			w.close()
		}
		return res, fmt.Errorf("load: %w", err)
	}
	o.Logger.Info().Int("piles", o.Piles).Int("conns", o.Conns).Float64("rate", o.Rate).Dur("duration", o.Duration).Msg("load: connected")

	limits := shares(o.Messages, workers, o.Piles)
	start := time.Now()
	runCtx, cancel := context.WithDeadline(ctx, start.Add(o.Duration))
	defer cancel()
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(runCtx, start, o.Rate*float64(len(w.piles))/float64(o.Piles), limits[i])
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, w := range workers {
		w.close()
		res.Sent += w.sent.Load()
		res.Bytes += w.bytes.Load()
		res.Errors += w.errs.Load()
		res.Completed += w.done.Load()
	}
	res.Seconds = math.Round(elapsed.Seconds()*1000) / 1000
	res.Rate = math.Round(float64(res.Sent)/elapsed.Seconds()*10) / 10
	return res, nil
}

type loadPile struct {
	spec   PileSpec
	topic  string
	status string
	tel    telemetry.Telemetry
	lastTS int64
}

func newLoadPile(s PileSpec, root string, seed uint64) *loadPile {
	p := &loadPile{spec: s,
		topic:  telemetry.Topic{Root: root, Site: s.Site, Pile: s.ID, Kind: telemetry.KindTelemetry}.String(),
		status: telemetry.Topic{Root: root, Site: s.Site, Pile: s.ID, Kind: telemetry.KindStatus}.String(),
	}
	// Plausible, healthy readings: a third of the ports charging.
	h := hash64(s.Key()) ^ seed
	p.tel.AmbientC, p.tel.LeakMA, p.tel.Smoke = telemetry.F(24.5), telemetry.F(1.5), telemetry.B(false)
	for n := 1; n <= s.Ports; n++ {
		ps := telemetry.PortSample{N: n, State: telemetry.StateIdle, V: telemetry.F(221.3), A: telemetry.F(0), W: telemetry.F(0), WH: telemetry.F(0), TempC: telemetry.F(25.1)}
		if (h>>uint(n%64))%3 == 0 {
			ps.State, ps.A, ps.W, ps.WH, ps.TempC = telemetry.StateCharging, telemetry.F(1.21), telemetry.F(252.4), telemetry.F(310.2), telemetry.F(28.7)
		}
		p.tel.Ports = append(p.tel.Ports, ps)
	}
	return p
}

type loadConn struct {
	o     *LoadOptions
	id    string
	piles []*loadPile
	c     mqtt.Client

	sent, bytes, errs, done atomic.Int64
	tokens                  chan loadToken
	reaper                  sync.WaitGroup
}

type loadToken struct {
	mqtt.Token
	telemetry bool // false for births and deaths, which are not counted
}

func (w *loadConn) connect(ctx context.Context) error {
	opts := mqtt.NewClientOptions().AddBroker(w.o.Broker).SetClientID(w.id).SetCleanSession(true).
		SetAutoReconnect(false).SetOrderMatters(false).SetConnectTimeout(10 * time.Second).SetWriteTimeout(10 * time.Second)
	if len(w.piles) == 1 {
		opts.SetBinaryWill(w.piles[0].status, Death(), 1, true)
	}
	w.c = mqtt.NewClient(opts)
	if err := waitToken(ctx, w.c.Connect(), 15*time.Second); err != nil {
		return fmt.Errorf("connect %s: %w", w.id, err)
	}
	w.tokens = make(chan loadToken, 8192)
	w.reaper.Add(1)
	go func() {
		defer w.reaper.Done()
		for t := range w.tokens {
			ok := t.WaitTimeout(10*time.Second) && t.Error() == nil
			switch {
			case !ok:
				w.errs.Add(1)
			case t.telemetry:
				w.done.Add(1)
			}
		}
	}()
	for _, p := range w.piles {
		b, _ := telemetry.Encode(&telemetry.Status{TS: time.Now().UnixMilli(), Online: true, Ports: p.spec.Ports, RatedA: p.spec.RatedA, FW: p.spec.FW, Kind: p.spec.Kind})
		w.tokens <- loadToken{Token: w.c.Publish(p.status, 1, true, b)}
	}
	return nil
}

// shares splits total messages over the connections by their share of the
// piles; the parts add up to total exactly. All zero when total is 0 (no
// limit).
func shares(total int64, workers []*loadConn, piles int) []int64 {
	out := make([]int64, len(workers))
	if total <= 0 {
		return out
	}
	var sum int64
	for i, w := range workers {
		out[i] = total * int64(len(w.piles)) / int64(piles)
		sum += out[i]
	}
	for i := 0; sum < total; i = (i + 1) % len(out) {
		out[i]++
		sum++
	}
	return out
}

// run publishes at rate msgs/s, round-robin over the connection's piles,
// until ctx is done or, when limit is above 0, limit messages are sent.
func (w *loadConn) run(ctx context.Context, start time.Time, rate float64, limit int64) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	var sent int64
	next := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due := int64(rate*time.Since(start).Seconds()) - sent
		if limit > 0 {
			if sent >= limit {
				return
			}
			due = min(due, limit-sent)
		}
		for ; due > 0 && ctx.Err() == nil; due-- {
			p := w.piles[next]
			next = (next + 1) % len(w.piles)
			now := time.Now().UnixMilli()
			p.lastTS = max(p.lastTS+1, now)
			p.tel.TS = p.lastTS
			p.tel.Seq++
			b, err := telemetry.Encode(&p.tel)
			if err != nil {
				w.errs.Add(1)
				continue
			}
			tok := w.c.Publish(p.topic, w.o.QoS, false, b)
			sent++
			w.sent.Add(1)
			w.bytes.Add(int64(len(b)))
			w.tokens <- loadToken{Token: tok, telemetry: true}
		}
	}
}

func (w *loadConn) close() {
	if w.tokens == nil {
		return // never connected
	}
	if w.c.IsConnected() {
		for _, p := range w.piles {
			w.tokens <- loadToken{Token: w.c.Publish(p.status, 1, true, Death())}
		}
	}
	close(w.tokens)
	w.reaper.Wait()
	w.c.Disconnect(250)
}
