package cluster_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/internal/testenv"
)

const operatorToken = "operator-token-for-cluster-tests"

// replica is one chargeguard process of a test cluster.
type replica struct {
	name, base, dir string
	bin, cfgPath    string
	cmd             *exec.Cmd
	done            chan struct{}
}

// start runs the replica's process (again, after a kill: same config, same
// data directory, same client ids).
func (r *replica) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(r.dir, "chargeguard.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(t, err)
	r.cmd = exec.Command(r.bin, "--config", r.cfgPath)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	require.NoError(t, r.cmd.Start())
	done := make(chan struct{})
	r.done = done
	cmd := r.cmd
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
}

func (r *replica) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, r.cmd.Process.Signal(syscall.SIGKILL))
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("replica %s did not die on SIGKILL", r.name)
	}
}

func (r *replica) alive() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// readyz returns the replica's /readyz: its HTTP status and its cluster line.
func (r *replica) readyz() (int, string) {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get(r.base + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var m map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m["cluster"]
}

// builtCommand is a command of this repository built for the tests.
type builtCommand struct {
	once sync.Once
	path string
	err  error
}

var builtCommands sync.Map // command name -> *builtCommand

// commandBinary builds ./cmd/<name> once per test binary run and returns
// its path.
func commandBinary(t *testing.T, name string) string {
	t.Helper()
	v, _ := builtCommands.LoadOrStore(name, &builtCommand{})
	b := v.(*builtCommand)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "cg-cluster-"+name)
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", b.path, "./cmd/"+name)
		cmd.Dir = testenv.RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", name, err, out)
		}
	})
	require.NoError(t, b.err)
	return b.path
}

// chargeguardBinary is the real chargeguard binary.
func chargeguardBinary(t *testing.T) string { return commandBinary(t, "chargeguard") }

// startReplicas starts n chargeguard processes in cluster mode against the
// broker and the etcd cluster, each with its own data directory, client
// ids and HTTP port, and waits until every one is ready.
func startReplicas(t *testing.T, n int, mqttURL string, etcd []string) []*replica {
	t.Helper()
	return startReplicasWith(t, n, mqttURL, etcd, "http://127.0.0.1:1", "chargeguard/autogen", "")
}

// startReplicasInflux is startReplicas storing into the given InfluxDB
// (an unreachable URL: readings stay in the spools).
func startReplicasInflux(t *testing.T, n int, mqttURL string, etcd []string, influxURL, bucket string) []*replica {
	t.Helper()
	return startReplicasWith(t, n, mqttURL, etcd, influxURL, bucket, "")
}

// startReplicasWith also posts alerts to the Alertmanager at amURL ("":
// alerts only logged).
func startReplicasWith(t *testing.T, n int, mqttURL string, etcd []string, influxURL, bucket, amURL string) []*replica {
	t.Helper()
	return startReplicaSet(t, n, mqttURL, etcd, influxURL, bucket, amURL, shardConf{})
}

// shardConf makes a replica set one shard of sites: its mqtt.sites, its
// own cluster.prefix, and a short lease (lease_ttl 1s: claims last 5 s).
type shardConf struct {
	name  string // "" for the one set of every site
	sites []string
}

func startReplicaSet(t *testing.T, n int, mqttURL string, etcd []string, influxURL, bucket, amURL string, sh shardConf) []*replica {
	t.Helper()
	bin := chargeguardBinary(t)
	var out []*replica
	for i := range n {
		r := &replica{name: fmt.Sprintf("%sr%d", sh.name, i), dir: t.TempDir()}
		port := testenv.FreePort(t)
		r.base = fmt.Sprintf("http://127.0.0.1:%d", port)
		eps, _ := json.Marshal(etcd)
		conf := fmt.Sprintf(`mqtt:
  url: %s
  client_id: cg
influx:
  url: %s
  bucket: %s
  timeout: 2s
data_dir: %s
http:
  addr: 127.0.0.1:%d
log:
  level: info
  format: json
api:
  tokens:
    - name: ops
      token: %s
      role: operator
cluster:
  endpoints: %s
  member: %s
  advertise_url: %s
  lease_ttl: 3s
`, mqttURL, influxURL, bucket, filepath.Join(r.dir, "data"), port, operatorToken, eps, r.name, r.base)
		r.bin, r.cfgPath = bin, filepath.Join(r.dir, "chargeguard.yaml")
		if sh.name != "" {
			conf = strings.Replace(conf, "  lease_ttl: 3s\n", "  lease_ttl: 1s\n  prefix: /chargeguard/"+sh.name+"\n  share_group: cg-"+sh.name+"\n", 1)
			conf = strings.Replace(conf, "  client_id: cg\n", "  client_id: cg-"+sh.name+"\n  sites: ["+strings.Join(sh.sites, ", ")+"]\n", 1)
		}
		if amURL != "" {
			conf += "alerting:\n  alertmanagers: [" + amURL + "]\n"
		}
		require.NoError(t, os.WriteFile(r.cfgPath, []byte(conf), 0o600))
		r.start(t)
		t.Cleanup(func() {
			if r.alive() {
				_ = r.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-r.done:
				case <-time.After(10 * time.Second):
					_ = r.cmd.Process.Kill()
					<-r.done
				}
			}
			if t.Failed() {
				b, _ := os.ReadFile(filepath.Join(r.dir, "chargeguard.log"))
				if len(b) > 8<<10 {
					b = b[len(b)-8<<10:]
				}
				t.Logf("replica %s log:\n%s", r.name, b)
			}
		})
		out = append(out, r)
	}
	for _, r := range out {
		require.Eventually(t, func() bool { c, _ := r.readyz(); return c == http.StatusOK }, 30*time.Second, 100*time.Millisecond, "replica %s never became ready", r.name)
	}
	return out
}

// leaders returns the live replicas that say they lead.
func leaders(rs []*replica) []*replica {
	var out []*replica
	for _, r := range rs {
		if !r.alive() {
			continue
		}
		if _, line := r.readyz(); line == "leader" {
			out = append(out, r)
		}
	}
	return out
}

func waitOneLeader(t *testing.T, rs []*replica, within time.Duration) *replica {
	t.Helper()
	var l *replica
	require.Eventually(t, func() bool {
		ls := leaders(rs)
		if len(ls) != 1 {
			return false
		}
		l = ls[0]
		return true
	}, within, 100*time.Millisecond, "never exactly one leader")
	return l
}

// seenCmd is a command the pile received.
type seenCmd struct {
	at     time.Time
	id     string
	port   int
	action string
}

// pile is a simulated charging pile speaking the contract: a birth, a
// telemetry message every 250 ms with the temperatures the test sets, and
// an ack for every command (a close opens the port's relay).
type pile struct {
	t      *testing.T
	id     string
	c      paho.Client
	seq    atomic.Uint32
	mu     sync.Mutex
	temps  map[int]float64
	closed map[int]bool
	cmds   []seenCmd
	stop   chan struct{}
	wg     sync.WaitGroup
}

const nPorts = 3

func startPile(t *testing.T, url string) *pile { return startPileID(t, url, "p1") }

// startPileID starts pile s1/<id>.
func startPileID(t *testing.T, url, id string) *pile {
	t.Helper()
	p := &pile{t: t, id: id, temps: map[int]float64{1: 40, 2: 40, 3: 40}, closed: map[int]bool{}, stop: make(chan struct{})}
	topic := "chargers/s1/" + id + "/"
	opts := paho.NewClientOptions().AddBroker(url).SetClientID("pile-s1-"+id).SetCleanSession(true).
		SetAutoReconnect(true).SetOrderMatters(true).
		SetWill(topic+"status", `{"v":1,"online":false}`, 1, true).
		SetOnConnectHandler(func(c paho.Client) {
			c.Subscribe(topic+"cmd", 1, p.onCmd)
			c.Publish(topic+"status", 1, true, fmt.Sprintf(`{"v":1,"ts":%d,"online":true,"ports":%d,"rated_a":5,"fw":"t","kind":"residential"}`, time.Now().UnixMilli(), nPorts))
		})
	p.c = paho.NewClient(opts)
	tok := p.c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	p.wg.Add(1)
	go p.run()
	t.Cleanup(p.close)
	return p
}

func (p *pile) close() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	p.wg.Wait()
	p.c.Disconnect(100)
}

func (p *pile) onCmd(_ paho.Client, m paho.Message) {
	var c struct {
		ID     string `json:"id"`
		Port   int    `json:"port"`
		Action string `json:"action"`
	}
	if json.Unmarshal(m.Payload(), &c) != nil {
		return
	}
	p.mu.Lock()
	p.cmds = append(p.cmds, seenCmd{at: time.Now(), id: c.ID, port: c.Port, action: c.Action})
	state := "closed"
	for n := 1; n <= nPorts; n++ {
		if c.Port == 0 || c.Port == n {
			p.closed[n] = c.Action == "close"
		}
	}
	if c.Action == "open" {
		state = "idle"
	}
	p.mu.Unlock()
	// Acked from another goroutine: paho's handler must not wait on a publish.
	go p.c.Publish("chargers/s1/"+p.id+"/ack", 1, false, fmt.Sprintf(`{"v":1,"id":%q,"ts":%d,"port":%d,"ok":true,"state":%q}`, c.ID, time.Now().UnixMilli(), c.Port, state))
}

func (p *pile) run() {
	defer p.wg.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		p.mu.Lock()
		var ports []string
		for n := 1; n <= nPorts; n++ {
			if p.closed[n] {
				ports = append(ports, fmt.Sprintf(`{"n":%d,"state":"closed","v":220,"a":0,"w":0,"wh":1,"temp_c":%g}`, n, p.temps[n]))
			} else {
				ports = append(ports, fmt.Sprintf(`{"n":%d,"state":"charging","v":220,"a":2,"w":440,"wh":1,"temp_c":%g}`, n, p.temps[n]))
			}
		}
		p.mu.Unlock()
		p.c.Publish("chargers/s1/"+p.id+"/telemetry", 1, false, fmt.Sprintf(`{"v":1,"ts":%d,"seq":%d,"ambient_c":25,"smoke":false,"leak_ma":0,"ports":[%s]}`,
			time.Now().UnixMilli(), p.seq.Add(1), strings.Join(ports, ",")))
	}
}

func (p *pile) setTemp(port int, c float64) {
	p.mu.Lock()
	p.temps[port] = c
	p.mu.Unlock()
}

// commands returns the commands received so far.
func (p *pile) commands() []seenCmd {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]seenCmd(nil), p.cmds...)
}

// firstClose returns the first close of port received at or after since.
func (p *pile) firstClose(port int, since time.Time) (seenCmd, bool) {
	for _, c := range p.commands() {
		if c.action == "close" && (c.port == port || c.port == 0) && !c.at.Before(since) {
			return c, true
		}
	}
	return seenCmd{}, false
}

func (p *pile) opens() []seenCmd {
	var out []seenCmd
	for _, c := range p.commands() {
		if c.action == "open" {
			out = append(out, c)
		}
	}
	return out
}

// latched reports the ports a replica's engine holds latched.
func latched(t *testing.T, r *replica) map[int]bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.base+"/api/v1/ports?site=s1&pile=p1&state=latched", nil)
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Ports []struct {
			Port int `json:"port"`
		} `json:"ports"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	out := map[int]bool{}
	for _, p := range body.Ports {
		out[p.Port] = true
	}
	return out
}

func reset(t *testing.T, r *replica, port int) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/v1/ports/s1/p1/%d/reset", r.base, port), nil)
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Kill -9 the leader while a pile ramps to 95 °C: a survivor takes over
// and the port is closed within 5 s of the kill; the latch made before the
// kill is still held by the new leader; Alertmanager holds one overheat
// alert per port, the one detected while the survivor followed included;
// no open is ever sent.
func TestKillLeaderWhilePileRamps(t *testing.T) {
	testenv.Integration(t)
	mq := testenv.Mosquitto(t)
	am := testenv.Alertmanager(t, "")
	etcd := testenv.Etcd(t, 3)
	rs := startReplicasWith(t, 3, mq.URL, etcd.Endpoints(), "http://127.0.0.1:1", "chargeguard/autogen", am.URL)
	leader := waitOneLeader(t, rs, 20*time.Second)

	p := startPile(t, mq.URL)
	// A latch before the kill: port 2 overheats, the leader closes it.
	p.setTemp(2, 80)
	require.Eventually(t, func() bool { _, ok := p.firstClose(2, time.Time{}); return ok }, 10*time.Second, 20*time.Millisecond, "port 2 never closed")
	p.setTemp(2, 30)
	for _, r := range rs {
		require.Eventually(t, func() bool { return latched(t, r)[2] }, 10*time.Second, 100*time.Millisecond, "replica %s does not hold port 2 latched", r.name)
	}

	// Port 1 ramps from 40 °C by 2 °C every 250 ms to 95 °C; the leader
	// dies at 60 °C, before any rule trips.
	var killedAt time.Time
	for temp := 40.0; temp <= 95; temp += 2 {
		p.setTemp(1, temp)
		if temp >= 60 && killedAt.IsZero() {
			_, early := p.firstClose(1, time.Time{})
			require.False(t, early, "port 1 closed before the kill: the test would prove nothing")
			leader.kill(t)
			killedAt = time.Now()
		}
		time.Sleep(250 * time.Millisecond)
	}
	var c seenCmd
	require.Eventually(t, func() bool { var ok bool; c, ok = p.firstClose(1, killedAt); return ok }, 15*time.Second, 20*time.Millisecond, "port 1 was never closed after the leader died")
	t.Logf("port 1 closed %v after the leader's kill", c.at.Sub(killedAt))
	require.LessOrEqual(t, c.at.Sub(killedAt), 5*time.Second, "the port must be closed within 5 s of the leader's kill")

	next := waitOneLeader(t, rs, 10*time.Second)
	require.NotEqual(t, leader.name, next.name)
	held := latched(t, next)
	require.True(t, held[1], "the new leader holds port 1 latched")
	require.True(t, held[2], "the latch made before the kill is not lost")

	// Port 1's overheat was detected while the survivors followed (their
	// gate held the alert): the new leader posted it on taking over.
	overheats := func() map[string]int {
		out := map[string]int{}
		for _, a := range am.Alerts(t) {
			if a.Labels["alertname"] == "overheat" && a.Labels["pile"] == "p1" && a.EndsAt.After(time.Now()) {
				out[a.Labels["port"]]++
			}
		}
		return out
	}
	require.Eventually(t, func() bool { o := overheats(); return o["1"] == 1 && o["2"] == 1 }, 10*time.Second, 100*time.Millisecond,
		"Alertmanager should hold one active overheat alert for each of ports 1 and 2: %v", overheats())
	require.Empty(t, p.opens(), "no open is ever sent")
}

// Kill 2 of 3 etcd members while a pile overheats: the close still goes
// out within 1 s, before and after the replicas notice they have no
// leader; a reset is refused with the reason until quorum returns; then
// exactly one leader acts again (one open for one reset).
func TestQuorumLossClosesStillGoOut(t *testing.T) {
	testenv.Integration(t)
	mq := testenv.Mosquitto(t)
	etcd := testenv.Etcd(t, 3)
	rs := startReplicas(t, 3, mq.URL, etcd.Endpoints())
	waitOneLeader(t, rs, 20*time.Second)
	p := startPile(t, mq.URL)
	require.Eventually(t, func() bool { return len(p.commands()) == 0 && p.seq.Load() > 4 }, 10*time.Second, 50*time.Millisecond)

	etcd.Members[1].Kill()
	etcd.Members[2].Kill()
	// At once: the leader may still be within its confirmed TTL.
	hot := time.Now()
	p.setTemp(1, 85)
	var c seenCmd
	require.Eventually(t, func() bool { var ok bool; c, ok = p.firstClose(1, hot); return ok }, 10*time.Second, 10*time.Millisecond, "port 1 was never closed")
	t.Logf("port 1 closed %v after it overheated, etcd just lost quorum", c.at.Sub(hot))
	require.LessOrEqual(t, c.at.Sub(hot), time.Second)

	// Once every replica knows it has no leader, every one says so, and a
	// close still goes out within 1 s.
	for _, r := range rs {
		require.Eventually(t, func() bool {
			code, line := r.readyz()
			return code == http.StatusServiceUnavailable && strings.Contains(line, "no leader")
		}, 15*time.Second, 100*time.Millisecond, "replica %s never said it has no leader", r.name)
	}
	hot = time.Now()
	p.setTemp(3, 85)
	require.Eventually(t, func() bool { var ok bool; c, ok = p.firstClose(3, hot); return ok }, 10*time.Second, 10*time.Millisecond, "port 3 was never closed without a leader")
	t.Logf("port 3 closed %v after it overheated, no leader", c.at.Sub(hot))
	require.LessOrEqual(t, c.at.Sub(hot), time.Second)

	// Cooled, with fresh readings: a reset would be allowed, but not
	// without a leader, and the answer says why.
	p.setTemp(1, 30)
	p.setTemp(3, 30)
	for _, r := range rs {
		code, body := reset(t, r, 1)
		require.Equal(t, http.StatusServiceUnavailable, code, body)
		require.Contains(t, body, "no_leader")
		require.Contains(t, body, "quorum lost")
	}
	require.Empty(t, p.opens())

	etcd.Members[1].Start()
	etcd.Members[2].Start()
	leader := waitOneLeader(t, rs, 20*time.Second)
	// Exactly one leader, and only it acts: a reset sent to a follower is
	// carried out by the leader, and the pile gets one open.
	var follower *replica
	for _, r := range rs {
		if r != leader {
			follower = r
		}
	}
	require.Eventually(t, func() bool {
		code, _ := reset(t, follower, 1)
		return code == http.StatusAccepted
	}, 10*time.Second, 250*time.Millisecond, "the reset was never carried out once quorum returned")
	require.Eventually(t, func() bool { return len(p.opens()) == 1 }, 5*time.Second, 20*time.Millisecond)
	time.Sleep(time.Second) // any second open (a second leader) would arrive by now
	require.Len(t, p.opens(), 1, "one reset, one open: exactly one replica acts")
	require.Len(t, leaders(rs), 1)
}

// TestFailoverTimes measures the time from a SIGKILL of the leader to the
// close of a port that overheats at that moment, over
// CHARGEGUARD_FAILOVER_KILLS kills (the killed replica is restarted each
// time), for docs/benchmarks.md. It asserts only what every failover must
// do (a close within 5 s); the distribution is printed.
func TestFailoverTimes(t *testing.T) {
	testenv.Integration(t)
	n := 0
	fmt.Sscan(os.Getenv("CHARGEGUARD_FAILOVER_KILLS"), &n)
	if n <= 0 {
		t.Skip("set CHARGEGUARD_FAILOVER_KILLS=20 to measure")
	}
	mq := testenv.Mosquitto(t)
	etcd := testenv.Etcd(t, 3)
	rs := startReplicas(t, 3, mq.URL, etcd.Endpoints())
	var times []time.Duration
	for i := range n {
		leader := waitOneLeader(t, rs, 20*time.Second)
		p := startPileID(t, mq.URL, fmt.Sprintf("f%d", i))
		// The pile is known to every engine before its port overheats.
		require.Eventually(t, func() bool { return p.seq.Load() > 4 }, 10*time.Second, 50*time.Millisecond)
		time.Sleep(300 * time.Millisecond) // the last of those telemetry messages reach the engines
		leader.kill(t)
		killedAt := time.Now()
		p.setTemp(1, 85)
		var c seenCmd
		require.Eventually(t, func() bool { var ok bool; c, ok = p.firstClose(1, killedAt); return ok }, 15*time.Second, 10*time.Millisecond, "kill %d: port never closed", i)
		d := c.at.Sub(killedAt)
		times = append(times, d)
		t.Logf("kill %d of %s: closed after %v", i+1, leader.name, d)
		require.LessOrEqual(t, d, 5*time.Second)
		p.close()
		leader.start(t)
		require.Eventually(t, func() bool { c, _ := leader.readyz(); return c == http.StatusOK }, 30*time.Second, 100*time.Millisecond)
	}
	slices.Sort(times)
	q := func(f float64) time.Duration { return times[min(len(times)-1, int(f*float64(len(times))))] }
	t.Logf("failover over %d leader kills: min %v p50 %v p90 %v p99 %v max %v", len(times), times[0], q(0.5), q(0.9), q(0.99), times[len(times)-1])
}

// TestFollowerKillUnderLoad: storage is shared over the replicas; kill -9
// a follower while 20 piles publish 200 messages/s, restart it 3 s later:
// every reading is in InfluxDB exactly once (its share waited in its
// persistent MQTT session), and the safety path never noticed (the same
// leader, no command).
func TestFollowerKillUnderLoad(t *testing.T) {
	testenv.Integration(t)
	loadTest(t)
	mq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	etcd := testenv.Etcd(t, 3)
	rs := startReplicasInflux(t, 3, mq.URL, etcd.Endpoints(), influx.URL, influx.Bucket())
	leader := waitOneLeader(t, rs, 20*time.Second)
	var victim *replica
	for _, r := range rs {
		if r != leader {
			victim = r
		}
	}

	var cmds atomic.Int32
	watch := paho.NewClient(paho.NewClientOptions().AddBroker(mq.URL).SetClientID("cmd-watch"))
	tok := watch.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer watch.Disconnect(100)
	tok = watch.Subscribe("chargers/+/+/cmd", 1, func(paho.Client, paho.Message) { cmds.Add(1) })
	require.True(t, tok.WaitTimeout(10*time.Second))

	pub := paho.NewClient(paho.NewClientOptions().AddBroker(mq.URL).SetClientID("load").SetCleanSession(true))
	tok = pub.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer pub.Disconnect(100)

	const piles, rounds, ports = 20, 120, 3 // 100 ms apart: 12 s at 200 msgs/s
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	var toks []paho.Token
	for round := range rounds {
		toks = append(toks, publishLoadRound(pub, start, round, piles, ports)...)
		switch round {
		case 40:
			victim.kill(t)
		case 70:
			victim.start(t)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, tk := range toks {
		require.True(t, tk.WaitTimeout(30*time.Second))
		require.NoError(t, tk.Error())
	}
	want := int64(piles * rounds * ports)
	var got int64
	require.Eventually(t, func() bool {
		n, err := influx.CountErr("port", "temp_c")
		got = n
		return err == nil && n >= want
	}, 90*time.Second, 500*time.Millisecond, "readings missing from InfluxDB after 90 s (want %d port points)", want)
	t.Logf("%d of %d port points in InfluxDB", got, want)
	require.Equal(t, want, got, "every reading exactly once")

	// Storage was shared: more than one replica acked readings.
	sharing := 0
	for _, r := range rs {
		acked := scrape(t, r, "chargeguard_ingest_acked_total")
		t.Logf("replica %s acked %.0f messages (since its last start)", r.name, acked)
		if acked > 0 {
			sharing++
		}
	}
	require.GreaterOrEqual(t, sharing, 2, "the shared subscription spreads storage over the replicas")
	require.Equal(t, []*replica{leader}, leaders(rs), "a follower's crash does not move the leader")
	require.Zero(t, cmds.Load(), "no command: the safety path never noticed")
}

// publishLoadRound publishes round number round of the idle load: one
// telemetry message of each of piles piles (chargers/load/lNN), ports ports
// each, stamped 100 ms per round after start.
func publishLoadRound(pub paho.Client, start time.Time, round, piles, ports int) []paho.Token {
	ts := start.Add(time.Duration(round) * 100 * time.Millisecond).UnixMilli()
	toks := make([]paho.Token, 0, piles)
	for p := range piles {
		var ps []string
		for n := 1; n <= ports; n++ {
			ps = append(ps, fmt.Sprintf(`{"n":%d,"state":"idle","v":230,"a":0,"w":0,"wh":%d,"temp_c":25}`, n, round))
		}
		toks = append(toks, pub.Publish(fmt.Sprintf("chargers/load/l%02d/telemetry", p), 1, false,
			fmt.Sprintf(`{"v":1,"ts":%d,"seq":%d,"ambient_c":20,"smoke":false,"leak_ma":0,"ports":[%s]}`, ts, round+1, strings.Join(ps, ","))))
	}
	return toks
}

// scrape reads one unlabelled counter or gauge from a replica's /metrics.
func scrape(t *testing.T, r *replica, name string) float64 { return scrapeLabeled(t, r, name) }

// TestRollingRestartUnderLoad: restart the three replicas one after the
// other (SIGTERM, start, ready) while 20 piles publish 200 messages/s and a
// new pile overheats every 1.5 s: every hazard is cut within 5 s, and every
// reading is in InfluxDB exactly once.
func TestRollingRestartUnderLoad(t *testing.T) {
	testenv.Integration(t)
	loadTest(t)
	mq := testenv.Mosquitto(t)
	influx := testenv.Influx(t)
	etcd := testenv.Etcd(t, 3)
	rs := startReplicasInflux(t, 3, mq.URL, etcd.Endpoints(), influx.URL, influx.Bucket())
	waitOneLeader(t, rs, 20*time.Second)

	pub := paho.NewClient(paho.NewClientOptions().AddBroker(mq.URL).SetClientID("load").SetCleanSession(true))
	tok := pub.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer pub.Disconnect(100)

	const piles, ports = 20, 3
	stop := make(chan struct{})
	loadDone := make(chan int)
	go func() {
		start := time.Now().Add(-time.Minute).Truncate(time.Second)
		var toks []paho.Token
		round := 0
		defer func() {
			for _, tk := range toks {
				tk.WaitTimeout(30 * time.Second)
			}
			loadDone <- round
		}()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			toks = append(toks, publishLoadRound(pub, start, round, piles, ports)...)
			round++
		}
	}()

	hz := newHazards(t, mq.URL)
	rollingRestart(t, rs, hz, 0)
	hz.waitFor(func() bool { return len(hz.list) >= 6 }, 15*time.Second, "too few hazards injected")
	close(stop)
	rounds := <-loadDone

	hz.requireCut(5 * time.Second)
	want := fmt.Sprint(piles * rounds * ports)
	got := ""
	loadCount := func() string {
		load, err := influx.QueryErr(`SELECT count("temp_c") FROM "port" WHERE "site" = 'load'`)
		if err != nil || len(load) == 0 || len(load[0].Values) == 0 {
			return ""
		}
		return fmt.Sprint(load[0].Values[0][1])
	}
	require.Eventually(t, func() bool { got = loadCount(); return got == want }, 90*time.Second, 500*time.Millisecond,
		"every load reading exactly once: %s port points of %s", got, want)
	time.Sleep(time.Second) // a duplicate written late would show by now
	require.Equal(t, want, loadCount())
}

// hazard is a port that overheated at a known time.
type hazard struct {
	p  *pile
	at time.Time
}

// hazards injects a new pile with port 1 at 85 °C every 1.5 s (every) while a test
// waits (waitFor), so that hazards arrive at every moment of what the test
// does, and checks afterwards that each was cut in time.
type hazards struct {
	t       *testing.T
	mqttURL string
	every   time.Duration
	next    time.Time
	list    []hazard
}

func newHazards(t *testing.T, mqttURL string) *hazards {
	return &hazards{t: t, mqttURL: mqttURL, every: 1500 * time.Millisecond, next: time.Now()}
}

func (h *hazards) inject() {
	p := startPileID(h.t, h.mqttURL, fmt.Sprintf("h%d", len(h.list)))
	p.setTemp(1, 85)
	h.list = append(h.list, hazard{p, time.Now()})
}

// waitFor polls cond until it holds, injecting hazards meanwhile; it fails
// the test with what after within.
func (h *hazards) waitFor(cond func() bool, within time.Duration, what string) {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		require.True(h.t, time.Now().Before(deadline), what)
		if time.Now().After(h.next) {
			h.inject()
			h.next = time.Now().Add(h.every)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// requireCut requires every hazard cut (a close of its port received by
// its pile) within limit of its injection, and returns the longest wait.
func (h *hazards) requireCut(limit time.Duration) time.Duration {
	h.t.Helper()
	var longest time.Duration
	for i, hz := range h.list {
		var c seenCmd
		require.Eventually(h.t, func() bool { var ok bool; c, ok = hz.p.firstClose(1, hz.at); return ok }, 10*time.Second, 20*time.Millisecond, "hazard %d never cut", i)
		d := c.at.Sub(hz.at)
		h.t.Logf("hazard %d cut after %v", i, d)
		require.LessOrEqual(h.t, d, limit, "hazard %d uncut for more than %v", i, limit)
		longest = max(longest, d)
	}
	return longest
}

// rollingRestart stops each replica in turn (SIGTERM), starts it again,
// waits until it is ready and the cluster has one leader, then settle more
// (a rollout's minReadySeconds) before the next, injecting hazards all
// along.
func rollingRestart(t *testing.T, rs []*replica, h *hazards, settle time.Duration) {
	t.Helper()
	for _, r := range rs {
		began := time.Now()
		require.NoError(t, r.cmd.Process.Signal(syscall.SIGTERM))
		h.waitFor(func() bool { return !r.alive() }, 30*time.Second, "replica did not stop on SIGTERM")
		stopped := time.Now()
		r.start(t)
		h.waitFor(func() bool { c, _ := r.readyz(); return c == http.StatusOK && len(leaders(rs)) == 1 }, 30*time.Second, "replica not ready again")
		t.Logf("replica %s: stopped in %v, ready again %v later", r.name, stopped.Sub(began).Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
		ready := time.Now()
		h.waitFor(func() bool { return time.Since(ready) >= settle }, settle+time.Second, "")
	}
}

// loadTest skips a load test of replicas unless CHARGEGUARD_CLUSTER_LOAD is
// set: three chargeguard processes, etcd, Mosquitto and InfluxDB under load
// beside the rest of make test overload a 2-core machine, and a wait that
// runs out there says nothing about chargeguard. Run them on their own
// (docs/scale.md):
//
//	CHARGEGUARD_CLUSTER_LOAD=1 go test -v -run 'UnderLoad' ./cluster/
func loadTest(t *testing.T) {
	t.Helper()
	if os.Getenv("CHARGEGUARD_CLUSTER_LOAD") == "" {
		t.Skip("set CHARGEGUARD_CLUSTER_LOAD=1 to run the replicas' load tests (too heavy beside the rest of make test on 2 cores)")
	}
}
