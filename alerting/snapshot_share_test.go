package alerting

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Invariant: a State shares no memory with the engine. The service encodes
// it on the persister's goroutine while the engine goes on (alerts,
// resends, failures, more latches): what is encoded must be the state at
// the snapshot, whatever the engine did since.
func TestSnapshotSharesNothingWithTheEngine(t *testing.T) {
	e := newTestEngine(t)
	f := newFleet(200, 10)
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	f.births(e, now)
	f.round(e, now)
	trip := func(from, to int, at time.Time) {
		for i := from; i < to; i++ {
			m := f.msgs[i]
			*m.Telemetry.Ports[0].TempC = 90
			*m.Telemetry.Ports[1].TempC = 90
			m.Telemetry.Seq++
			m.Telemetry.TS = at.UnixMilli()
			e.Observe(at, m)
		}
	}
	trip(0, 50, now)
	st := e.Snapshot()
	require.NotEmpty(t, st.Piles)
	before, err := json.Marshal(st)
	require.NoError(t, err)

	// The engine goes on: commands resent and failed, more ports tripped.
	for i := 1; i <= 20; i++ {
		e.Tick(now.Add(time.Duration(i) * 10 * time.Second))
	}
	trip(25, 100, now.Add(4*time.Minute))
	require.False(t, bytes.Equal(before, mustJSON(t, e.Snapshot())), "the engine's state did not change: the test shows nothing")

	after, err := json.Marshal(st)
	require.NoError(t, err)
	require.True(t, bytes.Equal(before, after), "the snapshot changed with the engine (%d bytes encoded at the snapshot, %d now)", len(before), len(after))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
