package broker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// run starts a broker on a free loopback port and stops it with the test.
func run(t *testing.T, o Options) *Broker {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	b, err := New(o)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return b
}

// connectPacket is an MQTT 3.1.1 CONNECT for clientID with the given
// password.
func connectPacket(clientID, user, pass string) []byte {
	var body []byte
	str := func(s string) {
		body = append(body, byte(len(s)>>8), byte(len(s)))
		body = append(body, s...)
	}
	str("MQTT")
	flags := byte(0x02) // clean session
	if user != "" {
		flags |= 0x80 | 0x40
	}
	body = append(body, 4, flags, 0, 30)
	str(clientID)
	if user != "" {
		str(user)
		str(pass)
	}
	return append([]byte{0x10, byte(len(body))}, body...)
}

// closedByServer waits up to wait for the server to close c, and says
// whether it did.
func closedByServer(c net.Conn, wait time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 512)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Four 5-byte CONNECT headers announcing 256 MiB each, before any login,
// made mochi allocate 1 GiB in the safety process. The broker must refuse
// such a packet after reading its header, and close the connection.
func TestOversizedConnectRefusedBeforeAllocation(t *testing.T) {
	b := run(t, Options{Registerer: prometheus.NewRegistry()})
	before := heapAlloc()
	var conns []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", b.Addr())
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte{0x10, 0xff, 0xff, 0xff, 0x7f}) // CONNECT, 268435455 bytes to follow
		require.NoError(t, err)
		conns = append(conns, c)
	}
	closed := 0
	for _, c := range conns {
		if closedByServer(c, 3*time.Second) {
			closed++
		}
	}
	grown := int64(heapAlloc()) - int64(before)
	t.Logf("heap grew by %d MiB", grown>>20)
	require.Less(t, grown, int64(32<<20), "four oversized CONNECT headers must not make the broker allocate their announced size")
	require.Equal(t, 4, closed, "the broker must close a connection that announces an oversized CONNECT")
}

// A second CONNECT on a session made mochi log the whole packet, password
// included, at WARN; errors were logged as {"Err":{}}.
func TestLogsNeverHoldPacketsOrCredentials(t *testing.T) {
	var logs bytes.Buffer
	b := run(t, Options{Registerer: prometheus.NewRegistry(), Logger: zerolog.New(&syncWriter{w: &logs}).Level(zerolog.DebugLevel)})
	c, err := net.Dial("tcp", b.Addr())
	require.NoError(t, err)
	defer c.Close()
	const secret = "s3cret-pile-password"
	_, err = c.Write(connectPacket("p1", "site/p1", secret))
	require.NoError(t, err)
	ack := make([]byte, 4)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadFull(c, ack)
	require.NoError(t, err)
	_, err = c.Write(connectPacket("p1", "site/p1", secret)) // a protocol violation
	require.NoError(t, err)
	require.True(t, closedByServer(c, 5*time.Second))
	require.Eventually(t, func() bool { return bytes.Contains(logsOf(&logs), []byte("error processing packet")) }, 5*time.Second, 10*time.Millisecond)
	out := logsOf(&logs)
	t.Logf("%s", out)
	require.NotContains(t, string(out), secret)
	require.NotContains(t, string(out), "czNjcmV0LXBpbGUtcGFzc3dvcmQ", "base64 of the password")
	require.NotContains(t, string(out), `"error":{`, "errors are logged as their text, not as a struct")
	require.NotContains(t, string(out), `"pk":{`, "packets are summarised, never logged")
}
