package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/alerting/api"
	"github.com/chargeguard/chargeguard/telemetry"
)

func (c *Console) routes() {
	c.mux.Handle("GET /static/", staticHandler())
	c.mux.HandleFunc("GET /signin", c.signInPage)
	c.mux.HandleFunc("POST /signin", c.signIn)
	c.mux.HandleFunc("POST /signout", c.change(false, c.signOut))
	c.mux.HandleFunc("GET /lang", c.setLang)
	c.mux.HandleFunc("GET /{$}", c.page(c.fleet))
	c.mux.HandleFunc("GET /sites/{site}", c.page(c.site))
	c.mux.HandleFunc("GET /ports/{site}/{pile}/{port}", c.page(c.port))
	c.mux.HandleFunc("GET /alerts", c.page(c.alerts))
	c.mux.HandleFunc("GET /alerts/{alertname}/{site}/{pile}/{port}", c.page(c.alert))
	c.mux.HandleFunc("GET /events", c.events)
	c.mux.HandleFunc("POST /ports/{site}/{pile}/{port}/reset", c.change(true, c.reset))
	c.mux.HandleFunc("POST /alerts/ack", c.change(true, c.ack))
	c.mux.HandleFunc("POST /alerts/onsite", c.change(true, c.markOnSite))
	c.mux.HandleFunc("POST /alerts/note", c.change(true, c.note))
	c.mux.HandleFunc("/", c.page(func(r *http.Request, d *pageData) (string, int) {
		return c.notFound(d, r.URL.Path)
	}))
}

// secureHeaders keep the console's pages from being framed, sniffed or
// running any script but its own.
func secureHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

// pageFunc fills d.Body (and the title) and returns the template and status.
type pageFunc func(r *http.Request, d *pageData) (tmpl string, status int)

func (c *Console) base(r *http.Request, id string, s *session) *pageData {
	d := &pageData{L: langOf(r), Path: r.URL.RequestURI()}
	d.Back = d.Path
	if s != nil {
		d.User = &userView{Name: s.name, Role: s.role}
		d.SignedIn = c.o.Auth != nil
		d.Operator = s.operator()
		d.CSRF = s.csrf
		if id != "" {
			if f := c.sessions.takeFlash(id); f != "" {
				if msg, ok := strings.CutPrefix(f, "ok:"); ok {
					d.Flash, d.FlashClass = msg, "good"
				} else {
					d.Flash, d.FlashClass = f, "bad"
				}
			}
		}
	}
	return d
}

// page wraps a GET handler: a session is required (else the sign-in page),
// and the page is rendered from the console's last read.
func (c *Console) page(f pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		secureHeaders(w)
		id, s := c.sessionOf(r)
		if s == nil {
			http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		c.want()
		d := c.base(r, id, s)
		v := c.view.Load()
		d.Stale = v.stale
		tmpl, status := f(r, d)
		c.pages.render(w, status, tmpl, "layout", d)
	}
}

func (c *Console) notFound(d *pageData, what string) (string, int) {
	d.Title = d.L.T("Not found")
	d.Body = what
	return "error", http.StatusNotFound
}

func (c *Console) fleet(_ *http.Request, d *pageData) (string, int) {
	d.Title, d.Nav, d.Live = d.L.T("Fleet"), "fleet", "/events?view=fleet"
	d.Body = c.view.Load().sites
	return "fleet", http.StatusOK
}

func (c *Console) site(r *http.Request, d *pageData) (string, int) {
	site := r.PathValue("site")
	if !telemetry.ValidID(site) {
		return c.notFound(d, site)
	}
	v := c.view.Load()
	d.Title, d.Nav = site, "fleet"
	d.Live = "/events?view=site&site=" + url.QueryEscape(site)
	d.Body = siteRows(v, site, d.L)
	return "site", http.StatusOK
}

// Legend lists the cell states in the order of the legend.
func (d *pageData) Legend() []string {
	return []string{"latched", "closing", "closed", "offline", "warning", "charging", "idle", "unknown"}
}

func parsePortPath(r *http.Request) (site, pile string, n int, ok bool) {
	site, pile = r.PathValue("site"), r.PathValue("pile")
	n, err := strconv.Atoi(r.PathValue("port"))
	if err != nil || !telemetry.ValidID(site) || !telemetry.ValidID(pile) || n < 0 || n > telemetry.MaxPort {
		return "", "", 0, false
	}
	return site, pile, n, true
}

func (c *Console) portData(ctx context.Context, v *fleetView, site, pile string, n int) (portData, bool) {
	pv, ok := v.port(site, pile, n)
	if !ok {
		return portData{}, false
	}
	reasons := append(append([]string(nil), pv.LatchReasons...), pv.PileLatchReasons...)
	if len(reasons) == 0 && pv.CloseReason != "" {
		reasons = []string{pv.CloseReason}
	}
	now := c.o.Now()
	pd := portData{
		Site: site, Pile: pile, Port: n, View: pv,
		State: cellState(pv, v.offline[pileKey(site, pile)]),
		Temp:  fmtTempLong(pv.TempC), Amps: fmtAmpsLong(pv.A),
		Reasons:       reasons,
		Resettable:    len(pv.LatchReasons) > 0 || (pv.Control == alerting.ControlClosed && len(pv.PileLatchReasons) == 0),
		PileLatched:   len(pv.PileLatchReasons) > 0,
		ResetPath:     portPath(site, pile, n) + "/reset",
		ResetPilePath: portPath(site, pile, 0) + "/reset",
		Alerts:        v.portAlerts(site, pile, n),
	}
	ss := c.hist.samples(site, pile, n, now.Add(-time.Hour))
	old, err := c.stored.samples(ctx, site, pile, n, now)
	if err != nil {
		// The chart shows what the console saw since it started, and says
		// what is missing; the page never fails for want of the past.
		pd.StoredMissing = c.started
	}
	pd.Chart = chartSVG(now, mergeSamples(old, ss), 0, "temperature and current, last hour")
	return pd, true
}

func (c *Console) port(r *http.Request, d *pageData) (string, int) {
	site, pile, n, ok := parsePortPath(r)
	if !ok || n == 0 {
		return c.notFound(d, r.URL.Path)
	}
	pd, ok := c.portData(r.Context(), c.view.Load(), site, pile, n)
	if !ok {
		return c.notFound(d, r.URL.Path)
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.o.Timeout)
	defer cancel()
	recs, err := c.o.Guard.Audit(ctx, site, pile, n)
	if err != nil {
		c.log.Warn().Err(err).Msg("console: audit read failed")
	}
	if n != 0 {
		pile0, _ := c.o.Guard.Audit(ctx, site, pile, 0)
		recs = mergeAudit(recs, pile0)
	}
	// Newest first: the operator came for the latest.
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	pd.Audit = recs
	d.Title, d.Nav = fmt.Sprintf("%s/%s/%d", site, pile, n), "fleet"
	d.Live = fmt.Sprintf("/events?view=port&site=%s&pile=%s&port=%d", site, pile, n)
	d.Body = pd
	return "port", http.StatusOK
}

// mergeAudit merges two oldest-first lists.
func mergeAudit(a, b []alerting.AuditRecord) []alerting.AuditRecord {
	out := make([]alerting.AuditRecord, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		if j >= len(b) || (i < len(a) && !a[i].At.After(b[j].At)) {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	return out
}

type alertsPage struct {
	Site           string
	Active, Recent []alertItem
}

func (c *Console) alertsData(v *fleetView, site string) alertsPage {
	p := alertsPage{Site: site}
	for _, a := range v.active {
		if site == "" || a.Site == site {
			p.Active = append(p.Active, a)
		}
	}
	for _, a := range v.recent {
		if site == "" || a.Site == site {
			p.Recent = append(p.Recent, a)
		}
	}
	return p
}

func (c *Console) alerts(r *http.Request, d *pageData) (string, int) {
	site := r.URL.Query().Get("site")
	if site != "" && !telemetry.ValidID(site) {
		site = ""
	}
	d.Title, d.Nav = d.L.T("Alerts"), "alerts"
	d.Live = "/events?view=alerts&site=" + url.QueryEscape(site)
	d.Body = c.alertsData(c.view.Load(), site)
	return "alerts", http.StatusOK
}

func alertKeyOf(r *http.Request) (string, bool) {
	name, ok := alerting.ParseAlertName(r.PathValue("alertname"))
	site, pile := r.PathValue("site"), r.PathValue("pile")
	n, err := strconv.Atoi(r.PathValue("port"))
	if !ok || err != nil || !telemetry.ValidID(site) || !telemetry.ValidID(pile) || n < 0 || n > telemetry.MaxPort {
		return "", false
	}
	return alerting.Alert{Name: name, Site: site, Pile: pile, Port: n}.Key(), true
}

func (c *Console) alertData(ctx context.Context, v *fleetView, key string, l *lang) (alertData, bool) {
	a, ok := v.alert(key)
	if !ok {
		return alertData{}, false
	}
	ad := alertData{A: a, PortPath: portPath(a.Site, a.Pile, a.Port)}
	if a.Port == 0 {
		ad.PortPath = portPath(a.Site, a.Pile, 1)
	}
	rctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	recs, err := c.o.Guard.Audit(rctx, a.Site, a.Pile, a.Port)
	if err != nil {
		c.log.Warn().Err(err).Msg("console: audit read failed")
	}
	ad.Timeline = timeline(a.AlertView, recs, l)
	return ad, true
}

// The district's response targets: respond (acknowledge) within 1 minute,
// be on site within 3.
const (
	targetAck    = time.Minute
	targetOnSite = 3 * time.Minute
)

// timeline builds fired → acknowledged → on site → cleared, with notes,
// from the alert and its port's audit, the summary in the reader's language.
func timeline(a alerting.AlertView, recs []alerting.AuditRecord, l *lang) []timelineEntry {
	out := []timelineEntry{{At: a.StartsAt, Kind: "fired", Label: "Fired", Text: l.Summary(a.Alert)}}
	after := func(t time.Time) string { return t.Sub(a.StartsAt).Round(time.Second).String() }
	seenAck, seenOnSite := false, false
	for _, r := range recs {
		if r.Reason != a.Name.String() || r.At.Before(a.StartsAt) || (!a.EndsAt.IsZero() && r.At.After(a.EndsAt)) {
			continue
		}
		who := strings.TrimPrefix(r.Actor, "operator:")
		switch r.Kind {
		case alerting.AuditAlertAck:
			if seenAck {
				continue
			}
			seenAck = true
			d := r.At.Sub(a.StartsAt)
			out = append(out, timelineEntry{At: r.At, Kind: "ack", Label: "Acknowledged", Who: who, After: after(r.At), Target: "1m", Late: d > targetAck})
		case alerting.AuditOnSite:
			if seenOnSite {
				continue
			}
			seenOnSite = true
			d := r.At.Sub(a.StartsAt)
			out = append(out, timelineEntry{At: r.At, Kind: "onsite", Label: "On site", Who: who, After: after(r.At), Target: "3m", Late: d > targetOnSite})
		case alerting.AuditNote:
			out = append(out, timelineEntry{At: r.At, Kind: "note", Label: "Note", Who: who, Text: r.Detail, After: after(r.At)})
		}
	}
	if !seenAck && !a.AckedAt.IsZero() {
		// The audit ring may have dropped the record; the alert keeps it.
		out = append(out, timelineEntry{At: a.AckedAt, Kind: "ack", Label: "Acknowledged", Who: a.AckedBy, After: after(a.AckedAt), Target: "1m", Late: a.AckedAt.Sub(a.StartsAt) > targetAck})
	}
	if !a.EndsAt.IsZero() {
		out = append(out, timelineEntry{At: a.EndsAt, Kind: "cleared", Label: "Cleared", After: after(a.EndsAt)})
	}
	return out
}

func (c *Console) alert(r *http.Request, d *pageData) (string, int) {
	key, ok := alertKeyOf(r)
	if !ok {
		return c.notFound(d, r.URL.Path)
	}
	ad, ok := c.alertData(r.Context(), c.view.Load(), key, d.L)
	if !ok {
		return c.notFound(d, key)
	}
	d.Title, d.Nav = key, "alerts"
	d.Live = "/events?view=alert&key=" + url.QueryEscape(key)
	d.Body = ad
	return "alert", http.StatusOK
}

// --- sign-in ---------------------------------------------------------------

type signInData struct {
	Error, Next, Name string
}

// localPath returns p if it is a path on this site, else "/": a sign-in
// must not send anyone elsewhere.
func localPath(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return "/"
	}
	return p
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	c.renderSignIn(w, r, http.StatusOK, signInData{Next: localPath(r.URL.Query().Get("next"))})
}

func (c *Console) renderSignIn(w http.ResponseWriter, r *http.Request, status int, body signInData) {
	secureHeaders(w)
	if c.o.Auth == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	d := c.base(r, "", nil)
	d.Title = d.L.T("Sign in")
	d.CSRF = randomToken()
	c.setCookie(w, r, preCookie, d.CSRF, 30*time.Minute)
	d.Body = body
	c.pages.render(w, status, "signin", "layout", d)
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	if c.o.Auth == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	L := langOf(r)
	body := signInData{Next: localPath(r.PostFormValue("next")), Name: strings.TrimSpace(r.PostFormValue("name"))}
	now := c.o.Now()
	addr := clientAddr(r)
	if wait, blocked := c.limiter.blocked(now, addr); blocked {
		c.m.signIns.WithLabelValues("rate_limited").Inc()
		c.log.Warn().Str("remote", addr).Msg("console sign-in refused: too many failures")
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		body.Error = fmt.Sprintf("%s %ds.", L.T("Too many failed sign-ins; try again in"), int(wait.Seconds())+1)
		c.renderSignIn(w, r, http.StatusTooManyRequests, body)
		return
	}
	pre, err := r.Cookie(preCookie)
	if err != nil || !equalSecret(pre.Value, r.PostFormValue(csrfField)) {
		c.m.signIns.WithLabelValues("bad_csrf").Inc()
		body.Error = L.T("Session expired or invalid form; please try again.")
		c.renderSignIn(w, r, http.StatusForbidden, body)
		return
	}
	name, role, ok := c.o.Auth.Authenticate(r.PostFormValue("token"))
	// The name must match the token's too: a sign-in says who is acting,
	// and the token alone already does; asking for both catches a
	// colleague's token typed by mistake.
	if !ok || name != body.Name {
		c.limiter.fail(now, addr)
		c.m.signIns.WithLabelValues("bad_credentials").Inc()
		c.log.Warn().Str("remote", addr).Str("name", truncate(body.Name, 64)).Msg("console sign-in failed")
		body.Error = L.T("Wrong name or token.")
		c.renderSignIn(w, r, http.StatusUnauthorized, body)
		return
	}
	id, _ := c.sessions.create(now, name, role)
	c.setCookie(w, r, sessionCookie, id, c.o.SessionTTL)
	c.clearCookie(w, r, preCookie)
	c.m.signIns.WithLabelValues("ok").Inc()
	c.log.Info().Str("operator", name).Str("role", string(role)).Str("remote", addr).Msg("console sign-in")
	http.Redirect(w, r, body.Next, http.StatusSeeOther)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request, id string, s *session) {
	c.sessions.remove(id)
	c.clearCookie(w, r, sessionCookie)
	c.log.Info().Str("operator", s.name).Msg("console sign-out")
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

func (c *Console) setLang(w http.ResponseWriter, r *http.Request) {
	to := r.URL.Query().Get("to")
	if to != langZH && to != langEN {
		to = langEN
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: to, Path: "/", MaxAge: 365 * 24 * 3600,
		Secure: c.secure(r), SameSite: http.SameSiteLaxMode, HttpOnly: true})
	http.Redirect(w, r, localPath(r.URL.Query().Get("back")), http.StatusSeeOther)
}

// --- changes -----------------------------------------------------------------

type changeFunc func(w http.ResponseWriter, r *http.Request, id string, s *session)

// change wraps a POST: it needs a session, the session's CSRF token in the
// form, and (for operatorOnly) the operator role. Anything else is refused
// before the engine hears of it.
func (c *Console) change(operatorOnly bool, f changeFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		secureHeaders(w)
		r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
		id, s := c.sessionOf(r)
		refuse := func(reason, msg string) {
			c.m.refused.WithLabelValues(reason).Inc()
			who := ""
			if s != nil {
				who = s.name
			}
			c.log.Warn().Str("operator", who).Str("path", truncate(r.URL.Path, 200)).Str("reason", reason).Str("remote", clientAddr(r)).Msg("console change refused")
			d := c.base(r, "", s)
			d.Title = d.L.T("Forbidden")
			d.Body = d.L.T(msg)
			c.pages.render(w, http.StatusForbidden, "error", "layout", d)
		}
		switch {
		case s == nil || id == "" && c.o.Auth != nil:
			refuse("no_session", "Session expired or invalid form; please try again.")
		case !equalSecret(s.csrf, r.PostFormValue(csrfField)):
			refuse("bad_csrf", "Session expired or invalid form; please try again.")
		case operatorOnly && s.role != api.RoleOperator:
			refuse("viewer", "You are a viewer: changes need an operator token.")
		default:
			f(w, r, id, s)
		}
	}
}

func (c *Console) done(w http.ResponseWriter, r *http.Request, id, back, flash string) {
	// The change is in the audit now: live parts rendered before it (an
	// alert's timeline reads the audit) must not be served again.
	c.fragMu.Lock()
	clear(c.frags)
	c.fragMu.Unlock()
	c.sessions.setFlash(id, flash)
	http.Redirect(w, r, localPath(back), http.StatusSeeOther)
}

func (c *Console) guardCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), c.o.Timeout)
}

func (c *Console) reset(w http.ResponseWriter, r *http.Request, id string, s *session) {
	L := langOf(r)
	site, pile, n, ok := parsePortPath(r)
	if !ok {
		c.done(w, r, id, "/", L.T("Not found"))
		return
	}
	back := portPath(site, pile, max(n, 1))
	ctx, cancel := c.guardCtx(r)
	defer cancel()
	err := c.o.Guard.Reset(ctx, site, pile, n, s.name)
	ev := c.log.Info()
	if err != nil {
		ev = c.log.Warn().Err(err)
	}
	ev.Str("operator", s.name).Str("site", site).Str("pile", pile).Int("port", n).Msg("console: port reset")
	if err != nil {
		c.done(w, r, id, back, L.T("Reset refused")+": "+guardMessage(err))
		return
	}
	c.done(w, r, id, back, "ok:"+L.T("Reset accepted: open command sent"))
}

// guardMessage is what an operator is told of a refused change: the
// engine's reason (which reading still breaks which threshold) for the
// known sentinels, a generic word for anything else.
func guardMessage(err error) string {
	if alerting.ErrorReason(err) == "internal" && !errors.Is(err, alerting.ErrEmptyNote) {
		return "internal error (see the chargeguard log)"
	}
	return err.Error()
}

func (c *Console) alertChange(w http.ResponseWriter, r *http.Request, id string, s *session, what string, f func(ctx context.Context, key string) error, okMsg string) {
	L := langOf(r)
	key := r.PostFormValue("key")
	back := localPath(r.PostFormValue("back"))
	if back == "/" {
		back = "/alerts"
	}
	ctx, cancel := c.guardCtx(r)
	defer cancel()
	err := f(ctx, key)
	ev := c.log.Info()
	if err != nil {
		ev = c.log.Warn().Err(err)
	}
	ev.Str("operator", s.name).Str("key", truncate(key, 200)).Msg("console: " + what)
	if err != nil {
		c.done(w, r, id, back, L.T(what)+": "+guardMessage(err))
		return
	}
	c.done(w, r, id, back, "ok:"+L.T(okMsg))
}

func (c *Console) ack(w http.ResponseWriter, r *http.Request, id string, s *session) {
	c.alertChange(w, r, id, s, "Acknowledge", func(ctx context.Context, key string) error {
		return c.o.Guard.AckAlert(ctx, key, s.name)
	}, "Acknowledged")
}

func (c *Console) markOnSite(w http.ResponseWriter, r *http.Request, id string, s *session) {
	c.alertChange(w, r, id, s, "On site", func(ctx context.Context, key string) error {
		if err := c.o.Guard.MarkOnSite(ctx, key, s.name); err != nil {
			return err
		}
		if a, ok := c.view.Load().alert(key); ok && a.Active {
			c.observeOnSite(a.AlertView, c.o.Now())
		}
		return nil
	}, "Marked on site")
}

func (c *Console) note(w http.ResponseWriter, r *http.Request, id string, s *session) {
	c.alertChange(w, r, id, s, "Add note", func(ctx context.Context, key string) error {
		return c.o.Guard.Note(ctx, key, s.name, r.PostFormValue("note"))
	}, "Note added")
}
