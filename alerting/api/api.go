package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/telemetry"
)

// Guard is what the API needs of the safety engine. The service that owns
// the engine implements it; every method must be safe for concurrent use
// and must return once ctx is done (with an error wrapping ctx.Err()).
//
// Errors wrap the alerting sentinels (alerting.ErrUnknownPile,
// ErrConditionActive, ...), ErrUnavailable when the engine cannot take
// requests, ErrInvalidRules when Reload finds the configuration invalid,
// or errors.ErrUnsupported for an operation the service does not offer;
// the API maps them to HTTP status codes. Any other error is
// an internal error: logged, and shown to the caller only as "internal".
//
// The API validates every argument before calling: site and pile pass
// telemetry.ValidID, port is in 0..telemetry.MaxPort, key is a well-formed
// alert key (alertname/site/pile/port, as alerting.Alert.Key), and operator
// is the Name of an authenticated operator's token.
type Guard interface {
	// PortsPage returns a page of the ports that match q.Filter, in the
	// order site, pile, port, after q.After, at most q.Limit of them.
	PortsPage(ctx context.Context, q alerting.PortQuery) (alerting.PortPage, error)
	// Alerts lists the active alerts, and unless activeOnly the recently
	// resolved ones too.
	Alerts(ctx context.Context, activeOnly bool) ([]alerting.AlertView, error)
	// Audit returns a port's audit records (port 0: the pile as a whole),
	// oldest first.
	Audit(ctx context.Context, site, pile string, port int) ([]alerting.AuditRecord, error)
	// Reset asks the engine to reopen a latched or closed port (port 0: the
	// whole pile) and carries out the resulting actions (the open command,
	// the audit record of the reset or of its refusal).
	Reset(ctx context.Context, site, pile string, port int, operator string) error
	// AckAlert records an operator's acknowledgement of an active alert.
	AckAlert(ctx context.Context, key, operator string) error
	// Reload re-reads the rules from the configuration and applies them
	// without forgetting the engine's state. Invalid rules are not applied:
	// the error wraps ErrInvalidRules.
	Reload(ctx context.Context) error
}

// Options configure the API. Only Guard is required.
type Options struct {
	Guard Guard
	// Tokens are the API credentials. With tokens, every request needs
	// one. With none, every change is refused, and reads are refused too
	// unless AnonymousReads is set.
	Tokens []Token
	// AnonymousReads, with no Tokens, opens reads to anyone who can reach
	// the API. The app sets it for a loopback listener or when
	// api.anonymous_reads says so; it is ignored when Tokens are set.
	AnonymousReads bool

	Logger     zerolog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered

	// MaxBodyBytes bounds the body of a POST. Default 4 KiB.
	MaxBodyBytes int64
	// Timeout bounds how long a request waits for the Guard. Default 5s.
	Timeout time.Duration
	// MaxConcurrentReads bounds the lists (ports, alerts) rendered at
	// once; default GOMAXPROCS-1, at least 1. Rendering a page of 5,000
	// ports is CPU work in the reader's goroutine: without a bound, a few
	// looping clients take every core and the engine's goroutine waits
	// for the scheduler. A read waits up to Timeout for a slot, then gets
	// 503 with reason "busy".
	MaxConcurrentReads int
}

// API serves the operator HTTP API.
type API struct {
	guard    Guard
	creds    []credential
	log      zerolog.Logger
	m        *metrics
	maxBody  int64
	timeout  time.Duration
	mux      *http.ServeMux
	operator bool // at least one token has the operator role
	anonRead bool
	reads    chan struct{} // a slot per list being rendered
}

// New checks the options and builds the API. A configuration error names
// its field (api.tokens[2].role); all of them are reported at once.
func New(o Options) (*API, error) {
	if o.Guard == nil {
		return nil, errors.New("api: Options.Guard is required")
	}
	if o.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("api: MaxBodyBytes %d is negative", o.MaxBodyBytes)
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 4 << 10
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("api: Timeout %s is negative", o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.MaxConcurrentReads < 0 {
		return nil, fmt.Errorf("api: MaxConcurrentReads %d is negative", o.MaxConcurrentReads)
	}
	if o.MaxConcurrentReads == 0 {
		o.MaxConcurrentReads = max(1, runtime.GOMAXPROCS(0)-1)
	}
	creds, errs := validTokens(o.Tokens)
	if len(errs) > 0 {
		return nil, fmt.Errorf("api: %w", errors.Join(errs...))
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	a := &API{
		guard:    o.Guard,
		creds:    creds,
		log:      o.Logger.With().Str("component", "api").Logger(),
		m:        m,
		maxBody:  o.MaxBodyBytes,
		timeout:  o.Timeout,
		mux:      http.NewServeMux(),
		anonRead: o.AnonymousReads && len(creds) == 0,
		reads:    make(chan struct{}, o.MaxConcurrentReads),
	}
	for _, c := range creds {
		a.operator = a.operator || c.role == RoleOperator
	}
	a.route("GET /api/v1/ports", routePorts, a.ports)
	a.route("GET /api/v1/alerts", routeAlerts, a.alerts)
	// An alert key holds slashes (overheat/s1/p1/3): it is either sent
	// percent-encoded as one segment or spelled out as four.
	a.route("POST /api/v1/alerts/{key}/ack", routeAck, a.ack)
	a.route("POST /api/v1/alerts/{alertname}/{site}/{pile}/{port}/ack", routeAck, a.ack)
	a.route("POST /api/v1/ports/{site}/{pile}/{port}/reset", routeReset, a.reset)
	a.route("GET /api/v1/ports/{site}/{pile}/{port}/audit", routeAudit, a.audit)
	a.route("POST /api/v1/reload", routeReload, a.reload)
	if len(creds) == 0 && a.anonRead {
		a.log.Warn().Msg("no API token configured: the operator API is read-only and open to anyone who can reach it")
	} else if len(creds) == 0 {
		a.log.Warn().Msg("no API token configured and anonymous reads are off: the operator API refuses every request")
	} else if !a.operator {
		a.log.Warn().Msg("no API token has the operator role: no one can reset a port or acknowledge an alert")
	}
	return a, nil
}

// Handler returns the API's handler, serving /api/v1/. Mount it on the
// process' mux with mux.Handle("/api/", a.Handler()).
func (a *API) Handler() http.Handler { return http.HandlerFunc(a.serve) }

// serve answers requests no route takes with JSON rather than ServeMux's
// text, and refuses unclean paths instead of redirecting them: a client of
// this API builds its paths, it does not follow links.
func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	ep := r.URL.EscapedPath()
	if clean := path.Clean(ep); clean != ep && clean+"/" != ep {
		a.noRoute(w, badRequest("bad_path", "the path must not hold empty, \".\" or \"..\" segments"))
		return
	}
	if _, pattern := a.mux.Handler(r); pattern != "" {
		a.mux.ServeHTTP(w, r)
		return
	}
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pattern := a.mux.Handler(r2); pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		a.noRoute(w, &apiError{status: http.StatusMethodNotAllowed, Error: "method_not_allowed", Reason: "method_not_allowed",
			Detail: "this path takes " + strings.Join(allow, " or ")})
		return
	}
	a.noRoute(w, &apiError{status: http.StatusNotFound, Error: "not_found", Reason: "no_route",
		Detail: "no such endpoint: see docs/api.md"})
}

func (a *API) noRoute(w http.ResponseWriter, e *apiError) {
	a.m.requests.WithLabelValues(routeNone, strconv.Itoa(e.status)).Inc()
	writeError(w, e)
}

// statusWriter remembers the status code for the metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (a *API) route(pattern, name string, h http.HandlerFunc) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		a.m.requests.WithLabelValues(name, strconv.Itoa(sw.code)).Inc()
	})
}

// authorize authenticates r and, for a change, checks that the caller is an
// operator.
func (a *API) authorize(r *http.Request, change bool) (principal, *apiError) {
	p, e := a.authenticate(r)
	if e != nil {
		return p, e
	}
	if change {
		if e := a.mayChange(p); e != nil {
			return p, e
		}
	}
	return p, nil
}

// callGuard runs f with the request's deadline.
func (a *API) callGuard(r *http.Request, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
	defer cancel()
	return f(ctx)
}

// guardFailed writes the response to an error of the Guard and returns it.
func (a *API) guardFailed(w http.ResponseWriter, r *http.Request, op string, err error) *apiError {
	e, internal := guardError(err)
	if internal {
		a.log.Error().Err(err).Str("op", op).Str("path", truncate(r.URL.EscapedPath(), 200)).Msg("operator API: guard failed")
	}
	writeError(w, e)
	return e
}

// query checks the query string: only the named parameters, each at most
// once. A typo (?stat=latched) is an error rather than a filter that
// silently matches everything.
func query(r *http.Request, allowed ...string) (map[string]string, *apiError) {
	q, err := urlQuery(r)
	if err != nil {
		return nil, badRequest("bad_query", "the query string is not valid")
	}
	out := make(map[string]string, len(q))
	for k, v := range q {
		if !slices.Contains(allowed, k) {
			return nil, badRequest("unknown_parameter", "unknown query parameter %q; this endpoint takes %s", truncate(k, 32), strings.Join(allowed, ", "))
		}
		if len(v) > 1 {
			return nil, badRequest("bad_parameter", "query parameter %s is given %d times", k, len(v))
		}
		out[k] = v[0]
	}
	return out, nil
}

var portFilterStates = []string{
	alerting.ControlOpen, alerting.ControlClosing, alerting.ControlClosed, alerting.ControlLatched,
	string(telemetry.StateIdle), string(telemetry.StateCharging), string(telemetry.StateFault),
}

// Page sizes of GET /api/v1/ports: a page of 5,000 ports is about 2 MB
// of JSON.
const (
	DefaultPageLimit = 500
	MaxPageLimit     = 5000
)

func (a *API) ports(w http.ResponseWriter, r *http.Request) {
	if _, e := a.authorize(r, false); e != nil {
		writeError(w, e)
		return
	}
	q, e := query(r, "site", "pile", "state", "limit", "after")
	if e != nil {
		writeError(w, e)
		return
	}
	f := alerting.PortFilter{Site: q["site"], Pile: q["pile"], State: q["state"]}
	if f.Site != "" && !telemetry.ValidID(f.Site) {
		writeError(w, badRequest("bad_id", "site must match [A-Za-z0-9_-]{1,64}"))
		return
	}
	if f.Pile != "" && !telemetry.ValidID(f.Pile) {
		writeError(w, badRequest("bad_id", "pile must match [A-Za-z0-9_-]{1,64}"))
		return
	}
	if f.State != "" && !slices.Contains(portFilterStates, f.State) {
		writeError(w, badRequest("bad_state", "state must be one of %s", strings.Join(portFilterStates, ", ")))
		return
	}
	pq := alerting.PortQuery{Filter: f, Limit: DefaultPageLimit}
	if s, ok := q["limit"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageLimit || strconv.Itoa(n) != s {
			writeError(w, badRequest("bad_limit", "limit must be a number from 1 to %d", MaxPageLimit))
			return
		}
		pq.Limit = n
	}
	if s, ok := q["after"]; ok {
		k, ok := alerting.ParsePortKey(s)
		if !ok {
			writeError(w, badRequest("bad_cursor", "after must be site/pile/port, as in the next field of the previous page"))
			return
		}
		pq.After = k
	}
	release, e := a.readSlot(r)
	if e != nil {
		writeError(w, e)
		return
	}
	var page alerting.PortPage
	if err := a.callGuard(r, func(ctx context.Context) (err error) {
		page, err = a.guard.PortsPage(ctx, pq)
		return err
	}); err != nil {
		release()
		a.guardFailed(w, r, "ports", err)
		return
	}
	if page.Ports == nil {
		page.Ports = []alerting.PortView{}
	}
	next := ""
	if !page.Next.IsZero() {
		next = page.Next.String()
	}
	// Encode under the slot, write after it: a slow client holds its
	// connection, not a slot.
	// next and as_of come first: a client streaming a large page knows
	// where to continue before it has read the ports.
	body := encodeJSON(struct {
		Next  string              `json:"next,omitempty"`
		AsOf  time.Time           `json:"as_of,omitzero"`
		Ports []alerting.PortView `json:"ports"`
	}{next, page.AsOf, page.Ports})
	release()
	writeBody(w, http.StatusOK, body)
}

// readSlot waits for a slot to render a list in, up to the API's Timeout.
func (a *API) readSlot(r *http.Request) (release func(), e *apiError) {
	select {
	case a.reads <- struct{}{}:
		return func() { <-a.reads }, nil
	default:
	}
	t := time.NewTimer(a.timeout)
	defer t.Stop()
	select {
	case a.reads <- struct{}{}:
		return func() { <-a.reads }, nil
	case <-t.C:
		return nil, &apiError{status: http.StatusServiceUnavailable, Error: "unavailable", Reason: "busy",
			Detail: "too many lists are being read at once; try again"}
	case <-r.Context().Done():
		return nil, &apiError{status: http.StatusServiceUnavailable, Error: "unavailable", Reason: "canceled",
			Detail: "the request was canceled while waiting for its turn"}
	}
}

// alertJSON is an alert with the key that acknowledges it.
type alertJSON struct {
	Key string `json:"key"`
	alerting.AlertView
}

func (a *API) alerts(w http.ResponseWriter, r *http.Request) {
	if _, e := a.authorize(r, false); e != nil {
		writeError(w, e)
		return
	}
	q, e := query(r, "active")
	if e != nil {
		writeError(w, e)
		return
	}
	activeOnly := true
	switch q["active"] {
	case "", "true":
	case "false":
		activeOnly = false
	default:
		writeError(w, badRequest("bad_parameter", "active must be true or false"))
		return
	}
	release, e := a.readSlot(r)
	if e != nil {
		writeError(w, e)
		return
	}
	var views []alerting.AlertView
	if err := a.callGuard(r, func(ctx context.Context) (err error) {
		views, err = a.guard.Alerts(ctx, activeOnly)
		return err
	}); err != nil {
		release()
		a.guardFailed(w, r, "alerts", err)
		return
	}
	out := make([]alertJSON, len(views))
	for i, v := range views {
		out[i] = alertJSON{Key: v.Key(), AlertView: v}
	}
	body := encodeJSON(struct {
		Alerts []alertJSON `json:"alerts"`
	}{out})
	release()
	writeBody(w, http.StatusOK, body)
}

func (a *API) audit(w http.ResponseWriter, r *http.Request) {
	if _, e := a.authorize(r, false); e != nil {
		writeError(w, e)
		return
	}
	site, pile, port, e := portPath(r)
	if e == nil {
		_, e = query(r)
	}
	if e != nil {
		writeError(w, e)
		return
	}
	var recs []alerting.AuditRecord
	if err := a.callGuard(r, func(ctx context.Context) (err error) {
		recs, err = a.guard.Audit(ctx, site, pile, port)
		return err
	}); err != nil {
		a.guardFailed(w, r, "audit", err)
		return
	}
	if recs == nil {
		recs = []alerting.AuditRecord{}
	}
	writeJSON(w, http.StatusOK, struct {
		Site  string                 `json:"site"`
		Pile  string                 `json:"pile"`
		Port  int                    `json:"port"`
		Audit []alerting.AuditRecord `json:"audit"`
	}{site, pile, port, recs})
}

// reset reopens a port. Every attempt, allowed or refused, is logged with
// the operator, the port and the outcome, and counted by outcome.
func (a *API) reset(w http.ResponseWriter, r *http.Request) {
	p, e := a.authorize(r, true)
	var site, pile string
	var port int
	var body changeBody
	if e == nil {
		site, pile, port, e = portPath(r)
	}
	if e == nil {
		_, e = query(r)
	}
	if e == nil {
		body, e = readBody(w, r, a.maxBody)
	}
	if e == nil {
		err := a.callGuard(r, func(ctx context.Context) error {
			return a.guard.Reset(ctx, site, pile, port, p.name)
		})
		if err != nil {
			e = a.guardFailed(w, r, "reset", err)
			a.logReset(r, p, body, e)
			return
		}
	}
	a.logReset(r, p, body, e)
	if e != nil {
		writeError(w, e)
		return
	}
	// The engine has sent the open command; the port reopens when the pile
	// acks it, which the port's audit and state show.
	writeJSON(w, http.StatusAccepted, struct {
		Status   string `json:"status"`
		Site     string `json:"site"`
		Pile     string `json:"pile"`
		Port     int    `json:"port"`
		Operator string `json:"operator"`
	}{"open_sent", site, pile, port, p.name})
}

func (a *API) logReset(r *http.Request, p principal, body changeBody, e *apiError) {
	outcome, status := "ok", http.StatusAccepted
	if e != nil {
		outcome, status = e.Reason, e.status
	}
	a.m.resets.WithLabelValues(outcome).Inc()
	var ev *zerolog.Event
	switch {
	case e == nil:
		ev = a.log.Info()
	case status >= 500:
		ev = a.log.Error()
	default:
		ev = a.log.Warn()
	}
	ev = ev.Str("operator", p.name).Str("role", string(p.role)).
		Str("site", truncate(r.PathValue("site"), telemetry.MaxIDLen)).
		Str("pile", truncate(r.PathValue("pile"), telemetry.MaxIDLen)).
		Str("port", truncate(r.PathValue("port"), 8)).
		Str("outcome", outcome).Int("status", status).Str("remote", r.RemoteAddr)
	if body.Note != "" {
		ev = ev.Str("note", body.Note)
	}
	if e != nil {
		ev.Str("detail", e.Detail).Msg("port reset refused")
		return
	}
	ev.Msg("port reset: open command sent")
}

func (a *API) ack(w http.ResponseWriter, r *http.Request) {
	p, e := a.authorize(r, true)
	var key string
	var body changeBody
	if e == nil {
		key, e = alertKeyPath(r)
	}
	if e == nil {
		_, e = query(r)
	}
	if e == nil {
		body, e = readBody(w, r, a.maxBody)
	}
	if e == nil {
		err := a.callGuard(r, func(ctx context.Context) error { return a.guard.AckAlert(ctx, key, p.name) })
		if err != nil {
			e = a.guardFailed(w, r, "ack", err)
			a.logChange(r, "alert acknowledgement", p, key, body, e)
			return
		}
	}
	a.logChange(r, "alert acknowledgement", p, key, body, e)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Status   string `json:"status"`
		Key      string `json:"key"`
		Operator string `json:"operator"`
	}{"acknowledged", key, p.name})
}

func (a *API) reload(w http.ResponseWriter, r *http.Request) {
	p, e := a.authorize(r, true)
	var body changeBody
	if e == nil {
		_, e = query(r)
	}
	if e == nil {
		body, e = readBody(w, r, a.maxBody)
	}
	if e == nil {
		if err := a.callGuard(r, a.guard.Reload); err != nil {
			e = a.guardFailed(w, r, "reload", err)
			a.logChange(r, "rules reload", p, "", body, e)
			return
		}
	}
	a.logChange(r, "rules reload", p, "", body, e)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Status   string `json:"status"`
		Operator string `json:"operator"`
	}{"reloaded", p.name})
}

// logChange logs an acknowledgement or reload, allowed or refused.
func (a *API) logChange(r *http.Request, what string, p principal, key string, body changeBody, e *apiError) {
	var ev *zerolog.Event
	switch {
	case e == nil:
		ev = a.log.Info()
	case e.status >= 500:
		ev = a.log.Error()
	default:
		ev = a.log.Warn()
	}
	ev = ev.Str("operator", p.name).Str("role", string(p.role)).Str("remote", r.RemoteAddr)
	if key != "" {
		ev = ev.Str("key", key)
	}
	if body.Note != "" {
		ev = ev.Str("note", body.Note)
	}
	if e != nil {
		ev.Str("outcome", e.Reason).Int("status", e.status).Str("detail", e.Detail).Msg(what + " refused")
		return
	}
	ev.Str("outcome", "ok").Msg(what)
}

// portPath reads and checks {site}/{pile}/{port}.
func portPath(r *http.Request) (site, pile string, port int, e *apiError) {
	site, pile = r.PathValue("site"), r.PathValue("pile")
	if !telemetry.ValidID(site) {
		return "", "", 0, badRequest("bad_id", "site must match [A-Za-z0-9_-]{1,64}")
	}
	if !telemetry.ValidID(pile) {
		return "", "", 0, badRequest("bad_id", "pile must match [A-Za-z0-9_-]{1,64}")
	}
	port, ok := parsePort(r.PathValue("port"))
	if !ok {
		return "", "", 0, badRequest("bad_port", "port must be a number from 0 (the whole pile) to %d", telemetry.MaxPort)
	}
	return site, pile, port, nil
}

// parsePort accepts a port number in its plain decimal form only: "7", not
// "07", "+7" or "7.0".
func parsePort(s string) (int, bool) {
	if len(s) == 0 || len(s) > 2 || (len(s) == 2 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n <= telemetry.MaxPort
}

// alertKeyPath reads the alert key from either form of the ack route and
// returns it in its canonical form.
func alertKeyPath(r *http.Request) (string, *apiError) {
	parts := []string{r.PathValue("alertname"), r.PathValue("site"), r.PathValue("pile"), r.PathValue("port")}
	if key := r.PathValue("key"); key != "" {
		parts = strings.Split(key, "/")
	}
	if len(parts) != 4 {
		return "", badRequest("bad_key", "an alert key is alertname/site/pile/port, as in the key field of GET /api/v1/alerts")
	}
	name, ok := alerting.ParseAlertName(parts[0])
	if !ok {
		return "", badRequest("bad_key", "%q is not an alert name", truncate(parts[0], 32))
	}
	if !telemetry.ValidID(parts[1]) || !telemetry.ValidID(parts[2]) {
		return "", badRequest("bad_id", "site and pile must match [A-Za-z0-9_-]{1,64}")
	}
	port, ok := parsePort(parts[3])
	if !ok {
		return "", badRequest("bad_port", "port must be a number from 0 (the whole pile) to %d", telemetry.MaxPort)
	}
	return alerting.Alert{Name: name, Site: parts[1], Pile: parts[2], Port: port}.Key(), nil
}

func urlQuery(r *http.Request) (url.Values, error) { return url.ParseQuery(r.URL.RawQuery) }
