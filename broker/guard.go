package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Why a client was refused before it logged in: the label values of
// chargeguard_broker_connections_refused_total.
const (
	refusedPreAuthLimit   = "preauth_limit"     // too many connections not logged in yet
	refusedConnectTooBig  = "connect_too_large" // the first packet announced more than MaxConnectBytes
	refusedConnectTimeout = "connect_timeout"   // no complete CONNECT within ConnectTimeout
)

var (
	errConnectTooLarge = errors.New("first packet larger than the CONNECT limit")
	errMalformedLength = errors.New("malformed remaining length in the first packet")
)

// guard protects the broker before login. mochi-mqtt allocates a packet's
// announced size (up to 256 MiB) before reading it, sets no deadline before
// CONNECT and admits any number of connections; in the safety process that
// is a way to exhaust its memory without a password (reported upstream as
// mochi-mqtt/server#502; MaximumPacketSize, which New now sets, closes the
// allocation for every packet but not the rest). The guard wraps the
// listener: it caps the connections that have not logged in (in two pools,
// so a flood from the network cannot keep chargeguard's own loopback
// sessions from reconnecting), gives each a deadline to complete CONNECT,
// and reads the first packet's fixed header itself, refusing one that
// announces more than a CONNECT needs before mochi allocates anything.
type guard struct {
	maxPreAuth     int64
	maxConnect     int
	connectTimeout time.Duration
	remote, local  atomic.Int64 // connections not logged in, by pool
	refused        *prometheus.CounterVec
	// handoff counts connections returned by Accept that mochi has not
	// started reading yet. mochi registers a connection in a WaitGroup
	// only once its goroutine runs, which races with the Wait in its
	// Close; Broker.Run closes the listener and waits for this first.
	handoff sync.WaitGroup
	log     zerolog.Logger // sampled: a flood must not flood the log
}

func newGuard(o Options, log zerolog.Logger) *guard {
	g := &guard{
		maxPreAuth:     int64(o.MaxPreAuthConns),
		maxConnect:     o.MaxConnectBytes,
		connectTimeout: o.ConnectTimeout,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_broker_connections_refused_total",
			Help: "Connections the embedded broker closed before login, by reason (preauth_limit, connect_too_large, connect_timeout).",
		}, []string{"reason"}),
		log: log.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second}),
	}
	for _, r := range []string{refusedPreAuthLimit, refusedConnectTooBig, refusedConnectTimeout} {
		g.refused.WithLabelValues(r)
	}
	return g
}

func (g *guard) pool(loopback bool) *atomic.Int64 {
	if loopback {
		return &g.local
	}
	return &g.remote
}

func (g *guard) acquire(loopback bool) bool {
	p := g.pool(loopback)
	if p.Add(1) > g.maxPreAuth {
		p.Add(-1)
		return false
	}
	return true
}

// inUse is the number of connections of a pool that have not logged in.
func (g *guard) inUse(loopback bool) int64 { return g.pool(loopback).Load() }

func (g *guard) refuse(reason string, remote net.Addr) {
	g.refused.WithLabelValues(reason).Inc()
	g.log.Warn().Str("reason", reason).Str("remote", remote.String()).
		Msg("embedded broker refused a connection before login")
}

// listener wraps the broker's TCP listener with the guard.
type listener struct {
	net.Listener
	g *guard
}

// Accept returns the next connection that fits the pre-auth cap; the others
// are closed at once. mochi's accept loop stops for good on any error, so
// only a closed listener's error is returned: a transient one (out of file
// descriptors) is waited out, as net/http does.
func (l *listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.g.log.Error().Err(err).Dur("retry_in", delay).Msg("embedded broker cannot accept connections")
			time.Sleep(delay)
			continue
		}
		delay = 0
		loopback := isLoopback(c.RemoteAddr())
		if !l.g.acquire(loopback) {
			l.g.refuse(refusedPreAuthLimit, c.RemoteAddr())
			_ = c.Close()
			continue
		}
		if err := c.SetReadDeadline(time.Now().Add(l.g.connectTimeout)); err != nil {
			l.g.pool(loopback).Add(-1)
			_ = c.Close()
			continue
		}
		l.g.handoff.Add(1)
		return &conn{Conn: c, g: l.g, loopback: loopback}, nil
	}
}

// conn is a connection until it logs in: it checks the first packet's
// header and holds a pre-auth slot. mochi reads it from one goroutine.
type conn struct {
	net.Conn
	g        *guard
	loopback bool
	checked  bool
	header   []byte // the first packet's fixed header, still to hand to mochi
	loggedIn atomic.Bool
	release  sync.Once
	started  sync.Once
}

// handedOff says mochi's goroutine for the connection runs (it reads, or
// closes it).
func (c *conn) handedOff() { c.started.Do(c.g.handoff.Done) }

func (c *conn) Read(p []byte) (int, error) {
	c.handedOff()
	if !c.checked {
		if err := c.readHeader(); err != nil {
			return 0, err
		}
		c.checked = true
	}
	if len(c.header) > 0 {
		n := copy(p, c.header)
		c.header = c.header[n:]
		return n, nil
	}
	n, err := c.Conn.Read(p)
	if err != nil && !c.loggedIn.Load() && isTimeout(err) {
		c.g.refuse(refusedConnectTimeout, c.RemoteAddr())
	}
	return n, err
}

// readHeader reads the first packet's fixed header (type byte and remaining
// length, 2 to 5 bytes) and refuses a packet larger than a CONNECT may be.
func (c *conn) readHeader() error {
	var b [5]byte
	if _, err := io.ReadFull(c.Conn, b[:1]); err != nil {
		if isTimeout(err) {
			c.g.refuse(refusedConnectTimeout, c.RemoteAddr())
		}
		return err
	}
	n, length := 1, 0
	for shift := 0; ; shift += 7 {
		if n == len(b) {
			return errMalformedLength
		}
		if _, err := io.ReadFull(c.Conn, b[n:n+1]); err != nil {
			if isTimeout(err) {
				c.g.refuse(refusedConnectTimeout, c.RemoteAddr())
			}
			return err
		}
		length |= int(b[n]&0x7f) << shift
		n++
		if b[n-1]&0x80 == 0 {
			break
		}
	}
	if length > c.g.maxConnect {
		c.g.refuse(refusedConnectTooBig, c.RemoteAddr())
		return fmt.Errorf("%w: %d bytes announced, at most %d", errConnectTooLarge, length, c.g.maxConnect)
	}
	c.header = b[:n]
	return nil
}

// authenticated frees the connection's pre-auth slot. mochi has already
// replaced the connect deadline with the keepalive one.
func (c *conn) authenticated() {
	c.loggedIn.Store(true)
	c.freeSlot()
}

func (c *conn) freeSlot() {
	c.release.Do(func() { c.g.pool(c.loopback).Add(-1) })
}

func (c *conn) Close() error {
	c.handedOff()
	c.freeSlot()
	return c.Conn.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isLoopback(a net.Addr) bool {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.IsLoopback()
	}
	return false
}

// IsLoopbackAddr says whether a listen address (host:port) accepts only
// connections from this machine. An empty host, 0.0.0.0, :: and any host
// name other than localhost are not loopback.
func IsLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loginHook frees a client's pre-auth slot once it has logged in.
type loginHook struct {
	mqtt.HookBase
}

func (h *loginHook) ID() string { return "chargeguard-preauth" }

func (h *loginHook) Provides(b byte) bool { return b == mqtt.OnSessionEstablish }

func (h *loginHook) OnSessionEstablish(cl *mqtt.Client, _ packets.Packet) {
	if c, ok := cl.Net.Conn.(*conn); ok {
		c.authenticated()
	}
}
