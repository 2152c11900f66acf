package app_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/app"
	"github.com/chargeguard/chargeguard/internal/testenv"
	"github.com/chargeguard/chargeguard/simulators"
)

// scenarioRun is what one scenario left behind.
type scenarioRun struct {
	sc     *simulators.Scenario
	res    simulators.Result
	err    error
	alerts map[string]float64 // chargeguard_alerts_total by alertname, when the piles stopped
	sent   float64            // close commands sent
	// first is when chargeguard_alerts_total first counted each alertname,
	// watched while the scenario ran: an alert raised only by the piles'
	// deaths at the clean stop comes after res.Ended.
	first map[string]time.Time
}

// alertsByName reads chargeguard_alerts_total by alertname and the close
// commands sent.
func alertsByName(reg *prometheus.Registry) (alerts map[string]float64, closes float64, err error) {
	mfs, err := reg.Gather()
	if err != nil {
		return nil, 0, fmt.Errorf("gather metrics: %w", err)
	}
	alerts = map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "chargeguard_alerts_total":
				for _, l := range m.GetLabel() {
					if l.GetName() == "alertname" {
						alerts[l.GetValue()] += m.GetCounter().GetValue()
					}
				}
			case "chargeguard_commands_sent_total":
				for _, l := range m.GetLabel() {
					if l.GetName() == "action" && l.GetValue() == "close" {
						closes += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	return alerts, closes, nil
}

// runScenario starts a chargeguard of its own (topic root and client id
// of the scenario's, so scenarios run side by side on one broker) and plays
// the scenario's piles against it. It reports errors instead of failing,
// because it runs on its own goroutine.
func runScenario(ctx context.Context, path, brokerURL, amURL string, influx *testenv.InfluxServer, dataDir string, log zerolog.Logger) (run scenarioRun) {
	sc, err := simulators.LoadScenario(path)
	if err != nil {
		run.err = err
		return run
	}
	run.sc = sc
	root := "sc_" + strings.ReplaceAll(sc.Name, "-", "_")
	sc.Root = root
	cfg := testConfig(nil, brokerURL, influx, dataDir)
	cfg.MQTT.TopicRoot = root
	cfg.MQTT.ClientID = "cg-" + root
	cfg.Alerting.Alertmanagers = []string{amURL}
	if sc.Speed > 1 {
		// A simulator faster than real time is a pile whose clock runs in
		// the wrong unit: under contract v1.1 its timed rules would run
		// on receive time once its ts is 5 minutes ahead. The scenarios
		// check the rules on the piles' clock, so let it run ahead.
		cfg.Alerting.Rules.Defaults.MaxClockSkew = 30 * 24 * time.Hour
	}
	reg := prometheus.NewRegistry()
	a, err := app.New(cfg, app.Options{Logger: log.With().Str("scenario", sc.Name).Logger(), Registry: reg})
	if err != nil {
		run.err = err
		return run
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && run.err == nil {
			run.err = err
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := httpClient.Get("http://" + a.HTTPAddr() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			run.err = fmt.Errorf("chargeguard for %s never became ready", sc.Name)
			return run
		}
		time.Sleep(50 * time.Millisecond) // polling readiness from a goroutine that cannot use require
	}
	// Watch the alert counters while the piles run, so that an alert can
	// be placed before or after the end of the scenario.
	run.first = map[string]time.Time{}
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan error, 1)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			alerts, _, err := alertsByName(reg)
			if err != nil {
				watched <- err
				return
			}
			now := time.Now()
			for name, n := range alerts {
				if _, seen := run.first[name]; !seen && n > 0 {
					run.first[name] = now
				}
			}
			select {
			case <-watchCtx.Done():
				watched <- nil
				return
			case <-tick.C:
			}
		}
	}()
	run.res, run.err = simulators.RunScenario(ctx, sc, brokerURL, log)
	stopWatch()
	if err := <-watched; err != nil && run.err == nil {
		run.err = err
	}
	alerts, sent, err := alertsByName(reg)
	if err != nil && run.err == nil {
		run.err = err
	}
	run.alerts, run.sent = alerts, sent
	return run
}

// The simulators' scenario files against the real service on real
// Mosquitto, InfluxDB and Alertmanager: every fault scenario gets its close
// (checked by the scenario's own expectations, on what its piles received)
// and its notification (through Alertmanager to a webhook); every healthy
// scenario gets no close and no alert. A fault's alert must come before the
// piles stop (their deaths at the end raise pile_offline by themselves).
// CHARGEGUARD_SCENARIOS=name,name runs only those scenario files.
func TestScenariosEndToEnd(t *testing.T) {
	mosq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	hook := newWebhook(t)
	am := testenv.Alertmanager(t, alertmanagerConfig(hook.srv.URL))
	paths, err := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "simulators", "scenarios", "*.yaml"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(paths), 15)
	if only := os.Getenv("CHARGEGUARD_SCENARIOS"); only != "" {
		// CHARGEGUARD_SCENARIOS=pile_offline,overheat runs just those.
		paths = slices.DeleteFunc(paths, func(p string) bool {
			return !slices.Contains(strings.Split(only, ","), strings.TrimSuffix(filepath.Base(p), ".yaml"))
		})
		require.NotEmpty(t, paths, "CHARGEGUARD_SCENARIOS=%s names no scenario", only)
	}

	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	runs := make([]scenarioRun, len(paths))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 6) // 2 cores: a few scenarios at a time keep their wall-clock bounds honest
	for i, p := range paths {
		dir := t.TempDir()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			runs[i] = runScenario(ctx, p, mosq.URL, am.URL, influx, dir, log)
		}()
	}
	wg.Wait()

	for i, run := range runs {
		t.Run(filepath.Base(paths[i]), func(t *testing.T) {
			require.NoError(t, run.err)
			require.True(t, run.res.Passed(), "%s", run.res)
			sc := run.sc
			switch sc.Policy {
			case "healthy":
				require.Zero(t, run.sent, "a healthy fleet got a close")
				for name, n := range run.alerts {
					// The piles publish their deaths when the run stops, which
					// is pile_offline for any that were charging.
					if name != "pile_offline" {
						require.Zero(t, n, "a healthy fleet raised %s", name)
					}
				}
			case "full":
				require.Positive(t, run.sent)
				require.Empty(t, run.alerts["full"], "a full battery is an info event, not an alert")
			default:
				require.Positive(t, run.alerts[sc.Policy], "chargeguard raised no %s alert", sc.Policy)
				// The piles' deaths at the clean stop raise pile_offline
				// (and could raise others): the alert must come from the
				// scenario, before the piles stopped.
				first, seen := run.first[sc.Policy]
				require.True(t, seen, "chargeguard raised %s only after the scenario ended", sc.Policy)
				require.True(t, first.Before(run.res.Ended), "chargeguard raised %s at %s, after the scenario ended at %s",
					sc.Policy, first.Format(time.StampMilli), run.res.Ended.Format(time.StampMilli))
				require.NotEmpty(t, sc.Faults, "a fault scenario names its faulty pile")
				parts := strings.Split(sc.Faults[0].Target, "/")
				require.GreaterOrEqual(t, len(parts), 2)
				site, pile := parts[0], parts[1]
				require.Eventually(t, func() bool { return hook.firingBefore(sc.Policy, site, pile, run.res.Ended) },
					30*time.Second, 100*time.Millisecond, "on-call was never notified of %s at %s/%s", sc.Policy, site, pile)
			}
		})
	}
}
