package console

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/telemetry"
)

// events streams a page's live part as server-sent events: the rendered
// HTML of the part, sent again whenever a poll changes it. The script
// replaces the part's content with it. A fragment is rendered once per
// poll for all the viewers of the same page, language and role.
func (c *Console) events(w http.ResponseWriter, r *http.Request) {
	secureHeaders(w)
	id, s := c.sessionOf(r)
	if s == nil {
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	q := r.URL.Query()
	name, params, ok := liveView(q)
	if !ok {
		http.Error(w, "unknown view", http.StatusBadRequest)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// Ask the browser to reconnect quickly after a restart of the guard.
	fmt.Fprint(w, "retry: 1000\n\n")
	flusher.Flush()
	c.m.streams.Inc()
	c.streams.Add(1)
	defer func() { c.m.streams.Dec(); c.streams.Add(-1) }()

	d := c.base(r, "", s)
	// Viewers get no forms, so they share one fragment; an operator's forms
	// (on the alerts, alert and port pages) carry the session's CSRF token,
	// so operators get their own there.
	csrf := ""
	if d.Operator && (name == "alerts" || name == "alert" || name == "port") {
		csrf = d.CSRF
	}
	key := fmt.Sprintf("%s|%s|%s|%t|%s", name, params.Encode(), d.L.Code, d.Operator, csrf)
	var last []byte
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		changed := *c.changed.Load()
		// A session that ended (sign-out, expiry) stops its streams.
		if c.o.Auth != nil && c.sessions.get(c.o.Now(), id) == nil {
			return
		}
		frag, err := c.fragmentFor(r.Context(), key, name, params, d)
		if err != nil {
			c.log.Warn().Err(err).Str("view", name).Msg("console: live fragment failed")
			return
		}
		if !bytes.Equal(frag, last) {
			_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := writeEvent(w, "update", frag); err != nil {
				return
			}
			flusher.Flush()
			last = frag
		}
		select {
		case <-r.Context().Done():
			return
		case <-c.stopped:
			return
		case <-changed:
		case <-keepAlive.C:
			_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		}
	}
}

func writeEvent(w http.ResponseWriter, event string, data []byte) error {
	var b bytes.Buffer
	b.WriteString("event: ")
	b.WriteString(event)
	b.WriteByte('\n')
	for _, line := range bytes.Split(data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(bytes.TrimRight(line, "\r"))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// liveView checks the view and its parameters.
func liveView(q url.Values) (string, url.Values, bool) {
	p := url.Values{}
	switch v := q.Get("view"); v {
	case "fleet":
		return v, p, true
	case "site":
		site := q.Get("site")
		p.Set("site", site)
		return v, p, telemetry.ValidID(site)
	case "alerts":
		site := q.Get("site")
		p.Set("site", site)
		return v, p, site == "" || telemetry.ValidID(site)
	case "alert":
		key := q.Get("key")
		p.Set("key", key)
		_, ok := alerting.ParseAlertName(alertNameOf(key))
		return v, p, ok
	case "port":
		site, pile, port := q.Get("site"), q.Get("pile"), q.Get("port")
		n, err := strconv.Atoi(port)
		p.Set("site", site)
		p.Set("pile", pile)
		p.Set("port", port)
		return v, p, err == nil && telemetry.ValidID(site) && telemetry.ValidID(pile) && n >= 1 && n <= telemetry.MaxPort
	}
	return "", nil, false
}

func alertNameOf(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			return key[:i]
		}
	}
	return key
}

// fragmentFor renders (or takes from the cache) the live part of a view
// for the current read.
func (c *Console) fragmentFor(ctx context.Context, key, name string, p url.Values, base *pageData) ([]byte, error) {
	v := c.view.Load()
	c.fragMu.Lock()
	if c.fragVer != v.version {
		clear(c.frags)
		c.fragVer = v.version
	}
	if b, ok := c.frags[key]; ok {
		c.fragMu.Unlock()
		return b, nil
	}
	c.fragMu.Unlock()

	d := *base
	d.Stale = v.stale
	d.Flash = ""
	switch name {
	case "fleet":
		d.Body = v.sites
	case "site":
		d.Body = siteRows(v, p.Get("site"), d.L)
	case "alerts":
		d.Back = "/alerts"
		if s := p.Get("site"); s != "" {
			d.Back += "?site=" + s
		}
		d.Body = c.alertsData(v, p.Get("site"))
	case "alert":
		d.Back = alertPath(p.Get("key"))
		ad, ok := c.alertData(ctx, v, p.Get("key"), base.L)
		if !ok {
			return []byte("<p class=\"empty\">" + base.L.T("Not found") + "</p>"), nil
		}
		d.Body = ad
	case "port":
		n, _ := strconv.Atoi(p.Get("port"))
		pd, ok := c.portData(ctx, v, p.Get("site"), p.Get("pile"), n)
		if !ok {
			return []byte("<p class=\"empty\">" + base.L.T("Not found") + "</p>"), nil
		}
		d.Body = pd
	}
	b, err := c.pages.fragment(name, &d)
	if err != nil {
		return nil, err
	}
	c.fragMu.Lock()
	if c.fragVer == v.version {
		c.frags[key] = b
	}
	c.fragMu.Unlock()
	return b, nil
}
