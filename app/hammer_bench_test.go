package app_test

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/internal/testenv"
	"github.com/chargeguard/chargeguard/telemetry"
)

// BenchmarkDetectionToCommandAPIHammered measures, on a real Mosquitto
// with chargeguard as its own process holding 300,000 ports (30,000
// piles of 10), the time from a probe pile publishing an overheating
// sample to that pile receiving its close command, while `readers`
// clients walk GET /api/v1/ports (5,000 ports a page) without pause.
// readers=0 is the same fleet, unread. Each iteration uses a new probe
// pile, and only that pile's close ends it. Reported: p50, p99 and max in
// milliseconds, and the pages the readers got per second.
//
//	go test -run '^$' -bench DetectionToCommandAPIHammered -benchtime 300x -timeout 30m ./app
func BenchmarkDetectionToCommandAPIHammered(b *testing.B) {
	mosq := testenv.Mosquitto(b)
	influx := testenv.Influx(b)
	_, httpAddr := startChargeguardProcess(b, mosq.URL, influx)
	base := "http://" + httpAddr

	const piles = 30000
	publishIdleFleet(b, mosq.URL, piles, 4)
	// Wait until a walk of the API sees the whole fleet.
	h := startHammer(b, base, "", 1)
	require.Eventually(b, func() bool { return h.last.Load() >= piles*10 }, 5*time.Minute, 100*time.Millisecond,
		"the API shows %d ports", h.last.Load())
	h.close()

	probe := paho.NewClient(paho.NewClientOptions().AddBroker(mosq.URL).SetClientID("hammer-latency-probe"))
	tok := probe.Connect()
	require.True(b, tok.WaitTimeout(10*time.Second))
	require.NoError(b, tok.Error())
	defer probe.Disconnect(100)
	type arrival struct {
		pile string
		at   time.Time
	}
	closes := make(chan arrival, 1024)
	tok = probe.Subscribe("chargers/probe/+/cmd", 1, func(_ paho.Client, m paho.Message) {
		at := time.Now()
		msg, err := telemetry.DecodeTopic("chargers", m.Topic(), m.Payload(), at)
		if err != nil || msg.Command == nil || msg.Command.Action != telemetry.ActionClose {
			return
		}
		select {
		case closes <- arrival{msg.Topic.Pile, at}:
		default:
		}
	})
	require.True(b, tok.WaitTimeout(10*time.Second))
	require.NoError(b, tok.Error())

	probeN := 0
	for _, readers := range []int{0, 4} {
		b.Run(fmt.Sprintf("ports=300k/readers=%d", readers), func(b *testing.B) {
			var h *hammer
			if readers > 0 {
				h = startHammer(b, base, "", readers)
				require.Eventually(b, func() bool { return h.walks.Load() >= 1 }, 5*time.Minute, 10*time.Millisecond)
				defer h.close()
			}
			lat := make([]time.Duration, 0, b.N)
			var pagesAtStart int64
			if h != nil {
				pagesAtStart = h.ok.Load()
			}
			d2cStart := histogram(b, base, "chargeguard_detection_to_command_seconds")
			pubStart := histogram(b, base, "chargeguard_alerting_view_publish_seconds")
			began := time.Now()
			b.ResetTimer()
			for range b.N {
				probeN++
				pile := fmt.Sprintf("p%d", probeN)
				start := time.Now()
				tok := probe.Publish("chargers/probe/"+pile+"/telemetry", 1, false, overheatPayload())
				deadline := time.After(10 * time.Second)
			wait:
				for {
					select {
					case a := <-closes:
						if a.pile == pile {
							lat = append(lat, a.at.Sub(start))
							break wait
						}
					case <-deadline:
						b.Fatalf("probe %s: no close command within 10 s", pile)
					}
				}
				tok.Wait()
			}
			b.StopTimer()
			slices.Sort(lat)
			q := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(q(0.50), "p50_ms")
			b.ReportMetric(q(0.99), "p99_ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max_ms")
			if h != nil {
				b.ReportMetric(float64(h.ok.Load()-pagesAtStart)/time.Since(began).Seconds(), "pages/s")
				if n := h.failed.Load(); n > 0 {
					b.Errorf("%d failed reads: %v", n, h.errs)
				}
			}
			b.ReportMetric(0, "ns/op")
			// chargeguard's own measure, from receiving the probe's message
			// to publishing its close: what the engine's side costs, without
			// the broker and the probe's client.
			d2c := histogram(b, base, "chargeguard_detection_to_command_seconds")
			pub := histogram(b, base, "chargeguard_alerting_view_publish_seconds")
			b.ReportMetric(quantileBound(d2cStart, d2c, 0.99)*1000, "internal_p99_ms_le")
			b.ReportMetric(quantileBound(pubStart, pub, 0.99)*1000, "publish_p99_ms_le")
		})
	}
}

// histogram reads the cumulative buckets of a histogram from /metrics:
// upper bound (seconds) -> count.
func histogram(b *testing.B, base, name string) map[float64]float64 {
	resp, err := httpClient.Get(base + "/metrics")
	require.NoError(b, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[float64]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, name+`_bucket{le="`)
		if !ok {
			continue
		}
		le, count, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		l, err1 := strconv.ParseFloat(le, 64)
		c, err2 := strconv.ParseFloat(count, 64)
		if err1 == nil && err2 == nil {
			out[l] = c
		}
	}
	return out
}

// quantileBound returns the upper bound of the bucket holding quantile q
// of the observations between two reads of a histogram.
func quantileBound(before, after map[float64]float64, q float64) float64 {
	var les []float64
	for le := range after {
		les = append(les, le)
	}
	slices.Sort(les)
	total := after[math.Inf(1)] - before[math.Inf(1)]
	for _, le := range les {
		if after[le]-before[le] >= q*total {
			return le
		}
	}
	return math.Inf(1)
}
