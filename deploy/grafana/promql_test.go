package grafana

import (
	"context"
	"fmt"
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

	promcfg "github.com/chargeguard/chargeguard/deploy/prometheus"
	"github.com/chargeguard/chargeguard/internal/testenv"
)

var (
	chargeguardMetric = regexp.MustCompile(`\bchargeguard_[a-z_]+`)
	labelValues       = regexp.MustCompile(`^label_values\((chargeguard_[a-z_]+), instance\)$`)
)

// grafanaPromQL substitutes the Health board's variable and Grafana's rate
// window as Grafana would ("All" instances, a 1 minute window).
func grafanaPromQL(expr string) string {
	return strings.NewReplacer(`$instance`, `.*`, `$__rate_interval`, `1m`).Replace(expr)
}

// TestBoardPromQLUsesTheMetricContract: a panel on a metric chargeguard does
// not export stays empty forever.
func TestBoardPromQLUsesTheMetricContract(t *testing.T) {
	for _, q := range PromQueries() {
		names := chargeguardMetric.FindAllString(q.Expr, -1)
		if q.ID != PromUp.ID { // up is Prometheus' own
			require.NotEmpty(t, names, "%s: %s", q.ID, q.Expr)
		}
		for _, n := range names {
			base := n
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(n, suffix); ok && slices.Contains(promcfg.Metrics, b) {
					base = b
				}
			}
			require.Contains(t, promcfg.Metrics, base, "%s uses %s, not in deploy/prometheus/metrics.go", q.ID, n)
		}
	}
}

// TestBoardPromQLParses hands every PromQL expression of the boards to
// promtool as a recording rule, so a syntax error fails here rather than on
// an operator's screen.
func TestBoardPromQLParses(t *testing.T) {
	bin := testenv.Binary(t, "promtool", "promtool", "/usr/bin/promtool")
	type recording struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []recording
	for i, q := range PromQueries() {
		if m := labelValues.FindStringSubmatch(q.Expr); m != nil {
			// A Grafana variable query, not PromQL: check the metric instead.
			rules = append(rules, recording{Record: fmt.Sprintf("board:variable_%d", i), Expr: m[1]})
			continue
		}
		require.NotContains(t, grafanaPromQL(q.Expr), "$", "%s: unsubstituted variable", q.ID)
		rules = append(rules, recording{Record: fmt.Sprintf("board:query_%d", i), Expr: grafanaPromQL(q.Expr)})
	}
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "boards", "rules": rules}}})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "boards.rules.yml")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "check", "rules", path).CombinedOutput()
	require.NoError(t, err, "promtool check rules on the boards' PromQL:\n%s", out)
	require.Contains(t, string(out), fmt.Sprintf("SUCCESS: %d rules found", len(rules)))
}
