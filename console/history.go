package console

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/chargeguard/chargeguard/alerting"
)

// history keeps the last hour of temperature and current of every port the
// console has read, one sample per step, in a fixed ring per port: 12 bytes
// a sample, 120 samples a port at the default 30 s step (1.4 KiB a port,
// 28 MiB for 2,000 piles of 10 ports). It is fed from the console's own
// polls, so it costs the engine nothing more; it starts empty at each start.
type history struct {
	step time.Duration
	n    int
	mu   sync.Mutex
	m    map[string]*ring
}

type sample struct {
	at   int64 // unix seconds
	temp float32
	amps float32
}

type ring struct {
	s    []sample
	next int
	last int64
}

func newHistory(window, step time.Duration) *history {
	n := int(window / step)
	if n < 2 {
		n = 2
	}
	return &history{step: step, n: n, m: map[string]*ring{}}
}

func portID(site, pile string, n int) string { return fmt.Sprintf("%s/%s/%d", site, pile, n) }

func (h *history) add(now time.Time, ports []alerting.PortView) {
	t := now.Unix()
	step := int64(h.step / time.Second)
	if step < 1 {
		step = 1
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range ports {
		if p.TempC == nil && p.A == nil {
			continue
		}
		id := portID(p.Site, p.Pile, p.Port)
		s := sample{at: t, temp: float32(math.NaN()), amps: float32(math.NaN())}
		if p.TempC != nil {
			s.temp = float32(*p.TempC)
		}
		if p.A != nil {
			s.amps = float32(*p.A)
		}
		r := h.m[id]
		if r == nil {
			r = &ring{}
			h.m[id] = r
		} else if t-r.last < step && len(r.s) > 0 {
			// Within a step keep the highest readings: a spike to the
			// cut-off must show on the chart however short it was.
			last := &r.s[(r.next+len(r.s)-1)%len(r.s)]
			last.temp, last.amps = max32(last.temp, s.temp), max32(last.amps, s.amps)
			continue
		}
		if len(r.s) < h.n {
			r.s = append(r.s, s)
		} else {
			r.s[r.next] = s
			r.next = (r.next + 1) % h.n
		}
		r.last = t
	}
}

// samples returns a port's samples since `since`, oldest first.
func (h *history) samples(site, pile string, n int, since time.Time) []sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.m[portID(site, pile, n)]
	if r == nil {
		return nil
	}
	out := make([]sample, 0, len(r.s))
	for _, s := range append(r.s[r.next:len(r.s):len(r.s)], r.s[:r.next]...) {
		if s.at >= since.Unix() {
			out = append(out, s)
		}
	}
	return out
}

// chartSVG draws temperature (left scale, °C) and current (right scale, A)
// over the last hour as inline SVG. It is built from numbers only, so it is
// safe to mark as HTML.
func chartSVG(now time.Time, ss []sample, overheatC float64, title string) template.HTML {
	const w, h, padL, padR, padT, padB = 600.0, 240.0, 50.0, 56.0, 14.0, 28.0
	start := now.Add(-time.Hour).Unix()
	x := func(at int64) float64 { return padL + (w-padL-padR)*float64(at-start)/3600 }
	tMax, aMax := 60.0, 5.0
	if overheatC > tMax-5 {
		tMax = overheatC + 10
	}
	for _, s := range ss {
		if v := float64(s.temp); !math.IsNaN(v) && v > tMax {
			tMax = v * 1.1
		}
		if v := float64(s.amps); !math.IsNaN(v) && v > aMax {
			aMax = v * 1.1
		}
	}
	// Round the scales up so that the grid lines fall on round numbers.
	tMax = math.Ceil(tMax/20) * 20
	aMax = math.Ceil(aMax/4) * 4
	yT := func(v float64) float64 { return padT + (h-padT-padB)*(1-v/tMax) }
	yA := func(v float64) float64 { return padT + (h-padT-padB)*(1-v/aMax) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`, w, h, template.HTMLEscapeString(title))
	// Grid and scales.
	for i := 0; i <= 4; i++ {
		y := padT + (h-padT-padB)*float64(i)/4
		fmt.Fprintf(&b, `<line class="grid" x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f"/>`, padL, y, w-padR, y)
		fmt.Fprintf(&b, `<text class="axis t" x="%.0f" y="%.1f" text-anchor="end">%.0f°</text>`, padL-4, y+4, tMax*(1-float64(i)/4))
		fmt.Fprintf(&b, `<text class="axis a" x="%.0f" y="%.1f">%.1fA</text>`, w-padR+4, y+4, aMax*(1-float64(i)/4))
	}
	for i := 0; i <= 4; i++ {
		xx := padL + (w-padL-padR)*float64(i)/4
		label := fmt.Sprintf("-%dm", 60-15*i)
		if i == 4 {
			label = "now"
		}
		fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%.0f" text-anchor="middle">%s</text>`, xx, h-6, label)
	}
	if overheatC > 0 {
		fmt.Fprintf(&b, `<line class="limit" x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f"/>`, padL, yT(overheatC), w-padR, yT(overheatC))
	}
	line := func(class string, val func(sample) float64, y func(float64) float64) {
		var pts []string
		for _, s := range ss {
			v := val(s)
			if math.IsNaN(v) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.at), y(v)))
		}
		if len(pts) == 0 {
			return
		}
		fmt.Fprintf(&b, `<polyline class="%s" points="%s"/>`, class, strings.Join(pts, " "))
		// Mark the latest reading, which also makes a lone sample visible.
		lx, ly, _ := strings.Cut(pts[len(pts)-1], ",")
		fmt.Fprintf(&b, `<circle class="%s" cx="%s" cy="%s" r="4"/>`, class, lx, ly)
	}
	line("temp", func(s sample) float64 { return float64(s.temp) }, yT)
	line("amps", func(s sample) float64 { return float64(s.amps) }, yA)
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // #nosec: numbers and an escaped title only
}

// max32 is the larger of two readings, a missing (NaN) one counting as
// smaller than any.
func max32(a, b float32) float32 {
	if a != a || b > a {
		return b
	}
	return a
}
