package simulators

import (
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/telemetry"
)

// fakeBackend is a deliberately small rule engine for testing the scenario
// machinery end to end: it applies the default policy's closing rules to
// what the piles send (on their ts), tracks acks with resends, and closes
// the pile on close_failed and relay_welded. The real one is the alerting
// package's; this one only has to be right for the shipped scenarios.
type fakeBackend struct {
	t     *testing.T
	c     mqtt.Client
	root  string
	delay time.Duration // added before every command, to test "within"

	mu      sync.Mutex
	rated   map[string]float64
	fired   map[string]bool // pile/port/reason: one close per condition
	ports   map[string]*fakePort
	pending map[string]*fakeCmd
	timers  sync.WaitGroup
	stopped bool
}

type fakePort struct {
	over        int
	hist        []tempPoint
	lowSince    int64
	chargeSince int64
	ackedClosed bool
}

type fakeCmd struct {
	pile  string
	cmd   telemetry.Command
	sends int
	acked bool
}

func newFakeBackend(t *testing.T, broker, root string, delay time.Duration) *fakeBackend {
	b := &fakeBackend{t: t, root: root, delay: delay, rated: map[string]float64{}, fired: map[string]bool{},
		ports: map[string]*fakePort{}, pending: map[string]*fakeCmd{}}
	b.c = mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("fake-backend-" + root).SetOrderMatters(true))
	tok := b.c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	tok = b.c.Subscribe(root+"/#", 1, func(_ mqtt.Client, m mqtt.Message) { b.on(m) })
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	t.Cleanup(func() {
		b.mu.Lock()
		b.stopped = true
		b.mu.Unlock()
		b.timers.Wait()
		b.c.Disconnect(100)
	})
	return b
}

func (b *fakeBackend) port(pile string, n int) *fakePort {
	k := pile + "/" + string(rune('0'+n))
	if b.ports[k] == nil {
		b.ports[k] = &fakePort{}
	}
	return b.ports[k]
}

func (b *fakeBackend) on(m mqtt.Message) {
	msg, err := telemetry.DecodeTopic(b.root, m.Topic(), m.Payload(), time.Now())
	if err != nil && (msg.Invalid == nil) {
		return
	}
	if msg.Telemetry == nil && msg.Invalid != nil {
		return
	}
	pile := msg.Topic.Site + "/" + msg.Topic.Pile
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case msg.Status != nil && msg.Status.Online:
		b.rated[pile] = msg.Status.RatedA
	case msg.Event != nil && msg.Event.Kind == telemetry.EventSmoke:
		b.closeLocked(pile, 0, "smoke")
	case msg.Ack != nil:
		if pc := b.pending[msg.Ack.ID]; pc != nil {
			pc.acked = true
			if msg.Ack.OK && msg.Ack.State == telemetry.StateClosed && msg.Ack.Port > 0 {
				b.port(pile, msg.Ack.Port).ackedClosed = true
			}
		}
	case msg.Telemetry != nil:
		b.telemetry(pile, msg.Telemetry)
	}
}

func (b *fakeBackend) telemetry(pile string, tel *telemetry.Telemetry) {
	rated := b.rated[pile]
	if tel.LeakMA != nil && *tel.LeakMA >= LeakMA {
		b.closeLocked(pile, 0, "leakage")
	}
	if tel.Smoke != nil && *tel.Smoke {
		b.closeLocked(pile, 0, "smoke")
	}
	for _, s := range tel.Ports {
		p := b.port(pile, s.N)
		charging := s.State == telemetry.StateCharging
		a, w := val(s.A), val(s.W)
		if p.ackedClosed {
			if s.State == telemetry.StateClosed && (a > WeldedA || w > WeldedW) {
				b.closeLocked(pile, 0, "relay_welded")
			}
			p.ackedClosed = false
		}
		switch {
		case charging && (s.TempC == nil || *s.TempC < SensorMinC || *s.TempC > SensorMaxC):
			b.closeLocked(pile, s.N, "sensor_fault")
		case s.TempC != nil && *s.TempC >= OverheatC:
			b.closeLocked(pile, s.N, "overheat")
		}
		if a >= ShortX*rated {
			b.closeLocked(pile, s.N, "short_circuit")
		}
		if a >= OvercurrentX*rated {
			if p.over++; p.over >= OvercurrentRuns {
				b.closeLocked(pile, s.N, "overcurrent")
			}
		} else {
			p.over = 0
		}
		if charging && s.TempC != nil {
			p.hist = append(p.hist, tempPoint{time.UnixMilli(tel.TS), *s.TempC})
			for len(p.hist) > 2 && time.UnixMilli(tel.TS).Sub(p.hist[1].t) >= RateSustain {
				p.hist = p.hist[1:]
			}
			if span := time.UnixMilli(tel.TS).Sub(p.hist[0].t); span >= RateSustain && (*s.TempC-p.hist[0].temp)/span.Minutes() >= RateCPerMin {
				b.closeLocked(pile, s.N, "overheat_rate")
			}
		} else {
			p.hist = nil
		}
		if charging {
			if p.chargeSince == 0 {
				p.chargeSince = tel.TS
			}
			if time.Duration(tel.TS-p.chargeSince)*time.Millisecond > MaxSession {
				b.closeLocked(pile, s.N, "max_duration")
			}
			if w <= FullW {
				if p.lowSince == 0 {
					p.lowSince = tel.TS
				}
				if time.Duration(tel.TS-p.lowSince)*time.Millisecond >= FullFor {
					b.closeLocked(pile, s.N, "full")
				}
			} else {
				p.lowSince = 0
			}
		} else {
			p.chargeSince, p.lowSince = 0, 0
		}
	}
}

// closeLocked sends one close per pile, port and reason, and resends it
// with the same id until acked, then closes the whole pile.
func (b *fakeBackend) closeLocked(pile string, port int, reason string) {
	k := pile + "/" + string(rune('0'+port)) + "/" + reason
	if b.fired[k] || b.stopped {
		return
	}
	b.fired[k] = true
	pc := &fakeCmd{pile: pile, cmd: telemetry.Command{ID: uuid.NewString(), Port: port, Action: telemetry.ActionClose, Reason: reason}}
	b.pending[pc.cmd.ID] = pc
	b.timers.Add(1)
	go func() {
		defer b.timers.Done()
		time.Sleep(b.delay)
		for {
			b.mu.Lock()
			if pc.acked || b.stopped {
				b.mu.Unlock()
				return
			}
			if pc.sends > CloseRetries {
				if port != 0 {
					b.closeLocked(pile, 0, "close_failed")
				}
				b.mu.Unlock()
				return
			}
			pc.sends++
			pc.cmd.TS = time.Now().UnixMilli()
			payload, _ := telemetry.Encode(&pc.cmd)
			b.mu.Unlock()
			b.c.Publish(b.root+"/"+pile+"/cmd", 1, false, payload)
			time.Sleep(AckTimeout)
		}
	}()
}
