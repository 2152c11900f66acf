package testenv

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordingTB stands in for the test given to a server helper, so that the
// helper's own failures can be checked. Fatalf ends the calling goroutine as
// testing.T does.
type recordingTB struct {
	testing.TB
	fatal    string
	logs     []string
	cleanups []func()
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recordingTB) Errorf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recordingTB) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recordingTB) Failed() bool     { return r.fatal != "" }

// launchWith runs server.launch for a shell script as the server, on its own
// goroutine (launch may call Fatalf), and returns the recorder, the server
// and how many times configure ran.
func launchWith(t *testing.T, script string, ready func(*process) error, timeout time.Duration) (*recordingTB, *server, int) {
	t.Helper()
	rec := &recordingTB{TB: t}
	dir := t.TempDir()
	s := &server{
		t: rec,
		proc: &process{
			name:    "fake",
			path:    "/bin/sh",
			args:    []string{"-c", script},
			dir:     dir,
			logPath: filepath.Join(dir, "fake.log"),
		},
		readyTimeout: timeout,
	}
	s.ready = func() error { return ready(s.proc) }
	attempts := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.launch(func() error { attempts++; return nil })
	}()
	<-done
	t.Cleanup(func() {
		for i := len(rec.cleanups) - 1; i >= 0; i-- {
			rec.cleanups[i]()
		}
	})
	return rec, s, attempts
}

func notReady(why string) func(*process) error {
	return func(*process) error { return errors.New(why) }
}

// saidReady is ready once the script has printed "ready".
func saidReady(p *process) error {
	if !strings.Contains(p.tail(), "\nready\n") {
		return errors.New("no ready line yet")
	}
	return nil
}

func TestLaunchRetriesWhenThePortWasTaken(t *testing.T) {
	rec, _, attempts := launchWith(t, `echo "Error: Address already in use" >&2; exit 1`,
		notReady("not yet"), 5*time.Second)
	assert.Equal(t, portAttempts, attempts, "a lost port is retried on a fresh one")
	assert.Contains(t, rec.fatal, "exited before it was ready")
	assert.Contains(t, rec.fatal, "Address already in use", "the failure shows the server's output")
}

func TestLaunchDoesNotRetryOtherExits(t *testing.T) {
	rec, _, attempts := launchWith(t, `echo "Error: bad config" >&2; exit 3`,
		notReady("not yet"), 5*time.Second)
	assert.Equal(t, 1, attempts)
	assert.Contains(t, rec.fatal, "bad config")
	assert.Contains(t, rec.fatal, "exit status 3")
}

func TestLaunchKillsAServerThatNeverGetsReady(t *testing.T) {
	rec, s, _ := launchWith(t, `exec sleep 60`, notReady("still loading"), 300*time.Millisecond)
	assert.Contains(t, rec.fatal, "not ready after 300ms: still loading")
	assert.False(t, s.Running(), "the server is killed, not left behind")
}

func TestStopSignalsOnlyItsOwnProcess(t *testing.T) {
	// The script ignores SIGTERM, so Stop must fall back to SIGKILL and say so.
	rec, s, _ := launchWith(t, `trap '' TERM; echo ready; while :; do sleep 0.05; done`, saidReady, 5*time.Second)
	require.Empty(t, rec.fatal)
	require.True(t, s.Running())
	pid := s.PID()
	err := s.proc.stop(syscall.SIGTERM, 300*time.Millisecond)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ignored terminated")
	assert.False(t, s.Running())
	assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "pid %d must be gone", pid)

	// Start brings it back under a new PID; the output file keeps both runs.
	s.Start()
	require.Empty(t, rec.fatal)
	assert.NotEqual(t, pid, s.PID())
	s.Kill()
	assert.Contains(t, s.proc.tail(), "exited: signal: killed")
}
