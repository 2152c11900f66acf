package simulators

import (
	"math"
	"time"

	"github.com/chargeguard/chargeguard/telemetry"
)

// Hangzhou is the time zone of the Changhe fleet (UTC+8, no daylight
// saving). A fixed zone keeps the simulator free of a tzdata dependency.
var Hangzhou = time.FixedZone("CST", 8*3600)

// hangzhouNormals are rounded monthly means of the daily minimum and maximum
// air temperature in Hangzhou, January first.
var hangzhouNormals = [12][2]float64{
	{2, 8}, {4, 11}, {8, 15}, {13, 22}, {18, 27}, {22, 29},
	{26, 34}, {25, 33}, {21, 29}, {15, 24}, {9, 18}, {3, 11},
}

// Weather is the outdoor weather the fleet lives in. The zero value follows
// Hangzhou's climate with a day-to-day anomaly derived from Seed; the
// overrides pin a scenario to a given day (a 38 °C summer afternoon, a 2 °C
// winter night, a rain shower).
type Weather struct {
	// MinC and MaxC, when set, replace every day's minimum and maximum
	// outdoor temperature.
	MinC *float64 `yaml:"min_c,omitempty"`
	MaxC *float64 `yaml:"max_c,omitempty"`
	// Sun, when set, is the sunshine factor 0 (overcast) .. 1 (clear sky)
	// for every day; by default it varies from day to day.
	Sun *float64 `yaml:"sun,omitempty"`
	// Rain lists periods of rain, as offsets from the start of the run.
	// Rain hides the sun and raises the baseline leakage of open-air piles.
	Rain []Window `yaml:"rain,omitempty"`
	// Seed varies the day-to-day anomaly; the fleet runner sets it from
	// the run's seed.
	Seed uint64 `yaml:"-"`
	// start is the model time the Rain offsets are relative to.
	start time.Time
}

// Window is a period [From, From+For).
type Window struct {
	From Duration `yaml:"from"`
	For  Duration `yaml:"for"`
}

// Solar gain on an enclosure in full summer sun at noon, kelvin. Open-air
// enclosures are metal boxes in the sun; a shed's roof shades its piles.
const (
	solarGainOpenAir     = 10.0
	solarGainResidential = 1.5
	// enclosureSelfHeat is the warming of an enclosure by its own
	// electronics and chargers, kelvin.
	enclosureSelfHeat = 1.0
)

// dayHash is a deterministic pseudo-random number in [0,1) per day and salt.
func dayHash(seed uint64, day int64, salt uint64) float64 {
	x := seed ^ uint64(day)*0x9E3779B97F4A7C15 ^ salt*0xBF58476D1CE4E5B9
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	x *= 0x94D049BB133111EB
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

// localDay numbers the local (UTC+8) calendar day of t.
func localDay(t time.Time) int64 {
	s := t.Unix() + 8*3600
	if s < 0 {
		return (s+1)/86400 - 1
	}
	return s / 86400
}

// dayMinMax returns the minimum and maximum outdoor temperature of the
// local calendar day containing t.
func (w *Weather) dayMinMax(t time.Time) (lo, hi float64) {
	lt := t.In(Hangzhou)
	// Interpolate the monthly normals at the day of the month, treating
	// each normal as the value at mid-month.
	m := int(lt.Month()) - 1
	frac := (float64(lt.Day()) - 15) / 30
	n := m + 1
	if frac < 0 {
		n = m - 1
		frac = -frac
	}
	n = (n + 12) % 12
	lo = hangzhouNormals[m][0]*(1-frac) + hangzhouNormals[n][0]*frac
	hi = hangzhouNormals[m][1]*(1-frac) + hangzhouNormals[n][1]*frac
	day := localDay(t)
	anomaly := (dayHash(w.Seed, day, 1) - 0.5) * 6
	lo += anomaly
	hi += anomaly + (dayHash(w.Seed, day, 2)-0.5)*2
	if w.MinC != nil {
		lo = *w.MinC
	}
	if w.MaxC != nil {
		hi = *w.MaxC
	}
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// Outdoor returns the outdoor air temperature at t: the day's minimum at
// 05:30, its maximum at 14:30, cosine-shaped in between.
func (w *Weather) Outdoor(t time.Time) float64 {
	lt := t.In(Hangzhou)
	h := float64(lt.Hour()) + float64(lt.Minute())/60 + float64(lt.Second())/3600
	switch {
	case h < 5.5:
		// Falling from yesterday's maximum to today's minimum.
		_, yhi := w.dayMinMax(t.Add(-24 * time.Hour))
		lo, _ := w.dayMinMax(t)
		x := (h + 24 - 14.5) / 15
		return lo + (yhi-lo)*(1+math.Cos(math.Pi*x))/2
	case h < 14.5:
		lo, hi := w.dayMinMax(t)
		x := (h - 5.5) / 9
		return lo + (hi-lo)*(1-math.Cos(math.Pi*x))/2
	default:
		_, hi := w.dayMinMax(t)
		tlo, _ := w.dayMinMax(t.Add(24 * time.Hour))
		x := (h - 14.5) / 15
		return tlo + (hi-tlo)*(1+math.Cos(math.Pi*x))/2
	}
}

// Raining reports whether it rains at t.
func (w *Weather) Raining(t time.Time) bool {
	for _, r := range w.Rain {
		from := w.start.Add(time.Duration(r.From))
		if !t.Before(from) && t.Before(from.Add(time.Duration(r.For))) {
			return true
		}
	}
	return false
}

// cloud is how much of the sun rain clouds hide at t, 0..1, easing in
// over the half hour before a shower and out over the half hour after, so
// enclosures do not jump in temperature when the sun comes back.
func (w *Weather) cloud(t time.Time) float64 {
	const edge = 30 * time.Minute
	c := 0.0
	for _, r := range w.Rain {
		from := w.start.Add(time.Duration(r.From))
		to := from.Add(time.Duration(r.For))
		switch {
		case !t.Before(from) && t.Before(to):
			return 1
		case t.Before(from) && from.Sub(t) < edge:
			c = math.Max(c, 1-float64(from.Sub(t))/float64(edge))
		case !t.Before(to) && t.Sub(to) < edge:
			c = math.Max(c, 1-float64(t.Sub(to))/float64(edge))
		}
	}
	return c
}

// sunFactor is the sun's heating on a horizontal-ish enclosure, 0..1: zero
// at night, peaking after solar noon, stronger in summer. It lags the sun
// by half an hour for the enclosure's thermal mass.
func (w *Weather) sunFactor(t time.Time) float64 {
	clear := 1 - w.cloud(t)
	if clear <= 0 {
		return 0
	}
	lt := t.Add(-30 * time.Minute).In(Hangzhou)
	doy := float64(lt.YearDay())
	// Seasonal position: +1 at the June solstice, -1 at the December one.
	season := math.Cos(2 * math.Pi * (doy - 172) / 365)
	rise := 6.0 - 1.0*season // 05:00 in June, 07:00 in December (roughly)
	set := 18.0 + 1.0*season
	h := float64(lt.Hour()) + float64(lt.Minute())/60
	if h <= rise || h >= set {
		return 0
	}
	elev := math.Sin(math.Pi * (h - rise) / (set - rise))
	peak := 0.78 + 0.22*season // sin of the noon elevation, ~0.56 in winter
	sun := 0.35 + 0.65*dayHash(w.Seed, localDay(lt), 3)
	if w.Sun != nil {
		sun = math.Max(0, math.Min(1, *w.Sun))
	}
	return elev * peak * sun * clear
}

// Enclosure returns the air temperature inside a pile's enclosure at t.
func (w *Weather) Enclosure(t time.Time, kind telemetry.SiteKind) float64 {
	gain := solarGainResidential
	if kind == telemetry.SiteOpenAir {
		gain = solarGainOpenAir
	}
	return w.Outdoor(t) + enclosureSelfHeat + gain*w.sunFactor(t)
}
