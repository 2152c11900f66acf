package grafana

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/telemetry"
)

// auditKinds are the values of the audit measurement's action tag: the
// service writes the record's kind there (alerting/service.go, audit).
var auditKinds = []alerting.AuditKind{
	alerting.AuditCommand, alerting.AuditRetry, alerting.AuditAck, alerting.AuditAckFailed,
	alerting.AuditAckUnknown, alerting.AuditCloseFailed, alerting.AuditOpenFailed,
	alerting.AuditOpenCanceled, alerting.AuditReset, alerting.AuditResetRefused,
	alerting.AuditAlertAck, alerting.AuditLatchReassert,
}

// addAudit writes an audit record as alerting.Service writes it: the kind
// as the action tag; port, actor, reason and ok always; id, command,
// attempt and detail only when set. Keep it in step with
// alerting/service.go.
func (s *scenario) addAudit(r alerting.AuditRecord) {
	f := map[string]any{
		"port": int64(r.Port), "actor": r.Actor, "reason": r.Reason,
		"ok": r.Kind == alerting.AuditAck || r.Kind == alerting.AuditReset || r.Kind == alerting.AuditCommand || r.Kind == alerting.AuditRetry,
	}
	if r.CommandID != "" {
		f["id"] = r.CommandID
	}
	if r.Action != "" {
		f["command"] = string(r.Action)
	}
	if r.Attempt > 0 {
		f["attempt"] = int64(r.Attempt)
	}
	if r.Detail != "" {
		f["detail"] = r.Detail
	}
	s.add("audit", with(pileTags(r.Site, r.Pile), "action", string(r.Kind)), f, r.At)
}

// TestBoardsFilterOnWrittenAuditValues: every value a board's query
// filters the audit measurement on (its action tag, its command field) is
// one chargeguard writes. A query on a value never written is a panel that
// stays empty in production while its test, fed the same wrong value,
// passes.
func TestBoardsFilterOnWrittenAuditValues(t *testing.T) {
	kinds := make([]string, len(auditKinds))
	for i, k := range auditKinds {
		kinds[i] = string(k)
	}
	commands := []string{string(telemetry.ActionClose), string(telemetry.ActionOpen)}
	eq := regexp.MustCompile(`"(action|command)" = '([^']*)'`)
	re := regexp.MustCompile(`"(action|command)" =~ /\^\(([^)]*)\)\$/`)
	n := 0
	for _, q := range Queries() {
		if !strings.Contains(q.Text, `FROM "audit"`) {
			continue
		}
		var found [][]string
		for _, m := range eq.FindAllStringSubmatch(q.Text, -1) {
			found = append(found, []string{m[1], m[2]})
		}
		for _, m := range re.FindAllStringSubmatch(q.Text, -1) {
			for _, v := range strings.Split(m[2], "|") {
				found = append(found, []string{m[1], v})
			}
		}
		for _, f := range found {
			n++
			want := kinds
			if f[0] == "command" {
				want = commands
			}
			assert.True(t, slices.Contains(want, f[1]), "%s filters %s on %q, which chargeguard never writes (%v)", q.ID, f[0], f[1], want)
		}
	}
	require.Positive(t, n, "the audit queries filter on something")

	// And the scenario the queries run against writes what the service
	// writes.
	for _, p := range newScenario().points {
		if p.measurement == "audit" {
			assert.Contains(t, kinds, p.tags["action"], "scenario audit point at %s", p.t.Format(time.RFC3339))
		}
	}
}
