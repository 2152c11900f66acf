package testenv

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// etcdStopTimeout bounds a graceful stop of an etcd member: one that has
// lost quorum may ignore SIGTERM (docs field notes), so it is killed after
// this.
const etcdStopTimeout = 3 * time.Second

// EtcdCluster is a cluster of etcd members (Debian's etcd-server) on
// loopback, started by Etcd.
type EtcdCluster struct {
	t       testing.TB
	Members []*EtcdMember
}

// EtcdMember is one member of an EtcdCluster.
type EtcdMember struct {
	server
	Name      string
	ClientURL string // http://127.0.0.1:port
	PeerURL   string
	Dir       string
}

// Endpoints are the members' client URLs.
func (c *EtcdCluster) Endpoints() []string {
	out := make([]string, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.ClientURL
	}
	return out
}

// Etcd starts an etcd cluster of n members on loopback ports and returns
// once every member reports healthy. Members are stopped when the test ends
// (SIGTERM, SIGKILL after 3 s). Under `go test -short` the test is skipped.
func Etcd(t testing.TB, n int) *EtcdCluster {
	t.Helper()
	Integration(t)
	bin := Binary(t, "etcd (Debian package etcd-server)", "etcd", "/usr/bin/etcd")
	c := &EtcdCluster{t: t}
	var initial []string
	for i := range n {
		cp, err := freePort()
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		pp, err := freePort()
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		m := &EtcdMember{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", cp),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", pp),
			Dir:       t.TempDir(),
		}
		initial = append(initial, m.Name+"="+m.PeerURL)
		c.Members = append(c.Members, m)
	}
	for _, m := range c.Members {
		m.server = server{
			t: t,
			proc: &process{
				name: "etcd " + m.Name,
				path: bin,
				args: []string{
					"--name", m.Name,
					"--data-dir", filepath.Join(m.Dir, "data"),
					"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
					"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
					"--initial-cluster", strings.Join(initial, ","),
					"--initial-cluster-state", "new", "--initial-cluster-token", "chargeguard-test",
					// Loopback: fast heartbeats so a lost leader is noticed in
					// well under a second, as on a LAN.
					"--heartbeat-interval", "50", "--election-timeout", "500",
				},
				// Debian's unit file sets ETCD_* from /etc/default; keep
				// the test's own environment from steering it.
				dropEnv: []string{"ETCD"},
				dir:     m.Dir,
				logPath: filepath.Join(m.Dir, "etcd.log"),
			},
			ready:        m.healthy,
			readyTimeout: 30 * time.Second,
		}
		t.Cleanup(func() {
			if err := m.proc.stop(syscall.SIGTERM, etcdStopTimeout); err != nil {
				t.Logf("testenv: %v", err) // killed: expected of a member without quorum
			}
			if t.Failed() {
				t.Logf("testenv: %s output:\n%s", m.proc.name, m.proc.tail())
			}
		})
		if err := m.proc.start(); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	for _, m := range c.Members {
		if err := m.proc.waitReady(m.readyTimeout, m.ready); err != nil {
			t.Fatalf("testenv: %v\n%s output:\n%s", err, m.proc.name, m.proc.tail())
		}
	}
	return c
}

// healthy asks the member's /health, which answers true only while the
// cluster has a leader (quorum).
func (m *EtcdMember) healthy() error {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get(m.ClientURL + "/health")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"health":"true"`) {
		return fmt.Errorf("etcd %s: %d %s", m.Name, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

// Kill kills the member with SIGKILL and waits until it has exited.
func (m *EtcdMember) Kill() {
	m.t.Helper()
	if err := m.proc.stop(syscall.SIGKILL, etcdStopTimeout); err != nil {
		m.t.Fatalf("testenv: %v", err)
	}
}

// Start starts a killed member again with its data; it is ready once the
// cluster it rejoins has a leader.
func (m *EtcdMember) Start() {
	m.server.Start()
}
