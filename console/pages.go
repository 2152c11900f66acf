package console

import (
	"bytes"
	"embed"
	"fmt"
	"html"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/alerting/api"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages holds one template set per page: the layout plus the page's
// "content" and "live" templates. "live" is the part that server-sent
// events replace.
type pages struct {
	t map[string]*template.Template
}

var pageNames = []string{"signin", "error", "fleet", "site", "port", "alerts", "alert"}

func newPages() (*pages, error) {
	funcs := template.FuncMap{
		"iso":       func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"clock":     clock,
		"alertPath": alertPath,
		// item gives the alert item template the page's data and one alert.
		"item": func(d *pageData, a alertItem) itemData { return itemData{pageData: d, A: a} },
	}
	p := &pages{t: map[string]*template.Template{}}
	for _, name := range pageNames {
		files := []string{"templates/layout.html", "templates/" + name + ".html"}
		if name == "alert" {
			files = append(files, "templates/alerts.html")
		}
		t := template.New(name).Funcs(funcs)
		var err error
		if name == "alert" {
			// alert.html uses the alert item of alerts.html but has its own
			// content and live templates: parse alerts.html first.
			t, err = t.ParseFS(templateFS, "templates/layout.html", "templates/alerts.html", "templates/alert.html")
		} else {
			t, err = t.ParseFS(templateFS, files...)
		}
		if err != nil {
			return nil, fmt.Errorf("console: templates of %s: %w", name, err)
		}
		p.t[name] = t
	}
	return p, nil
}

// clock shows a time as the on-call person reads it: local time of the
// server, with the date only when it is not today.
func clock(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	now := time.Now()
	if t.Year() == now.Year() && t.YearDay() == now.YearDay() {
		return t.Local().Format("15:04:05")
	}
	return t.Local().Format("2006-01-02 15:04")
}

// pageData is what every template gets.
type pageData struct {
	L          *lang
	Title      string
	Nav        string
	Path       string // the page's path, for the language switch and redirects
	Back       string // where a form on the page returns to
	User       *userView
	SignedIn   bool // a real session, not the anonymous viewer
	Operator   bool
	CSRF       string
	Flash      string
	FlashClass string
	Live       string // the SSE address of the live part, "" for none
	Stale      bool
	Body       any
}

type itemData struct {
	*pageData
	A alertItem
}

func (p *pages) render(w http.ResponseWriter, status int, name, tmpl string, d *pageData) {
	var buf bytes.Buffer
	if err := p.t[name].ExecuteTemplate(&buf, tmpl, d); err != nil {
		http.Error(w, "template error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fragment renders a page's live part into bytes.
func (p *pages) fragment(name string, d *pageData) ([]byte, error) {
	var buf bytes.Buffer
	if err := p.t[name].ExecuteTemplate(&buf, "live", d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func staticHandler() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	fsrv := http.FileServerFS(sub)
	return http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Assets change only with the binary; a day of caching is safe and
		// keeps a phone on a slow link from fetching them on every page.
		w.Header().Set("Cache-Control", "public, max-age=86400")
		fsrv.ServeHTTP(w, r)
	}))
}

// userView is the signed-in person as templates show them.
type userView struct {
	Name string
	Role api.Role
}

// the data of the site page.
type pileRow struct {
	Pile    string
	Offline bool
	Cells   []cell
	// Grid is the pile's cells as HTML. The cells are written by hand
	// rather than by the template: a 2,000-port site took 55 ms a render
	// through html/template's reflection, 9 ms this way (BenchmarkSitePage).
	Grid template.HTML
}

type cell struct {
	Pile, State, Href, Temp, Amps string
	Port                          int
}

func fmtTemp(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf("%.0f°", *v)
}

func fmtTempLong(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf("%.1f °C", *v)
}

func fmtAmps(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf("%.1fA", *v)
}

func fmtAmpsLong(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf("%.2f A", *v)
}

func siteRows(v *fleetView, site string, l *lang) []pileRow {
	var rows []pileRow
	for _, p := range v.sitePorts(site) {
		if len(rows) == 0 || rows[len(rows)-1].Pile != p.Pile {
			rows = append(rows, pileRow{Pile: p.Pile, Offline: v.offline[pileKey(p.Site, p.Pile)]})
		}
		r := &rows[len(rows)-1]
		r.Cells = append(r.Cells, cell{
			Pile: p.Pile, Port: p.Port, State: cellState(p, r.Offline),
			Href: portPath(p.Site, p.Pile, p.Port), Temp: fmtTemp(p.TempC), Amps: fmtAmps(p.A),
		})
	}
	var b strings.Builder
	for i := range rows {
		b.Reset()
		for _, c := range rows[i].Cells {
			e := html.EscapeString
			fmt.Fprintf(&b, `<a class="cell %s" id="cell-%s-%d" data-state="%s" href="%s" title="%s"><span class="n">%d</span><span class="t">%s</span><span class="a">%s</span></a>`,
				e(c.State), e(c.Pile), c.Port, e(c.State), e(c.Href), e(l.T(c.State)), c.Port, e(c.Temp), e(c.Amps))
		}
		rows[i].Grid = template.HTML(b.String()) // every value above is escaped
		rows[i].Cells = nil
	}
	return rows
}

// portData is the data of the port page.
type portData struct {
	Site, Pile    string
	Port          int
	View          alerting.PortView
	State         string
	Temp, Amps    string
	Reasons       []string // alert names
	Resettable    bool
	PileLatched   bool
	ResetPath     string
	ResetPilePath string
	Alerts        []alertItem
	Chart         template.HTML
	// StoredMissing is set when the readings before the console's start
	// could not be read: the chart shows only those since then.
	StoredMissing time.Time
	Audit         []alerting.AuditRecord
}

// alertData is the data of an alert's page.
type alertData struct {
	A        alertItem
	PortPath string
	Timeline []timelineEntry
}

type timelineEntry struct {
	At     time.Time
	Kind   string
	Label  string
	Who    string
	Text   string
	After  string // time since the alert fired
	Target string // the 1-3-5 target of this step
	Late   bool
}
