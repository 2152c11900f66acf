package notify_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/alerting/notify"
)

// TestCatalogueNamesWhatTheEngineRaises: every alert the safety engine can
// raise has its texts, severity and runbook here, and the catalogue holds
// no name the engine never raises. A name missing here would reach on-call
// with the generic "no description" text at 3 a.m. (An external test
// package: alerting imports notify.)
func TestCatalogueNamesWhatTheEngineRaises(t *testing.T) {
	var engine []string
	for _, n := range alerting.AlertNames() {
		engine = append(engine, n.String())
	}
	assert.ElementsMatch(t, engine, notify.Alertnames())
}

// TestEveryAlertnameSpeaksBothLanguages: every alert the engine raises
// reaches on-call with its own summary and on-site steps in English and in
// Chinese, never the generic fallback. A new alert name without its
// Chinese texts fails here.
func TestEveryAlertnameSpeaksBothLanguages(t *testing.T) {
	generic := notify.Annotations("no_such_alert", "s1", "p1", 1, "", "")
	for _, n := range alerting.AlertNames() {
		name := n.String()
		a := notify.Annotations(name, "s1", "p1", 2, "", "")
		for _, k := range []string{"summary", "on_site", "summary_zh", "on_site_zh"} {
			assert.NotEmpty(t, a[k], "%s: %s", name, k)
		}
		assert.NotContains(t, a["summary"], "chargeguard alert", "%s: English summary", name)
		assert.NotEqual(t, generic["on_site"], a["on_site"], "%s: English on-site steps", name)
		assert.NotContains(t, a["summary_zh"], "chargeguard 告警", "%s: Chinese summary", name)
		assert.False(t, strings.HasSuffix(a["summary_zh"], "："), "%s: Chinese summary is only the place: %q", name, a["summary_zh"])
		assert.NotEqual(t, generic["on_site_zh"], a["on_site_zh"], "%s: Chinese on-site steps", name)
		assert.True(t, hasHan(a["summary_zh"]) && hasHan(a["on_site_zh"]), "%s: not Chinese", name)
		assert.True(t, hasHan(notify.NameZH(name)), "%s: no Chinese name", name)
	}
}

func hasHan(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.Is(unicode.Han, r) }) >= 0
}
