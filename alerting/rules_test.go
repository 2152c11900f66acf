package alerting

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/telemetry"
)

// Override must mirror Thresholds field for field: apply pairs them by
// index.
func TestOverrideMirrorsThresholds(t *testing.T) {
	tt, ot := reflect.TypeOf(Thresholds{}), reflect.TypeOf(Override{})
	require.Equal(t, tt.NumField(), ot.NumField())
	for i := 0; i < tt.NumField(); i++ {
		tf, of := tt.Field(i), ot.Field(i)
		require.Equal(t, tf.Name, of.Name)
		require.Equal(t, tf.Tag.Get("yaml"), of.Tag.Get("yaml"))
		require.Equal(t, reflect.PointerTo(tf.Type), of.Type, tf.Name)
	}
}

func TestDefaultRulesMatchProtocol(t *testing.T) {
	d := DefaultRules()
	require.NoError(t, d.Validate())
	th := d.Resolve("any", telemetry.SiteResidential)
	require.Equal(t, 55.0, th.WarnC)
	require.Equal(t, 70.0, th.OverheatC)
	require.Equal(t, 10.0, th.RiseCPerMin)
	require.Equal(t, 30*time.Second, th.RiseWindow)
	require.Equal(t, 1.1, th.OvercurrentFactor)
	require.Equal(t, 3, th.OvercurrentSamples)
	require.Equal(t, 2.0, th.ShortCircuitFactor)
	require.Equal(t, 30.0, th.LeakMA)
	require.Equal(t, -40.0, th.SensorMinC)
	require.Equal(t, 150.0, th.SensorMaxC)
	require.Equal(t, 10*time.Second, th.ReportInterval)
	require.Equal(t, 3, th.OfflineIntervals)
	require.Equal(t, 30.0, th.HotContactC)
	require.Equal(t, 3*time.Second, th.AckTimeout)
	require.Equal(t, 3, th.MaxResends)
	require.Equal(t, 0.1, th.WeldedA)
	require.Equal(t, 5.0, th.WeldedW)
	require.Equal(t, 8*time.Hour, th.MaxSession)
	require.Equal(t, 15.0, th.FullW)
	require.Equal(t, 10*time.Minute, th.FullAfter)
}

func TestParseRulesLayers(t *testing.T) {
	r, err := ParseRules([]byte(`
defaults:
  ack_timeout: 2s
  warn_c: 50
kinds:
  open_air:
    hot_contact_c: 35
    overheat_c: 75
sites:
  chunbo:
    overheat_c: 65
    full_after: 15m
`))
	require.NoError(t, err)
	// Untouched defaults stay.
	require.Equal(t, 30.0, r.Defaults.LeakMA)
	require.Equal(t, 2*time.Second, r.Defaults.AckTimeout)

	th := r.Resolve("other", telemetry.SiteResidential)
	require.Equal(t, 50.0, th.WarnC)
	require.Equal(t, 70.0, th.OverheatC)
	require.Equal(t, 30.0, th.HotContactC)

	th = r.Resolve("other", telemetry.SiteOpenAir)
	require.Equal(t, 75.0, th.OverheatC)
	require.Equal(t, 35.0, th.HotContactC)

	// The site wins over its kind.
	th = r.Resolve("chunbo", telemetry.SiteOpenAir)
	require.Equal(t, 65.0, th.OverheatC)
	require.Equal(t, 35.0, th.HotContactC)
	require.Equal(t, 15*time.Minute, th.FullAfter)
	require.Equal(t, 50.0, th.WarnC)

	// Unknown kind: defaults and the site.
	th = r.Resolve("chunbo", "")
	require.Equal(t, 65.0, th.OverheatC)
	require.Equal(t, 30.0, th.HotContactC)
}

func TestParseRulesEmptyIsDefault(t *testing.T) {
	r, err := ParseRules(nil)
	require.NoError(t, err)
	require.Equal(t, DefaultRules(), r)
}

func TestValidateNamesTheField(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"sites: {chunbo: {overheat_c: 50}}", "rules.sites.chunbo.overheat_c: must be above warn_c (55)"},
		{"sites: {chunbo: {warn_c: 75}}", "rules.sites.chunbo.warn_c: must be above warn_c"},
		{"defaults: {warn_c: 80}", "rules.defaults.overheat_c: must be above warn_c (80)"},
		{"kinds: {open_air: {leak_hysteresis_ma: 40}}", "rules.kinds.open_air.leak_hysteresis_ma: must be at least 0 and below leak_ma (30)"},
		{"kinds: {garage: {warn_c: 50}}", `rules.kinds."garage": unknown site kind`},
		{"sites: {\"bad/site\": {warn_c: 50}}", `rules.sites."bad/site": site id breaks`},
		{"defaults: {ack_timeout: 10ms}", "rules.defaults.ack_timeout: must be between 100ms and 1m0s"},
		{"defaults: {overcurrent_samples: 0}", "rules.defaults.overcurrent_samples: must be between 1 and 100"},
		{"defaults: {short_circuit_factor: 1.05}", "rules.defaults.short_circuit_factor: must be above overcurrent_factor (1.1)"},
		{"defaults: {leak_ma: .nan}", "rules.defaults.leak_ma: must be a finite number"},
		{"defaults: {warn_c: .inf}", "rules.defaults.warn_c: must be a finite number"},
		{"defaults: {rise_min_samples: 40}", "rules.defaults.rise_min_samples: must be between 2 and 16"},
		// Only bad in combination with a kind's override.
		{"kinds: {open_air: {warn_c: 64}}\nsites: {s1: {overheat_c: 60}}", "rules.sites.s1.overheat_c: must be above warn_c (64) (with kind open_air)"},
	} {
		_, err := ParseRules([]byte(c.yaml))
		require.Error(t, err, c.yaml)
		require.Contains(t, err.Error(), c.want, c.yaml)
	}
	// A site's warn_c above the default overheat blames warn_c, not overheat_c.
	_, err := ParseRules([]byte("sites: {chunbo: {warn_c: 75}}"))
	require.Contains(t, err.Error(), "rules.sites.chunbo.warn_c: must be above warn_c (75)")
	require.NotContains(t, err.Error(), "overheat_c:")
}

func TestValidateReportsEachProblemOnce(t *testing.T) {
	_, err := ParseRules([]byte("defaults: {warn_c: 80}\nsites: {a: {full_w: 10}, b: {full_w: 12}}"))
	require.Error(t, err)
	require.Equal(t, 1, strings.Count(err.Error(), "overheat_c"), err.Error())
}

func TestParseRulesRejects(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"defaults: {warn_cc: 50}", "field warn_cc not found"},
		{"defaults: {ack_timeout: 3}", "cannot unmarshal"}, // a bare number is not a duration
		{"defaults: {ack_timeout: 3 parsecs}", "cannot unmarshal"},
		{"defaults: [1, 2]", "cannot unmarshal"},
		{"{", "did not find"},
	} {
		_, err := ParseRules([]byte(c.yaml))
		require.Error(t, err, c.yaml)
		require.Contains(t, err.Error(), c.want, c.yaml)
		require.True(t, strings.HasPrefix(err.Error(), "rules"), err.Error())
	}
}

func TestNewEngineAndReloadValidate(t *testing.T) {
	bad := DefaultRules()
	bad.Defaults.OverheatC = 10
	_, err := NewEngine(bad, EngineOptions{})
	require.Error(t, err)
	e, err := NewEngine(DefaultRules(), EngineOptions{})
	require.NoError(t, err)
	err = e.Reload(bad)
	require.Error(t, err)
	require.Equal(t, 70.0, e.Rules().Defaults.OverheatC)
	var fe *fieldError
	require.True(t, errors.As(err, &fe))
	require.Equal(t, "rules.defaults.overheat_c", fe.path)
}

func FuzzRulesYAML(f *testing.F) {
	for _, s := range []string{
		"",
		"defaults: {warn_c: 50, ack_timeout: 2s}",
		"kinds: {open_air: {overheat_c: 75, hot_contact_c: 35}}",
		"sites: {chunbo: {overheat_c: 65, full_after: 15m, max_session: 6h}}",
		"defaults: {leak_ma: .nan, rise_window: -1s}",
		"sites: {\"a b\": {warn_c: 1e308}}",
		"defaults:\n  overcurrent_samples: 99999999999999999999\n",
		"kinds: {residential: ~}",
		"&a [*a]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRules(data)
		if err != nil {
			return
		}
		// Whatever parses and validates must resolve and run an engine.
		if err := r.Validate(); err != nil {
			t.Fatalf("ParseRules returned rules that do not validate: %v", err)
		}
		for site := range r.Sites {
			_ = r.Resolve(site, telemetry.SiteOpenAir)
		}
		if _, err := NewEngine(r, EngineOptions{}); err != nil {
			t.Fatalf("NewEngine refused validated rules: %v", err)
		}
	})
}
