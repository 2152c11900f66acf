package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/internal/testenv"
	lp "github.com/chargeguard/chargeguard/lineproto"
	"github.com/chargeguard/chargeguard/telemetry"
)

// BenchmarkInfluxCost measures what InfluxDB 1.8.10 spends to store one
// port sample in a given shape of line protocol (docs/benchmarks.md, "What
// InfluxDB spends per stored port sample"). Each run starts a fresh influxd
// (its cache snapshotted 1 s after the last write, so the TSM work is
// counted), posts the same 50,000 ten-port messages from 1,000 piles in the
// shape, batch size and number of concurrent requests of the sub-benchmark,
// waits for the snapshot, and reports influxd's CPU seconds per million port
// samples (from /proc) and the port samples/s the writes took.
//
//	go test -run '^$' -bench InfluxCost -benchtime 1x -count 3 ./ingest
//
// "shipped" is appendMessage, the shape chargeguard writes; the others are
// written here to compare with it.
func BenchmarkInfluxCost(b *testing.B) {
	const piles, rounds = 1000, 50
	msgs := costMessages(piles, rounds)
	type shape struct {
		name      string
		lines     func(dst []byte, m *telemetry.Message) []byte
		precision string
		batch     int // lines per request
		clients   int
	}
	shipped := func(dst []byte, m *telemetry.Message) []byte {
		dst, _ = appendMessage(dst, m, time.Hour)
		return dst
	}
	shapes := []shape{
		{"shipped/batch=1000/clients=2", shipped, "ns", 1000, 2},
		{"before/batch=1000/clients=2", costBefore, "ns", 1000, 2},
		{"telegraf/batch=1000/clients=2", costTelegraf, "ns", 1000, 2},
		{"shipped_ms/batch=1000/clients=2", costMS, "ms", 1000, 2},
		{"unsorted_tags/batch=1000/clients=2", costUnsorted, "ns", 1000, 2},
		{"state_int/batch=1000/clients=2", costStateInt, "ns", 1000, 2},
		{"wide/batch=1000/clients=2", costWide, "ns", 1000, 2},
		{"shipped/batch=500/clients=2", shipped, "ns", 500, 2},
		{"shipped/batch=2000/clients=2", shipped, "ns", 2000, 2},
		{"shipped/batch=5000/clients=2", shipped, "ns", 5000, 2},
		{"shipped/batch=40000/clients=1", shipped, "ns", 40000, 1},
		{"shipped/batch=40000/clients=2", shipped, "ns", 40000, 2},
		{"shipped/batch=10000/clients=2", shipped, "ns", 10000, 2},
		{"shipped/batch=1000/clients=1", shipped, "ns", 1000, 1},
		{"shipped/batch=1000/clients=4", shipped, "ns", 1000, 4},
	}
	for _, s := range shapes {
		b.Run(s.name, func(b *testing.B) {
			// The requests, made before the clock starts.
			var reqs [][]byte
			var cur []byte
			n := 0
			samples := 0
			for i := range msgs {
				before := len(cur)
				cur = s.lines(cur, &msgs[i])
				n += bytes.Count(cur[before:], []byte{'\n'})
				samples += len(msgs[i].Telemetry.Ports)
				if n >= s.batch {
					reqs = append(reqs, cur)
					cur, n = nil, 0
				}
			}
			if len(cur) > 0 {
				reqs = append(reqs, cur)
			}
			var cpu, wall time.Duration
			for b.Loop() {
				b.StopTimer()
				influx := testenv.Influx(b, `cache-snapshot-write-cold-duration = "1s"`)
				url := influx.URL + "/api/v2/write?bucket=" + influx.Bucket() + "&precision=" + s.precision
				time.Sleep(time.Second) // let the start's own work end
				cpu0 := testenv.ProcCPU(b, influx.PID())
				b.StartTimer()
				start := time.Now()
				postAll(b, url, reqs, s.clients)
				wall += time.Since(start)
				b.StopTimer()
				time.Sleep(3 * time.Second) // the cold snapshot
				cpu += testenv.ProcCPU(b, influx.PID()) - cpu0
				if s.name[:4] == "wide" {
					require.EqualValues(b, len(msgs), influx.CountField(b, "pile", "seq"), "every message stored once")
				} else {
					require.EqualValues(b, samples, influx.CountField(b, "port", "a"), "every port sample stored once")
				}
				influx.Stop()
				b.StartTimer()
			}
			b.ReportMetric(cpu.Seconds()/float64(b.N)/float64(samples)*1e6, "influx_cpu_s/Msample")
			b.ReportMetric(float64(samples*b.N)/wall.Seconds(), "samples/s")
			b.ReportMetric(float64(len(reqs)), "requests")
		})
	}
}

// postAll posts every request with clients concurrent HTTP clients.
func postAll(b *testing.B, url string, reqs [][]byte, clients int) {
	ch := make(chan []byte)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	hc := &http.Client{Timeout: time.Minute}
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range ch {
				resp, err := hc.Post(url, "text/plain; charset=utf-8", bytes.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				msg, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					errs <- fmt.Errorf("write: %s: %s", resp.Status, msg)
					return
				}
			}
		}()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		defer close(ch)
		for _, r := range reqs {
			select {
			case ch <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

// costMessages is rounds ten-port telemetry messages from each of piles
// piles, a second apart, with readings that move a little from message to
// message (as real ones do, which matters to InfluxDB's compression).
func costMessages(piles, rounds int) []telemetry.Message {
	base := time.Now().Add(-time.Duration(rounds+10) * time.Second).UnixMilli()
	out := make([]telemetry.Message, 0, piles*rounds)
	for r := range rounds {
		for p := range piles {
			t := &telemetry.Telemetry{V: 1, TS: base + int64(r)*1000 + int64(p%1000), Seq: uint32(r + 1),
				AmbientC: telemetry.F(24.5 + float64(r%7)/10), LeakMA: telemetry.F(1.5), Smoke: telemetry.B(false)}
			for n := 1; n <= 10; n++ {
				s := telemetry.PortSample{N: n, State: telemetry.StateIdle, V: telemetry.F(221.3), A: telemetry.F(0), W: telemetry.F(0), WH: telemetry.F(0), TempC: telemetry.F(25.1)}
				if (p+n)%3 == 0 {
					a := 1.2 + float64((p*7+n+r)%11)/100
					s.State, s.A, s.W = telemetry.StateCharging, telemetry.F(a), telemetry.F(a*221.3)
					s.WH, s.TempC = telemetry.F(float64(r)*0.07+10), telemetry.F(28+float64((r+n)%9)/10)
				}
				t.Ports = append(t.Ports, s)
			}
			out = append(out, telemetry.Message{
				Topic:     telemetry.Topic{Root: "chargers", Site: fmt.Sprintf("site-%02d", p/100), Pile: fmt.Sprintf("p%03d", p%100), Kind: telemetry.KindTelemetry},
				Received:  time.UnixMilli(t.TS + 40),
				Telemetry: t,
			})
		}
	}
	return out
}

// costPortFields appends a port sample's six fields, state first.
func costPortFields(dst []byte, p *telemetry.PortSample, state func([]byte, telemetry.PortState) []byte) []byte {
	dst = append(dst, " state="...)
	dst = state(dst, p.State)
	dst = lp.OptFloat(dst, "v", p.V)
	dst = lp.OptFloat(dst, "a", p.A)
	dst = lp.OptFloat(dst, "w", p.W)
	dst = lp.OptFloat(dst, "wh", p.WH)
	return lp.OptFloat(dst, "temp_c", p.TempC)
}

func stateString(dst []byte, s telemetry.PortState) []byte { return lp.String(dst, string(s), 32) }

// costBefore is the shape chargeguard wrote before issue 12: seq on every
// port point, the port tag after site, and ports_charging on the pile point.
func costBefore(dst []byte, m *telemetry.Message) []byte {
	t := m.Telemetry
	ts := t.TS * 1e6
	charging := 0
	for i := range t.Ports {
		p := &t.Ports[i]
		if p.State == telemetry.StateCharging {
			charging++
		}
		dst = appendSeries(dst, MeasurementPort, m.Topic.Site, m.Topic.Pile)
		dst = append(dst, ",port="...)
		dst = strconv.AppendInt(dst, int64(p.N), 10)
		dst = costPortFields(dst, p, stateString)
		dst = lp.Int(dst, "seq", int64(t.Seq))
		dst = lp.Time(dst, ts)
	}
	dst = appendSeries(dst, MeasurementPile, m.Topic.Site, m.Topic.Pile)
	dst = append(dst, " seq="...)
	dst = strconv.AppendInt(dst, int64(t.Seq), 10)
	dst = append(dst, 'i')
	dst = lp.Int(dst, "ports_charging", int64(charging))
	dst = lp.OptFloat(dst, "ambient_c", t.AmbientC)
	dst = lp.OptFloat(dst, "leak_ma", t.LeakMA)
	dst = lp.Bool(dst, "smoke", *t.Smoke)
	dst = lp.Int(dst, "skew_ms", 40)
	return lp.Time(dst, ts)
}

// costTelegraf is what Telegraf's json_v2 makes of a message
// (scripts/sidebyside.sh): the port points only, no pile data.
func costTelegraf(dst []byte, m *telemetry.Message) []byte {
	return costPorts(dst, m, stateString)
}

// costPorts appends the shipped port points, state written by state.
func costPorts(dst []byte, m *telemetry.Message, state func([]byte, telemetry.PortState) []byte) []byte {
	t := m.Telemetry
	for i := range t.Ports {
		p := &t.Ports[i]
		dst = append(dst, MeasurementPort+",pile="...)
		dst = lp.Tag(dst, m.Topic.Pile)
		dst = append(dst, ",port="...)
		dst = strconv.AppendInt(dst, int64(p.N), 10)
		dst = append(dst, ",site="...)
		dst = lp.Tag(dst, m.Topic.Site)
		dst = costPortFields(dst, p, state)
		dst = lp.Time(dst, t.TS*1e6)
	}
	return dst
}

// costMS is the shipped shape with millisecond timestamps.
func costMS(dst []byte, m *telemetry.Message) []byte {
	lines, _ := appendMessage(nil, m, time.Hour)
	for len(lines) > 0 {
		line, rest, _ := bytes.Cut(lines, []byte{'\n'})
		dst = append(dst, line[:len(line)-6]...) // ns to ms: the pile's ts is whole ms
		dst = append(dst, '\n')
		lines = rest
	}
	return dst
}

// costUnsorted is the shipped shape with the port tag after site, as
// before: InfluxDB sorts the keys itself.
func costUnsorted(dst []byte, m *telemetry.Message) []byte {
	t := m.Telemetry
	for i := range t.Ports {
		p := &t.Ports[i]
		dst = appendSeries(dst, MeasurementPort, m.Topic.Site, m.Topic.Pile)
		dst = append(dst, ",port="...)
		dst = strconv.AppendInt(dst, int64(p.N), 10)
		dst = costPortFields(dst, p, stateString)
		dst = lp.Time(dst, t.TS*1e6)
	}
	return costPile(dst, m)
}

// costStateInt is the shipped shape with state as an integer code.
func costStateInt(dst []byte, m *telemetry.Message) []byte {
	code := func(dst []byte, s telemetry.PortState) []byte {
		c := map[telemetry.PortState]int64{telemetry.StateIdle: 0, telemetry.StateCharging: 1, telemetry.StateClosed: 2, telemetry.StateFault: 3}[s]
		dst = strconv.AppendInt(dst, c, 10)
		return append(dst, 'i')
	}
	return costPile(costPorts(dst, m, code), m)
}

// costPile is the shipped pile point.
func costPile(dst []byte, m *telemetry.Message) []byte {
	t := m.Telemetry
	dst = appendSeries(dst, MeasurementPile, m.Topic.Site, m.Topic.Pile)
	dst = append(dst, " seq="...)
	dst = strconv.AppendInt(dst, int64(t.Seq), 10)
	dst = append(dst, 'i')
	dst = lp.OptFloat(dst, "ambient_c", t.AmbientC)
	dst = lp.OptFloat(dst, "leak_ma", t.LeakMA)
	dst = lp.Bool(dst, "smoke", *t.Smoke)
	dst = lp.Int(dst, "skew_ms", 40)
	return lp.Time(dst, t.TS*1e6)
}

// costWide is one point per message: every port's fields by name (p3_a),
// with the pile's fields, as the field notes measured.
func costWide(dst []byte, m *telemetry.Message) []byte {
	t := m.Telemetry
	dst = appendSeries(dst, MeasurementPile, m.Topic.Site, m.Topic.Pile)
	dst = append(dst, " seq="...)
	dst = strconv.AppendInt(dst, int64(t.Seq), 10)
	dst = append(dst, 'i')
	for i := range t.Ports {
		p := &t.Ports[i]
		k := "p" + strconv.Itoa(p.N) + "_"
		dst = append(dst, ","+k+"state="...)
		dst = lp.String(dst, string(p.State), 32)
		dst = lp.OptFloat(dst, k+"v", p.V)
		dst = lp.OptFloat(dst, k+"a", p.A)
		dst = lp.OptFloat(dst, k+"w", p.W)
		dst = lp.OptFloat(dst, k+"wh", p.WH)
		dst = lp.OptFloat(dst, k+"temp_c", p.TempC)
	}
	dst = lp.OptFloat(dst, "ambient_c", t.AmbientC)
	dst = lp.OptFloat(dst, "leak_ma", t.LeakMA)
	dst = lp.Bool(dst, "smoke", *t.Smoke)
	dst = lp.Int(dst, "skew_ms", 40)
	return lp.Time(dst, t.TS*1e6)
}
