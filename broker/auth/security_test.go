package auth_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chargeguard/chargeguard/broker"
	"github.com/chargeguard/chargeguard/broker/auth"
	"github.com/chargeguard/chargeguard/broker/auth/authtest"
	"github.com/chargeguard/chargeguard/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The accounts of every security test.
const (
	p01, p01Pass     = "chunbo-nanyuan/p01", "pile-one-secret"
	p02, p02Pass     = "chunbo-nanyuan/p02", "pile-two-secret"
	guard, guardPass = "chargeguard", "guard-secret"
	// An account in the password file that the ACL grants nothing.
	other, otherPass = "grafana", "grafana-secret"
)

const (
	p01Telemetry = "chargers/chunbo-nanyuan/p01/telemetry"
	p02Telemetry = "chargers/chunbo-nanyuan/p02/telemetry"
	p01Cmd       = "chargers/chunbo-nanyuan/p01/cmd"
	p02Cmd       = "chargers/chunbo-nanyuan/p02/cmd"
)

// target is a broker under test: where piles connect, and where chargeguard
// connects (the same address for the embedded broker).
type target struct {
	pileURL, serviceURL string
	passwd              string
	// reload makes the broker re-read the password file (Mosquitto: SIGHUP;
	// the embedded broker notices by itself).
	reload func()
}

var accounts = map[string]string{p01: p01Pass, p02: p02Pass, guard: guardPass, other: otherPass}

// writePasswords writes the accounts with the code cgpasswd uses.
func writePasswords(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passwd")
	writeAccounts(t, path, accounts)
	return path
}

func writeAccounts(t *testing.T, path string, accounts map[string]string) {
	t.Helper()
	f := auth.NewPasswordFile()
	for u, p := range accounts {
		require.NoError(t, f.Set(u, p, auth.DefaultIterations))
	}
	require.NoError(t, f.WriteFile(path, 0o600))
}

func startEmbedded(t *testing.T, passwd string) target {
	t.Helper()
	b, err := broker.New(broker.Options{Addr: "127.0.0.1:0", Auth: auth.Options{PasswordFile: passwd}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return target{pileURL: b.URL(), serviceURL: b.URL(), passwd: passwd, reload: func() {}}
}

func startMosquitto(t *testing.T, passwd string) target {
	t.Helper()
	m := authtest.Start(t, authtest.Options{PasswordFile: passwd})
	return target{pileURL: m.URL(authtest.PilePort), serviceURL: m.URL(authtest.ServicePort),
		passwd: passwd, reload: func() { m.Reload(t) }}
}

// TestSecurity runs the same device-security cases against Mosquitto with
// the shipped deploy/mosquitto configuration and ACL, and against the
// embedded broker with the same password file.
func TestSecurity(t *testing.T) {
	testenv.Integration(t)
	for _, tc := range []struct {
		name  string
		start func(*testing.T, string) target
	}{
		{"mosquitto", startMosquitto},
		{"embedded", startEmbedded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := tc.start(t, writePasswords(t))
			t.Run("bad credentials cannot connect", func(t *testing.T) { badCredentials(t, tg) })
			t.Run("pile publishes its own topics", func(t *testing.T) { ownTopics(t, tg) })
			t.Run("pile cannot publish another pile's telemetry", func(t *testing.T) { forgedTelemetry(t, tg) })
			t.Run("pile cannot publish commands", func(t *testing.T) { forgedCommands(t, tg) })
			t.Run("commands reach the right pile only", func(t *testing.T) { commandsRouted(t, tg) })
			t.Run("pile cannot read another pile", func(t *testing.T) { noEavesdropping(t, tg) })
			t.Run("pile cannot take over another client id", func(t *testing.T) { noTakeover(t, tg) })
			t.Run("last will obeys the ACL", func(t *testing.T) { wills(t, tg) })
			t.Run("a deleted pile is cut off", func(t *testing.T) { revoked(t, tg) })
			t.Run("the service's canary is its own", func(t *testing.T) { canaryTopics(t, tg) })
		})
	}
}

// recorder keeps every message a client receives, in order.
type recorder struct {
	mu   sync.Mutex
	msgs []string // "topic payload"
}

func (r *recorder) handle(_ paho.Client, m paho.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m.Topic()+" "+string(m.Payload()))
	r.mu.Unlock()
}

func (r *recorder) has(topic, payload string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if m == topic+" "+payload {
			return true
		}
	}
	return false
}

func (r *recorder) containing(s string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		if strings.Contains(m, s) {
			out = append(out, m)
		}
	}
	return out
}

// waitFor waits until the recorder received payload on topic.
func (r *recorder) waitFor(t *testing.T, topic, payload string) {
	t.Helper()
	require.Eventually(t, func() bool { return r.has(topic, payload) }, 10*time.Second, 5*time.Millisecond,
		"%q on %s never arrived; got %q", payload, topic, r.containing(""))
}

type clientOpts struct {
	url, user, pass, id string
	will                *[2]string // topic, payload
	tls                 *tlsConf
	conn                *net.Conn // set to the network connection when not nil
}

type tlsConf struct {
	files          *authtest.TLSFiles
	certFile, keyF string
}

type client struct {
	paho.Client
	lost atomic.Bool
	rec  *recorder
}

var seq atomic.Int64

// dial connects a client with MQTT 3.1.1 and a clean session.
func dial(t *testing.T, o clientOpts) (*client, error) {
	t.Helper()
	if o.id == "" {
		o.id = fmt.Sprintf("sec-test-%d", seq.Add(1))
	}
	c := &client{rec: &recorder{}}
	opts := paho.NewClientOptions().AddBroker(o.url).SetClientID(o.id).
		SetUsername(o.user).SetPassword(o.pass).
		SetProtocolVersion(4).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).SetOrderMatters(true).
		SetDefaultPublishHandler(c.rec.handle).
		SetConnectionLostHandler(func(paho.Client, error) { c.lost.Store(true) })
	if o.will != nil {
		opts.SetWill(o.will[0], o.will[1], 1, false)
	}
	if o.tls != nil {
		cfg, err := authtest.ClientTLS(o.tls.files, o.tls.certFile, o.tls.keyF)
		require.NoError(t, err)
		opts.SetTLSConfig(cfg)
	}
	if o.conn != nil {
		opts.SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
			*o.conn = conn
			return conn, err
		})
	}
	c.Client = paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if c.IsConnected() {
			c.Disconnect(100)
		}
	})
	return c, nil
}

func mustDial(t *testing.T, o clientOpts) *client {
	t.Helper()
	c, err := dial(t, o)
	require.NoError(t, err, "%s connects", o.user)
	return c
}

func (c *client) subscribe(t *testing.T, filter string) {
	t.Helper()
	tok := c.Subscribe(filter, 1, nil)
	require.True(t, tok.WaitTimeout(5*time.Second), "subscribe %s", filter)
	require.NoError(t, tok.Error())
}

// trySubscribe subscribes and ignores a refusal: Mosquitto accepts any
// subscription and filters what it delivers, the embedded broker refuses a
// pile's wildcard subscription outright. Either way nothing may arrive.
func (c *client) trySubscribe(t *testing.T, filter string) {
	t.Helper()
	tok := c.Subscribe(filter, 1, nil)
	require.True(t, tok.WaitTimeout(5*time.Second), "subscribe %s", filter)
}

func (c *client) publish(t *testing.T, topic string, qos byte, payload string) {
	t.Helper()
	tok := c.Publish(topic, qos, false, payload)
	require.True(t, tok.WaitTimeout(5*time.Second), "publish %s", topic)
	require.NoError(t, tok.Error(), "publish %s", topic)
}

// tryPublish publishes something the broker must refuse. Mosquitto takes a
// refused QoS 1 publish with a PUBACK and drops it (MQTT 3.1.1 cannot say
// no); the embedded broker (mochi-mqtt) disconnects the client instead.
// tryPublish returns once the broker has answered either way.
func (c *client) tryPublish(t *testing.T, topic string, qos byte, payload string) {
	t.Helper()
	tok := c.Publish(topic, qos, false, payload)
	require.True(t, tok.WaitTimeout(10*time.Second), "publish %s: no PUBACK and no disconnect", topic)
}

// the chargeguard account's subscriber to every pile topic, on the service
// listener.
func guardian(t *testing.T, tg target) *client {
	t.Helper()
	c := mustDial(t, clientOpts{url: tg.serviceURL, user: guard, pass: guardPass, id: "chargeguard"})
	c.subscribe(t, "chargers/#")
	return c
}

// pile connects as a pile with its username as client id, as a pile
// vendor would choose it, and subscribes to its commands.
func pile(t *testing.T, tg target, user, pass string) *client {
	t.Helper()
	c := mustDial(t, clientOpts{url: tg.pileURL, user: user, pass: pass, id: user})
	c.subscribe(t, "chargers/"+user+"/cmd")
	return c
}

func badCredentials(t *testing.T, tg target) {
	for _, tc := range []struct{ user, pass string }{
		{p01, "wrong"},
		{p01, ""},
		{p01, p02Pass},                  // another pile's password
		{"chunbo-nanyuan/p99", p01Pass}, // unknown pile
		{"", ""},                        // anonymous
	} {
		_, err := dial(t, clientOpts{url: tg.pileURL, user: tc.user, pass: tc.pass})
		assert.Error(t, err, "user %q password %q must be refused", tc.user, tc.pass)
		_, err = dial(t, clientOpts{url: tg.serviceURL, user: tc.user, pass: tc.pass})
		assert.Error(t, err, "user %q password %q must be refused on the service listener", tc.user, tc.pass)
	}
	_, err := dial(t, clientOpts{url: tg.serviceURL, user: guard, pass: p01Pass})
	assert.Error(t, err, "chargeguard with a pile's password")
}

func ownTopics(t *testing.T, tg target) {
	g := guardian(t, tg)
	p := pile(t, tg, p01, p01Pass)
	for _, kind := range []string{"status", "telemetry", "event", "ack"} {
		p.publish(t, "chargers/"+p01+"/"+kind, 1, "own-"+kind)
	}
	for _, kind := range []string{"status", "telemetry", "event", "ack"} {
		g.rec.waitFor(t, "chargers/"+p01+"/"+kind, "own-"+kind)
	}
}

func forgedTelemetry(t *testing.T, tg target) {
	g := guardian(t, tg)
	// QoS 0: dropped silently by both brokers; the control message on the
	// same connection proves the broker handled the forgery before it.
	p := mustDial(t, clientOpts{url: tg.pileURL, user: p01, pass: p01Pass})
	p.tryPublish(t, p02Telemetry, 0, "forged-q0")
	p.tryPublish(t, "chargers/other-site/p01/telemetry", 0, "forged-site-q0")
	p.publish(t, p01Telemetry, 1, "control-1")
	g.rec.waitFor(t, p01Telemetry, "control-1")
	p.Disconnect(100)

	// QoS 1: the broker has answered (PUBACK or disconnect) before the
	// control message is sent, from a new connection.
	p = mustDial(t, clientOpts{url: tg.pileURL, user: p01, pass: p01Pass})
	p.tryPublish(t, p02Telemetry, 1, "forged-q1")
	p.Disconnect(100)
	p = mustDial(t, clientOpts{url: tg.pileURL, user: p01, pass: p01Pass})
	p.publish(t, p01Telemetry, 1, "control-2")
	g.rec.waitFor(t, p01Telemetry, "control-2")

	assert.Empty(t, g.rec.containing("forged"), "a pile's forgery reached chargeguard")
	assert.False(t, g.lost.Load())
}

func forgedCommands(t *testing.T, tg target) {
	g := guardian(t, tg)
	victim := pile(t, tg, p02, p02Pass)
	p := mustDial(t, clientOpts{url: tg.pileURL, user: p01, pass: p01Pass})
	p.tryPublish(t, p02Cmd, 0, `{"v":1,"id":"forged-1","port":0,"action":"open"}`)
	p.tryPublish(t, p01Cmd, 0, `{"v":1,"id":"forged-2","port":0,"action":"open"}`)
	p.tryPublish(t, p02Cmd, 1, `{"v":1,"id":"forged-3","port":0,"action":"open"}`)
	p.Disconnect(100)

	// An authenticated account that is neither pile nor chargeguard.
	if o, err := dial(t, clientOpts{url: tg.pileURL, user: other, pass: otherPass}); err == nil {
		o.tryPublish(t, p02Cmd, 1, `{"v":1,"id":"forged-4","port":0,"action":"open"}`)
		o.Disconnect(100)
	}
	if o, err := dial(t, clientOpts{url: tg.serviceURL, user: other, pass: otherPass}); err == nil {
		o.tryPublish(t, p02Cmd, 1, `{"v":1,"id":"forged-5","port":0,"action":"open"}`)
		o.Disconnect(100)
	}

	g.publish(t, p02Cmd, 1, `{"v":1,"id":"real-1","port":0,"action":"close"}`)
	victim.rec.waitFor(t, p02Cmd, `{"v":1,"id":"real-1","port":0,"action":"close"}`)
	g.rec.waitFor(t, p02Cmd, `{"v":1,"id":"real-1","port":0,"action":"close"}`)

	assert.Empty(t, victim.rec.containing("forged"), "a forged command reached the pile")
	assert.Empty(t, g.rec.containing("forged"), "a forged command reached chargeguard")
}

func commandsRouted(t *testing.T, tg target) {
	g := guardian(t, tg)
	a := pile(t, tg, p01, p01Pass)
	b := pile(t, tg, p02, p02Pass)
	b.trySubscribe(t, "chargers/#")
	b.trySubscribe(t, "chargers/+/+/cmd")
	b.trySubscribe(t, p01Cmd)

	g.publish(t, p01Cmd, 1, "cmd-for-p01")
	g.publish(t, p02Cmd, 1, "cmd-for-p02")
	a.rec.waitFor(t, p01Cmd, "cmd-for-p01")
	b.rec.waitFor(t, p02Cmd, "cmd-for-p02")
	g.publish(t, p01Cmd, 1, "cmd-for-p01-again")
	a.rec.waitFor(t, p01Cmd, "cmd-for-p01-again")

	assert.Empty(t, b.rec.containing("cmd-for-p01"), "p02 got p01's command")
	assert.Empty(t, a.rec.containing("cmd-for-p02"), "p01 got p02's command")
}

// canaryTopics: chargeguard's live session sends itself a canary through
// the broker to measure its lag (ingest.CanaryPrefix); the service gets it
// back, and a pile can neither forge one nor read one.
func canaryTopics(t *testing.T, tg target) {
	const topic = "chargeguard/canary/chargeguard-live"
	g := guardian(t, tg)
	g.subscribe(t, "chargeguard/canary/#")
	spy := pile(t, tg, p01, p01Pass)
	spy.trySubscribe(t, "chargeguard/canary/#")
	spy.trySubscribe(t, topic)
	spy.publish(t, topic, 0, "forged-canary")
	g.publish(t, topic, 0, "canary")
	g.rec.waitFor(t, topic, "canary")
	// The broker handled the forged one first and the spy's subscriptions
	// before this command.
	g.publish(t, p01Cmd, 1, "ctl")
	spy.rec.waitFor(t, p01Cmd, "ctl")
	assert.Empty(t, g.rec.containing("forged-canary"), "a pile forged a canary")
	assert.Empty(t, spy.rec.containing("canary "), "a pile read the canary")
}

func noEavesdropping(t *testing.T, tg target) {
	g := guardian(t, tg)
	spy := pile(t, tg, p02, p02Pass)
	spy.trySubscribe(t, p01Telemetry)
	spy.trySubscribe(t, "chargers/+/+/telemetry")
	a := mustDial(t, clientOpts{url: tg.pileURL, user: p01, pass: p01Pass})
	a.publish(t, p01Telemetry, 1, "secret-reading")
	g.rec.waitFor(t, p01Telemetry, "secret-reading")
	// The broker handled the reading before this command; were the spy
	// subscribed to it, it would have got the reading first.
	g.publish(t, p02Cmd, 1, "ctl")
	spy.rec.waitFor(t, p02Cmd, "ctl")
	assert.Empty(t, spy.rec.containing("secret-reading"))
}

func noTakeover(t *testing.T, tg target) {
	g := guardian(t, tg)
	victim := pile(t, tg, p02, p02Pass)
	// p01 asks for the victim's client id, then for chargeguard's.
	for _, id := range []string{p02, "chargeguard"} {
		c, err := dial(t, clientOpts{url: tg.pileURL, user: p01, pass: p01Pass, id: id})
		require.NoError(t, err)
		c.Disconnect(100)
	}
	g.publish(t, p02Cmd, 1, "after-takeover")
	victim.rec.waitFor(t, p02Cmd, "after-takeover")
	assert.False(t, victim.lost.Load(), "the victim pile was kicked off")
	assert.False(t, g.lost.Load(), "chargeguard was kicked off")
}

func wills(t *testing.T, tg target) {
	g := guardian(t, tg)
	victim := pile(t, tg, p02, p02Pass)

	// Positive control: a will on the pile's own status is delivered when
	// its connection drops, so the absence below means something.
	var conn net.Conn
	_, err := dial(t, clientOpts{url: tg.pileURL, user: p01, pass: p01Pass, conn: &conn,
		will: &[2]string{"chargers/" + p01 + "/status", `{"v":1,"online":false}`}})
	require.NoError(t, err)
	conn.Close()
	g.rec.waitFor(t, "chargers/"+p01+"/status", `{"v":1,"online":false}`)

	// A will on another pile's cmd topic: the embedded broker refuses the
	// connection; Mosquitto accepts it and checks the ACL when it would send
	// the will.
	conn = nil
	c, err := dial(t, clientOpts{url: tg.pileURL, user: p01, pass: p01Pass, conn: &conn,
		will: &[2]string{p02Cmd, "forged-will"}})
	if err == nil {
		require.NotNil(t, c)
		conn.Close()
		// A new connection of the same pile replaces the old one, so once
		// it is up the broker is done with the old one and its will.
		again := mustDial(t, clientOpts{url: tg.pileURL, user: p01, pass: p01Pass})
		again.Disconnect(100)
	}
	g.publish(t, p02Cmd, 1, "after-will")
	victim.rec.waitFor(t, p02Cmd, "after-will")
	assert.Empty(t, victim.rec.containing("forged-will"))
	assert.Empty(t, g.rec.containing("forged-will"))
}

func revoked(t *testing.T, tg target) {
	g := guardian(t, tg)
	victim := pile(t, tg, p02, p02Pass)
	stay := pile(t, tg, p01, p01Pass)
	without := map[string]string{}
	for u, p := range accounts {
		if u != p02 {
			without[u] = p
		}
	}
	writeAccounts(t, tg.passwd, without) // what `cgpasswd delete` does
	t.Cleanup(func() { writeAccounts(t, tg.passwd, accounts) })
	tg.reload()
	// The embedded broker looks at the file at most once a second, on a
	// connect or an ACL check: chargeguard's traffic provides those.
	require.Eventually(t, func() bool {
		g.Publish(p02Cmd, 0, false, "poll")
		return victim.lost.Load()
	}, 10*time.Second, 50*time.Millisecond, "the deleted pile is still connected")
	_, err := dial(t, clientOpts{url: tg.pileURL, user: p02, pass: p02Pass})
	assert.Error(t, err, "a deleted pile cannot reconnect")
	g.publish(t, p01Cmd, 1, "still-here")
	stay.rec.waitFor(t, p01Cmd, "still-here")
	assert.False(t, stay.lost.Load(), "other piles stay connected")
}

// TestMosquittoTLS issues certificates with deploy/mosquitto/pki.sh, enables
// the shipped TLS listener block, and checks that a pile authenticated by
// its certificate is held to its own topics like a pile with a password.
func TestMosquittoTLS(t *testing.T) {
	testenv.Integration(t)
	testenv.Binary(t, "openssl", "openssl", "/usr/bin/openssl")
	root := testenv.RepoRoot(t)
	pki := t.TempDir()
	run := func(args ...string) {
		cmd := exec.Command("sh", append([]string{filepath.Join(root, "deploy/mosquitto/pki.sh")}, args...)...)
		cmd.Env = append(os.Environ(), "PKI_DIR="+pki)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "pki.sh %v: %s", args, out)
	}
	run("ca")
	run("server", "localhost", "127.0.0.1")
	run("pile", p01)
	run("pile", p02)
	run("pile", "chunbo-nanyuan/p03")
	files := &authtest.TLSFiles{
		CAFile:   filepath.Join(pki, "ca.crt"),
		CertFile: filepath.Join(pki, "server.crt"),
		KeyFile:  filepath.Join(pki, "server.key"),
	}
	cert := func(id string) *tlsConf {
		base := filepath.Join(pki, "piles", strings.Replace(id, "/", ".", 1))
		return &tlsConf{files: files, certFile: base + ".crt", keyF: base + ".key"}
	}

	// p03 is revoked the way docs/deploy.md says: a deny block in the ACL.
	shipped, err := os.ReadFile(filepath.Join(root, authtest.ACLPath))
	require.NoError(t, err)
	acl := filepath.Join(t.TempDir(), "acl")
	require.NoError(t, os.WriteFile(acl, append(shipped, "\nuser chunbo-nanyuan/p03\ntopic deny chargers/#\n"...), 0o644))

	m := authtest.Start(t, authtest.Options{PasswordFile: writePasswords(t), ACLFile: acl, TLS: files})
	tlsURL := m.URL(authtest.TLSPort)
	g := guardian(t, target{serviceURL: m.URL(authtest.ServicePort)})

	// No client certificate, no connection.
	_, err = dial(t, clientOpts{url: tlsURL, user: p01, pass: p01Pass, tls: &tlsConf{files: files}})
	assert.Error(t, err)

	victim := mustDial(t, clientOpts{url: tlsURL, tls: cert(p02), id: p02})
	victim.subscribe(t, p02Cmd)

	// p01's certificate, claiming p02's username and client id: the CN
	// wins, so p01 can neither speak for p02 nor kick it off.
	a := mustDial(t, clientOpts{url: tlsURL, tls: cert(p01), user: p02, pass: p02Pass, id: p02})
	a.tryPublish(t, p02Telemetry, 0, "forged-tls")
	a.tryPublish(t, p02Cmd, 0, "forged-tls-cmd")
	a.publish(t, p01Telemetry, 1, "tls-control")
	g.rec.waitFor(t, p01Telemetry, "tls-control")

	revoked := mustDial(t, clientOpts{url: tlsURL, tls: cert("chunbo-nanyuan/p03")})
	revoked.tryPublish(t, "chargers/chunbo-nanyuan/p03/telemetry", 0, "forged-revoked")
	revoked.publish(t, "chargers/chunbo-nanyuan/p03/telemetry", 1, "forged-revoked-q1")

	g.publish(t, p02Cmd, 1, "tls-cmd")
	victim.rec.waitFor(t, p02Cmd, "tls-cmd")
	victim.publish(t, p02Telemetry, 1, "tls-control-2")
	g.rec.waitFor(t, p02Telemetry, "tls-control-2")

	assert.Empty(t, g.rec.containing("forged"))
	assert.Empty(t, victim.rec.containing("forged"))
	assert.False(t, victim.lost.Load(), "p02 was kicked off by p01's certificate")
}
