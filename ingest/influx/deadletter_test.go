package influx

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/ingest/spool"
)

// deadletter.lp lives in the data directory with the spool and the safety
// state: it must not grow without bound. Once full, refused points are
// counted, not written; writing resumes when an operator moves the file.
func TestDeadLetterFileIsBounded(t *testing.T) {
	f := newFake(t, poisoned)
	sp := openSpool(t)
	o := testOptions(f.srv.URL)
	o.DeadLetterPath = filepath.Join(t.TempDir(), "dead.lp")
	o.DeadLetterMaxBytes = 4096
	o.Registerer = prometheus.NewPedanticRegistry()
	w, err := New(o, sp)
	require.NoError(t, err)

	poison := func(n int) {
		var recs [][]byte
		for i := range n {
			recs = append(recs, spool.EncodeRecord(nil, time.Now(), []byte(`m,site=s1 v="POISON" `+line(i, 0)[:10]+"\n")))
		}
		require.NoError(t, sp.Append(recs))
	}
	poison(200) // about 200 × 250 bytes of dead letters: far over 4 KiB
	stop := running(t, w)
	require.Eventually(t, func() bool { return drained(sp) }, 10*time.Second, time.Millisecond)

	fi, err := os.Stat(o.DeadLetterPath)
	require.NoError(t, err)
	require.LessOrEqual(t, fi.Size(), int64(4096), "the dead-letter file stays under its bound")
	kept, dropped := testutil.ToFloat64(w.m.deadLettered), testutil.ToFloat64(w.m.deadLetterDropped)
	require.Positive(t, kept)
	require.Positive(t, dropped)
	require.Equal(t, 200.0, kept+dropped, "every refused point is either kept or counted as dropped")
	require.Equal(t, float64(fi.Size()), testutil.ToFloat64(w.m.deadLetterBytes))
	require.Equal(t, 4096.0, testutil.ToFloat64(w.m.deadLetterMax))

	// The operator moves the file away: writing resumes in a new one.
	require.NoError(t, os.Rename(o.DeadLetterPath, o.DeadLetterPath+".1"))
	poison(1)
	require.Eventually(t, func() bool { return drained(sp) }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
	fi, err = os.Stat(o.DeadLetterPath)
	require.NoError(t, err)
	require.Positive(t, fi.Size())
	require.Equal(t, kept+1, testutil.ToFloat64(w.m.deadLettered))
}
