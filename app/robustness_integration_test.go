package app_test

import (
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/app"
	"github.com/chargeguard/chargeguard/internal/testenv"
	"github.com/chargeguard/chargeguard/telemetry"
)

// livePile behaves as a real pile does across broker outages (contract
// v1): on every connect it subscribes to its commands and publishes its
// birth, retained, with its death as the last will; it reconnects on its
// own. It acks a command only while acking is on.
type livePile struct {
	t          *testing.T
	site, pile string
	cl         paho.Client
	mu         sync.Mutex
	cmds       []telemetry.Command
	ack        bool
	off        bool // port 3's relay was opened by a close
	seq        uint32
}

func newLivePile(t *testing.T, brokerURL, site, pile string, ack bool) *livePile {
	p := &livePile{t: t, site: site, pile: pile, ack: ack}
	base := "chargers/" + site + "/" + pile
	death, _ := telemetry.Encode(&telemetry.Status{Online: false})
	opts := paho.NewClientOptions().AddBroker(brokerURL).SetClientID("live-"+site+"-"+pile).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(200*time.Millisecond).SetMaxReconnectInterval(time.Second).
		SetWill(base+"/status", string(death), 1, true).
		SetOnConnectHandler(func(cl paho.Client) {
			cl.Subscribe(base+"/cmd", 1, p.onCommand)
			birth, _ := telemetry.Encode(&telemetry.Status{TS: time.Now().UnixMilli(), Online: true, Ports: 10, RatedA: 5, FW: "test", Kind: telemetry.SiteResidential})
			cl.Publish(base+"/status", 1, true, birth)
		})
	p.cl = paho.NewClient(opts)
	tok := p.cl.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	t.Cleanup(func() { p.cl.Disconnect(100) })
	return p
}

func (p *livePile) onCommand(cl paho.Client, m paho.Message) {
	msg, err := telemetry.DecodeTopic("chargers", m.Topic(), m.Payload(), time.Now())
	if err != nil || msg.Command == nil {
		p.t.Errorf("pile got a bad command: %v", err)
		return
	}
	p.mu.Lock()
	p.cmds = append(p.cmds, *msg.Command)
	ack := p.ack
	if msg.Command.Action == telemetry.ActionClose && (msg.Command.Port == 0 || msg.Command.Port == 3) {
		p.off = true
	}
	p.mu.Unlock()
	if !ack {
		return
	}
	b, _ := telemetry.Encode(&telemetry.Ack{ID: msg.Command.ID, TS: time.Now().UnixMilli(), Port: msg.Command.Port, OK: true, State: telemetry.StateClosed})
	cl.Publish("chargers/"+p.site+"/"+p.pile+"/ack", 1, false, b)
}

func (p *livePile) commands() []telemetry.Command {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]telemetry.Command(nil), p.cmds...)
}

func (p *livePile) setAck(on bool) { p.mu.Lock(); p.ack = on; p.mu.Unlock() }

// send publishes telemetry with port 3 charging at temp (or closed once a
// close reached the pile), fire and forget (QoS 0, as most piles send
// telemetry): while the broker is down it is simply lost.
func (p *livePile) send(temp float64) {
	p.mu.Lock()
	p.seq++
	s := telemetry.PortSample{N: 3, State: telemetry.StateCharging, A: telemetry.F(2), W: telemetry.F(440), TempC: telemetry.F(temp)}
	if p.off {
		s = telemetry.PortSample{N: 3, State: telemetry.StateClosed, A: telemetry.F(0), W: telemetry.F(0), TempC: telemetry.F(temp)}
	}
	tm := telemetry.Telemetry{TS: time.Now().UnixMilli(), Seq: p.seq, AmbientC: telemetry.F(25), Smoke: telemetry.B(false), LeakMA: telemetry.F(1),
		Ports: []telemetry.PortSample{s}}
	p.mu.Unlock()
	b, err := telemetry.Encode(&tm)
	require.NoError(p.t, err)
	p.cl.Publish("chargers/"+p.site+"/"+p.pile+"/telemetry", 0, false, b)
}

// Contract v1.1, "a close is never abandoned", on real servers: the broker
// dies just after a pile reported 95 °C and before the cut reached it. The
// page for the failed close goes out to Alertmanager during the outage, and
// once the broker is back the close (same id) reaches the pile within 10 s,
// from its birth or our command session's reconnect, without anyone's help.
// On the engine before v1.1 the close was given up after close_failed and
// never sent again.
func TestBrokerOutageCloseIsNeverAbandoned(t *testing.T) {
	t.Parallel()
	mosq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	hook := newWebhook(t)
	am := testenv.Alertmanager(t, alertmanagerConfig(hook.srv.URL))
	cfg := testConfig(t, mosq.URL, influx, t.TempDir())
	cfg.MQTT.ClientID = "cg-outage"
	cfg.Alerting.Alertmanagers = []string{am.URL}
	cg := start(t, cfg, app.Options{})

	// The pile does not ack (its ack path is broken, or the first close is
	// lost): the engine resends, and the broker then goes away for 60 s.
	pile := newLivePile(t, mosq.URL, "s1", "outage", false)
	pile.send(40)
	pile.send(95)
	require.Eventually(t, func() bool { return len(pile.commands()) > 0 }, 10*time.Second, 10*time.Millisecond, "no close command")
	first := pile.commands()[0]
	require.Equal(t, telemetry.ActionClose, first.Action)
	require.Equal(t, 3, first.Port)
	// Like a real pile it keeps reporting every 2 s (nothing arrives while
	// the broker is down). Its relay did not open: the close never arrived
	// as far as it is concerned, so it still reports the heat.
	pile.mu.Lock()
	pile.off = false
	pile.mu.Unlock()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				pile.send(95)
			}
		}
	}()

	mosq.Kill()
	killed := time.Now()
	// The page goes out while the broker is down (Alertmanager is reached
	// over HTTP, not MQTT).
	require.Eventually(t, func() bool { return hook.has("close_failed", "firing") }, 40*time.Second, 100*time.Millisecond,
		"close_failed never paged during the outage")
	require.Less(t, time.Since(killed), 60*time.Second)
	time.Sleep(time.Until(killed.Add(60 * time.Second))) // the outage lasts 60 s: nothing to wait for but the clock
	pile.setAck(true)
	before := len(pile.commands())
	mosq.Start()
	back := time.Now()

	// The close (its own id) reaches the pile within 10 s of the broker's
	// return, and so does the port-0 close of the escalation.
	require.Eventually(t, func() bool {
		for _, c := range pile.commands()[before:] {
			if c.ID == first.ID {
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "the pending close never reached the pile after the broker came back")
	t.Logf("close %s reached the pile %s after the broker's return", first.ID, time.Since(back).Round(time.Millisecond))
	// Acked: the service stops resending and the port stays latched. (An
	// ack the pile sends before our live session has subscribed again is
	// lost; the close is then sent again within 30 s while the pile is
	// online, and that ack settles it.)
	require.Eventually(t, func() bool { return metric(t, cg.reg, "chargeguard_commands_pending") == 0 }, 45*time.Second, 100*time.Millisecond,
		"the closes were never settled after the pile acked them")
	for _, c := range pile.commands() {
		require.NotEqual(t, telemetry.ActionOpen, c.Action, "an open was sent")
	}
	require.GreaterOrEqual(t, metric(t, cg.reg, "chargeguard_ports_latched"), float64(1), "the port is latched")
}

// Contract v1.1, "offline after a backend restart", on real servers: a pile
// charging when chargeguard stopped and silent since is reported
// pile_offline within the offline window after chargeguard is back, and its
// retained birth, which the broker re-delivers on subscribing, does not
// restart that clock. Before v1.1 such a pile was never reported.
func TestRestartReportsChargingPileThatNeverReturns(t *testing.T) {
	t.Parallel()
	mosq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	hook := newWebhook(t)
	am := testenv.Alertmanager(t, alertmanagerConfig(hook.srv.URL))
	dataDir := t.TempDir()
	cfg := testConfig(t, mosq.URL, influx, dataDir)
	cfg.MQTT.ClientID = "cg-restart"
	cfg.Alerting.Alertmanagers = []string{am.URL}
	cg := start(t, cfg, app.Options{})

	pile := newLivePile(t, mosq.URL, "s1", "silent", true)
	pile.send(40)
	require.Eventually(t, func() bool {
		return metric(t, cg.reg, "chargeguard_ingest_messages_total", "kind", "telemetry") >= 1
	}, 10*time.Second, 20*time.Millisecond)
	cg.stop(t)
	// The pile goes silent but stays connected (a frozen controller whose
	// MQTT stack still answers pings): no death, and its retained birth is
	// what the broker hands the restarted chargeguard.

	cfg.HTTP.Addr = "127.0.0.1:0"
	restarted := time.Now()
	start(t, cfg, app.Options{})
	require.Eventually(t, func() bool { return hook.firingBefore("pile_offline", "s1", "silent", time.Now().Add(time.Hour)) }, 60*time.Second, 100*time.Millisecond,
		"a pile charging before the restart and silent since was never reported")
	// 30 s of silence from the restart, plus Alertmanager's delivery; a
	// retained birth restarting the clock would add the time it took to
	// arrive, a clock never started would never fire.
	require.Less(t, time.Since(restarted), 45*time.Second)
	require.GreaterOrEqual(t, time.Since(restarted), 29*time.Second, "reported before the offline window was over")
}
