package testenv

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	assert.FileExists(t, filepath.Join(root, "go.mod"))
	assert.FileExists(t, filepath.Join(root, MosquittoConfPath))
	assert.FileExists(t, filepath.Join(root, "internal", "testenv", "doc.go"))
}

func TestFreePortIsBindable(t *testing.T) {
	a, b := FreePort(t), FreePort(t)
	assert.Positive(t, a)
	assert.Positive(t, b)
}

func TestBinaryMissingSaysHowToInstall(t *testing.T) {
	_, err := lookBinary("chargeguard-no-such-server", "chargeguard-no-such-server", "/nonexistent/chargeguard-no-such-server")
	require.Error(t, err)
	assert.True(t, errors.Is(err, errNotInstalled))
	assert.Contains(t, err.Error(), "run `make test`, it installs chargeguard-no-such-server")
	assert.Contains(t, err.Error(), "/nonexistent/chargeguard-no-such-server")
}

func TestBinaryFindsFileAndPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "fake-server")
	require.NoError(t, os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755))
	notExe := filepath.Join(dir, "not-executable")
	require.NoError(t, os.WriteFile(notExe, []byte("data"), 0o644))

	got, err := lookBinary("fake-server", notExe, exe)
	require.NoError(t, err)
	assert.Equal(t, exe, got, "a non-executable candidate must be skipped")

	t.Setenv("PATH", dir)
	got, err = lookBinary("fake-server")
	require.NoError(t, err)
	assert.Equal(t, exe, got)
}

// productionSettings returns the key/value lines of the tuning section of
// deploy/mosquitto/mosquitto.conf (above the first listener).
func productionSettings(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(RepoRoot(t), MosquittoConfPath))
	require.NoError(t, err)
	defer f.Close()
	settings := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if fields[0] == "listener" {
			break
		}
		settings[fields[0]] = append(settings[fields[0]], strings.Join(fields[1:], " "))
	}
	require.NoError(t, sc.Err())
	return settings
}

// TestMosquittoProductionTuning guards the settings without which Mosquitto
// drops QoS 1 messages silently under chargeguard's load.
func TestMosquittoProductionTuning(t *testing.T) {
	s := productionSettings(t)
	num := func(key string) int64 {
		t.Helper()
		require.Len(t, s[key], 1, "%s must be set once in the tuning section", key)
		n, err := strconv.ParseInt(s[key][0], 10, 64)
		require.NoError(t, err, key)
		return n
	}
	inflight := num("max_inflight_messages")
	assert.True(t, inflight == 0 || inflight >= 1000, "max_inflight_messages %d: the default 20 throttles fsync-batched acks", inflight)
	assert.GreaterOrEqual(t, num("max_queued_messages"), int64(1_000_000), "backlog while chargeguard restarts at 10k msg/s")
	queuedBytes := num("max_queued_bytes")
	assert.True(t, queuedBytes == 0 || queuedBytes >= 1<<30, "max_queued_bytes %d is too small for the backlog", queuedBytes)
	assert.Greater(t, num("message_size_limit"), int64(64<<10), "oversized payloads must reach chargeguard to be counted")
	assert.Equal(t, []string{"true"}, s["persistence"])
	assert.Equal(t, []string{"true"}, s["set_tcp_nodelay"])
	assert.Positive(t, num("autosave_interval"))
}

func TestMosquittoConfigTakesTuningNotDeployment(t *testing.T) {
	prod, err := os.ReadFile(filepath.Join(RepoRoot(t), MosquittoConfPath))
	require.NoError(t, err)
	conf := mosquittoConfig(prod, "/tmp/x", 12345, true)
	lines := strings.Split(conf, "\n")

	for key, values := range productionSettings(t) {
		if mosquittoDeploymentKeys[key] {
			continue
		}
		for _, v := range values {
			assert.Contains(t, lines, key+" "+v, "tuning must reach the test broker")
		}
	}
	assert.Contains(t, lines, "listener 12345 127.0.0.1")
	assert.Contains(t, lines, "persistence_location /tmp/x/")
	assert.Contains(t, lines, "allow_anonymous true")
	assert.Contains(t, lines, "user root")
	assert.NotContains(t, conf, "listener 1883")
	assert.NotContains(t, conf, "/var/lib/mosquitto")
	assert.Equal(t, 1, strings.Count(conf, "\nlistener "), "exactly one listener")

	assert.NotContains(t, mosquittoConfig(prod, "/tmp/x", 1, false), "user ")
}
