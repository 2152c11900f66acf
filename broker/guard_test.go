package broker

import (
	"io"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// A connection that never sends CONNECT is closed after the connect
// timeout, so idle sockets cannot pile up before login.
func TestConnectDeadline(t *testing.T) {
	b := run(t, Options{Registerer: prometheus.NewRegistry(), ConnectTimeout: 300 * time.Millisecond})
	c, err := net.Dial("tcp", b.Addr())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte{0x10}) // half a header, then silence
	require.NoError(t, err)
	require.True(t, closedByServer(c, 10*time.Second), "a client that does not finish CONNECT must be disconnected")
}

// Connections that have not logged in are capped; the next is closed at
// once and counted. A client that logs in frees its slot.
func TestPreAuthConnectionCap(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := run(t, Options{Registerer: reg, MaxPreAuthConns: 3, ConnectTimeout: time.Minute})
	var idle []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", b.Addr())
		require.NoError(t, err)
		defer c.Close()
		idle = append(idle, c)
	}
	// The listener accepts in order: wait until the three are counted.
	require.Eventually(t, func() bool { return b.preAuth.inUse(true) == 3 }, 5*time.Second, 10*time.Millisecond)
	extra, err := net.Dial("tcp", b.Addr())
	require.NoError(t, err)
	defer extra.Close()
	require.True(t, closedByServer(extra, 5*time.Second), "a connection over the pre-auth cap must be closed")
	require.Equal(t, 1.0, counterValue(t, reg, "chargeguard_broker_connections_refused_total", "preauth_limit"))

	// One idle connection logs in: its slot is freed for the next client.
	_, err = idle[0].Write(connectPacket("c1", "", ""))
	require.NoError(t, err)
	ack := make([]byte, 4)
	_ = idle[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadFull(idle[0], ack)
	require.NoError(t, err)
	require.Equal(t, []byte{0x20, 0x02, 0x00, 0x00}, ack, "CONNACK accepted")
	require.Eventually(t, func() bool { return b.preAuth.inUse(true) == 2 }, 5*time.Second, 10*time.Millisecond)
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("late"))
	tok := cl.Connect()
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.NoError(t, tok.Error())
	cl.Disconnect(0)
}

// Without a password file the broker refuses to listen beyond loopback
// unless told so: anyone reaching it could forge telemetry and commands.
func TestAnonymousOnlyOnLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:1883": true, "[::1]:1883": true, "localhost:1883": true,
		"0.0.0.0:1883": false, ":1883": false, "[::]:1883": false, "10.0.0.5:1883": false, "mqtt.example:1883": false,
	} {
		require.Equal(t, want, IsLoopbackAddr(addr), addr)
	}
	_, err := New(Options{Addr: "0.0.0.0:0"})
	require.ErrorContains(t, err, "not a loopback address and no password file")
}

// A logged-in client that sends a packet over MaxPacketBytes is
// disconnected before the packet is read.
func TestMaxPacketBytes(t *testing.T) {
	b := run(t, Options{Registerer: prometheus.NewRegistry(), MaxPacketBytes: 1024})
	c, err := net.Dial("tcp", b.Addr())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write(connectPacket("big", "", ""))
	require.NoError(t, err)
	ack := make([]byte, 4)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadFull(c, ack)
	require.NoError(t, err)
	_, err = c.Write([]byte{0x30, 0xff, 0xff, 0xff, 0x7f}) // PUBLISH announcing 256 MiB
	require.NoError(t, err)
	require.True(t, closedByServer(c, 5*time.Second))
}
