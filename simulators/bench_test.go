package simulators

import (
	"testing"
	"time"
)

// BenchmarkSimulateChanghe measures the physics and encoding of the whole
// Changhe fleet offline: one simulated minute per iteration.
func BenchmarkSimulateChanghe(b *testing.B) {
	f, err := LoadFleet("fleets/changhe.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var msgs int
	start := time.Now()
	for b.Loop() {
		err := Simulate(Options{Fleet: f, Seed: 1, Start: time.Date(2025, 7, 1, 20, 0, 0, 0, Hangzhou)}, time.Minute,
			func(Emitted) { msgs++ })
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(msgs)/time.Since(start).Seconds(), "msgs/s")
}
