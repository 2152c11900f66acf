package notify

import (
	"fmt"
	"testing"
)

// BenchmarkFire measures what the safety engine pays on its hot path for one
// Fire: the alert's label set is cleaned and keyed, and its update queued for
// two Alertmanagers. Nothing is sent (Run is not running); 1000 alerts take
// turns, so every queue coalesces updates as it does under an alert storm.
func BenchmarkFire(b *testing.B) {
	n, err := New(Options{URLs: []string{"http://127.0.0.1:9093", "http://127.0.0.1:9094"}})
	if err != nil {
		b.Fatal(err)
	}
	alerts := make([]Alert, 1000)
	for i := range alerts {
		alerts[i] = overheat("site-1", fmt.Sprintf("pile-%d", i), i%10+1)
		// A new reading each time, so that no Fire is skipped as unchanged.
		alerts[i].Annotations = nil
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		a := alerts[i%len(alerts)]
		a.Annotations = map[string]string{"description": fmt.Sprint(i)}
		n.Fire(a)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fires/s")
}
