package alerting

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/chargeguard/chargeguard/telemetry"
)

// fleet is a set of piles with 10 charging ports each and a telemetry
// message per pile that is reused (seq and ts moved on) for every reading.
type fleet struct {
	msgs []telemetry.Message
	seq  uint32
}

func newFleet(piles, ports int) *fleet {
	f := &fleet{}
	for i := 0; i < piles; i++ {
		t := &telemetry.Telemetry{V: 1, AmbientC: telemetry.F(25), LeakMA: telemetry.F(1.5), Smoke: telemetry.B(false)}
		for n := 1; n <= ports; n++ {
			t.Ports = append(t.Ports, telemetry.PortSample{
				N: n, State: telemetry.StateCharging,
				V: telemetry.F(220), A: telemetry.F(2.1), W: telemetry.F(462), WH: telemetry.F(100), TempC: telemetry.F(38 + float64(n%5)),
			})
		}
		f.msgs = append(f.msgs, telemetry.Message{
			Topic:     telemetry.Topic{Root: telemetry.DefaultRoot, Site: fmt.Sprintf("site%03d", i%200), Pile: fmt.Sprintf("pile%06d", i), Kind: telemetry.KindTelemetry},
			Telemetry: t,
		})
	}
	return f
}

// births announces every pile.
func (f *fleet) births(e *Engine, now time.Time) {
	for _, m := range f.msgs {
		b := m
		b.Topic.Kind, b.Telemetry = telemetry.KindStatus, nil
		b.Status = &telemetry.Status{V: 1, Online: true, Ports: len(m.Telemetry.Ports), RatedA: 5, Kind: telemetry.SiteResidential}
		e.Observe(now, b)
	}
}

// round feeds one reading of every pile at now.
func (f *fleet) round(e *Engine, now time.Time) int {
	f.seq++
	acts := 0
	for i := range f.msgs {
		m := &f.msgs[i]
		m.Telemetry.Seq, m.Telemetry.TS, m.Received = f.seq, now.UnixMilli(), now
		acts += len(e.Observe(now, *m))
	}
	return acts
}

// BenchmarkObserveTelemetry measures rule evaluation of healthy 10-port
// telemetry through the engine: 1,000 piles, one message (10 port samples)
// per op.
func BenchmarkObserveTelemetry(b *testing.B) {
	e := newTestEngine(b)
	f := newFleet(1000, 10)
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	f.births(e, now)
	for i := 0; i < 40; i++ { // fill the rate windows
		now = now.Add(time.Second)
		f.round(e, now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		j := i % len(f.msgs)
		if j == 0 {
			f.seq++
			now = now.Add(time.Second)
		}
		m := &f.msgs[j]
		m.Telemetry.Seq, m.Telemetry.TS, m.Received = f.seq, now.UnixMilli(), now
		if acts := e.Observe(now, *m); len(acts) != 0 {
			b.Fatalf("healthy telemetry gave %v", acts)
		}
	}
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)*10/el, "samples/s")
	b.ReportMetric(el*1e9/(float64(b.N)*10), "ns/sample")
}

// BenchmarkTick measures a Tick over 10,000 piles with nothing due.
func BenchmarkTick(b *testing.B) {
	e := newTestEngine(b)
	f := newFleet(10000, 10)
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	f.births(e, now)
	f.round(e, now)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if acts := e.Tick(now.Add(time.Second)); len(acts) != 0 {
			b.Fatalf("tick gave %v", acts)
		}
	}
	b.ReportMetric(float64(b.N)*10000/b.Elapsed().Seconds(), "piles/s")
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestMemoryPerPort builds the state of 10,000 piles × 10 charging ports,
// their rate windows full, and checks it stays under 2 KiB a port (so a
// million ports fit in 2 GiB).
func TestMemoryPerPort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 100,000 ports")
	}
	const piles, ports = 10000, 10
	f := newFleet(piles, ports)
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	before := heapInUse()
	e := newTestEngine(t)
	f.births(e, now)
	for i := 0; i < riseCap+2; i++ {
		now = now.Add(time.Second)
		for j := range f.msgs {
			// Rising slowly so that every window holds distinct samples.
			for k := range f.msgs[j].Telemetry.Ports {
				*f.msgs[j].Telemetry.Ports[k].TempC += 0.01
			}
		}
		if acts := f.round(e, now); acts != 0 {
			t.Fatalf("healthy fleet gave %d actions", acts)
		}
	}
	after := heapInUse()
	runtime.KeepAlive(e)
	e = nil
	freed := heapInUse()
	runtime.KeepAlive(f)
	perPort := float64(after-freed) / (piles * ports)
	t.Logf("engine state: %.0f bytes/port (%d piles × %d ports, %.1f MiB; heap grew by %.1f MiB)",
		perPort, piles, ports, float64(after-freed)/(1<<20), float64(after-before)/(1<<20))
	if perPort > 2048 {
		t.Fatalf("engine state is %.0f bytes/port, want under 2048", perPort)
	}
}

// BenchmarkSnapshot measures Snapshot over 10,000 charging piles of which
// 10 hold a latched port: the service persists it after every step with
// actions.
func BenchmarkSnapshot(b *testing.B) {
	e := latchedEngine(b, 10000, 10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Every pile of the fleet is charging, and a pile charging is
		// kept (so that a restart knows which went silent mid-charge).
		if s := e.Snapshot(); len(s.Piles) != 10000 {
			b.Fatalf("snapshot holds %d piles, want 10000", len(s.Piles))
		}
	}
}

// BenchmarkSnapshotManyLatched is BenchmarkSnapshot with 4,000 of the
// 10,000 piles holding a latched port (a mass trip), and the encoding the
// service does after it.
func BenchmarkSnapshotManyLatched(b *testing.B) {
	e := latchedEngine(b, 10000, 4000)
	b.Run("snapshot", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = e.Snapshot()
		}
	})
	b.Run("snapshot+json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(e.Snapshot()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// latchedEngine is an engine with a fleet of piles (10 ports each) that
// have reported once, of which latched, spread evenly, have port 1 latched
// for overheating.
func latchedEngine(b *testing.B, piles, latched int) *Engine {
	e := newTestEngine(b)
	f := newFleet(piles, 10)
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	f.births(e, now)
	f.round(e, now)
	for i := range latched {
		m := f.msgs[i*(piles/latched)]
		*m.Telemetry.Ports[0].TempC = 90
		m.Telemetry.Seq++
		e.Observe(now, m)
	}
	return e
}
