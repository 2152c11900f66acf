package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/internal/testenv"
)

// webhookMessage is Alertmanager's webhook payload (version 4), as much of
// it as the tests read.
type webhookMessage struct {
	Version      string            `json:"version"`
	Status       string            `json:"status"`
	Receiver     string            `json:"receiver"`
	CommonLabels map[string]string `json:"commonLabels"`
	Alerts       []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
		EndsAt      time.Time         `json:"endsAt"`
	} `json:"alerts"`
}

// webhook is the receiver Alertmanager notifies in the tests.
type webhook struct {
	srv  *httptest.Server
	mu   sync.Mutex
	msgs []webhookMessage
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var m webhookMessage
		if err == nil {
			err = json.Unmarshal(body, &m)
		}
		if err != nil {
			t.Errorf("webhook: bad payload %q: %v", body, err)
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.msgs = append(w.msgs, m)
		w.mu.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// withStatus returns the notifications whose status is status.
func (w *webhook) withStatus(status string) []webhookMessage {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []webhookMessage
	for _, m := range w.msgs {
		if m.Status == status {
			out = append(out, m)
		}
	}
	return out
}

// webhookConfig pages at once, as deploy/alertmanager does for critical
// alerts, but with a 1 s group_wait and group_interval so the test is quick.
func webhookConfig(url string) string {
	return `route:
  receiver: oncall
  group_by: [alertname, site, pile, port]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: oncall
    webhook_configs:
      - url: "` + url + `"
        send_resolved: true
`
}

func TestRealAlertmanagerPagesAndResolves(t *testing.T) {
	hook := newWebhook(t)
	am := testenv.Alertmanager(t, webhookConfig(hook.srv.URL))

	n, err := New(Options{URLs: []string{am.URL}, ResendInterval: time.Second})
	require.NoError(t, err)
	run(t, n)

	a := Alert{
		Labels: map[string]string{
			"alertname": "overheat", "severity": SeverityCritical,
			"site": "changhe-3", "pile": "p12", "port": "4", "kind": "residential",
		},
		Annotations: Annotations("overheat", "changhe-3", "p12", 4, "72.5 °C", "http://chargeguard.example/board"),
	}
	n.Fire(a)

	require.Eventually(t, func() bool { return len(hook.withStatus("firing")) >= 1 }, 30*time.Second, 20*time.Millisecond)
	page := hook.withStatus("firing")[0]
	assert.Equal(t, "4", page.Version)
	require.Len(t, page.Alerts, 1)
	assert.Equal(t, "firing", page.Alerts[0].Status)
	assert.Equal(t, a.Labels, page.Alerts[0].Labels)
	assert.Equal(t, a.Annotations["on_site"], page.Alerts[0].Annotations["on_site"])
	assert.Equal(t, RunbookURL("", "overheat"), page.Alerts[0].Annotations["runbook_url"])

	n.Resolve(Alert{Labels: a.Labels})
	require.Eventually(t, func() bool { return len(hook.withStatus("resolved")) >= 1 }, 30*time.Second, 20*time.Millisecond)
	res := hook.withStatus("resolved")[0]
	require.Len(t, res.Alerts, 1)
	assert.Equal(t, "resolved", res.Alerts[0].Status)
	assert.Equal(t, a.Labels, res.Alerts[0].Labels)
	assert.False(t, res.Alerts[0].EndsAt.IsZero())

	// Alertmanager 0.25's GET /api/v2/alerts lists active alerts only: the
	// resolved one is gone from it.
	assert.Empty(t, am.Alerts(t))
}

func TestRealAlertmanagerKeepsResentAlertsAndExpiresOrphans(t *testing.T) {
	hook := newWebhook(t)
	am := testenv.Alertmanager(t, webhookConfig(hook.srv.URL))

	// endsAt is 4 × 300ms ahead on every post: without the resends,
	// Alertmanager would resolve the alert after 1.2 s.
	const resend = 300 * time.Millisecond
	n, err := New(Options{URLs: []string{am.URL}, ResendInterval: resend})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	n.Fire(Alert{Labels: map[string]string{"alertname": "pile_offline", "severity": SeverityCritical, "site": "s1", "pile": "p1", "port": "0"}})
	require.Eventually(t, func() bool { return len(hook.withStatus("firing")) >= 1 }, 30*time.Second, 20*time.Millisecond)
	require.Never(t, func() bool { return len(hook.withStatus("resolved")) > 0 }, 10*resend, 20*time.Millisecond,
		"a resent alert must stay active")

	// chargeguard dies without resolving: Alertmanager resolves the
	// orphan itself once its last endsAt passes, instead of paging forever.
	cancel()
	require.NoError(t, <-done)
	done <- nil // for the cleanup
	require.Eventually(t, func() bool { return len(hook.withStatus("resolved")) >= 1 }, 30*time.Second, 20*time.Millisecond)
}
