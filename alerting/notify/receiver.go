package notify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// errRejected marks a post that Alertmanager refused as invalid: retrying the
// same batch cannot succeed.
var errRejected = errors.New("rejected by Alertmanager")

// alertmanager posts alerts to one Alertmanager's API v2.
type alertmanager struct {
	// name is host:port, the only part of the URL that may be logged.
	name string
	// endpoint is the full URL, credentials included: never log it.
	endpoint string
	// secrets are the parts of the URL that must not show in an error.
	secrets []string
	client  *http.Client
	timeout time.Duration
}

func newAlertmanager(i int, raw string, client *http.Client, timeout time.Duration) (*alertmanager, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// The parse error quotes the URL, credentials included, so its
		// text must not be kept.
		return nil, fmt.Errorf("notify: Alertmanager URL #%d is not a valid URL", i+1)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("notify: Alertmanager URL #%d: scheme must be http or https", i+1)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("notify: Alertmanager URL #%d has no host", i+1)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	am := &alertmanager{
		name:    net.JoinHostPort(u.Hostname(), port),
		client:  client,
		timeout: timeout,
	}
	if u.User != nil {
		user := u.User.Username()
		pass, _ := u.User.Password()
		// The Authorization header carries them base64-encoded.
		am.secrets = append(am.secrets, user, pass,
			base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	}
	for _, vs := range u.Query() {
		am.secrets = append(am.secrets, vs...)
	}
	u.Fragment, u.RawFragment = "", ""
	am.endpoint = u.JoinPath("api", "v2", "alerts").String()
	return am, nil
}

// post returns the send function of this Alertmanager's receiver.
func (am *alertmanager) post(n *Notifier) func(context.Context, []update) error {
	return func(ctx context.Context, batch []update) error {
		body, err := json.Marshal(n.wire(batch))
		if err != nil {
			return fmt.Errorf("encode alerts for %s: %w", am.name, err)
		}
		start := time.Now()
		if err := am.do(ctx, body); err != nil {
			n.metrics.errors.WithLabelValues(am.name).Inc()
			return err
		}
		n.metrics.latency.WithLabelValues(am.name).Observe(time.Since(start).Seconds())
		n.metrics.sent.WithLabelValues(am.name).Add(float64(len(batch)))
		return nil
	}
}

func (am *alertmanager) do(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, am.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, am.endpoint, bytes.NewReader(body))
	if err != nil {
		// As in newAlertmanager, the cause would quote the URL.
		return fmt.Errorf("post alerts to %s: cannot build the request", am.name)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "chargeguard-notify")
	resp, err := am.client.Do(req)
	if err != nil {
		// *url.Error quotes the request URL (net/http hides the password
		// but not the user name or a token in the query): keep its cause
		// only, which names at most the address dialled.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post alerts to %s: %w", am.name, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // lets the connection be reused
	if resp.StatusCode/100 == 2 {
		return nil
	}
	text := am.redact(strings.TrimSpace(strings.ToValidUTF8(string(msg), "?")))
	err = fmt.Errorf("post alerts to %s: HTTP %d: %s", am.name, resp.StatusCode, text)
	// 4xx means this batch is wrong, except 408 and 429, which mean "later".
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return fmt.Errorf("%w: %w", errRejected, err)
	}
	return err
}

// redact hides the URL's secrets in s, a response body that a proxy in
// front of Alertmanager might have filled with the request it refused.
func (am *alertmanager) redact(s string) string {
	for _, secret := range am.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "<secret>")
		}
	}
	return s
}

// postableAlert is Alertmanager API v2's postableAlert.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     string            `json:"startsAt,omitempty"`
	EndsAt       string            `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// timeFormat is RFC 3339 with milliseconds, as Prometheus sends.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// wire turns updates into the API's alerts. A firing alert gets endsAt
// validityFactor resend intervals from now: Alertmanager keeps it active
// until then, and the next resend pushes it further.
func (n *Notifier) wire(batch []update) []postableAlert {
	now := n.now()
	out := make([]postableAlert, len(batch))
	for i, u := range batch {
		p := postableAlert{
			Labels:       u.alert.Labels,
			Annotations:  u.alert.Annotations,
			GeneratorURL: u.alert.GeneratorURL,
		}
		if !u.alert.StartsAt.IsZero() {
			p.StartsAt = u.alert.StartsAt.UTC().Format(timeFormat)
		}
		if u.resolved {
			p.EndsAt = u.alert.EndsAt.UTC().Format(timeFormat)
		} else {
			p.EndsAt = now.Add(validityFactor * n.resend).UTC().Format(timeFormat)
		}
		out[i] = p
	}
	return out
}

// logBatch is the log receiver: one line per alert update, at error level
// for critical alerts and warn level otherwise; resolves at info (with the
// severity label still saying what it was), so that an error-level view of
// the log shows what is wrong now and not what has cleared.
func (n *Notifier) logBatch(_ context.Context, batch []update) error {
	for _, u := range batch {
		level := zerolog.WarnLevel
		if u.alert.Labels["severity"] == SeverityCritical {
			level = zerolog.ErrorLevel
		}
		msg := "alert firing"
		if u.resolved {
			level, msg = zerolog.InfoLevel, "alert resolved"
		}
		e := n.log.WithLevel(level).Str("receiver", logReceiver)
		for _, k := range []string{"alertname", "severity", "site", "pile", "port", "kind"} {
			if v, ok := u.alert.Labels[k]; ok {
				e = e.Str(k, v)
			}
		}
		labels := zerolog.Dict()
		for k, v := range u.alert.Labels {
			labels = labels.Str(k, v)
		}
		annotations := zerolog.Dict()
		for k, v := range u.alert.Annotations {
			annotations = annotations.Str(k, v)
		}
		e = e.Dict("labels", labels).Dict("annotations", annotations).Time("starts_at", u.alert.StartsAt)
		if u.resolved {
			e = e.Time("ends_at", u.alert.EndsAt)
		}
		e.Msg(msg)
		n.metrics.sent.WithLabelValues(logReceiver).Inc()
	}
	return nil
}
