package console

import (
	"context"
	"fmt"
	"html/template"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/chargeguard/chargeguard/alerting"
)

// history keeps the last hour of temperature and current of every port the
// console has read, one sample per step, in a fixed ring per port: 12 bytes
// a sample, 120 samples a port at the default 30 s step (1.4 KiB a port,
// 28 MiB for 2,000 piles of 10 ports). It is fed from the console's own
// polls, so it costs the engine nothing more; it starts empty at each start
// (the hour before the start comes from InfluxDB: stored, below).
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

// HistorySample is one step of a port's stored readings: the highest
// temperature and current of the step, NaN when none was stored.
type HistorySample struct {
	At    time.Time
	TempC float64
	A     float64
}

// HistoryFunc reads a port's stored readings in [from, to), one per step,
// oldest first (app wires InfluxDB's port measurement here). It must
// return once ctx is done.
type HistoryFunc func(ctx context.Context, site, pile string, port int, from, to time.Time, step time.Duration) ([]HistorySample, error)

// stored holds, per port, the readings of the hour before the console
// started, read once from Options.History when the port's page is first
// opened: the in-memory history starts empty at each start, and a chart
// that is blank for an hour after a restart hides what led to a cut. The
// span is fixed ([started−1h, started)), so one read per port serves every
// later page; a failed read is tried again after storedRetry. Reads happen
// on the page handlers' goroutines, never on the poll's (nor, a fortiori,
// the engine's), each bounded by Options.HistoryTimeout.
type stored struct {
	log     zerolog.Logger
	fetch   HistoryFunc
	timeout time.Duration
	step    time.Duration
	from    time.Time
	to      time.Time

	mu sync.Mutex
	m  map[string]*storedEntry
}

type storedEntry struct {
	done chan struct{} // closed when ss and err are set
	ss   []sample
	err  error
	at   time.Time // when the read ended
}

// storedRetry is how long a failed read is not tried again: a console left
// open while InfluxDB is down costs it one query per port per 30 s.
const storedRetry = 30 * time.Second

// storedMax bounds the ports whose stored readings are kept (120 samples,
// 1.4 KiB each): pages are opened by people, a few hundred at most.
const storedMax = 4096

func newStored(log zerolog.Logger, fetch HistoryFunc, started time.Time, step, timeout time.Duration) *stored {
	return &stored{log: log, fetch: fetch, timeout: timeout, step: step,
		from: started.Add(-time.Hour), to: started, m: map[string]*storedEntry{}}
}

// samples returns the port's stored readings of the hour before the start
// that are still in the chart's hour at now, oldest first, and the error of
// the read, if it failed. Once the start is more than an hour ago it
// reads nothing.
func (st *stored) samples(ctx context.Context, site, pile string, n int, now time.Time) ([]sample, error) {
	if st == nil || st.fetch == nil {
		return nil, nil
	}
	since := now.Add(-time.Hour)
	if !since.Before(st.to) {
		st.mu.Lock()
		if len(st.m) > 0 {
			st.m = map[string]*storedEntry{} // no page needs them any more
		}
		st.mu.Unlock()
		return nil, nil
	}
	id := portID(site, pile, n)
	st.mu.Lock()
	e := st.m[id]
	if e != nil {
		select {
		case <-e.done:
			if e.err != nil && time.Since(e.at) >= storedRetry {
				e = nil
			}
		default:
		}
	}
	owner := e == nil
	if owner {
		if len(st.m) >= storedMax {
			for k, old := range st.m {
				if len(st.m) < storedMax {
					break
				}
				select {
				case <-old.done:
					delete(st.m, k)
				default: // a read under way: its page is waiting
				}
			}
		}
		e = &storedEntry{done: make(chan struct{})}
		st.m[id] = e
	}
	st.mu.Unlock()
	if owner {
		// The read serves every later page of the port: a browser that
		// hangs up must not cut it short and leave a failure behind.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), st.timeout)
		got, err := st.fetch(rctx, site, pile, n, st.from, st.to, st.step)
		cancel()
		if err != nil {
			// Logged once per read, not once per page that shows it.
			st.log.Warn().Err(err).Str("site", site).Str("pile", pile).Int("port", n).
				Msg("console: stored readings unavailable; the chart shows those since the start")
		}
		ss := make([]sample, 0, len(got))
		for _, g := range got {
			ss = append(ss, sample{at: g.At.Unix(), temp: float32(g.TempC), amps: float32(g.A)})
		}
		e.ss, e.err, e.at = ss, err, time.Now()
		close(e.done)
	} else {
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if e.err != nil {
		return nil, e.err
	}
	out := make([]sample, 0, len(e.ss))
	for _, s := range e.ss {
		if s.at >= since.Unix() {
			out = append(out, s)
		}
	}
	return out, nil
}

// mergeSamples puts the stored readings before the first in-memory one,
// oldest first: where both have a step, memory's wins (it is what the
// engine saw).
func mergeSamples(stored, mem []sample) []sample {
	if len(stored) == 0 {
		return mem
	}
	cut := int64(math.MaxInt64)
	if len(mem) > 0 {
		cut = mem[0].at
	}
	out := make([]sample, 0, len(stored)+len(mem))
	for _, s := range stored {
		if s.at < cut {
			out = append(out, s)
		}
	}
	return append(out, mem...)
}
