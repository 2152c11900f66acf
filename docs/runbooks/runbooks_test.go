package runbooks

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/alerting/notify"
)

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return string(b)
}

// TestSafetyAlertsHaveRunbooks: every alert name of the safety engine has
// docs/runbooks/<alertname>.md (the runbook_url that chargeguard puts on
// the alert), with its severity, and the index lists it.
func TestSafetyAlertsHaveRunbooks(t *testing.T) {
	index := read(t, "README.md")
	names := notify.Alertnames()
	require.NotEmpty(t, names)
	for _, name := range names {
		page := read(t, name+".md")
		assert.True(t, strings.HasPrefix(page, "# "+name+"\n"), "%s.md starts with its title", name)
		sev := notify.Severity(name)
		assert.Contains(t, page, "**Severity: "+sev+".**", "%s.md states severity %s", name, sev)
		assert.Contains(t, index, "| `"+name+"` | "+sev+" |", "README.md lists %s", name)
		assert.Contains(t, index, "("+name+".md)")
		if sev == notify.SeverityCritical {
			assert.Contains(t, page, "## Do now, in order", "%s.md: a critical alert says what to do first", name)
		}
	}
}

// TestPrometheusAlertsHaveRunbooks: every runbook_url of the Prometheus
// rules points to a page here that the index lists.
func TestPrometheusAlertsHaveRunbooks(t *testing.T) {
	index := read(t, "README.md")
	rules, err := filepath.Glob("../../deploy/prometheus/rules/*.yml")
	require.NoError(t, err)
	require.NotEmpty(t, rules)
	re := regexp.MustCompile(`(?s)- alert: (\w+).*?runbook_url: "?[^"\n]*/docs/runbooks/([^"\n]+\.md)`)
	n := 0
	for _, f := range rules {
		for _, m := range re.FindAllStringSubmatch(read(t, f), -1) {
			n++
			alert, page := m[1], m[2]
			assert.FileExists(t, page, "%s: runbook of %s", f, alert)
			assert.Contains(t, index, "| "+alert+" | ["+strings.TrimSuffix(page, ".md")+"]("+page+") |", "README.md lists %s", alert)
		}
	}
	assert.Positive(t, n)
}

// TestLinksResolve: every relative link between the runbooks works, and
// every page is in the index.
func TestLinksResolve(t *testing.T) {
	pages, err := filepath.Glob("*.md")
	require.NoError(t, err)
	index := read(t, "README.md")
	link := regexp.MustCompile(`\]\(([^)#:]+\.md)(#[^)]*)?\)`)
	for _, p := range pages {
		if p != "README.md" {
			assert.Contains(t, index, "("+p+")", "README.md links %s", p)
		}
		for _, m := range link.FindAllStringSubmatch(read(t, p), -1) {
			assert.FileExists(t, filepath.Join(filepath.Dir(p), m[1]), "%s links %s", p, m[1])
		}
	}
}
