package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// stopTimeout bounds a graceful stop before the process is killed.
	stopTimeout = 15 * time.Second
	// pollInterval is how often readiness is checked while a server starts.
	pollInterval = 50 * time.Millisecond
	// portAttempts is how many fresh ports a first start tries when another
	// process took the port between FreePort and the server's bind.
	portAttempts = 3
	// tailBytes is how much of a server's output is logged on failure.
	tailBytes = 6 << 10
)

// errExited says that the server exited while we waited for it to be ready.
var errExited = errors.New("server exited")

// process is one server program run as a child of the test binary. It is
// signalled only through its own PID, never by name.
type process struct {
	name    string // for messages: "mosquitto", "influxd", ...
	path    string
	args    []string
	env     []string // added to the test's environment
	dropEnv []string // prefixes of the test's variables not passed on
	dir     string   // working directory
	logPath string   // stdout and stderr, appended across restarts

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// start runs the program once. It returns when the program has been started,
// not when it is ready.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("start %s: already running as pid %d", p.name, p.cmd.Process.Pid)
		}
	}
	out, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: open output file: %w", p.name, err)
	}
	// The child holds its own descriptor; ours is only needed until Start.
	defer out.Close()
	fmt.Fprintf(out, "=== testenv %s: %s %s\n", time.Now().Format(time.RFC3339Nano), p.path, strings.Join(p.args, " "))

	cmd := exec.Command(p.path, p.args...)
	cmd.Dir = p.dir
	cmd.Env = append(filterEnv(os.Environ(), p.dropEnv), p.env...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		if f, ferr := os.OpenFile(p.logPath, os.O_WRONLY|os.O_APPEND, 0); ferr == nil {
			fmt.Fprintf(f, "=== testenv %s: pid %d exited: %v\n", time.Now().Format(time.RFC3339Nano), cmd.Process.Pid, err)
			f.Close()
		}
		close(done)
	}()
	p.cmd, p.done = cmd, done
	return nil
}

// filterEnv returns env without the variables whose names start with one of
// the prefixes.
func filterEnv(env, prefixes []string) []string {
	out := make([]string, 0, len(env))
next:
	for _, kv := range env {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// running reports whether the program is running, and its exit channel.
func (p *process) running() (bool, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false, nil
	}
	select {
	case <-p.done:
		return false, p.done
	default:
		return true, p.done
	}
}

// stop sends sig to the program's PID and waits until it has exited. After
// timeout it kills the program. It does nothing if the program is not running.
func (p *process) stop(sig syscall.Signal, timeout time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s (pid %d): %w", p.name, cmd.Process.Pid, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-timer.C:
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s (pid %d): %w", p.name, cmd.Process.Pid, err)
	}
	<-done
	return fmt.Errorf("%s (pid %d) ignored %v for %v and was killed", p.name, cmd.Process.Pid, sig, timeout)
}

// pid returns the PID of the current run, or 0.
func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// waitReady polls ready until it succeeds, the program exits (errExited) or
// timeout passes.
func (p *process) waitReady(timeout time.Duration, ready func() error) error {
	_, done := p.running()
	if done == nil {
		return fmt.Errorf("%s: not started", p.name)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last error
	for {
		if last = ready(); last == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("%s %w before it was ready (last check: %v)", p.name, errExited, last)
		case <-deadline.C:
			return fmt.Errorf("%s not ready after %v: %w", p.name, timeout, last)
		case <-tick.C:
		}
	}
}

// tail returns the end of the program's output.
func (p *process) tail() string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no output: %v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > tailBytes {
		if _, err := f.Seek(fi.Size()-tailBytes, io.SeekStart); err != nil {
			return fmt.Sprintf("(read output: %v)", err)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(read output: %v)", err)
	}
	if len(b) == tailBytes {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
		b = append([]byte("...\n"), b...)
	}
	return string(b)
}

// portInUse reports whether the program's output says its port was taken.
func (p *process) portInUse() bool {
	t := strings.ToLower(p.tail())
	return strings.Contains(t, "address already in use") || strings.Contains(t, "address in use")
}

// server is what the Mosquitto, InfluxDB and Alertmanager helpers share: one
// process, readiness check, and the test it belongs to.
type server struct {
	t            testing.TB
	proc         *process
	ready        func() error
	readyTimeout time.Duration
}

// launch starts the server for the first time and registers its cleanup.
// configure (re)writes the configuration for fresh ports before each
// attempt, so a port taken by someone else between FreePort and bind costs a
// retry, not a failed test.
func (s *server) launch(configure func() error) {
	t := s.t
	t.Helper()
	t.Cleanup(func() {
		if err := s.proc.stop(syscall.SIGTERM, stopTimeout); err != nil {
			t.Errorf("testenv: stop %s: %v", s.proc.name, err)
		}
		if t.Failed() {
			t.Logf("testenv: %s output (%s):\n%s", s.proc.name, s.proc.logPath, s.proc.tail())
		}
	})
	var err error
	for attempt := 1; attempt <= portAttempts; attempt++ {
		if err = configure(); err != nil {
			t.Fatalf("testenv: configure %s: %v", s.proc.name, err)
		}
		if err = s.proc.start(); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		err = s.proc.waitReady(s.readyTimeout, s.ready)
		if err == nil {
			return
		}
		if !errors.Is(err, errExited) || !s.proc.portInUse() {
			break
		}
		t.Logf("testenv: %s lost its port to another process, retrying on a new one", s.proc.name)
	}
	_ = s.proc.stop(syscall.SIGKILL, stopTimeout)
	t.Fatalf("testenv: %v\n%s output (%s):\n%s", err, s.proc.name, s.proc.logPath, s.proc.tail())
}

// Stop stops the server gracefully (SIGTERM, then SIGKILL after 15 s) and
// waits until it has exited. It does nothing if the server is not running.
func (s *server) Stop() {
	s.t.Helper()
	if err := s.proc.stop(syscall.SIGTERM, stopTimeout); err != nil {
		s.t.Fatalf("testenv: %v", err)
	}
}

// Kill kills the server with SIGKILL, as a crash or power loss would, and
// waits until it has exited.
func (s *server) Kill() {
	s.t.Helper()
	if err := s.proc.stop(syscall.SIGKILL, stopTimeout); err != nil {
		s.t.Fatalf("testenv: %v", err)
	}
}

// Start starts the server again after Stop or Kill, on the same port and
// with the same data, and waits until it is ready.
func (s *server) Start() {
	s.t.Helper()
	if err := s.proc.start(); err != nil {
		s.t.Fatalf("testenv: %v", err)
	}
	if err := s.proc.waitReady(s.readyTimeout, s.ready); err != nil {
		s.t.Fatalf("testenv: restart: %v\n%s output (%s):\n%s", err, s.proc.name, s.proc.logPath, s.proc.tail())
	}
}

// Running reports whether the server process is running.
func (s *server) Running() bool {
	ok, _ := s.proc.running()
	return ok
}

// PID returns the server's process id (of its latest start).
func (s *server) PID() int { return s.proc.pid() }

// ProcCPU is the CPU time (user + system) process pid has used so far, from
// /proc: for benchmarks that report what a server spent on their load.
func ProcCPU(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	// Fields after the command name (which may hold spaces) start after ')'.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clkTck
}
