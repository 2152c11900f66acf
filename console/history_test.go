package console

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// chartPoints returns the number of points of the chart's temperature line.
func chartPoints(t *testing.T, body string) int {
	t.Helper()
	m := regexp.MustCompile(`<polyline class="temp" points="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	return len(strings.Fields(m[1]))
}

// After a restart the port chart shows the hour before it from the stored
// readings, below what the console saw itself; the stored readings are
// read once per port, not on every page or live update.
func TestPortChartReadsTheHourBeforeTheStart(t *testing.T) {
	var calls atomic.Int32
	var asked struct {
		sync.Mutex
		id       string
		step     time.Duration
		from, to time.Time
	}
	h := newHarnessWith(t, false, func(o *Options) {
		o.History = func(_ context.Context, site, pile string, port int, from, to time.Time, step time.Duration) ([]HistorySample, error) {
			calls.Add(1)
			asked.Lock()
			asked.id, asked.step, asked.from, asked.to = portID(site, pile, port), step, from, to
			asked.Unlock()
			return []HistorySample{
				{At: to.Add(-40 * time.Minute), TempC: 95, A: 3},
				{At: to.Add(-20 * time.Minute), TempC: 50, A: math.NaN()},
				{At: to.Add(-70 * time.Minute), TempC: 40, A: 1}, // outside the hour: not drawn
			}, nil
		}
	})
	cl := h.client(t)
	h.signIn(t, cl, "alice", "operator-token-0123456789")
	_, body := get(t, cl, h.srv.URL+"/ports/s1/p1/3")
	require.GreaterOrEqual(t, chartPoints(t, body), 3, "two stored points and the console's own")
	require.Contains(t, body, ">120°<", "the temperature scale holds the stored 95 °C")
	require.NotContains(t, body, `id="chart-note"`)
	asked.Lock()
	require.Equal(t, "s1/p1/3", asked.id)
	require.Equal(t, time.Second, asked.step, "one step of the console's history")
	require.True(t, asked.to.Equal(h.c.started), "reads up to the start")
	require.True(t, asked.from.Equal(h.c.started.Add(-time.Hour)))
	asked.Unlock()
	for range 3 {
		_, body = get(t, cl, h.srv.URL+"/ports/s1/p1/3")
		require.Contains(t, body, ">120°<")
	}
	require.Equal(t, int32(1), calls.Load(), "one read per port")
}

// With InfluxDB down the port page still opens, with the chart of what
// the console saw and a note saying what is missing; the failed read is
// not repeated on every page.
func TestPortChartWithoutStoredReadings(t *testing.T) {
	var calls atomic.Int32
	h := newHarnessWith(t, false, func(o *Options) {
		o.History = func(ctx context.Context, _, _ string, _ int, _, _ time.Time, _ time.Duration) ([]HistorySample, error) {
			calls.Add(1)
			return nil, errors.New("dial tcp 127.0.0.1:8086: connection refused")
		}
	})
	cl := h.client(t)
	h.signIn(t, cl, "alice", "operator-token-0123456789")
	for _, lang := range []string{"en", "zh-CN"} {
		req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/ports/s1/p1/3", nil)
		req.Header.Set("Accept-Language", lang)
		resp, err := cl.Do(req)
		require.NoError(t, err)
		b := new(strings.Builder)
		_, _ = io.Copy(b, resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		body := b.String()
		require.Contains(t, body, `id="chart-note"`)
		require.Contains(t, body, `<circle class="temp"`, "the console's own reading is drawn")
		if lang == "zh-CN" {
			require.Contains(t, body, "InfluxDB 无响应")
		} else {
			require.Contains(t, body, "InfluxDB did not answer")
		}
	}
	require.Equal(t, int32(1), calls.Load(), "a failed read is retried after a while, not on every page")
}

// A console started more than an hour ago reads nothing stored.
func TestStoredReadsNothingAnHourAfterTheStart(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	called := false
	st := newStored(zerolog.Nop(), func(context.Context, string, string, int, time.Time, time.Time, time.Duration) ([]HistorySample, error) {
		called = true
		return nil, nil
	}, t0, 30*time.Second, time.Second)
	ss, err := st.samples(context.Background(), "s", "p", 1, t0.Add(61*time.Minute))
	require.NoError(t, err)
	require.Empty(t, ss)
	require.False(t, called)

	// Memory wins where both have readings.
	mem := []sample{{at: 200, temp: 1}, {at: 230, temp: 2}}
	old := []sample{{at: 100, temp: 9}, {at: 200, temp: 9}, {at: 230, temp: 9}}
	require.Equal(t, []sample{{at: 100, temp: 9}, {at: 200, temp: 1}, {at: 230, temp: 2}}, mergeSamples(old, mem))
	require.Equal(t, old, mergeSamples(old, nil))
}

// A browser that hangs up while the stored readings are read does not cut
// the read short: its result serves the next pages of the port.
func TestStoredReadOutlivesTheRequest(t *testing.T) {
	t0 := time.Now()
	st := newStored(zerolog.Nop(), func(ctx context.Context, _, _ string, _ int, _, to time.Time, _ time.Duration) ([]HistorySample, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return []HistorySample{{At: to.Add(-time.Minute), TempC: 50, A: 2}}, nil
	}, t0, 30*time.Second, time.Second)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	ss, err := st.samples(gone, "s", "p", 1, t0)
	require.NoError(t, err)
	require.Len(t, ss, 1)
	ss, err = st.samples(context.Background(), "s", "p", 1, t0.Add(time.Second))
	require.NoError(t, err)
	require.Len(t, ss, 1)
}
