package alerting

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// viewFleet is a service (not running: the benchmark is its goroutine)
// holding 30,000 piles of 10 ports: 300,000 ports, all published once.
func viewFleet(b *testing.B) (*Service, *fleet, time.Time) {
	b.Helper()
	now := time.Unix(1_700_000_000, 0)
	s, err := NewService(ServiceOptions{Publisher: PublisherFunc(func(string, []byte) error { return nil }), Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	f := newFleet(30000, 10)
	f.seq++
	for i := range f.msgs {
		m := &f.msgs[i]
		m.Telemetry.Seq, m.Telemetry.TS, m.Received = f.seq, now.UnixMilli(), now
		s.handle(*m)
	}
	s.publishView()
	if n := s.View().NumPorts(); n != 300000 {
		b.Fatalf("view holds %d ports, want 300000", n)
	}
	return s, f, now
}

// BenchmarkViewPublish measures what the engine's goroutine pays per
// publication of the readers' view at 300,000 ports, for a tick in which
// `changed` piles sent telemetry (100 ms at 1,000 piles every 10 s is
// 10; at 10,000 messages/s it is 1,000). The messages themselves are fed
// with the timer stopped: only the publication is measured.
//
//	go test -run '^$' -bench ViewPublish -benchmem ./alerting
func BenchmarkViewPublish(b *testing.B) {
	s, f, now := viewFleet(b)
	for _, changed := range []int{0, 10, 100, 1000} {
		b.Run(fmt.Sprintf("ports=300k/changed_piles=%d", changed), func(b *testing.B) {
			b.ReportAllocs()
			next := 0
			for b.Loop() {
				b.StopTimer()
				f.seq++
				now = now.Add(100 * time.Millisecond)
				for range changed {
					m := &f.msgs[next%len(f.msgs)]
					next += 7919 // a prime: changed piles spread over the fleet
					m.Telemetry.Seq, m.Telemetry.TS, m.Received = f.seq, now.UnixMilli(), now
					s.handle(*m)
				}
				b.StartTimer()
				s.publishView()
			}
		})
	}
}

// BenchmarkViewPublishNewPile is a publication in a tick in which one
// pile was seen for the first time: the positions after it shift, so the
// view's chunks are rebuilt (a walk of the pile pointers, no rendering).
//
//	go test -run '^$' -bench ViewPublishNewPile -benchmem ./alerting
func BenchmarkViewPublishNewPile(b *testing.B) {
	s, f, now := viewFleet(b)
	m := f.msgs[0]
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		m.Topic.Site, m.Topic.Pile = "new", fmt.Sprintf("p%d", i)
		m.Received = now
		s.handle(m)
		b.StartTimer()
		s.publishView()
	}
}

// BenchmarkEnginePortsFullWalk is what one GET /api/v1/ports cost the
// engine's goroutine before the view: render and sort every port.
//
//	go test -run '^$' -bench EnginePortsFullWalk -benchmem ./alerting
func BenchmarkEnginePortsFullWalk(b *testing.B) {
	s, _, _ := viewFleet(b)
	b.ReportAllocs()
	for b.Loop() {
		if n := len(s.engine.Ports(PortFilter{})); n != 300000 {
			b.Fatal(n)
		}
	}
}

// BenchmarkViewPortsPage is what a reader pays, on its own goroutine, for
// one page of 500 ports from the middle of a 300,000-port view.
func BenchmarkViewPortsPage(b *testing.B) {
	s, _, _ := viewFleet(b)
	mid := s.View().Ports(PortQuery{Limit: 150000}).Next
	b.ReportAllocs()
	for b.Loop() {
		page, err := s.PortsPage(context.Background(), PortQuery{After: mid, Limit: 500})
		if err != nil || len(page.Ports) != 500 {
			b.Fatal(err, len(page.Ports))
		}
	}
}
