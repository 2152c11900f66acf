package prometheus

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/chargeguard/chargeguard/internal/testenv"
)

const runbookBase = "https://github.com/chargeguard/chargeguard/blob/main/docs/runbooks/"

// promtool runs promtool with args in this directory and fails the test with
// its output unless it succeeds. A missing promtool fails the test and says
// to run `make test`, which installs it.
func promtool(t *testing.T, args ...string) string {
	t.Helper()
	bin := testenv.Binary(t, "promtool", "promtool", "/usr/bin/promtool")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

func TestPromtoolCheckConfig(t *testing.T) {
	out := promtool(t, "check", "config", "prometheus.yml")
	require.Contains(t, out, "SUCCESS: 1 rule files found", "prometheus.yml must load rules/")
}

func TestPromtoolCheckRules(t *testing.T) {
	out := promtool(t, "check", "rules", filepath.Join("rules", "chargeguard.rules.yml"))
	require.Contains(t, out, "SUCCESS")
}

func TestPromtoolTestRules(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("tests", "*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	out := promtool(t, append([]string{"test", "rules"}, files...)...)
	require.Equal(t, len(files), strings.Count(out, "SUCCESS"), "every test file passes:\n%s", out)
}

// rule is one alerting rule of rules/chargeguard.rules.yml.
type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("rules", "chargeguard.rules.yml"))
	require.NoError(t, err)
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(data, &f))
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	require.NotEmpty(t, rules)
	return rules
}

// RunbookName is the runbook file of an alert, without ".md":
// ChargeguardIngestStalled → chargeguard-ingest-stalled, ChargeguardMQTTDown →
// chargeguard-mqtt-down.
func runbookName(alert string) string {
	var b strings.Builder
	r := []rune(alert)
	for i, c := range r {
		upper := c >= 'A' && c <= 'Z'
		if upper && i > 0 {
			prevLower := r[i-1] >= 'a' && r[i-1] <= 'z'
			nextLower := i+1 < len(r) && r[i+1] >= 'a' && r[i+1] <= 'z'
			prevUpper := r[i-1] >= 'A' && r[i-1] <= 'Z'
			if prevLower || (prevUpper && nextLower) {
				b.WriteByte('-')
			}
		}
		b.WriteString(strings.ToLower(string(c)))
	}
	return b.String()
}

func TestRunbookName(t *testing.T) {
	for in, want := range map[string]string{
		"ChargeguardDown":             "chargeguard-down",
		"ChargeguardIngestStalled":    "chargeguard-ingest-stalled",
		"ChargeguardMQTTDisconnected": "chargeguard-mqtt-disconnected",
		"ChargeguardMQTTFlapping":     "chargeguard-mqtt-flapping",
	} {
		require.Equal(t, want, runbookName(in))
	}
}

// TestRulesAreActionable: every rule is named Chargeguard..., pages or not by
// its severity, says what happened and what to do, and links a runbook that
// exists; every chargeguard-*.md runbook belongs to a rule.
func TestRulesAreActionable(t *testing.T) {
	root := testenv.RepoRoot(t)
	seen := map[string]bool{}
	for _, r := range loadRules(t) {
		require.True(t, strings.HasPrefix(r.Alert, "Chargeguard"), "%s: chargeguard's own alerts are named Chargeguard*, the piles' alerts are lower case", r.Alert)
		require.False(t, seen[r.Alert], "%s defined twice", r.Alert)
		seen[r.Alert] = true
		require.Contains(t, []string{"critical", "warning"}, r.Labels["severity"], "%s: severity routes it in deploy/alertmanager", r.Alert)
		require.NotEmpty(t, r.Annotations["summary"], r.Alert)
		require.GreaterOrEqual(t, len(r.Annotations["description"]), 80, "%s: say what it means and what to do first", r.Alert)
		name := runbookName(r.Alert)
		require.Equal(t, runbookBase+name+".md", r.Annotations["runbook_url"], r.Alert)
		body, err := os.ReadFile(filepath.Join(root, "docs", "runbooks", name+".md"))
		require.NoError(t, err, "%s: write its runbook", r.Alert)
		require.Contains(t, string(body), r.Alert, "docs/runbooks/%s.md names the alert it is for", name)
		for _, a := range []string{"summary", "description", "runbook_url"} {
			require.Contains(t, r.Annotations, a, r.Alert)
		}
		require.Len(t, r.Annotations, 3, "%s: only summary, description and runbook_url (the tests compare all annotations)", r.Alert)
	}
	runbooks, err := filepath.Glob(filepath.Join(root, "docs", "runbooks", "chargeguard-*.md"))
	require.NoError(t, err)
	for _, f := range runbooks {
		name := strings.TrimSuffix(filepath.Base(f), ".md")
		found := false
		for a := range seen {
			found = found || runbookName(a) == name
		}
		require.True(t, found, "docs/runbooks/%s.md has no rule", name)
	}
	for _, a := range []string{
		"ChargeguardIngestStalled", "ChargeguardSpoolNearQuota", "ChargeguardSpoolGrowing",
		"ChargeguardInfluxDown", "ChargeguardInfluxWriteErrors", "ChargeguardPointsDeadLettered",
		"ChargeguardCommandsFailing", "ChargeguardCommandsUnacked", "ChargeguardMQTTDisconnected",
		"ChargeguardManyPilesOffline", "ChargeguardBrokerDropping", "ChargeguardRejectedSurge",
	} {
		require.True(t, seen[a], "the rules must cover %s", a)
	}
}

// TestEveryRuleIsTested: each rule has a promtool test in which it fires and
// one in which it must not.
func TestEveryRuleIsTested(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("tests", "*.yml"))
	require.NoError(t, err)
	fires, quiet := map[string]int{}, map[string]int{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		var tf struct {
			RuleFiles []string `yaml:"rule_files"`
			Tests     []struct {
				AlertRuleTest []struct {
					Alertname string           `yaml:"alertname"`
					ExpAlerts []map[string]any `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		require.NoError(t, yaml.Unmarshal(data, &tf), f)
		require.Equal(t, []string{"../rules/chargeguard.rules.yml"}, tf.RuleFiles, "%s tests the shipped rules", f)
		for _, tc := range tf.Tests {
			for _, at := range tc.AlertRuleTest {
				if len(at.ExpAlerts) > 0 {
					fires[at.Alertname]++
				} else {
					quiet[at.Alertname]++
				}
			}
		}
	}
	var names []string
	for _, r := range loadRules(t) {
		names = append(names, r.Alert)
		require.NotZero(t, fires[r.Alert], "no promtool test in which %s fires", r.Alert)
		require.NotZero(t, quiet[r.Alert], "no promtool test in which %s must stay quiet", r.Alert)
	}
	for a := range fires {
		require.Contains(t, names, a, "tests name an alert the rules do not define")
	}
}

var metricName = regexp.MustCompile(`\bchargeguard_[a-z_]+`)

// MetricsOf returns the chargeguard metric names a PromQL expression uses,
// histogram series (_bucket, _sum, _count) by their base name.
func metricsOf(expr string) []string {
	var out []string
	for _, m := range metricName.FindAllString(expr, -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(m, suffix); ok && slices.Contains(Metrics, base) {
				m = base
			}
		}
		out = append(out, m)
	}
	return out
}

// TestRulesUseTheMetricContract: a rule on a metric chargeguard does not
// export would never fire.
func TestRulesUseTheMetricContract(t *testing.T) {
	used := map[string]bool{}
	for _, r := range loadRules(t) {
		for _, m := range metricsOf(r.Expr) {
			require.Contains(t, Metrics, m, "%s uses %s, which is not in the metric contract (metrics.go)", r.Alert, m)
			used[m] = true
		}
	}
	require.NotEmpty(t, used)
}
