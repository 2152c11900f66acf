package notify_test

import (
	"testing"

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
