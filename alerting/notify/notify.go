package notify

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Alert is one chargeguard alert as Alertmanager sees it. Its identity is its
// label set: two alerts with the same labels are the same alert.
type Alert struct {
	// Labels identify the alert and drive routing: alertname (required),
	// severity, site, pile, port, kind. Labels with empty values are dropped
	// (an empty label is the same as no label to Alertmanager).
	Labels map[string]string
	// Annotations carry the texts that do not identify the alert: summary,
	// description, on_site, board_url, runbook_url (see Annotations).
	Annotations map[string]string
	// StartsAt is when the alert began; zero means when Fire first saw it.
	StartsAt time.Time
	// EndsAt is when the alert ended. Fire ignores it (a firing alert's
	// endsAt is set by the Notifier on every post); Resolve uses it, or now
	// when it is zero.
	EndsAt time.Time
	// GeneratorURL links back to chargeguard, for example the port's board.
	GeneratorURL string
}

// Options configure a Notifier. The zero value is usable: it logs alerts to
// Logger (which is a no-op by default) instead of posting them.
type Options struct {
	// URLs are the base URLs of the Alertmanagers, for example
	// http://127.0.0.1:9093 or https://user:pass@am.example:9093/prefix.
	// Alerts are posted to <URL>/api/v2/alerts. Credentials in a URL are
	// used as HTTP basic auth and never logged. Empty: alerts go to the log
	// receiver.
	URLs []string
	// ResendInterval is how often active alerts are re-posted; each post
	// carries endsAt = now + 4 × ResendInterval, so Alertmanager keeps an
	// alert active while chargeguard holds it. Default 1m.
	ResendInterval time.Duration
	// Timeout bounds one HTTP request. Default 10s.
	Timeout time.Duration
	// QueueCapacity bounds the pending updates of each receiver. Default
	// 10000. When a queue is full, the oldest update of a still active alert
	// is dropped (it goes out again at the next resend) and counted.
	QueueCapacity int
	// MinBackoff and MaxBackoff bound the exponential back-off between
	// retries of a failed post. Defaults 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// RunbookBaseURL is where docs/runbooks/<alertname>.md lives; the
	// runbook_url annotation is added to every alert that lacks one.
	// Default DefaultRunbookBase.
	RunbookBaseURL string
	// Logger receives the log receiver's alerts and the Notifier's own
	// problems. Default: the zero zerolog.Logger, which logs nothing.
	Logger zerolog.Logger
	// Registerer registers the chargeguard_notify_* metrics. Nil: the
	// metrics are kept but not registered.
	Registerer prometheus.Registerer
	// Now is the clock for startsAt and endsAt. Default time.Now.
	Now func() time.Time
}

const (
	defaultResendInterval = time.Minute
	defaultTimeout        = 10 * time.Second
	defaultQueueCapacity  = 10000
	defaultMinBackoff     = 500 * time.Millisecond
	defaultMaxBackoff     = 30 * time.Second
	// maxBatch bounds the alerts in one post (Prometheus posts up to 256).
	maxBatch = 256
	// validityFactor × ResendInterval is how long Alertmanager keeps a
	// firing alert active without hearing of it again (Prometheus uses 4).
	validityFactor = 4
	// logReceiver is the metric label of the log receiver.
	logReceiver = "log"
)

// Notifier keeps Alertmanagers informed of chargeguard's alerts. Its methods
// are safe for concurrent use.
type Notifier struct {
	log        zerolog.Logger
	now        func() time.Time
	resend     time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration
	runbook    string
	metrics    *metrics
	receivers  []*receiver
	transport  *http.Transport
	running    atomic.Bool

	mu     sync.Mutex
	active map[string]Alert // by label-set key
}

// receiver is one destination of alerts: an Alertmanager or the log.
type receiver struct {
	name string // host:port, or "log"; safe to log
	// resend is false for the log receiver: a log line per minute per alert
	// would bury everything else.
	resend bool
	send   func(ctx context.Context, batch []update) error

	wake chan struct{} // capacity 1: "the queue may hold work"
	// Guarded by Notifier.mu.
	q             *queue
	unloggedDrops int
}

// New checks o, fills in its defaults and returns a Notifier. Nothing is
// sent, or logged by the log receiver, until Run runs; alerts fired before
// are queued.
func New(o Options) (*Notifier, error) {
	if o.ResendInterval < 0 || o.Timeout < 0 || o.MinBackoff < 0 || o.MaxBackoff < 0 {
		return nil, errors.New("notify: ResendInterval, Timeout, MinBackoff and MaxBackoff must not be negative")
	}
	if o.QueueCapacity < 0 {
		return nil, errors.New("notify: QueueCapacity must not be negative")
	}
	if o.ResendInterval == 0 {
		o.ResendInterval = defaultResendInterval
	}
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	if o.QueueCapacity == 0 {
		o.QueueCapacity = defaultQueueCapacity
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = defaultMinBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = defaultMaxBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	n := &Notifier{
		log:        o.Logger,
		now:        o.Now,
		resend:     o.ResendInterval,
		minBackoff: o.MinBackoff,
		maxBackoff: o.MaxBackoff,
		runbook:    o.RunbookBaseURL,
		active:     make(map[string]Alert),
	}
	if len(o.URLs) == 0 {
		n.receivers = append(n.receivers, &receiver{name: logReceiver, send: n.logBatch})
	} else {
		n.transport = http.DefaultTransport.(*http.Transport).Clone()
		client := &http.Client{
			Transport: n.transport,
			// A redirect would carry the request, credentials included,
			// somewhere the operator did not configure; refuse it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		seen := make(map[string]int)
		for i, raw := range o.URLs {
			am, err := newAlertmanager(i, raw, client, o.Timeout)
			if err != nil {
				return nil, err
			}
			// Two Alertmanagers behind one host:port (different paths)
			// must still have distinct metric labels.
			if seen[am.name]++; seen[am.name] > 1 {
				am.name = fmt.Sprintf("%s#%d", am.name, seen[am.name])
			}
			n.receivers = append(n.receivers, &receiver{name: am.name, resend: true, send: am.post(n)})
		}
	}
	names := make([]string, 0, len(n.receivers))
	for _, r := range n.receivers {
		r.wake = make(chan struct{}, 1)
		r.q = newQueue(o.QueueCapacity)
		names = append(names, r.name)
	}
	m, err := newMetrics(o.Registerer, names)
	if err != nil {
		return nil, err
	}
	n.metrics = m
	return n, nil
}

// Fire records a as active and queues a post of it to every receiver. It
// never blocks on the network; it copies a, so the caller may reuse a's maps.
// Firing an active alert again with the same labels updates it (and posts
// the update if anything changed); StartsAt zero keeps the first one.
// An alert without an alertname label is refused, logged and counted as
// dropped.
func (n *Notifier) Fire(a Alert) {
	labels, key, ok := n.cleanLabels(a.Labels)
	if !ok {
		return
	}
	a.Labels = labels
	a.EndsAt = time.Time{}
	now := n.now()

	n.mu.Lock()
	defer n.mu.Unlock()
	prev, wasActive := n.active[key]
	if a.StartsAt.IsZero() {
		if wasActive {
			a.StartsAt = prev.StartsAt
		} else {
			a.StartsAt = now
		}
	}
	a.Annotations = n.cleanAnnotations(a.Annotations, labels["alertname"])
	a.GeneratorURL = cleanGeneratorURL(a.GeneratorURL)
	if wasActive && sameAlert(prev, a) {
		return
	}
	n.active[key] = a
	n.metrics.active.Set(float64(len(n.active)))
	n.queueLocked(update{key: key, alert: a}, nil)
}

// Resolve marks a as resolved: it sets EndsAt (now when zero), queues one
// last post of it to every receiver, and forgets it. Labels identify the
// alert; annotations, StartsAt and GeneratorURL left empty are taken from
// the active alert. Resolving an alert that is not active (for example one
// fired before a restart) still posts the resolve. It never blocks on the
// network.
func (n *Notifier) Resolve(a Alert) {
	labels, key, ok := n.cleanLabels(a.Labels)
	if !ok {
		return
	}
	a.Labels = labels
	now := n.now()

	n.mu.Lock()
	defer n.mu.Unlock()
	if prev, wasActive := n.active[key]; wasActive {
		if a.Annotations == nil {
			a.Annotations = prev.Annotations
		}
		if a.StartsAt.IsZero() {
			a.StartsAt = prev.StartsAt
		}
		if a.GeneratorURL == "" {
			a.GeneratorURL = prev.GeneratorURL
		}
		delete(n.active, key)
		n.metrics.active.Set(float64(len(n.active)))
	}
	if a.EndsAt.IsZero() {
		a.EndsAt = now
	}
	// Alertmanager refuses an alert that ends before it starts.
	if !a.StartsAt.IsZero() && a.EndsAt.Before(a.StartsAt) {
		a.EndsAt = a.StartsAt
	}
	a.Annotations = n.cleanAnnotations(a.Annotations, labels["alertname"])
	a.GeneratorURL = cleanGeneratorURL(a.GeneratorURL)
	n.queueLocked(update{key: key, alert: a, resolved: true}, nil)
}

// Active returns a copy of the active alerts, sorted by label set.
func (n *Notifier) Active() []Alert {
	n.mu.Lock()
	keys := make([]string, 0, len(n.active))
	for k := range n.active {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Alert, 0, len(keys))
	for _, k := range keys {
		a := n.active[k]
		a.Labels = maps.Clone(a.Labels)
		a.Annotations = maps.Clone(a.Annotations)
		out = append(out, a)
	}
	n.mu.Unlock()
	return out
}

// Run posts queued updates until ctx is done: one goroutine per receiver, so
// the Alertmanagers are served concurrently and a slow one delays no other,
// plus the resend ticker. It returns nil once ctx is done and all its
// goroutines have exited; updates still queued then are dropped (and
// counted). Run may be called once.
func (n *Notifier) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("notify: Run called twice")
	}
	if n.transport != nil {
		defer n.transport.CloseIdleConnections()
	}
	var wg sync.WaitGroup
	for _, r := range n.receivers {
		wg.Go(func() { n.sendLoop(ctx, r) })
	}
	ticker := time.NewTicker(n.resend)
	defer ticker.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-ticker.C:
			n.resendActive()
		}
	}
	wg.Wait()

	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range n.receivers {
		if d := r.q.clear(); d > 0 {
			n.metrics.dropped.Add(float64(d))
			n.log.Warn().Str("alertmanager", r.name).Int("count", d).
				Msg("notify: shutting down with alert updates not sent")
		}
	}
	n.metrics.queueLength.Set(0)
	return nil
}

// Abandon forgets every active alert without resolving it: another
// chargeguard (a cluster's new leader) holds them now and keeps posting
// them, and its resolves must not be undone by this one's resends. It
// returns how many were forgotten. Updates already queued still go out
// once; Alertmanager then keeps each alert until the endsAt they carry.
func (n *Notifier) Abandon() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := len(n.active)
	clear(n.active)
	n.metrics.active.Set(0)
	return k
}

// resendActive queues every active alert again for every Alertmanager.
func (n *Notifier) resendActive() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for key, a := range n.active {
		n.queueLocked(update{key: key, alert: a}, func(r *receiver) bool { return r.resend })
	}
}

// queueLocked pushes u to the receivers that want it (all when want is nil)
// and wakes their send loops. n.mu must be held.
func (n *Notifier) queueLocked(u update, want func(*receiver) bool) {
	isActive := func(key string) bool { _, ok := n.active[key]; return ok }
	total := 0
	for _, r := range n.receivers {
		if want == nil || want(r) {
			if d := r.q.push(u, isActive); d > 0 {
				r.unloggedDrops += d
				n.metrics.dropped.Add(float64(d))
			}
			select {
			case r.wake <- struct{}{}:
			default:
			}
		}
		total += r.q.len()
	}
	n.metrics.queueLength.Set(float64(total))
}

// sendLoop posts r's queued updates in batches until ctx is done, retrying
// failed posts with exponential back-off.
func (n *Notifier) sendLoop(ctx context.Context, r *receiver) {
	var backoff time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		for {
			batch, drops := n.take(r)
			if drops > 0 {
				n.log.Warn().Str("alertmanager", r.name).Int("count", drops).
					Msg("notify: queue full, dropped the oldest pending updates of active alerts")
			}
			if len(batch) == 0 {
				break
			}
			err := r.send(ctx, batch)
			if err == nil {
				backoff = 0
				continue
			}
			if ctx.Err() != nil {
				n.requeue(r, batch)
				return
			}
			if errors.Is(err, errRejected) {
				// Alertmanager will never take this batch: retrying it
				// forever would block every later update behind it.
				n.metrics.dropped.Add(float64(len(batch)))
				n.log.Error().Err(err).Str("alertmanager", r.name).Int("count", len(batch)).
					Msg("notify: Alertmanager rejected alerts, dropping them")
				continue
			}
			if backoff == 0 {
				backoff = n.minBackoff
			} else {
				backoff = min(2*backoff, n.maxBackoff)
			}
			n.requeue(r, batch)
			n.log.Warn().Err(err).Str("alertmanager", r.name).Int("count", len(batch)).
				Dur("retry_in", backoff).Msg("notify: posting alerts failed, will retry")
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

func (n *Notifier) take(r *receiver) ([]update, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	batch := r.q.take(maxBatch)
	drops := r.unloggedDrops
	r.unloggedDrops = 0
	n.setQueueLengthLocked()
	return batch, drops
}

func (n *Notifier) requeue(r *receiver, batch []update) {
	n.mu.Lock()
	defer n.mu.Unlock()
	isActive := func(key string) bool { _, ok := n.active[key]; return ok }
	if d := r.q.pushFront(batch, isActive); d > 0 {
		r.unloggedDrops += d
		n.metrics.dropped.Add(float64(d))
	}
	n.setQueueLengthLocked()
}

func (n *Notifier) setQueueLengthLocked() {
	total := 0
	for _, r := range n.receivers {
		total += r.q.len()
	}
	n.metrics.queueLength.Set(float64(total))
}

// cleanLabels copies labels without empty values, repairs invalid UTF-8 and
// returns the copy with its identity key. A label name Alertmanager would
// refuse is dropped (an alert with a bad label is better than no page at
// all); an alert without alertname is refused.
func (n *Notifier) cleanLabels(in map[string]string) (map[string]string, string, bool) {
	out := make(map[string]string, len(in))
	for k, v := range in {
		if v == "" {
			continue
		}
		if !validName(k) {
			n.log.Error().Str("label", strings.ToValidUTF8(k, "?")).Str("alertname", in["alertname"]).
				Msg("notify: dropping a label with an invalid name")
			continue
		}
		out[k] = strings.ToValidUTF8(v, "\uFFFD")
	}
	if out["alertname"] == "" {
		n.metrics.dropped.Inc()
		n.log.Error().Interface("labels", out).Msg("notify: refusing an alert without alertname")
		return nil, "", false
	}
	names := make([]string, 0, len(out))
	for k := range out {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte(0xff) // never in valid UTF-8, so keys cannot collide
		b.WriteString(out[k])
		b.WriteByte(0xff)
	}
	return out, b.String(), true
}

// cleanAnnotations copies annotations as Alertmanager accepts them and adds
// runbook_url when it is missing.
func (n *Notifier) cleanAnnotations(in map[string]string, alertname string) map[string]string {
	out := make(map[string]string, len(in)+1)
	for k, v := range in {
		if !validName(k) {
			continue
		}
		out[k] = strings.ToValidUTF8(v, "\uFFFD")
	}
	if out["runbook_url"] == "" {
		out["runbook_url"] = RunbookURL(n.runbook, alertname)
	}
	return out
}

// validName reports whether s is a label or annotation name Alertmanager
// accepts: [a-zA-Z_][a-zA-Z0-9_]*.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// cleanGeneratorURL drops a generator URL that is not a valid URL, which
// Alertmanager would refuse together with the whole batch.
func cleanGeneratorURL(s string) string {
	if !utf8.ValidString(s) {
		return ""
	}
	if _, err := url.Parse(s); err != nil {
		return ""
	}
	return s
}

func sameAlert(a, b Alert) bool {
	return a.StartsAt.Equal(b.StartsAt) && a.GeneratorURL == b.GeneratorURL &&
		maps.Equal(a.Labels, b.Labels) && maps.Equal(a.Annotations, b.Annotations)
}
