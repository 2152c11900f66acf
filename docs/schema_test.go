package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/telemetry"
)

// enum returns the values (backticked lower-case words) listed in the notes
// of schema.md's row "| tag | `name` | enum | ..." under the heading of
// measurement.
func enum(t *testing.T, measurement, name string) []string {
	t.Helper()
	b, err := os.ReadFile("schema.md")
	require.NoError(t, err)
	s := string(b)
	head := "### `" + measurement + "`"
	i := strings.Index(s, head)
	require.GreaterOrEqual(t, i, 0, "schema.md has no %s", head)
	s = s[i+len(head):]
	if j := strings.Index(s, "\n### "); j >= 0 {
		s = s[:j]
	}
	row := "| tag | `" + name + "` | enum | "
	i = strings.Index(s, row)
	require.GreaterOrEqual(t, i, 0, "schema.md, %s: no row %q", measurement, row)
	line, _, _ := strings.Cut(s[i+len(row):], "\n")
	var out []string
	for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(line, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestSchemaAlertnames: the alertname tag of measurement alert lists every
// alert the engine raises, and nothing else.
func TestSchemaAlertnames(t *testing.T) {
	var want []string
	for _, n := range alerting.AlertNames() {
		want = append(want, n.String())
	}
	assert.ElementsMatch(t, want, enum(t, "alert", "alertname"))
}

// TestSchemaAuditActions: the action tag of measurement audit lists every
// alerting.AuditKind (the service writes the kind as the tag) and the info
// events, and nothing else. The kinds are read from alerting/action.go, since Go cannot list a
// type's constants at run time.
func TestSchemaAuditActions(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../alerting/action.go", nil, 0)
	require.NoError(t, err)
	var kinds []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "AuditKind" {
			return true
		}
		for _, v := range vs.Values {
			lit, ok := v.(*ast.BasicLit)
			require.True(t, ok && lit.Kind == token.STRING, "an AuditKind that is not a string literal")
			k, err := strconv.Unquote(lit.Value)
			require.NoError(t, err)
			kinds = append(kinds, k)
		}
		return true
	})
	require.Contains(t, kinds, string(alerting.AuditOpenCanceled), "the parser found the kinds")
	// The info events are stored as audit points too, their kind as the
	// action (alerting.Info: a full battery, the pile's own trips and
	// door openings).
	kinds = append(kinds, "full", string(telemetry.EventLocalTrip), string(telemetry.EventDoorOpen))
	assert.ElementsMatch(t, kinds, enum(t, "audit", "action"))
}
