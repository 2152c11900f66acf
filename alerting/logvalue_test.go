package alerting

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/telemetry"
)

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// An alert's value is logged as a reading would be written, not with the
// float noise of the arithmetic behind it (30.099999999999998).
func TestAlertValueLoggedWithoutFloatNoise(t *testing.T) {
	var logs logBuffer
	k := &sink{}
	s, stop := runService(t, ServiceOptions{Publisher: k, Notifier: k, Recorder: k, Logger: zerolog.New(&logs)})
	defer stop()
	now := time.Now()
	m := telemetryMsg(1, now, 55.3)
	m.Telemetry.AmbientC = telemetry.F(25.2)
	s.Observe(m)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `"alertname":"hot_contact"`) },
		5*time.Second, time.Millisecond)
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !strings.Contains(l, `"alertname":"hot_contact"`) {
			continue
		}
		var e struct {
			Value json.Number `json:"value"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &e), l)
		require.Equal(t, "30.1", e.Value.String(), l)
	}
}
