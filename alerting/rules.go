package alerting

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/chargeguard/chargeguard/telemetry"
)

// Thresholds are the numbers of the safety policy that apply to one pile,
// after the per-kind and per-site overrides have been applied (Resolve).
// DefaultRules holds the protocol's defaults.
type Thresholds struct {
	// WarnC raises the temp_warning alert (no close).
	WarnC float64 `yaml:"warn_c"`
	// OverheatC closes the port and raises overheat.
	OverheatC float64 `yaml:"overheat_c"`
	// TempHysteresisC is how far below a temperature threshold a reading
	// must fall before the condition counts as cleared (warn clears below
	// WarnC-TempHysteresisC), so that a reading wobbling around a threshold
	// gives one alert, not a storm. It applies to hot_contact too.
	TempHysteresisC float64 `yaml:"temp_hysteresis_c"`

	// RiseCPerMin is the rate of rise that closes the port (overheat_rate)
	// when sustained over RiseWindow of samples while charging.
	RiseCPerMin float64 `yaml:"rise_c_per_min"`
	// RiseWindow is how long a span of samples the rate is measured over.
	RiseWindow time.Duration `yaml:"rise_window"`
	// RiseMinSamples is the fewest samples the rate is computed from.
	RiseMinSamples int `yaml:"rise_min_samples"`

	// OvercurrentFactor × rated current in OvercurrentSamples consecutive
	// samples closes the port (overcurrent).
	OvercurrentFactor  float64 `yaml:"overcurrent_factor"`
	OvercurrentSamples int     `yaml:"overcurrent_samples"`
	// ShortCircuitFactor × rated current in one sample closes the port at
	// once (short_circuit).
	ShortCircuitFactor float64 `yaml:"short_circuit_factor"`
	// DefaultRatedA is the rated current assumed for a pile whose birth
	// message has not been seen (or says 0). Zero disables the current rules
	// for such piles.
	DefaultRatedA float64 `yaml:"default_rated_a"`
	// MaxRatedA caps the rated current a pile's birth may announce: a
	// birth above it (rated_a in mA by mistake, say) would switch the
	// current rules off, so the rules use the cap and pile_config says so.
	MaxRatedA float64 `yaml:"max_rated_a"`

	// LeakMA closes every port (leakage); the condition clears below
	// LeakMA-LeakHysteresisMA.
	LeakMA           float64 `yaml:"leak_ma"`
	LeakHysteresisMA float64 `yaml:"leak_hysteresis_ma"`

	// SensorMinC and SensorMaxC bound a plausible temp_c; a charging port
	// outside them (or missing temp_c or a) is closed as sensor_fault.
	SensorMinC float64 `yaml:"sensor_min_c"`
	SensorMaxC float64 `yaml:"sensor_max_c"`

	// ReportInterval is the pile's normal telemetry interval; no telemetry
	// for OfflineIntervals × ReportInterval while a port was charging is
	// pile_offline.
	ReportInterval   time.Duration `yaml:"report_interval"`
	OfflineIntervals int           `yaml:"offline_intervals"`

	// MaxClockSkew is how far a pile's ts may be from our receive time
	// while its clock is trusted for the timed rules (contract v1.1: 5
	// minutes). A simulator that runs faster than real time is a pile
	// whose clock runs in the wrong unit: raise it only for such test runs.
	MaxClockSkew time.Duration `yaml:"max_clock_skew"`

	// HotContactC above ambient while charging raises hot_contact.
	HotContactC float64 `yaml:"hot_contact_c"`

	// AckTimeout is how long a command waits for its ack before it is
	// resent with the same id; after MaxResends resends without an ack a
	// close is close_failed and the whole pile is closed.
	AckTimeout time.Duration `yaml:"ack_timeout"`
	MaxResends int           `yaml:"max_resends"`

	// A port acked closed that still draws more than WeldedA or WeldedW is
	// relay_welded.
	WeldedA float64 `yaml:"welded_a"`
	WeldedW float64 `yaml:"welded_w"`

	// MaxSession closes a port charging for longer in one session
	// (max_duration, not latched).
	MaxSession time.Duration `yaml:"max_session"`
	// FullW or less for FullAfter while charging closes the port with the
	// info event "full" (no alert, not latched).
	FullW     float64       `yaml:"full_w"`
	FullAfter time.Duration `yaml:"full_after"`
}

// Override is a partial Thresholds: every field left nil keeps the value of
// the layer below. Its fields mirror Thresholds one to one.
type Override struct {
	WarnC              *float64       `yaml:"warn_c"`
	OverheatC          *float64       `yaml:"overheat_c"`
	TempHysteresisC    *float64       `yaml:"temp_hysteresis_c"`
	RiseCPerMin        *float64       `yaml:"rise_c_per_min"`
	RiseWindow         *time.Duration `yaml:"rise_window"`
	RiseMinSamples     *int           `yaml:"rise_min_samples"`
	OvercurrentFactor  *float64       `yaml:"overcurrent_factor"`
	OvercurrentSamples *int           `yaml:"overcurrent_samples"`
	ShortCircuitFactor *float64       `yaml:"short_circuit_factor"`
	DefaultRatedA      *float64       `yaml:"default_rated_a"`
	MaxRatedA          *float64       `yaml:"max_rated_a"`
	LeakMA             *float64       `yaml:"leak_ma"`
	LeakHysteresisMA   *float64       `yaml:"leak_hysteresis_ma"`
	SensorMinC         *float64       `yaml:"sensor_min_c"`
	SensorMaxC         *float64       `yaml:"sensor_max_c"`
	ReportInterval     *time.Duration `yaml:"report_interval"`
	OfflineIntervals   *int           `yaml:"offline_intervals"`
	MaxClockSkew       *time.Duration `yaml:"max_clock_skew"`
	HotContactC        *float64       `yaml:"hot_contact_c"`
	AckTimeout         *time.Duration `yaml:"ack_timeout"`
	MaxResends         *int           `yaml:"max_resends"`
	WeldedA            *float64       `yaml:"welded_a"`
	WeldedW            *float64       `yaml:"welded_w"`
	MaxSession         *time.Duration `yaml:"max_session"`
	FullW              *float64       `yaml:"full_w"`
	FullAfter          *time.Duration `yaml:"full_after"`
}

// Rules is the safety policy as configured: defaults, then overrides per
// site kind, then per site (a site's override wins over its kind's). It is
// the `rules:` section of chargeguard's config file.
type Rules struct {
	Defaults Thresholds                      `yaml:"defaults"`
	Kinds    map[telemetry.SiteKind]Override `yaml:"kinds,omitempty"`
	Sites    map[string]Override             `yaml:"sites,omitempty"`
}

// DefaultRules returns the default safety policy of protocol v1.
func DefaultRules() Rules {
	return Rules{Defaults: Thresholds{
		WarnC:              55,
		OverheatC:          70,
		TempHysteresisC:    2,
		RiseCPerMin:        10,
		RiseWindow:         30 * time.Second,
		RiseMinSamples:     3,
		OvercurrentFactor:  1.1,
		OvercurrentSamples: 3,
		ShortCircuitFactor: 2,
		DefaultRatedA:      0,
		MaxRatedA:          16,
		LeakMA:             30,
		LeakHysteresisMA:   5,
		SensorMinC:         -40,
		SensorMaxC:         150,
		ReportInterval:     10 * time.Second,
		OfflineIntervals:   3,
		MaxClockSkew:       5 * time.Minute,
		HotContactC:        30,
		AckTimeout:         3 * time.Second,
		MaxResends:         3,
		WeldedA:            0.1,
		WeldedW:            5,
		MaxSession:         8 * time.Hour,
		FullW:              15,
		FullAfter:          10 * time.Minute,
	}}
}

// ParseRules reads a `rules:` section (the YAML mapping under that key) on
// top of DefaultRules and validates it. Unknown fields are errors, so that a
// misspelt threshold is not silently ignored.
func ParseRules(data []byte) (Rules, error) {
	r := DefaultRules()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil && !errors.Is(err, io.EOF) {
		return Rules{}, fmt.Errorf("rules: %w", err)
	}
	if err := r.Validate(); err != nil {
		return Rules{}, err
	}
	return r, nil
}

// Resolve returns the thresholds that apply to a pile of the given kind at
// the given site: the defaults, overridden by the kind's, overridden by the
// site's. An unknown or empty kind has no kind override.
func (r Rules) Resolve(site string, kind telemetry.SiteKind) Thresholds {
	t := r.Defaults
	if o, ok := r.Kinds[kind]; ok {
		o.apply(&t)
	}
	if o, ok := r.Sites[site]; ok {
		o.apply(&t)
	}
	return t
}

// apply copies every field set in o onto t. Override mirrors Thresholds
// field for field (a test holds them in step), so reflection can pair them.
func (o Override) apply(t *Thresholds) {
	ov := reflect.ValueOf(o)
	tv := reflect.ValueOf(t).Elem()
	for i := 0; i < ov.NumField(); i++ {
		if f := ov.Field(i); !f.IsNil() {
			tv.Field(i).Set(f.Elem())
		}
	}
}

// set reports whether o sets the Thresholds field with the given yaml name.
func (o Override) set(field string) bool {
	i, ok := fieldIndex[field]
	return ok && !reflect.ValueOf(o).Field(i).IsNil()
}

var fieldIndex = func() map[string]int {
	m := map[string]int{}
	t := reflect.TypeOf(Thresholds{})
	for i := 0; i < t.NumField(); i++ {
		m[t.Field(i).Tag.Get("yaml")] = i
	}
	return m
}()

// A check is one constraint on resolved Thresholds. fields are the yaml
// names involved, the first being the one blamed by default.
type check struct {
	fields []string
	ok     func(t *Thresholds) bool
	msg    func(t *Thresholds) string
}

func between(lo, hi float64) func(v float64) bool {
	return func(v float64) bool { return v >= lo && v <= hi }
}

var checks = func() []check {
	var cs []check
	// Every float must be finite: YAML accepts .nan and .inf.
	tt := reflect.TypeOf(Thresholds{})
	for i := 0; i < tt.NumField(); i++ {
		if tt.Field(i).Type.Kind() != reflect.Float64 {
			continue
		}
		i, name := i, tt.Field(i).Tag.Get("yaml")
		cs = append(cs, check{
			fields: []string{name},
			ok: func(t *Thresholds) bool {
				v := reflect.ValueOf(t).Elem().Field(i).Float()
				return !math.IsNaN(v) && !math.IsInf(v, 0)
			},
			msg: func(*Thresholds) string { return "must be a finite number" },
		})
	}
	num := func(fields []string, ok func(t *Thresholds) bool, format string, args func(t *Thresholds) []any) {
		cs = append(cs, check{fields: fields, ok: ok, msg: func(t *Thresholds) string {
			if args == nil {
				return format
			}
			return fmt.Sprintf(format, args(t)...)
		}})
	}
	dur := func(name string, get func(t *Thresholds) time.Duration, lo, hi time.Duration) {
		num([]string{name}, func(t *Thresholds) bool { d := get(t); return d >= lo && d <= hi },
			fmt.Sprintf("must be between %s and %s", lo, hi), nil)
	}
	integer := func(name string, get func(t *Thresholds) int, lo, hi int) {
		num([]string{name}, func(t *Thresholds) bool { v := get(t); return v >= lo && v <= hi },
			fmt.Sprintf("must be between %d and %d", lo, hi), nil)
	}
	num([]string{"sensor_max_c", "sensor_min_c"}, func(t *Thresholds) bool { return t.SensorMaxC > t.SensorMinC },
		"must be above sensor_min_c (%g)", func(t *Thresholds) []any { return []any{t.SensorMinC} })
	num([]string{"warn_c", "sensor_min_c"}, func(t *Thresholds) bool { return t.WarnC > t.SensorMinC },
		"must be above sensor_min_c (%g)", func(t *Thresholds) []any { return []any{t.SensorMinC} })
	num([]string{"overheat_c", "warn_c"}, func(t *Thresholds) bool { return t.OverheatC > t.WarnC },
		"must be above warn_c (%g)", func(t *Thresholds) []any { return []any{t.WarnC} })
	num([]string{"overheat_c", "sensor_max_c"}, func(t *Thresholds) bool { return t.OverheatC <= t.SensorMaxC },
		"must not be above sensor_max_c (%g)", func(t *Thresholds) []any { return []any{t.SensorMaxC} })
	num([]string{"temp_hysteresis_c"}, func(t *Thresholds) bool { return between(0, 20)(t.TempHysteresisC) },
		"must be between 0 and 20", nil)
	num([]string{"rise_c_per_min"}, func(t *Thresholds) bool { return t.RiseCPerMin > 0 }, "must be above 0", nil)
	dur("rise_window", func(t *Thresholds) time.Duration { return t.RiseWindow }, time.Second, 10*time.Minute)
	integer("rise_min_samples", func(t *Thresholds) int { return t.RiseMinSamples }, 2, riseCap/2)
	num([]string{"overcurrent_factor"}, func(t *Thresholds) bool { return t.OvercurrentFactor >= 1 },
		"must be at least 1", nil)
	integer("overcurrent_samples", func(t *Thresholds) int { return t.OvercurrentSamples }, 1, 100)
	num([]string{"short_circuit_factor", "overcurrent_factor"}, func(t *Thresholds) bool { return t.ShortCircuitFactor > t.OvercurrentFactor },
		"must be above overcurrent_factor (%g)", func(t *Thresholds) []any { return []any{t.OvercurrentFactor} })
	num([]string{"default_rated_a"}, func(t *Thresholds) bool { return t.DefaultRatedA >= 0 }, "must not be negative", nil)
	num([]string{"max_rated_a", "default_rated_a"}, func(t *Thresholds) bool { return t.MaxRatedA > 0 && t.MaxRatedA >= t.DefaultRatedA },
		"must be above 0 and at least default_rated_a (%g)", func(t *Thresholds) []any { return []any{t.DefaultRatedA} })
	num([]string{"leak_ma"}, func(t *Thresholds) bool { return t.LeakMA > 0 }, "must be above 0", nil)
	num([]string{"leak_hysteresis_ma", "leak_ma"}, func(t *Thresholds) bool { return t.LeakHysteresisMA >= 0 && t.LeakHysteresisMA < t.LeakMA },
		"must be at least 0 and below leak_ma (%g)", func(t *Thresholds) []any { return []any{t.LeakMA} })
	dur("report_interval", func(t *Thresholds) time.Duration { return t.ReportInterval }, 100*time.Millisecond, time.Hour)
	integer("offline_intervals", func(t *Thresholds) int { return t.OfflineIntervals }, 1, 100)
	dur("max_clock_skew", func(t *Thresholds) time.Duration { return t.MaxClockSkew }, time.Second, 30*24*time.Hour)
	num([]string{"hot_contact_c", "temp_hysteresis_c"}, func(t *Thresholds) bool { return t.HotContactC > t.TempHysteresisC },
		"must be above temp_hysteresis_c (%g)", func(t *Thresholds) []any { return []any{t.TempHysteresisC} })
	dur("ack_timeout", func(t *Thresholds) time.Duration { return t.AckTimeout }, 100*time.Millisecond, time.Minute)
	integer("max_resends", func(t *Thresholds) int { return t.MaxResends }, 0, 20)
	num([]string{"welded_a"}, func(t *Thresholds) bool { return t.WeldedA >= 0 }, "must not be negative", nil)
	num([]string{"welded_w"}, func(t *Thresholds) bool { return t.WeldedW >= 0 }, "must not be negative", nil)
	dur("max_session", func(t *Thresholds) time.Duration { return t.MaxSession }, time.Minute, 7*24*time.Hour)
	num([]string{"full_w"}, func(t *Thresholds) bool { return t.FullW >= 0 }, "must not be negative", nil)
	dur("full_after", func(t *Thresholds) time.Duration { return t.FullAfter }, time.Second, 24*time.Hour)
	return cs
}()

// fieldError is one violation, named by its config path.
type fieldError struct{ path, msg string }

func (e *fieldError) Error() string { return e.path + ": " + e.msg }

// Validate checks every layer of the rules and returns all violations
// joined, each naming its field by config path, e.g.
// "rules.sites.chunbo.overheat_c: must be above warn_c (75)". A kind or
// site override is blamed only for what it breaks: a violation already
// present in the layer below is reported there once.
func (r Rules) Validate() error {
	var errs []error
	seen := map[string]bool{}
	add := func(path, msg string) {
		if !seen[path+msg] {
			seen[path+msg] = true
			errs = append(errs, &fieldError{path: path, msg: msg})
		}
	}
	// layer reports the checks that fail on t but passed on parent (nil:
	// the defaults, all failures count), blaming a field o sets.
	layer := func(prefix string, t, parent *Thresholds, o *Override, note string) {
		for _, c := range checks {
			if c.ok(t) || (parent != nil && !c.ok(parent)) {
				continue
			}
			field := c.fields[0]
			if o != nil {
				for _, f := range c.fields {
					if o.set(f) {
						field = f
						break
					}
				}
			}
			add(prefix+field, c.msg(t)+note)
		}
	}
	def := r.Defaults
	layer("rules.defaults.", &def, nil, nil, "")

	kinds := make([]string, 0, len(r.Kinds))
	for k := range r.Kinds {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		kind := telemetry.SiteKind(k)
		if kind != telemetry.SiteResidential && kind != telemetry.SiteOpenAir {
			add(fmt.Sprintf("rules.kinds.%q", k), "unknown site kind (want residential or open_air)")
			continue
		}
		o := r.Kinds[kind]
		t := r.Resolve("", kind)
		layer("rules.kinds."+k+".", &t, &def, &o, "")
	}

	sites := make([]string, 0, len(r.Sites))
	for s := range r.Sites {
		sites = append(sites, s)
	}
	sort.Strings(sites)
	for _, s := range sites {
		if !telemetry.ValidID(s) {
			add(fmt.Sprintf("rules.sites.%q", s), "site id breaks [A-Za-z0-9_-]{1,64}")
			continue
		}
		o := r.Sites[s]
		for _, kind := range []telemetry.SiteKind{"", telemetry.SiteResidential, telemetry.SiteOpenAir} {
			parent := r.Resolve("", kind)
			t := r.Resolve(s, kind)
			note := ""
			if kind != "" {
				if _, ok := r.Kinds[kind]; !ok {
					continue // same as the kind-less case
				}
				note = " (with kind " + string(kind) + ")"
			}
			layer("rules.sites."+s+".", &t, &parent, &o, note)
		}
	}
	return errors.Join(errs...)
}
