package ingest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/internal/testenv"
)

// BenchmarkBrokerAutosaveStall measures what a backlog left in Mosquitto
// costs every client of it: a persistent session (storage's, while it
// yields) holds `queued` QoS 1 messages of 600 bytes, the broker autosaves
// every 2 s, and a client times round trips through the broker every 2 ms
// for 5 s. Mosquitto writes its whole queue at each autosave in its one
// thread, so the slowest round trip grows with the queue: that is a cut
// waiting. Reported: the slowest round trip and the persistence file's size.
//
//	go test -run '^$' -bench BrokerAutosaveStall -benchtime 1x ./ingest
func BenchmarkBrokerAutosaveStall(b *testing.B) {
	for _, queued := range []int{0, 100_000, 300_000} {
		b.Run(fmt.Sprintf("queued=%d", queued), func(b *testing.B) {
			mosq := testenv.MosquittoWith(b, "autosave_interval 2")
			connect := func(id string, clean bool) paho.Client {
				c := paho.NewClient(paho.NewClientOptions().AddBroker(mosq.URL).SetClientID(id).SetCleanSession(clean))
				tok := c.Connect()
				require.True(b, tok.WaitTimeout(10*time.Second))
				require.NoError(b, tok.Error())
				return c
			}
			// The storage session subscribes and goes quiet: its queue grows.
			storage := connect("storage", false)
			require.True(b, storage.Subscribe("chargers/#", 1, nil).WaitTimeout(10*time.Second))
			storage.Disconnect(100)
			pub := connect("load", true)
			defer pub.Disconnect(100)
			payload := bytes.Repeat([]byte("x"), 600)
			for i := range queued {
				tok := pub.Publish(fmt.Sprintf("chargers/s1/p%d/telemetry", i%1000), 1, false, payload)
				if i%1000 == 999 || i == queued-1 {
					require.True(b, tok.WaitTimeout(30*time.Second))
				}
			}
			echo := connect("echo", true)
			defer echo.Disconnect(100)
			back := make(chan time.Time, 1)
			require.True(b, echo.Subscribe("ping", 0, func(paho.Client, paho.Message) { back <- time.Now() }).WaitTimeout(10*time.Second))

			b.ResetTimer()
			var worst time.Duration
			for range b.N {
				for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
					sent := time.Now()
					pub.Publish("ping", 0, false, []byte("x"))
					select {
					case at := <-back:
						worst = max(worst, at.Sub(sent))
					case <-time.After(30 * time.Second):
						b.Fatal("no ping came back within 30 s")
					}
					time.Sleep(2 * time.Millisecond)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(worst.Microseconds())/1000, "max_round_trip_ms")
			b.ReportMetric(0, "ns/op")
			if fi, err := os.Stat(filepath.Join(mosq.Dir, "mosquitto.db")); err == nil {
				b.ReportMetric(float64(fi.Size())/(1<<20), "db_MiB")
			}
		})
	}
}
