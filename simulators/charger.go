package simulators

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/chargeguard/chargeguard/telemetry"
)

// Chemistry is an e-bike battery's chemistry; it shapes the charger curve.
type Chemistry string

const (
	LeadAcid Chemistry = "lead_acid"
	Lithium  Chemistry = "lithium"
)

// FullW is the power at or below which a charge is complete: the pile ends
// the session (smart piles stop a port whose charger has dropped to its
// float level).
const FullW = 15.0

// Session is one e-bike charge: a charger with a constant-current phase,
// whose power rises slowly as the battery voltage climbs, then an
// exponential taper (constant voltage) down to FullW.
//
// Power and Energy are closed-form, so the energy a pile counts can be
// checked against the integral of the curve.
type Session struct {
	Chem Chemistry
	// PeakW is the power at the end of the constant-current phase, W.
	PeakW float64
	// CC is the length of the constant-current phase.
	CC time.Duration
	// Taper is the time constant of the taper.
	Taper time.Duration
	// PF is the charger's power factor: current = W / (V * PF).
	PF float64
	// Unplug is when the owner takes the bike away, from the session's
	// start. It may come before the charge is full.
	Unplug time.Duration
	// Flat makes the charger draw PeakW for ever: a battery that never
	// fills, or a charger trickling into a full one (faults).
	Flat bool
}

// ccStart is the constant-current power at the start, as a fraction of
// PeakW.
func (s *Session) ccStart() float64 {
	if s.Chem == LeadAcid {
		return 0.88
	}
	return 0.92
}

// FullAt is when the charger's power falls to FullW.
func (s *Session) FullAt() time.Duration {
	if s.Flat {
		return math.MaxInt64
	}
	if s.PeakW <= FullW {
		return s.CC
	}
	return s.CC + time.Duration(float64(s.Taper)*math.Log(s.PeakW/FullW))
}

// Power is the charger's power el after the session started, W, or 0 once
// the charge is full.
func (s *Session) Power(el time.Duration) float64 {
	switch {
	case el < 0:
		return 0
	case s.Flat:
		return s.PeakW
	case el < s.CC:
		a := s.ccStart()
		return s.PeakW * (a + (1-a)*float64(el)/float64(s.CC))
	case el < s.FullAt():
		return s.PeakW * math.Exp(-float64(el-s.CC)/float64(s.Taper))
	default:
		return 0
	}
}

// Energy is the integral of Power from 0 to el, in Wh.
func (s *Session) Energy(el time.Duration) float64 {
	if el <= 0 {
		return 0
	}
	h := func(d time.Duration) float64 { return d.Hours() }
	if s.Flat {
		return s.PeakW * h(el)
	}
	a := s.ccStart()
	if el <= s.CC {
		t, T := h(el), h(s.CC)
		return s.PeakW * (a*t + (1-a)*t*t/(2*T))
	}
	e := s.PeakW * h(s.CC) * (1 + a) / 2
	end := min(el, s.FullAt())
	e += s.PeakW * h(s.Taper) * (1 - math.Exp(-float64(end-s.CC)/float64(s.Taper)))
	return e
}

// newSession draws a plausible e-bike charge lasting 2-8 h. Lead-acid
// packs (48-72 V) charge at 100-250 W with a long taper; lithium packs
// charge at 150-400 W with a short one.
func newSession(r *rand.Rand) *Session {
	s := &Session{}
	for try := 0; ; try++ {
		if r.Float64() < 0.55 {
			s.Chem = LeadAcid
			s.PeakW = 100 + 150*r.Float64()
			s.Taper = time.Duration((40 + 40*r.Float64()) * float64(time.Minute))
			s.PF = 0.9 + 0.05*r.Float64()
		} else {
			s.Chem = Lithium
			s.PeakW = 150 + 250*r.Float64()
			s.Taper = time.Duration((15 + 20*r.Float64()) * float64(time.Minute))
			s.PF = 0.93 + 0.05*r.Float64()
		}
		// Energy the battery takes: 0.25-1.4 kWh.
		e := 250 + 1150*r.Float64()
		a := s.ccStart()
		taperWh := s.PeakW * s.Taper.Hours() * (1 - FullW/s.PeakW)
		ccH := (e - taperWh) / (s.PeakW * (1 + a) / 2)
		s.CC = time.Duration(ccH * float64(time.Hour))
		full := s.FullAt()
		if s.CC >= 10*time.Minute && full >= 2*time.Hour && full <= 8*time.Hour {
			break
		}
		if try == 50 {
			// Practically unreachable; a middle-of-the-road charge.
			*s = Session{Chem: LeadAcid, PeakW: 180, CC: 3 * time.Hour, Taper: time.Hour, PF: 0.92}
			break
		}
	}
	full := s.FullAt()
	// Most owners leave the bike until after the charge is full; some take
	// it away early, but never in the first two hours.
	if r.Float64() < 0.2 {
		s.Unplug = 2*time.Hour + time.Duration(r.Float64()*float64(full-2*time.Hour))
	} else {
		s.Unplug = full + time.Duration(r.Float64()*float64(3*time.Hour))
	}
	return s
}

// arrivalRate is the rate at which an idle port gets a bike plugged in, per
// hour, at local hour h: residential sheds peak in the evening, open-air
// points during the day.
func arrivalRate(kind telemetry.SiteKind, h float64) float64 {
	if kind == telemetry.SiteOpenAir {
		switch {
		case h < 7:
			return 0.01
		case h < 11:
			return 0.25
		case h < 17:
			return 0.18
		case h < 21:
			return 0.1
		default:
			return 0.02
		}
	}
	switch {
	case h < 6:
		return 0.01
	case h < 9:
		return 0.04
	case h < 17:
		return 0.03
	case h < 18:
		return 0.12
	case h < 22:
		return 0.35
	default:
		return 0.08
	}
}

// occupancy is the share of ports charging at local hour h when a run
// starts, so that an evening run does not begin with an empty shed.
func occupancy(kind telemetry.SiteKind, h float64) float64 {
	if kind == telemetry.SiteOpenAir {
		switch {
		case h < 8:
			return 0.03
		case h < 18:
			return 0.35
		default:
			return 0.15
		}
	}
	switch {
	case h < 7:
		return 0.2
	case h < 17:
		return 0.1
	case h < 19:
		return 0.3
	default:
		return 0.5
	}
}

const maxArrivalRate = 0.35

// nextArrival draws the next plug-in at or after t by thinning a Poisson
// process of rate maxArrivalRate. It depends only on r and t, not on how
// often the pile samples.
func nextArrival(r *rand.Rand, kind telemetry.SiteKind, t time.Time) time.Time {
	for i := 0; i < 1000; i++ {
		gap := r.ExpFloat64() / maxArrivalRate
		t = t.Add(time.Duration(gap * float64(time.Hour)))
		lt := t.In(Hangzhou)
		h := float64(lt.Hour()) + float64(lt.Minute())/60
		if r.Float64()*maxArrivalRate < arrivalRate(kind, h) {
			return t
		}
	}
	return t
}
