package alerting

import (
	"testing"
	"time"
)

// BenchmarkPorts is the cost of one full read of the port views, what the
// web console asks for once a second (and the API for GET /api/v1/ports):
// 2,000 piles of 10 ports. Until the service reads from published
// snapshots this runs on the engine's goroutine.
func BenchmarkPorts(b *testing.B) {
	e := newTestEngine(b)
	f := newFleet(2000, 10)
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	f.births(e, now)
	f.round(e, now)
	b.ReportAllocs()
	for b.Loop() {
		if n := len(e.Ports(PortFilter{})); n != 20000 {
			b.Fatalf("%d ports, want 20000", n)
		}
	}
}
