package simulators

import (
	"math"
	"time"

	"github.com/chargeguard/chargeguard/telemetry"
)

// Condition names a row of the default safety policy (shared protocol.md),
// by the alert name the backend uses for it.
type Condition string

const (
	CondWarning      Condition = "warning"       // temp_c >= 55
	CondOverheat     Condition = "overheat"      // temp_c >= 70
	CondOverheatRate Condition = "overheat_rate" // >= 10 °C/min over >= 30 s while charging
	CondOvercurrent  Condition = "overcurrent"   // a >= 1.1 x rated in 3 consecutive samples
	CondShort        Condition = "short_circuit" // a >= 2 x rated in one sample
	CondLeakage      Condition = "leakage"       // leak_ma >= 30
	CondSmoke        Condition = "smoke"         // smoke true or a smoke event
	CondSensorFault  Condition = "sensor_fault"  // charging port temp_c missing or outside -40..150
	CondPileOffline  Condition = "pile_offline"  // connection lost while a port was charging
	CondHotContact   Condition = "hot_contact"   // temp_c - ambient_c >= 30 while charging
	CondCloseFailed  Condition = "close_failed"  // a close id delivered 4 times without an ack reaching the broker
	CondRelayWelded  Condition = "relay_welded"  // acked closed, still drawing in the next telemetry
	CondMaxDuration  Condition = "max_duration"  // charging for more than 8 h
	CondFull         Condition = "full"          // charging at <= 15 W for 10 min
)

// Conditions lists every Condition.
var Conditions = []Condition{
	CondWarning, CondOverheat, CondOverheatRate, CondOvercurrent, CondShort, CondLeakage,
	CondSmoke, CondSensorFault, CondPileOffline, CondHotContact, CondCloseFailed,
	CondRelayWelded, CondMaxDuration, CondFull,
}

// Default policy thresholds (shared protocol.md), used by the oracle that
// tells a scenario when the backend first had the evidence to act.
const (
	WarnTempC       = 55.0
	OverheatC       = 70.0
	RateCPerMin     = 10.0
	RateSustain     = 30 * time.Second
	OvercurrentX    = 1.1
	OvercurrentRuns = 3
	ShortX          = 2.0
	LeakMA          = 30.0
	SensorMinC      = -40.0
	SensorMaxC      = 150.0
	HotContactK     = 30.0
	AckTimeout      = 3 * time.Second
	CloseRetries    = 3
	MaxSession      = 8 * time.Hour
	FullFor         = 10 * time.Minute
	WeldedA         = 0.1
	WeldedW         = 5.0
)

// Met records the first time a policy condition became true in what a pile
// actually sent: the moment the backend had all the evidence it needs to
// act. Scenario expectations measure the backend's reaction from here.
type Met struct {
	Pile string // "site/pile"
	Port int    // 0 for the whole pile
	Cond Condition
	// Model is the simulated time of the message that completed the
	// evidence; Wall is when it was handed to the broker (set by the
	// runner; zero offline).
	Model time.Time
	Wall  time.Time
	// After is added to Wall: evidence that completes only when a backend
	// timer runs out (close_failed's last ack timeout).
	After time.Duration
}

// portOracle is the per-port memory the conditions that span samples need.
type portOracle struct {
	overRuns    int
	hist        []tempPoint // charging samples of the last minutes
	lowSince    time.Time   // first sample of the current run at <= FullW
	chargeSince time.Time   // first sample of the current charging run
	ackedClosed bool        // an ok "closed" ack went out since the last telemetry
}

type tempPoint struct {
	t    time.Time
	temp float64
}

// oracle evaluates the default policy on the messages a pile sends.
type oracle struct {
	pile  string
	rated float64
	ports []portOracle
	met   map[metKey]bool
	out   []Met
}

type metKey struct {
	port int
	cond Condition
}

func newOracle(pile string, ports int, rated float64) *oracle {
	return &oracle{pile: pile, rated: rated, ports: make([]portOracle, ports+1), met: map[metKey]bool{}}
}

func (o *oracle) hit(port int, c Condition, t time.Time, after time.Duration) {
	k := metKey{port, c}
	if o.met[k] {
		return
	}
	o.met[k] = true
	o.out = append(o.out, Met{Pile: o.pile, Port: port, Cond: c, Model: t, After: after})
}

// take returns and forgets the conditions met since the last call.
func (o *oracle) take() []Met {
	m := o.out
	o.out = nil
	return m
}

// telemetry observes one telemetry message as sent, at model time t.
func (o *oracle) telemetry(tel *telemetry.Telemetry, t time.Time) {
	if tel.LeakMA != nil && *tel.LeakMA >= LeakMA {
		o.hit(0, CondLeakage, t, 0)
	}
	if tel.Smoke != nil && *tel.Smoke {
		o.hit(0, CondSmoke, t, 0)
	}
	for _, s := range tel.Ports {
		if s.N < 1 || s.N >= len(o.ports) {
			continue
		}
		po := &o.ports[s.N]
		charging := s.State == telemetry.StateCharging
		a, w := val(s.A), val(s.W)
		if s.TempC != nil {
			tc := *s.TempC
			if tc >= WarnTempC {
				o.hit(s.N, CondWarning, t, 0)
			}
			if tc >= OverheatC {
				o.hit(s.N, CondOverheat, t, 0)
			}
			if charging && (tc < SensorMinC || tc > SensorMaxC) {
				o.hit(s.N, CondSensorFault, t, 0)
			}
			if charging && tel.AmbientC != nil && tc-*tel.AmbientC >= HotContactK {
				o.hit(s.N, CondHotContact, t, 0)
			}
		} else if charging {
			o.hit(s.N, CondSensorFault, t, 0)
		}
		// Rate of rise over the samples of the last RateSustain or more.
		if charging && s.TempC != nil {
			po.hist = append(po.hist, tempPoint{t, *s.TempC})
			for len(po.hist) > 2 && t.Sub(po.hist[1].t) >= RateSustain {
				po.hist = po.hist[1:]
			}
			first := po.hist[0]
			if span := t.Sub(first.t); span >= RateSustain {
				rising := true
				for i := 1; i < len(po.hist); i++ {
					if po.hist[i].temp < po.hist[i-1].temp {
						rising = false
					}
				}
				rate := (*s.TempC - first.temp) / span.Minutes()
				if rising && rate >= RateCPerMin {
					o.hit(s.N, CondOverheatRate, t, 0)
				}
			}
		} else {
			po.hist = po.hist[:0]
		}
		if a >= OvercurrentX*o.rated {
			po.overRuns++
			if po.overRuns >= OvercurrentRuns {
				o.hit(s.N, CondOvercurrent, t, 0)
			}
		} else {
			po.overRuns = 0
		}
		if a >= ShortX*o.rated {
			o.hit(s.N, CondShort, t, 0)
		}
		if charging {
			if po.chargeSince.IsZero() {
				po.chargeSince = t
			}
			if t.Sub(po.chargeSince) > MaxSession {
				o.hit(s.N, CondMaxDuration, t, 0)
			}
			if s.W != nil && w <= FullW {
				if po.lowSince.IsZero() {
					po.lowSince = t
				}
				if t.Sub(po.lowSince) >= FullFor {
					o.hit(s.N, CondFull, t, 0)
				}
			} else {
				po.lowSince = time.Time{}
			}
		} else {
			po.chargeSince, po.lowSince = time.Time{}, time.Time{}
		}
		if po.ackedClosed {
			if s.State == telemetry.StateClosed && (a > WeldedA || w > WeldedW) {
				o.hit(s.N, CondRelayWelded, t, 0)
			}
			po.ackedClosed = false
		}
	}
}

// event observes one event as sent.
func (o *oracle) event(ev *telemetry.Event, t time.Time) {
	if ev.Kind == telemetry.EventSmoke {
		o.hit(0, CondSmoke, t, 0)
	}
}

// ackedClosed notes an ok "closed" ack for port (0: every port).
func (o *oracle) ackedClosed(port int) {
	for i := range o.ports {
		if i != 0 && (port == 0 || port == i) {
			o.ports[i].ackedClosed = true
		}
	}
}

func val(p *float64) float64 {
	if p == nil || math.IsNaN(*p) {
		return 0
	}
	return *p
}
