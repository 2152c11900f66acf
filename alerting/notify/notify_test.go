package notify

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	wait = 30 * time.Second
	tick = 5 * time.Millisecond
)

var t0 = time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)

func TestFirePostsTheAlertAsAPIv2JSON(t *testing.T) {
	am := newFakeAM(t)
	reg := prometheus.NewRegistry()
	n, err := New(Options{
		URLs:           []string{am.url() + "/prefix"},
		ResendInterval: time.Hour,
		RunbookBaseURL: "https://docs.city.example/chargeguard/",
		Registerer:     reg,
		Now:            func() time.Time { return t0 },
	})
	require.NoError(t, err)
	run(t, n)

	a := overheat("s1", "p7", 3)
	a.StartsAt = t0.Add(-5 * time.Second)
	a.GeneratorURL = "http://chargeguard.example/board/s1/p7/3"
	n.Fire(a)

	require.Eventually(t, func() bool { return len(am.all()) == 1 }, wait, tick)
	p := am.all()[0]
	assert.Equal(t, "/prefix/api/v2/alerts", p.path)
	assert.Equal(t, "application/json", p.contentType)
	require.Len(t, p.alerts, 1)
	got := p.alerts[0]
	assert.Equal(t, a.Labels, got.Labels)
	assert.Equal(t, a.Annotations["summary"], got.Annotations["summary"])
	assert.Equal(t, a.Annotations["on_site"], got.Annotations["on_site"])
	assert.Equal(t, "https://docs.city.example/chargeguard/docs/runbooks/overheat.md", got.Annotations["runbook_url"])
	assert.True(t, got.StartsAt.Equal(a.StartsAt), "startsAt %v", got.StartsAt)
	// A firing alert stays valid for 4 resend intervals.
	assert.True(t, got.EndsAt.Equal(t0.Add(4*time.Hour)), "endsAt %v", got.EndsAt)
	assert.Equal(t, a.GeneratorURL, got.GeneratorURL)

	// The field names are the API's, not Go's.
	var raw []map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(p.raw, &raw))
	keys := make([]string, 0)
	for k := range raw[0] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	assert.Equal(t, []string{"annotations", "endsAt", "generatorURL", "labels", "startsAt"}, keys)

	host := strings.TrimPrefix(am.url(), "http://")
	// The counter moves once the response is back, a moment after the
	// fake has recorded the post.
	require.Eventually(t, func() bool { return testutil.ToFloat64(n.metrics.sent.WithLabelValues(host)) == 1 }, wait, tick)
	assert.Equal(t, 1.0, testutil.ToFloat64(n.metrics.active))
	assert.Len(t, n.Active(), 1)
}

func TestFiringAgainUnchangedDoesNotPost(t *testing.T) {
	am := newFakeAM(t)
	n, err := New(Options{URLs: []string{am.url()}, ResendInterval: time.Hour})
	require.NoError(t, err)
	run(t, n)

	a := overheat("s1", "p1", 1)
	n.Fire(a)
	require.Eventually(t, func() bool { return len(am.delivered()) == 1 }, wait, tick)
	startsAt := am.delivered()[0].StartsAt

	n.Fire(a) // the engine saw the same condition again
	a2 := overheat("s1", "p1", 1)
	a2.Annotations = Annotations("overheat", "s1", "p1", 1, "75.0 °C", "")
	n.Fire(a2) // a new reading: the texts changed, so it is posted
	require.Eventually(t, func() bool { return len(am.delivered()) == 2 }, wait, tick)
	got := am.delivered()[1]
	assert.Contains(t, got.Annotations["description"], "75.0 °C")
	assert.True(t, got.StartsAt.Equal(startsAt), "a re-fire keeps the first startsAt")
	assert.Len(t, n.Active(), 1)
	require.Never(t, func() bool { return len(am.all()) > 2 }, 200*time.Millisecond, tick)
}

const resend = 40 * time.Millisecond

// firingWithResend runs a notifier that re-posts every resend to a fake
// Alertmanager, with one overheat alert firing.
func firingWithResend(t *testing.T, resend time.Duration) (*fakeAM, *Notifier) {
	t.Helper()
	am := newFakeAM(t)
	n, err := New(Options{URLs: []string{am.url()}, ResendInterval: resend})
	require.NoError(t, err)
	run(t, n)
	n.Fire(overheat("s1", "p1", 2))
	return am, n
}

func TestResendKeepsTheAlertAlive(t *testing.T) {
	am, _ := firingWithResend(t, resend)
	require.Eventually(t, func() bool { return len(am.deliveredNamed("overheat")) >= 4 }, wait, tick)
	for _, p := range am.all() {
		for _, a := range p.alerts {
			// Each post pushes endsAt beyond the next resend, with room.
			assert.True(t, a.EndsAt.After(p.at.Add(resend)), "endsAt %v posted at %v", a.EndsAt, p.at)
		}
	}
	// Every post is the same alert: Alertmanager deduplicates it by labels.
	for _, a := range am.delivered() {
		assert.Equal(t, "2", a.Labels["port"])
	}
}

// A replica that stops leading abandons its alerts: it posts them no more
// (the new leader does, and resolves them when they end; a resend from
// here would open them again) and posts no resolve either.
func TestAbandonStopsTheResends(t *testing.T) {
	am, n := firingWithResend(t, resend)
	require.Eventually(t, func() bool { return len(am.deliveredNamed("overheat")) >= 2 }, wait, tick)
	require.Equal(t, 1, n.Abandon())
	require.Empty(t, n.Active())
	time.Sleep(2 * resend) // what was queued before goes out
	posted := len(am.deliveredNamed("overheat"))
	time.Sleep(5 * resend)
	require.Equal(t, posted, len(am.deliveredNamed("overheat")), "an abandoned alert was posted again")
	for _, a := range am.delivered() {
		require.True(t, a.EndsAt.After(time.Now().Add(-time.Hour)), "no resolve was posted")
	}
}

func TestResolvePostsEndsAtAndForgetsTheAlert(t *testing.T) {
	am := newFakeAM(t)
	now := t0
	var mu sync.Mutex
	const resend = 30 * time.Millisecond
	n, err := New(Options{URLs: []string{am.url()}, ResendInterval: resend, Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}})
	require.NoError(t, err)
	run(t, n)

	a := overheat("s1", "p1", 4)
	n.Fire(a)
	require.Eventually(t, func() bool { return len(am.delivered()) >= 1 }, wait, tick)

	mu.Lock()
	now = t0.Add(90 * time.Second)
	mu.Unlock()
	// The engine resolves with the labels only.
	n.Resolve(Alert{Labels: a.Labels})
	assert.Empty(t, n.Active())
	assert.Equal(t, 0.0, testutil.ToFloat64(n.metrics.active))

	var last gotAlert
	require.Eventually(t, func() bool {
		d := am.delivered()
		last = d[len(d)-1]
		return last.EndsAt.Equal(t0.Add(90 * time.Second))
	}, wait, tick)
	assert.True(t, last.StartsAt.Equal(t0), "startsAt kept from the firing alert: %v", last.StartsAt)
	assert.Equal(t, a.Annotations["summary"], last.Annotations["summary"], "annotations kept from the firing alert")

	// Once resolved, it is never posted again.
	count := len(am.delivered())
	require.Never(t, func() bool { return len(am.delivered()) > count }, 10*resend, tick)
}

func TestResolveNeverEndsBeforeItStarts(t *testing.T) {
	am := newFakeAM(t)
	n, err := New(Options{URLs: []string{am.url()}, ResendInterval: time.Hour, Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	run(t, n)

	a := overheat("s1", "p1", 1)
	a.StartsAt = t0.Add(time.Minute) // the pile's clock is ahead
	n.Resolve(a)
	require.Eventually(t, func() bool { return len(am.delivered()) == 1 }, wait, tick)
	got := am.delivered()[0]
	assert.False(t, got.EndsAt.Before(got.StartsAt), "starts %v ends %v", got.StartsAt, got.EndsAt)
}

func TestADeadOrHangingAlertmanagerNeverBlocksFire(t *testing.T) {
	hanging := newFakeAM(t)
	hanging.hang = true
	healthy := newFakeAM(t)
	refused := "http://" + closedAddr(t)

	reg := prometheus.NewRegistry()
	n, err := New(Options{
		URLs:           []string{hanging.url(), refused, healthy.url()},
		ResendInterval: time.Hour,
		Timeout:        time.Minute, // the hanging post stays in flight
		MinBackoff:     5 * time.Millisecond,
		MaxBackoff:     20 * time.Millisecond,
		Registerer:     reg,
	})
	require.NoError(t, err)
	run(t, n)

	const alerts = 2000
	fired := make(chan struct{})
	go func() {
		for i := range alerts {
			n.Fire(overheat("s1", fmt.Sprintf("p%d", i), 1))
		}
		close(fired)
	}()
	select {
	case <-fired:
	case <-time.After(wait):
		t.Fatal("Fire blocked behind a dead Alertmanager")
	}

	// The healthy Alertmanager gets everything although the others fail.
	require.Eventually(t, func() bool { return len(deliveredPiles(healthy)) == alerts }, wait, tick)
	refusedHost := strings.TrimPrefix(refused, "http://")
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(n.metrics.errors.WithLabelValues(refusedHost)) >= 3
	}, wait, tick, "the refused Alertmanager is retried")
	healthyHost := strings.TrimPrefix(healthy.url(), "http://")
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(n.metrics.sent.WithLabelValues(healthyHost)) == alerts
	}, wait, tick)
}

// deliveredPiles returns the distinct piles delivered to f.
func deliveredPiles(f *fakeAM) map[string]bool {
	piles := map[string]bool{}
	for _, a := range f.delivered() {
		piles[a.Labels["pile"]] = true
	}
	return piles
}

func TestFailedPostsAreRetriedWithBackoff(t *testing.T) {
	am := newFakeAM(t)
	am.respond = func(i int, _ *http.Request) (int, string) {
		if i < 3 {
			return http.StatusServiceUnavailable, "not ready"
		}
		return http.StatusOK, ""
	}
	logger, logs := captureLogger()
	const minBackoff = 20 * time.Millisecond
	n, err := New(Options{URLs: []string{am.url()}, ResendInterval: time.Hour, MinBackoff: minBackoff, Logger: logger})
	require.NoError(t, err)
	run(t, n)

	n.Fire(overheat("s1", "p1", 1))
	require.Eventually(t, func() bool { return len(am.delivered()) == 1 }, wait, tick)
	posts := am.all()
	require.Len(t, posts, 4)
	// Back-off doubles: 20ms, 40ms, 80ms.
	for i := 1; i < 4; i++ {
		gap := posts[i].at.Sub(posts[i-1].at)
		assert.GreaterOrEqual(t, gap, minBackoff<<(i-1), "gap before post %d", i)
	}
	host := strings.TrimPrefix(am.url(), "http://")
	assert.Equal(t, 3.0, testutil.ToFloat64(n.metrics.errors.WithLabelValues(host)))
	require.Eventually(t, func() bool { return testutil.ToFloat64(n.metrics.sent.WithLabelValues(host)) == 1 }, wait, tick)
	assert.Contains(t, logs.String(), "HTTP 503")
}

func TestARejectedBatchIsDroppedNotRetried(t *testing.T) {
	am := newFakeAM(t)
	am.respond = func(i int, _ *http.Request) (int, string) {
		if i == 0 {
			return http.StatusBadRequest, `{"code":400,"message":"start time must be before end time"}`
		}
		return http.StatusOK, ""
	}
	logger, logs := captureLogger()
	n, err := New(Options{URLs: []string{am.url()}, ResendInterval: time.Hour, MinBackoff: time.Millisecond, Logger: logger})
	require.NoError(t, err)
	run(t, n)

	n.Fire(overheat("s1", "p1", 1))
	require.Eventually(t, func() bool { return testutil.ToFloat64(n.metrics.dropped) == 1 }, wait, tick)
	require.Never(t, func() bool { return len(am.all()) > 1 }, 100*time.Millisecond, tick)
	assert.Contains(t, logs.String(), "start time must be before end time")

	// The loop is not stuck: the next alert goes out.
	n.Fire(overheat("s1", "p1", 2))
	require.Eventually(t, func() bool { return len(am.delivered()) == 1 }, wait, tick)
}

func TestQueueOverflowDropsOldestActiveUpdatesAndCountsThem(t *testing.T) {
	am := newFakeAM(t)
	n, err := New(Options{URLs: []string{am.url()}, QueueCapacity: 3, ResendInterval: 300 * time.Millisecond})
	require.NoError(t, err)

	// Before Run nothing is sent: the queue fills up.
	a, b, c, d := overheat("s", "a", 1), overheat("s", "b", 1), overheat("s", "c", 1), overheat("s", "d", 1)
	n.Fire(a)
	n.Fire(b)
	n.Fire(c)
	n.Resolve(a) // full: a's firing update, now superseded, goes
	assert.Equal(t, 1.0, testutil.ToFloat64(n.metrics.dropped))
	n.Fire(d) // full: b's update goes (b stays active and is resent)
	assert.Equal(t, 2.0, testutil.ToFloat64(n.metrics.dropped))
	assert.Equal(t, 3.0, testutil.ToFloat64(n.metrics.queueLength))
	for i := range 10 {
		n.Fire(overheat("s", fmt.Sprintf("x%d", i), 1))
	}
	assert.Equal(t, 12.0, testutil.ToFloat64(n.metrics.dropped))
	assert.Equal(t, 3.0, testutil.ToFloat64(n.metrics.queueLength))
	// a's resolve is the latest state of a and was never dropped.
	assert.Len(t, n.Active(), 13)

	run(t, n)
	require.Eventually(t, func() bool { return len(am.all()) >= 1 }, wait, tick)
	first := am.all()[0].alerts
	require.Len(t, first, 3)
	assert.Equal(t, "a", first[0].Labels["pile"])
	assert.False(t, first[0].EndsAt.After(time.Now()), "a is posted resolved")
	assert.Equal(t, "x8", first[1].Labels["pile"])
	assert.Equal(t, "x9", first[2].Labels["pile"])

	// b was dropped from the queue but not from the active set: the resend
	// delivers it, and the other active alerts too.
	require.Eventually(t, func() bool {
		got := deliveredPiles(am)
		for _, p := range []string{"b", "c", "d", "x0"} {
			if !got[p] {
				return false
			}
		}
		return true
	}, wait, tick)
}

func TestLogReceiverWithoutURLs(t *testing.T) {
	logger, logs := captureLogger()
	n, err := New(Options{Logger: logger})
	require.NoError(t, err)
	run(t, n)

	smoke := Alert{
		Labels:      map[string]string{"alertname": "smoke", "severity": SeverityCritical, "site": "s1", "pile": "p1", "port": "0"},
		Annotations: Annotations("smoke", "s1", "p1", 0, "", ""),
	}
	hot := Alert{
		Labels:      map[string]string{"alertname": "hot_contact", "severity": SeverityWarning, "site": "s1", "pile": "p1", "port": "3"},
		Annotations: Annotations("hot_contact", "s1", "p1", 3, "48 °C over ambient", ""),
	}
	n.Fire(smoke)
	n.Fire(hot)
	n.Fire(hot) // unchanged: not logged again
	n.Resolve(Alert{Labels: smoke.Labels})

	find := func(alertname, msg string) []map[string]any {
		var out []map[string]any
		for _, l := range logs.lines(t) {
			if l["alertname"] == alertname && l["message"] == msg {
				out = append(out, l)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(find("smoke", "alert resolved")) == 1 }, wait, tick)
	fired := find("smoke", "alert firing")
	require.Len(t, fired, 1)
	assert.Equal(t, "error", fired[0]["level"], "critical alerts log at error level")
	assert.Equal(t, "s1", fired[0]["site"])
	assert.Contains(t, fired[0]["annotations"].(map[string]any)["on_site"], "119")
	// A resolve is good news: info, so an error-level filter shows only
	// what is wrong now (severity still says what it was).
	assert.Equal(t, "info", find("smoke", "alert resolved")[0]["level"])
	assert.Equal(t, SeverityCritical, find("smoke", "alert resolved")[0]["severity"])

	require.Len(t, find("hot_contact", "alert firing"), 1)
	assert.Equal(t, "warn", find("hot_contact", "alert firing")[0]["level"])
	require.Never(t, func() bool { return len(find("hot_contact", "alert firing")) > 1 }, 100*time.Millisecond, tick)
	require.Eventually(t, func() bool { return testutil.ToFloat64(n.metrics.sent.WithLabelValues(logReceiver)) == 3 }, wait, tick)
}

func TestCredentialsInURLsNeverReachLogsErrorsOrMetrics(t *testing.T) {
	secrets := []string{"alice-user", "s3cr3t-pass", "t0k3n-xyz", "bob-user", "hunter2-secret", "qs-secret-token"}

	// A proxy in front of Alertmanager that, when it refuses a request,
	// echoes the request back, credentials and all.
	am := newFakeAM(t)
	am.respond = func(i int, r *http.Request) (int, string) {
		if i == 0 {
			return http.StatusBadGateway, "refused " + r.URL.String() + " auth " + r.Header.Get("Authorization")
		}
		return http.StatusOK, ""
	}
	amURL, err := url.Parse(am.url())
	require.NoError(t, err)
	amURL.User = url.UserPassword("bob-user", "hunter2-secret")
	amURL.RawQuery = "auth=qs-secret-token"
	deadHost := closedAddr(t)
	dead := "http://alice-user:s3cr3t-pass@" + deadHost + "/am?token=t0k3n-xyz"

	logger, logs := captureLogger()
	reg := prometheus.NewRegistry()
	n, err := New(Options{
		URLs:           []string{dead, amURL.String()},
		ResendInterval: time.Hour,
		MinBackoff:     5 * time.Millisecond,
		Logger:         logger,
		Registerer:     reg,
	})
	require.NoError(t, err)
	run(t, n)
	n.Fire(overheat("s1", "p1", 1))

	require.Eventually(t, func() bool {
		return len(am.delivered()) == 1 && testutil.ToFloat64(n.metrics.errors.WithLabelValues(deadHost)) >= 2
	}, wait, tick)

	// The credentials are used...
	p := am.delivered()
	require.Len(t, p, 1)
	ok := am.all()[1]
	assert.True(t, ok.hasAuth)
	assert.Equal(t, "bob-user", ok.user)
	assert.Equal(t, "hunter2-secret", ok.pass)
	assert.Equal(t, "auth=qs-secret-token", ok.query)
	// ...and never shown.
	out := logs.String()
	require.Contains(t, out, "post alerts to "+deadHost, "the failure is logged, by host:port")
	require.Contains(t, out, "HTTP 502")
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var metricText strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				metricText.WriteString(l.GetValue() + "\n")
			}
		}
	}
	assert.Contains(t, metricText.String(), deadHost)
	for _, s := range secrets {
		assert.NotContains(t, out, s, "log output")
		assert.NotContains(t, metricText.String(), s, "metric labels")
	}
	assert.NotContains(t, out, "Ym9iLXVzZXI6aHVudGVyMi1zZWNyZXQ=", "base64 of bob-user:hunter2-secret")

	// Errors from New do not quote a bad URL either.
	for _, bad := range []string{
		"http://alice-user:s3cr3t-pass@[::1",
		"ftp://alice-user:s3cr3t-pass@host/?token=t0k3n-xyz",
		"http://alice-user:s3cr3t-pass@/?token=t0k3n-xyz",
		"http://alice-user:s3cr3t-pass%zz@host",
	} {
		_, err := New(Options{URLs: []string{bad}})
		require.Error(t, err, bad)
		for _, s := range secrets {
			assert.NotContains(t, err.Error(), s)
		}
	}
}

func TestMetricNamesAreTheContract(t *testing.T) {
	am := newFakeAM(t)
	reg := prometheus.NewRegistry()
	n, err := New(Options{URLs: []string{am.url()}, Registerer: reg, ResendInterval: time.Hour})
	require.NoError(t, err)
	run(t, n)
	n.Fire(overheat("s1", "p1", 1))
	require.Eventually(t, func() bool { return len(am.delivered()) == 1 }, wait, tick)

	mfs, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, want := range []string{
		"chargeguard_notify_alerts_sent_total",
		"chargeguard_notify_errors_total",
		"chargeguard_notify_dropped_total",
		"chargeguard_notify_queue_length",
		"chargeguard_notify_latency_seconds",
		"chargeguard_notify_active_alerts",
	} {
		assert.Contains(t, names, want)
	}
	// Registering twice is an error, not a panic.
	_, err = New(Options{URLs: []string{am.url()}, Registerer: reg})
	require.Error(t, err)
}

func TestAlertsAreCleanedBeforeTheyCanPoisonABatch(t *testing.T) {
	am := newFakeAM(t)
	n, err := New(Options{URLs: []string{am.url()}, ResendInterval: time.Hour})
	require.NoError(t, err)
	run(t, n)

	// No alertname: refused and counted.
	n.Fire(Alert{Labels: map[string]string{"site": "s1"}})
	assert.Equal(t, 1.0, testutil.ToFloat64(n.metrics.dropped))
	assert.Empty(t, n.Active())

	// An empty label is no label; a bad label name is dropped; bad UTF-8
	// is repaired; the label set is the identity whatever the map order.
	n.Fire(Alert{
		Labels:       map[string]string{"alertname": "overheat", "site": "s1", "pile": "p\xff", "empty": "", "bad-name": "x"},
		Annotations:  map[string]string{"summary": "ok", "bad name": "dropped"},
		GeneratorURL: "http://[::1",
	})
	n.Fire(Alert{Labels: map[string]string{"pile": "p\xff", "site": "s1", "alertname": "overheat"}, Annotations: map[string]string{"summary": "ok"}})
	require.Len(t, n.Active(), 1)
	require.Eventually(t, func() bool { return len(am.delivered()) >= 1 }, wait, tick)
	got := am.delivered()[0]
	assert.Equal(t, map[string]string{"alertname": "overheat", "site": "s1", "pile": "p\uFFFD"}, got.Labels)
	assert.NotContains(t, got.Annotations, "bad name")
	assert.Empty(t, got.GeneratorURL)
}

func TestConcurrentFireAndResolveEndInTheLatestState(t *testing.T) {
	am := newFakeAM(t)
	const resend = 10 * time.Millisecond
	// A frozen clock tells firing posts (endsAt t0+4×resend) from resolves
	// (endsAt t0).
	n, err := New(Options{URLs: []string{am.url()}, ResendInterval: resend, Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	run(t, n)

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				a := overheat("s", fmt.Sprintf("g%d", g), i%5+1)
				n.Fire(a)
				if i%3 == 0 {
					n.Resolve(a)
				}
				_ = n.Active()
			}
		})
	}
	wg.Wait()
	// The last operation on ports 1 (i=195) and 4 (i=198) is a resolve.
	active := n.Active()
	require.Len(t, active, 8*3)
	want := map[string]time.Time{}
	for g := range 8 {
		for port := 1; port <= 5; port++ {
			key := fmt.Sprintf("g%d/%d", g, port)
			if port == 1 || port == 4 {
				want[key] = t0
			} else {
				want[key] = t0.Add(4 * resend)
			}
		}
	}
	require.Eventually(t, func() bool {
		last := map[string]time.Time{}
		for _, a := range am.delivered() {
			last[a.Labels["pile"]+"/"+a.Labels["port"]] = a.EndsAt
		}
		for k, w := range want {
			if !last[k].Equal(w) {
				return false
			}
		}
		return true
	}, wait, tick)
}

func TestOptionsAreChecked(t *testing.T) {
	for _, o := range []Options{
		{ResendInterval: -time.Second},
		{Timeout: -time.Second},
		{QueueCapacity: -1},
		{URLs: []string{"127.0.0.1:9093"}}, // no scheme
	} {
		_, err := New(o)
		assert.Error(t, err, "%+v", o)
	}
	n, err := New(Options{})
	require.NoError(t, err)
	assert.Equal(t, time.Minute, n.resend)
}

func TestRunOnlyOnce(t *testing.T) {
	n, err := New(Options{})
	require.NoError(t, err)
	run(t, n)
	require.Eventually(t, func() bool { return n.running.Load() }, wait, tick)
	require.Error(t, n.Run(t.Context()))
}

func TestTwoAlertmanagersOnOneHostGetDistinctNames(t *testing.T) {
	am := newFakeAM(t)
	n, err := New(Options{URLs: []string{am.url() + "/a", am.url() + "/b"}})
	require.NoError(t, err)
	host := strings.TrimPrefix(am.url(), "http://")
	assert.Equal(t, host, n.receivers[0].name)
	assert.Equal(t, host+"#2", n.receivers[1].name)

	n2, err := New(Options{URLs: []string{"https://am.example", "http://am.example"}})
	require.NoError(t, err)
	assert.Equal(t, "am.example:443", n2.receivers[0].name)
	assert.Equal(t, "am.example:80", n2.receivers[1].name)
}
