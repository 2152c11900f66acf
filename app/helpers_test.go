package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/app"
	"github.com/chargeguard/chargeguard/config"
	"github.com/chargeguard/chargeguard/internal/testenv"
	"github.com/chargeguard/chargeguard/telemetry"
)

// running is a chargeguard started in-process for a test.
type running struct {
	app    *app.App
	cancel context.CancelFunc
	done   chan error
	reg    *prometheus.Registry
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("chargeguard did not stop within 30s")
	}
}

func testConfig(_ testing.TB, mqttURL string, influx *testenv.InfluxServer, dataDir string) config.Config {
	cfg := config.Default()
	cfg.MQTT.URL = mqttURL
	cfg.MQTT.ClientID = "chargeguard-test"
	cfg.Influx.URL = influx.URL
	cfg.Influx.Bucket = influx.Bucket()
	cfg.DataDir = dataDir
	cfg.HTTP.Addr = "127.0.0.1:0"
	return cfg
}

func start(t *testing.T, cfg config.Config, opts app.Options) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registry = reg
	opts.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	a, err := app.New(cfg, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{app: a, cancel: cancel, done: make(chan error, 1), reg: reg}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
		}
	})
	waitReady(t, "http://"+a.HTTPAddr())
	return r
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "chargeguard never became ready")
}

// metric reads one sample of a counter or gauge from the registry.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

// fleetPublisher publishes valid protocol v1 telemetry for a synthetic
// fleet: piles p0000.. at site "load", 10 ports each, ts 1 ms apart per pile
// so every (pile, port, ts) is a distinct point.
type fleetPublisher struct {
	brokerURL string
	piles     int
	conns     int
	baseMS    int64
	sent      atomic.Int64
}

func newFleetPublisher(brokerURL string, piles, conns int) *fleetPublisher {
	return &fleetPublisher{brokerURL: brokerURL, piles: piles, conns: conns, baseMS: time.Now().Add(-time.Minute).UnixMilli()}
}

func telemetryPayload(seq uint32, tsMS int64) []byte {
	t := telemetry.Telemetry{TS: tsMS, Seq: seq, AmbientC: telemetry.F(28.5), Smoke: telemetry.B(false), LeakMA: telemetry.F(1.5)}
	for n := 1; n <= 10; n++ {
		t.Ports = append(t.Ports, telemetry.PortSample{N: n, State: telemetry.StateCharging,
			V: telemetry.F(220.5), A: telemetry.F(1.5 + float64(n)/10), W: telemetry.F(330 + float64(n)),
			WH: telemetry.F(float64(seq)), TempC: telemetry.F(35 + float64(n)/10)})
	}
	b, err := telemetry.Encode(&t)
	if err != nil {
		panic(err)
	}
	return b
}

// publish sends messages number [from, to) of each pile — message k of a
// pile has seq k and ts base+k — spread over the connections. rate is the
// total messages per second, 0 for as fast as QoS 1 allows.
func (p *fleetPublisher) publish(t testing.TB, ctx context.Context, from, to int, rate float64) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, p.conns)
	for c := range p.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts := paho.NewClientOptions().AddBroker(p.brokerURL).
				SetClientID(fmt.Sprintf("fleet-pub-%d-%d", c, time.Now().UnixNano())).
				SetCleanSession(true).SetAutoReconnect(true).SetMaxReconnectInterval(time.Second).
				SetWriteTimeout(10 * time.Second)
			cl := paho.NewClient(opts)
			if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				errs <- fmt.Errorf("publisher connect: %v", tok.Error())
				return
			}
			defer cl.Disconnect(100)
			var interval time.Duration
			if rate > 0 {
				interval = time.Duration(float64(time.Second) * float64(p.conns) / rate)
			}
			next := time.Now()
			var pending []paho.Token
			for k := from; k < to; k++ {
				for pile := c; pile < p.piles; pile += p.conns {
					if ctx.Err() != nil {
						return
					}
					topic := "chargers/load/p" + strconv.Itoa(10000 + pile)[1:] + "/telemetry"
					tok := cl.Publish(topic, 1, false, telemetryPayload(uint32(k), p.baseMS+int64(k)))
					pending = append(pending, tok)
					if len(pending) >= 256 {
						for _, tk := range pending {
							if !tk.WaitTimeout(60*time.Second) || tk.Error() != nil {
								errs <- fmt.Errorf("publish: %v", tk.Error())
								return
							}
						}
						p.sent.Add(int64(len(pending)))
						pending = pending[:0]
					}
					if interval > 0 {
						next = next.Add(interval)
						if d := time.Until(next); d > 0 {
							time.Sleep(d) // pacing the load generator, not waiting for a result
						}
					}
				}
			}
			for _, tk := range pending {
				if !tk.WaitTimeout(60*time.Second) || tk.Error() != nil {
					errs <- fmt.Errorf("publish: %v", tk.Error())
					return
				}
			}
			p.sent.Add(int64(len(pending)))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// publishRaw publishes one payload on a topic at QoS 1 and waits for the
// broker's ack.
func publishRaw(t *testing.T, cl paho.Client, topic string, payload []byte) {
	t.Helper()
	tok := cl.Publish(topic, 1, false, payload)
	require.True(t, tok.WaitTimeout(10*time.Second), "publish %q timed out", topic)
	require.NoError(t, tok.Error())
}

func connect(t *testing.T, brokerURL, id string) paho.Client {
	t.Helper()
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID(id).SetCleanSession(true))
	tok := cl.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	t.Cleanup(func() { cl.Disconnect(100) })
	return cl
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

var httpClient = &http.Client{Timeout: 5 * time.Second}
