// Package authtest starts a real Mosquitto with chargeguard's shipped
// security configuration, for the integration tests of device security.
//
// Mosquitto runs the whole of deploy/mosquitto/mosquitto.conf, tuning and
// deployment sections alike, with only what depends on the host changed:
// each listener moves to a free port on 127.0.0.1, and the password file,
// ACL, TLS files and persistence directory point into the test's temporary
// directory. So the tests exercise the listeners, use_username_as_clientid,
// the TLS block and deploy/mosquitto/acl exactly as shipped.
// (internal/testenv.Mosquitto runs the tuning section only, with anonymous
// access, for tests that are not about security.)
package authtest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/chargeguard/chargeguard/internal/testenv"
)

// Shipped files, relative to the repository root.
const (
	ConfPath = "deploy/mosquitto/mosquitto.conf"
	ACLPath  = "deploy/mosquitto/acl"
)

// Production ports of the listeners in ConfPath.
const (
	PilePort    = 1883 // piles, username/password, client id = username
	ServicePort = 1884 // chargeguard
	TLSPort     = 8883 // piles, client certificates (commented out as shipped)
)

// TLSFiles are the PEM files of the TLS listener.
type TLSFiles struct {
	CAFile, CertFile, KeyFile string
}

// Options says which credentials the broker uses.
type Options struct {
	// PasswordFile is a Mosquitto password file; required.
	PasswordFile string
	// ACLFile defaults to the shipped deploy/mosquitto/acl.
	ACLFile string
	// TLS enables the shipped TLS listener block with these files.
	TLS *TLSFiles
}

// Mosquitto is a running broker.
type Mosquitto struct {
	// Addrs maps each production port (PilePort, ServicePort, TLSPort) to
	// the 127.0.0.1:port the test broker listens on instead.
	Addrs      map[int]string
	Dir        string
	ConfigPath string
	LogPath    string
	cmd        *exec.Cmd
}

// URL is the tcp:// URL (ssl:// for TLSPort) of the listener that has the
// given production port.
func (m *Mosquitto) URL(port int) string {
	if port == TLSPort {
		return "ssl://" + m.Addrs[port]
	}
	return "tcp://" + m.Addrs[port]
}

// Start starts Mosquitto for the test and returns once every listener
// answers an MQTT CONNECT. It is stopped, by its own PID, when the test ends.
// Under `go test -short` the test is skipped.
func Start(t testing.TB, o Options) *Mosquitto {
	t.Helper()
	testenv.Integration(t)
	bin := testenv.Binary(t, "mosquitto", "mosquitto", "/usr/sbin/mosquitto")
	root := testenv.RepoRoot(t)
	if o.PasswordFile == "" {
		t.Fatal("authtest: Options.PasswordFile is required")
	}
	if o.ACLFile == "" {
		o.ACLFile = filepath.Join(root, ACLPath)
	}
	shipped, err := os.ReadFile(filepath.Join(root, ConfPath))
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	dir := t.TempDir()
	m := &Mosquitto{
		Addrs:      map[int]string{},
		Dir:        dir,
		ConfigPath: filepath.Join(dir, "mosquitto.conf"),
		LogPath:    filepath.Join(dir, "mosquitto.log"),
	}
	conf, err := Rewrite(shipped, o, dir, func(int) int { return testenv.FreePort(t) }, m.Addrs, os.Geteuid() == 0)
	if err != nil {
		t.Fatalf("authtest: %s: %v", ConfPath, err)
	}
	if err := os.WriteFile(m.ConfigPath, []byte(conf), 0o644); err != nil {
		t.Fatalf("authtest: %v", err)
	}
	logf, err := os.Create(m.LogPath)
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	m.cmd = exec.Command(bin, "-c", m.ConfigPath)
	m.cmd.Dir = dir
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = sysProcAttr()
	if err := m.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("authtest: start mosquitto: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = m.cmd.Wait()
		logf.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = m.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("authtest: mosquitto log (%s):\n%s", m.LogPath, tail(m.LogPath, 60))
		}
	})
	exitedEarly := false
	for port, addr := range m.Addrs {
		var lastErr error
		ok := assert.Eventually(t, func() bool {
			select {
			case <-exited:
				exitedEarly = true
				return true
			default:
			}
			lastErr = probe(addr, port == TLSPort, o.TLS)
			return lastErr == nil
		}, 15*time.Second, 20*time.Millisecond)
		if exitedEarly {
			t.Fatalf("authtest: mosquitto exited (%v):\n%s", waitErr, tail(m.LogPath, 60))
		}
		if !ok {
			t.Fatalf("authtest: listener %d (%s) not ready: %v\n%s", port, addr, lastErr, tail(m.LogPath, 60))
		}
	}
	return m
}

// Reload sends the broker SIGHUP, which makes it re-read the password file
// and the ACL and disconnect clients whose account is gone.
func (m *Mosquitto) Reload(t testing.TB) {
	t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("authtest: SIGHUP mosquitto: %v", err)
	}
}

// Rewrite turns the shipped configuration into the test broker's: each
// listener on 127.0.0.1 at port(productionPort) (recorded in addrs), the
// TLS block uncommented when o.TLS is set, and every path into dir or o.
func Rewrite(shipped []byte, o Options, dir string, port func(int) int, addrs map[int]string, asRoot bool) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated by broker/auth/authtest from %s.\n", ConfPath)
	if asRoot {
		// Mosquitto started as root switches to the "mosquitto" user, which
		// cannot read the test's temporary directory.
		b.WriteString("user root\n")
	}
	sc := bufio.NewScanner(bytes.NewReader(shipped))
	inTLS := false
	seen := map[string]bool{}
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "# BEGIN tls-listener":
			inTLS = true
			continue
		case trimmed == "# END tls-listener":
			inTLS = false
			continue
		}
		if inTLS {
			// Settings are commented as "#key value", comments as "# text".
			if o.TLS == nil || !strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, "# ") || trimmed == "#" {
				continue
			}
			trimmed = strings.TrimPrefix(trimmed, "#")
		}
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		fields := strings.Fields(trimmed)
		key := fields[0]
		seen[key] = true
		switch key {
		case "listener":
			if len(fields) < 2 {
				return "", fmt.Errorf("listener without a port: %q", trimmed)
			}
			prod, err := strconv.Atoi(fields[1])
			if err != nil {
				return "", fmt.Errorf("listener port %q: %w", fields[1], err)
			}
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port(prod)))
			addrs[prod] = addr
			_, p, _ := net.SplitHostPort(addr)
			trimmed = "listener " + p + " 127.0.0.1"
		case "password_file":
			trimmed = "password_file " + o.PasswordFile
		case "acl_file":
			trimmed = "acl_file " + o.ACLFile
		case "cafile":
			trimmed = "cafile " + o.TLS.CAFile
		case "certfile":
			trimmed = "certfile " + o.TLS.CertFile
		case "keyfile":
			trimmed = "keyfile " + o.TLS.KeyFile
		case "persistence_location":
			trimmed = "persistence_location " + dir + string(filepath.Separator)
		case "log_dest":
			trimmed = "log_dest stdout"
		case "user", "pid_file", "include_dir":
			return "", fmt.Errorf("%s is host-specific; the test cannot run it: %q", key, trimmed)
		}
		b.WriteString(trimmed + "\n")
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	for _, k := range []string{"password_file", "acl_file", "allow_anonymous"} {
		if !seen[k] {
			return "", fmt.Errorf("the shipped configuration has no %s", k)
		}
	}
	if o.TLS != nil && addrs[TLSPort] == "" {
		return "", fmt.Errorf("no TLS listener on %d between the tls-listener markers", TLSPort)
	}
	b.WriteString("persistence_file mosquitto.db\n")
	return b.String(), nil
}

// probe sends an MQTT 3.1.1 CONNECT without credentials and waits for the
// CONNACK: any return code (a refusal is expected) proves that the listener
// is up and past loading its files. On the TLS listener, which wants a
// client certificate, the TLS alert refusing the connection is that proof.
func probe(addr string, useTLS bool, files *TLSFiles) error {
	raw, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	conn := raw
	defer func() { conn.Close() }()
	if useTLS {
		cfg, err := ClientTLS(files, "", "")
		if err != nil {
			return err
		}
		conn = tls.Client(raw, cfg)
	}
	err = mqttConnect(conn)
	if useTLS && err != nil && strings.Contains(err.Error(), "tls: ") {
		return nil
	}
	return err
}

func mqttConnect(conn net.Conn) error {
	conn.SetDeadline(time.Now().Add(time.Second))
	id := "authtest-probe"
	body := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 10, 0, byte(len(id))}
	body = append(body, id...)
	if _, err := conn.Write(append([]byte{0x10, byte(len(body))}, body...)); err != nil {
		return err
	}
	var ack [4]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil {
		return err
	}
	if ack[0] != 0x20 {
		return fmt.Errorf("want CONNACK, got % x", ack)
	}
	return nil
}

// ClientTLS is a TLS client configuration trusting files.CAFile and, when
// certFile is set, presenting that client certificate.
func ClientTLS(files *TLSFiles, certFile, keyFile string) (*tls.Config, error) {
	ca, err := os.ReadFile(files.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in %s", files.CAFile)
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
