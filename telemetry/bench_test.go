package telemetry

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// benchPorts is the port count of the benchmark pile, the typical shed pile.
const benchPorts = 10

// benchTelemetry is a realistic 10-port reading: most ports charging with
// every measurement reported, some idle, ambient, smoke and leakage set.
func benchTelemetry() *Telemetry {
	r := rand.New(rand.NewPCG(7, 7))
	t := &Telemetry{TS: 1751371200000, Seq: 4411, AmbientC: F(31.5), Smoke: B(false), LeakMA: F(2.4)}
	for n := 1; n <= benchPorts; n++ {
		// Piles report their sensors' resolution: 0.1 V, 0.01 A, 0.1 °C.
		p := PortSample{N: n, State: StateCharging, V: F(round(215+r.Float64()*10, 1)), A: F(round(r.Float64()*5, 2)),
			W: F(round(r.Float64()*1100, 1)), WH: F(round(r.Float64()*3000, 1)), TempC: F(round(25+r.Float64()*30, 1))}
		if n%4 == 0 {
			p = PortSample{N: n, State: StateIdle, V: F(221.3), A: F(0), W: F(0), WH: F(0), TempC: F(30.1)}
		}
		t.Ports = append(t.Ports, p)
	}
	return t
}

func round(f float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(f*p) / p
}

func BenchmarkDecodeTelemetry(b *testing.B) {
	payload, err := Encode(benchTelemetry())
	if err != nil {
		b.Fatal(err)
	}
	topic := testTopics[KindTelemetry]
	now := time.Now()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(topic, payload, now); err != nil {
			b.Fatal(err)
		}
	}
	reportRates(b)
}

func BenchmarkEncodeTelemetry(b *testing.B) {
	t := benchTelemetry()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(t); err != nil {
			b.Fatal(err)
		}
	}
	reportRates(b)
}

// BenchmarkDecodeTelemetryStdlib is the yardstick the hand-written scanner
// was chosen against: encoding/json into the same struct, with no
// validation at all (no NaN tokens, no presence checks, no field paths).
func BenchmarkDecodeTelemetryStdlib(b *testing.B) {
	payload, err := Encode(benchTelemetry())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		var t Telemetry
		if err := json.Unmarshal(payload, &t); err != nil {
			b.Fatal(err)
		}
	}
	reportRates(b)
}

// reportRates reports throughput in the units of the ingest budget:
// 10,000 messages/s of 10 ports each.
func reportRates(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "msgs/s")
		b.ReportMetric(float64(b.N*benchPorts)/s, "port_samples/s")
	}
}
