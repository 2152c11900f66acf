package notify

// Tests of deploy/alertmanager: the production Alertmanager configuration
// and message template that route the alerts this package sends. They live
// here because the alert catalogue they must agree with lives here.

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/chargeguard/chargeguard/internal/testenv"
)

func productionConfigPath(t *testing.T) string {
	return filepath.Join(testenv.RepoRoot(t), "deploy", "alertmanager", "alertmanager.yml")
}

// amtool runs amtool and returns its combined output. A missing amtool fails
// the test (testenv.Binary says to run `make test`, which installs it): a
// config check that silently does not run is worse than none.
func amtool(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := testenv.Binary(t, "amtool", "/usr/bin/amtool", "amtool")
	cmd := exec.Command(bin, args...)
	cmd.Dir = testenv.RepoRoot(t)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestProductionConfigPassesAmtoolCheckConfig(t *testing.T) {
	out, err := amtool(t, "check-config", productionConfigPath(t))
	require.NoError(t, err, out)
	assert.Contains(t, out, "SUCCESS")
	assert.Contains(t, out, "1 templates", "the chargeguard template is found and parsed")
}

func TestProductionConfigRoutesEveryAlert(t *testing.T) {
	cfg := productionConfigPath(t)
	check := func(receiver string, labels ...string) {
		t.Helper()
		args := append([]string{"config", "routes", "test", "--config.file=" + cfg, "--verify.receivers=" + receiver}, labels...)
		out, err := amtool(t, args...)
		assert.NoError(t, err, "%v -> %s", labels, out)
		assert.Equal(t, receiver, strings.TrimSpace(lastLine(out)), "%v", labels)
	}
	for _, name := range Alertnames() {
		sev := Severity(name)
		want := map[string]string{SeverityCritical: "oncall", SeverityWarning: "operators"}[sev]
		check(want, "alertname="+name, "severity="+sev, "site=s1", "pile=p1", "port=3", "kind=residential")
		if sev == SeverityCritical {
			// Critical by name even without its severity label, or with
			// a wrong one.
			check("oncall", "alertname="+name, "site=s1", "pile=p1", "port=0")
			check("oncall", "alertname="+name, "severity=warning", "site=s1", "pile=p1", "port=0")
		}
	}
	// An alert nobody planned for still reaches a human.
	check("operators", "alertname=something_new", "site=s1")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// amConfig is the part of Alertmanager's configuration the tests read.
type amConfig struct {
	Templates []string `yaml:"templates"`
	Route     amRoute  `yaml:"route"`
	Inhibit   []struct {
		Source []string `yaml:"source_matchers"`
		Target []string `yaml:"target_matchers"`
		Equal  []string `yaml:"equal"`
	} `yaml:"inhibit_rules"`
	Receivers []struct {
		Name string `yaml:"name"`
	} `yaml:"receivers"`
}

type amRoute struct {
	Receiver       string    `yaml:"receiver"`
	Matchers       []string  `yaml:"matchers"`
	GroupBy        []string  `yaml:"group_by"`
	GroupWait      string    `yaml:"group_wait"`
	GroupInterval  string    `yaml:"group_interval"`
	RepeatInterval string    `yaml:"repeat_interval"`
	Routes         []amRoute `yaml:"routes"`
}

func TestProductionConfigTimingAndInhibition(t *testing.T) {
	raw, err := os.ReadFile(productionConfigPath(t))
	require.NoError(t, err)
	var cfg amConfig
	require.NoError(t, yaml.Unmarshal(raw, &cfg))

	dur := func(s string) time.Duration {
		d, err := time.ParseDuration(s)
		require.NoError(t, err, s)
		return d
	}
	var oncall, operators int
	for _, r := range cfg.Route.Routes {
		switch r.Receiver {
		case "oncall":
			oncall++
			// "1 minute to respond": pages leave at once, one per port,
			// and repeat every few minutes.
			assert.LessOrEqual(t, dur(r.GroupWait), 5*time.Second)
			assert.LessOrEqual(t, dur(r.RepeatInterval), 5*time.Minute)
			assert.Equal(t, []string{"alertname", "site", "pile", "port"}, r.GroupBy)
			for _, m := range r.Matchers {
				if names, ok := strings.CutPrefix(m, `alertname=~"`); ok {
					got := strings.Split(strings.TrimSuffix(names, `"`), "|")
					slices.Sort(got)
					assert.Equal(t, wantCritical, got, "the critical names routed to oncall")
				}
			}
		case "operators":
			operators++
			assert.Equal(t, []string{"site"}, r.GroupBy)
			assert.Equal(t, 30*time.Second, dur(r.GroupWait))
			assert.Equal(t, 4*time.Hour, dur(r.RepeatInterval))
		}
	}
	assert.Equal(t, 2, oncall, "by severity and by name")
	assert.Equal(t, 1, operators)
	assert.Equal(t, "operators", cfg.Route.Receiver, "the fallback reaches a human")

	for _, r := range cfg.Inhibit {
		assert.NotContains(t, strings.Join(r.Source, " "), "close_failed", "close_failed inhibits nothing")
		assert.NotContains(t, strings.Join(r.Target, " "), "critical", "critical alerts are never inhibited")
	}
}

func TestTemplateRendersWhereAndWhatToDo(t *testing.T) {
	root := testenv.RepoRoot(t)
	on := Annotations("overheat", "changhe-3", "p12", 4, "72.5 °C", "http://board.example/p12")
	data := map[string]any{
		"receiver": "oncall",
		"status":   "firing",
		"alerts": []map[string]any{{
			"status":      "firing",
			"labels":      map[string]string{"alertname": "overheat", "severity": "critical", "site": "changhe-3", "pile": "p12", "port": "4"},
			"annotations": on,
			"startsAt":    "2025-07-01T12:00:00Z",
			"endsAt":      "0001-01-01T00:00:00Z",
		}, {
			"status":      "resolved",
			"labels":      map[string]string{"alertname": "smoke", "severity": "critical", "site": "changhe-3", "pile": "p12", "port": "0"},
			"annotations": map[string]string{},
			"startsAt":    "2025-07-01T11:00:00Z",
			"endsAt":      "2025-07-01T11:20:00Z",
		}},
		"groupLabels":       map[string]string{"alertname": "overheat"},
		"commonLabels":      map[string]string{"severity": "critical", "site": "changhe-3", "pile": "p12"},
		"commonAnnotations": map[string]string{},
		"externalURL":       "http://alertmanager.example",
	}
	b, err := json.Marshal(data)
	require.NoError(t, err)
	dataPath := filepath.Join(t.TempDir(), "data.json")
	require.NoError(t, os.WriteFile(dataPath, b, 0o644))

	render := func() (subject, body string) {
		t.Helper()
		out, err := amtool(t, "template", "render",
			"--template.glob="+filepath.Join(root, "deploy", "alertmanager", "templates", "*.tmpl"),
			"--template.data="+dataPath,
			"--template.text="+`{{ template "chargeguard.subject" . }}`+"\n---\n"+`{{ template "chargeguard.text" . }}`)
		require.NoError(t, err, out)
		subject, body, ok := strings.Cut(out, "\n---\n")
		require.True(t, ok, out)
		return strings.TrimSpace(subject), body
	}
	subject, body := render()
	// The alerts differ in name and port: the subject names what they share.
	assert.Equal(t, "[FIRING:1] CRITICAL at site changhe-3, pile p12", subject)
	assert.Contains(t, body, "FIRING: overheat (critical) at site changhe-3, pile p12, port 4")
	assert.Contains(t, body, "ON SITE: "+on["on_site"])
	assert.Contains(t, body, "72.5 °C")
	assert.Contains(t, body, "Board: http://board.example/p12")
	assert.Contains(t, body, "RESOLVED: smoke at site changhe-3, pile p12 (whole pile)")

	// One page per port, as the oncall route groups them.
	data["alerts"] = data["alerts"].([]map[string]any)[:1]
	data["commonLabels"] = data["alerts"].([]map[string]any)[0]["labels"]
	b, err = json.Marshal(data)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dataPath, b, 0o644))
	subject, body = render()
	assert.Equal(t, "[FIRING:1] CRITICAL overheat at site changhe-3, pile p12, port 4", subject)
	assert.NotContains(t, body, "RESOLVED")

	// An alert about a whole site (site_unguarded, from the shard
	// registry) has no pile: it reads as the site, not "pile  (whole pile)".
	siteAlert := map[string]string{"alertname": "site_unguarded", "severity": "critical", "site": "changhe-9"}
	data["alerts"] = []map[string]any{{
		"status": "firing", "labels": siteAlert,
		"annotations": map[string]string{"summary": "site changhe-9: guarded by no chargeguard shard"},
		"startsAt":    "2025-07-01T12:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
	}}
	data["commonLabels"] = siteAlert
	b, err = json.Marshal(data)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dataPath, b, 0o644))
	subject, body = render()
	assert.Equal(t, "[FIRING:1] CRITICAL site_unguarded at site changhe-9", subject)
	assert.Contains(t, body, "FIRING: site_unguarded (critical) at site changhe-9 (whole site)")
	assert.NotContains(t, body, "pile")
}

// TestProductionConfigLoadsAndInhibits runs the real Alertmanager on the
// production file and checks its inhibition rules on alerts posted by the
// Notifier. The receivers' placeholder addresses (*.invalid) fail, which
// Alertmanager only logs.
func TestProductionConfigLoadsAndInhibits(t *testing.T) {
	raw, err := os.ReadFile(productionConfigPath(t))
	require.NoError(t, err)
	// testenv writes the file elsewhere: point the template glob back here.
	tmpl := filepath.Join(testenv.RepoRoot(t), "deploy", "alertmanager", "templates", "*.tmpl")
	conf := strings.Replace(string(raw), `"templates/*.tmpl"`, `"`+tmpl+`"`, 1)
	require.NotEqual(t, string(raw), conf, "the templates entry moved: update this test")
	am := testenv.Alertmanager(t, conf)

	// The loaded configuration is the production one.
	resp, err := http.Get(am.URL + "/api/v2/status")
	require.NoError(t, err)
	status, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(status), "oncall")
	assert.Contains(t, string(status), "deploy/alertmanager/templates/*.tmpl")

	n, err := New(Options{URLs: []string{am.URL}, ResendInterval: time.Minute})
	require.NoError(t, err)
	run(t, n)
	fire := func(name, pile, port string) {
		n.Fire(Alert{Labels: map[string]string{
			"alertname": name, "severity": Severity(name), "site": "s1", "pile": pile, "port": port, "kind": "residential",
		}})
	}
	fire("smoke", "p1", "0")
	fire("hot_contact", "p1", "3")  // inhibited by the smoke on its pile
	fire("overheat", "p1", "3")     // critical: never inhibited
	fire("temp_warning", "p2", "2") // another pile: not inhibited
	fire("close_failed", "p3", "0") // inhibits nothing
	fire("hot_contact", "p3", "1")  // so this stays active
	fire("temp_warning", "p4", "0") // a warning on port 0 is not a source
	fire("temp_warning", "p4", "1")

	key := func(a testenv.Alert) string {
		return a.Labels["alertname"] + "/" + a.Labels["pile"] + "/" + a.Labels["port"]
	}
	var got map[string]testenv.Alert
	require.Eventually(t, func() bool {
		got = map[string]testenv.Alert{}
		for _, a := range am.Alerts(t) {
			got[key(a)] = a
		}
		return len(got) == 8 && len(got["hot_contact/p1/3"].Status.InhibitedBy) > 0
	}, 30*time.Second, 20*time.Millisecond, "alerts: %v", got)

	assert.Equal(t, "suppressed", got["hot_contact/p1/3"].Status.State)
	for _, k := range []string{"smoke/p1/0", "overheat/p1/3", "temp_warning/p2/2", "close_failed/p3/0", "hot_contact/p3/1", "temp_warning/p4/1"} {
		assert.Equal(t, "active", got[k].Status.State, k)
		assert.Empty(t, got[k].Status.InhibitedBy, k)
	}
	receiver := func(k string) string {
		if r := got[k].Receivers; len(r) > 0 {
			return r[0].Name
		}
		return ""
	}
	assert.Equal(t, "oncall", receiver("smoke/p1/0"))
	assert.Equal(t, "oncall", receiver("close_failed/p3/0"))
	assert.Equal(t, "operators", receiver("temp_warning/p2/2"))
}

// A critical alert nobody acknowledged within a minute (the Prometheus rule
// ChargeguardCriticalUnacknowledged) reaches the duty manager and on-call;
// the duty manager's WeCom message is in Chinese and links the console.
func TestEscalationRouteAndChineseTemplate(t *testing.T) {
	out, err := amtool(t, "config", "routes", "test", "--config.file="+productionConfigPath(t),
		"alertname=ChargeguardCriticalUnacknowledged", "severity=critical", "escalate=duty_manager", "site=s1")
	require.NoError(t, err, out)
	assert.Equal(t, "duty_manager,oncall", strings.TrimSpace(lastLine(out)))
	// A pile alert without the escalate label does not wake the duty manager.
	out, err = amtool(t, "config", "routes", "test", "--config.file="+productionConfigPath(t),
		"alertname=overheat", "severity=critical", "site=s1", "pile=p1", "port=3")
	require.NoError(t, err, out)
	assert.Equal(t, "oncall", strings.TrimSpace(lastLine(out)))

	root := testenv.RepoRoot(t)
	on := Annotations("overheat", "changhe-3", "p12", 4, "72.5 °C", "")
	on["console_url"] = "https://guard.example/ports/changhe-3/p12/4"
	data := map[string]any{
		"receiver": "duty_manager",
		"status":   "firing",
		"alerts": []map[string]any{{
			"status":      "firing",
			"labels":      map[string]string{"alertname": "overheat", "severity": "critical", "site": "changhe-3", "pile": "p12", "port": "4"},
			"annotations": on,
			"startsAt":    "2025-07-01T12:00:00Z",
			"endsAt":      "0001-01-01T00:00:00Z",
		}},
		"groupLabels":       map[string]string{},
		"commonLabels":      map[string]string{},
		"commonAnnotations": map[string]string{},
		"externalURL":       "http://alertmanager.example",
	}
	b, err := json.Marshal(data)
	require.NoError(t, err)
	dataPath := filepath.Join(t.TempDir(), "data.json")
	require.NoError(t, os.WriteFile(dataPath, b, 0o644))
	for _, tmpl := range []string{"chargeguard.zh.text", "chargeguard.text"} {
		out, err = amtool(t, "template", "render",
			"--template.glob="+filepath.Join(root, "deploy", "alertmanager", "templates", "*.tmpl"),
			"--template.data="+dataPath, "--template.text="+`{{ template "`+tmpl+`" . }}`)
		require.NoError(t, err, out)
		if tmpl == "chargeguard.zh.text" {
			assert.Contains(t, out, "【告警】严重：overheat")
			assert.Contains(t, out, "位置：站点 changhe-3，充电桩 p12，端口 4")
			// The alert's own texts in Chinese, not the English quoted.
			assert.Contains(t, out, "情况："+on["summary_zh"])
			assert.Contains(t, out, "现场处置："+on["on_site_zh"])
			assert.NotContains(t, out, on["on_site"])
			assert.NotContains(t, out, on["summary"])
		}
		assert.Contains(t, out, "https://guard.example/ports/changhe-3/p12/4", tmpl)
	}
}
