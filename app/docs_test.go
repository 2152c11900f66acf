package app_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/internal/testenv"
	"github.com/chargeguard/chargeguard/telemetry"
)

// docs/schema.md's audit action values are the ones the service writes: the
// engine's audit kinds and the info events (stored as audit points too).
func TestSchemaListsTheAuditActions(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "schema.md"))
	require.NoError(t, err)
	var row string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "| tag | `action` |") {
			row = l
		}
	}
	require.NotEmpty(t, row, "docs/schema.md has no audit action row")
	var documented []string
	for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(row, -1) {
		if m[1] != "action" {
			documented = append(documented, m[1])
		}
	}
	written := []string{"full", string(telemetry.EventLocalTrip), string(telemetry.EventDoorOpen)}
	for _, k := range []alerting.AuditKind{alerting.AuditCommand, alerting.AuditRetry, alerting.AuditAck,
		alerting.AuditAckFailed, alerting.AuditAckUnknown, alerting.AuditCloseFailed, alerting.AuditOpenFailed,
		alerting.AuditReset, alerting.AuditResetRefused, alerting.AuditAlertAck, alerting.AuditLatchReassert} {
		written = append(written, string(k))
	}
	require.ElementsMatch(t, written, documented)
}
