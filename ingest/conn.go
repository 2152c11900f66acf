package ingest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"os"
	"sync/atomic"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// readBuffer is what one read of an ingest session's socket can take: at
// 10,000 messages/s of about 800 bytes, 64 KiB holds some 80 messages.
const readBuffer = 64 << 10

// openBuffered opens the connection paho would open for uri and reads it
// through a buffer. paho's packet reader asks the connection for a packet's
// first byte, then each byte of its length, then its body, so an
// unbuffered socket costs three or four read system calls per message; a
// CPU profile at 4,000 messages/s put 12 % of chargeguard's CPU there
// (docs/benchmarks.md, "Detection to command at 10,000 msgs/s"). Writes are
// untouched: every packet paho writes still goes out at once.
func openBuffered(uri *url.URL, o paho.ClientOptions) (*bufferedConn, error) {
	conn, err := openConnection(uri, o)
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, readBuffer)}, nil
}

// bufferedConn is a net.Conn whose reads go through r.
type bufferedConn struct {
	net.Conn
	r       *bufio.Reader
	dropped atomic.Pointer[error]
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if why := c.dropped.Load(); err != nil && why != nil {
		err = *why
	}
	return n, err
}

// drop closes the connection so that paho takes it as lost and reconnects:
// paho ignores a read error that says the connection was closed (it takes
// it for its own Disconnect), so the reader gets why instead.
func (c *bufferedConn) drop(why error) {
	c.dropped.Store(&why)
	_ = c.Conn.Close()
}

// openConnection is paho's own (netconn.go, v1.5.1, unexported) for the
// schemes config.Validate accepts in mqtt.url: the same dialer, proxy
// settings, TLS configuration and websocket options.
func openConnection(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	dialer := o.Dialer
	if dialer == nil {
		dialer = &net.Dialer{Timeout: o.ConnectTimeout}
	}
	switch uri.Scheme {
	case "ws", "wss":
		var tlsc *tls.Config
		if uri.Scheme == "wss" {
			tlsc = o.TLSConfig
		}
		dialURI := *uri // gorilla/websocket refuses a URL with user info
		dialURI.User = nil
		return paho.NewWebsocket(dialURI.String(), tlsc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	case "mqtt", "tcp":
		return proxy.FromEnvironmentUsing(dialer).Dial("tcp", uri.Host)
	case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
		if os.Getenv("all_proxy") == "" {
			return tls.DialWithDialer(dialer, "tcp", uri.Host, o.TLSConfig)
		}
		conn, err := proxy.FromEnvironment().Dial("tcp", uri.Host)
		if err != nil {
			return nil, err
		}
		tlsConn := tls.Client(conn, o.TLSConfig)
		if err := tlsConn.Handshake(); err != nil {
			_ = conn.Close()
			return nil, err
		}
		return tlsConn, nil
	}
	return nil, errors.New("unknown protocol " + uri.Scheme)
}
