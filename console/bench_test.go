package console

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/telemetry"
)

// benchConsole is a console whose last read holds one site of piles × 10
// ports (every 37th port latched, every 11th warning), as a large site.
func benchConsole(b *testing.B, piles int) *Console {
	g := &fakeGuard{}
	for p := range piles {
		for n := 1; n <= 10; n++ {
			i := p*10 + n
			pv := alerting.PortView{Site: "big", Pile: fmt.Sprintf("p%04d", p), Port: n, Control: alerting.ControlOpen,
				Reported: telemetry.StateCharging, TempC: f(30 + float64(i%20)), A: f(1 + float64(i%4))}
			switch {
			case i%37 == 0:
				pv.Control, pv.LatchReasons = alerting.ControlLatched, []string{"overheat"}
			case i%11 == 0:
				pv.Alerts = []string{"temp_warning"}
			}
			g.ports = append(g.ports, pv)
		}
	}
	c, err := New(Options{Guard: g})
	if err != nil {
		b.Fatal(err)
	}
	c.poll(context.Background())
	return c
}

// BenchmarkSitePage is the server time to render the whole site page of a
// 200-pile, 10-port site from the console's last read (what a browser gets
// on opening it).
func BenchmarkSitePage(b *testing.B) {
	c := benchConsole(b, 200)
	h := c.Handler()
	req := httptest.NewRequest(http.MethodGet, "/sites/big", nil)
	b.ReportAllocs()
	var size int
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
		size = w.Body.Len()
	}
	b.ReportMetric(float64(size)/1024, "KiB/page")
}

// BenchmarkSiteFragment is the cost of one live update of that grid: the
// fragment rendered once per poll and shared by every viewer of the page.
func BenchmarkSiteFragment(b *testing.B) {
	c := benchConsole(b, 200)
	d := &pageData{L: english, User: &userView{Name: "x"}}
	p := url.Values{"site": {"big"}}
	b.ReportAllocs()
	for b.Loop() {
		c.fragMu.Lock()
		c.fragVer = 0 // a new poll each time: no cache hit
		c.fragMu.Unlock()
		if _, err := c.fragmentFor(context.Background(), "k", "site", p, d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPoll is the console's once-a-second work on a read of 2,000
// ports: building the fleet view, the chart history and the metrics.
func BenchmarkPoll(b *testing.B) {
	c := benchConsole(b, 200)
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		c.o.Now = func() time.Time { return now }
		c.poll(ctx)
	}
}
