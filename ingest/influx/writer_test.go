package influx

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chargeguard/chargeguard/ingest/spool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// dropConn makes the fake close the connection without an answer: a network
// error for the client.
const dropConn = -1

// answer is how the fake answers one write request.
type answer struct {
	status int      // 204 stores every line; dropConn; or an error status
	msg    string   // the error, sent as InfluxDB 1.8 does
	store  []string // lines stored despite the error (a 1.8 partial write)
}

// fakeInflux serves /api/v2/write and /ping the way InfluxDB 1.8 does.
type fakeInflux struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	stored   map[string]int // line -> times stored
	requests int
	auth     []string // Authorization headers seen
	// answer decides the answer to request number n (from 1); nil accepts.
	answer func(n int, lines []string) answer
}

func newFake(t *testing.T, decide func(n int, lines []string) answer) *fakeInflux {
	f := &fakeInflux{t: t, stored: map[string]int{}, answer: decide}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeInflux) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ping" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.URL.Path != "/api/v2/write" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	if q.Get("precision") != "ns" || q.Get("bucket") != "chargeguard/autogen" {
		f.t.Errorf("write with query %q", r.URL.RawQuery)
	}
	body, err := io.ReadAll(r.Body)
	require.NoError(f.t, err)
	var lines []string
	for _, l := range strings.Split(string(body), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	f.mu.Lock()
	f.requests++
	n := f.requests
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	decide := f.answer
	f.mu.Unlock()
	a := answer{status: http.StatusNoContent}
	if decide != nil {
		a = decide(n, lines)
	}
	if a.status == dropConn {
		conn, _, err := w.(http.Hijacker).Hijack()
		require.NoError(f.t, err)
		conn.Close()
		return
	}
	f.mu.Lock()
	store := a.store
	if a.status == http.StatusNoContent {
		store = lines
	}
	for _, l := range store {
		f.stored[l]++
	}
	f.mu.Unlock()
	if a.status == http.StatusNoContent {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Influxdb-Error", a.msg)
	w.WriteHeader(a.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": a.msg})
}

func (f *fakeInflux) storedLines() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.stored))
	for k, v := range f.stored {
		out[k] = v
	}
	return out
}

// poisoned answers like InfluxDB 1.8 to lines that conflict with stored
// data: 400 "partial write", with every other line of the request stored.
func poisoned(_ int, lines []string) answer {
	var good []string
	dropped := 0
	for _, l := range lines {
		if strings.Contains(l, "POISON") {
			dropped++
		} else {
			good = append(good, l)
		}
	}
	if dropped == 0 {
		return answer{status: http.StatusNoContent}
	}
	return answer{status: http.StatusBadRequest, store: good,
		msg: fmt.Sprintf("partial write: field type conflict: input field \"v\" on measurement \"m\" is type string, already exists as type float dropped=%d", dropped)}
}

func line(i, j int) string {
	return fmt.Sprintf("port,site=s1,pile=p%d,port=%d a=1.5,temp_c=%d %d", i, j, 30+i%40, 1751371200000000000+int64(i))
}

// fill appends n records of per lines each; line(i, j) is record i's line j.
func fill(t testing.TB, sp *spool.Spool, from, n, per int, received time.Time) {
	t.Helper()
	var recs [][]byte
	for i := from; i < from+n; i++ {
		var b bytes.Buffer
		for j := 0; j < per; j++ {
			b.WriteString(line(i, j))
			b.WriteByte('\n')
		}
		recs = append(recs, spool.EncodeRecord(nil, received, b.Bytes()))
	}
	require.NoError(t, sp.Append(recs))
}

func openSpool(t testing.TB) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(spool.Options{Dir: t.TempDir(), NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sp.Close()) })
	return sp
}

// running starts w.Run and returns a function that stops it and returns its
// error.
func running(t testing.TB, w *Writer) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func testOptions(url string) Options {
	return Options{
		URL:        url,
		Bucket:     "chargeguard/autogen",
		MinBackoff: time.Millisecond,
		MaxBackoff: 20 * time.Millisecond,
		Timeout:    5 * time.Second,
	}
}

func drained(sp *spool.Spool) bool {
	n, _ := sp.Depth()
	return n == 0
}

func histCount(t *testing.T, h prometheus.Histogram) uint64 {
	var m dto.Metric
	require.NoError(t, h.Write(&m))
	return m.GetHistogram().GetSampleCount()
}

func TestOutageThenRecoveryLosesNothing(t *testing.T) {
	var mu sync.Mutex
	healed := false
	f := newFake(t, func(n int, _ []string) answer {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case healed:
			return answer{status: http.StatusNoContent}
		case n%3 == 0:
			return answer{status: dropConn}
		case n%3 == 1:
			return answer{status: http.StatusServiceUnavailable, msg: "service unavailable"}
		default:
			return answer{status: http.StatusTooManyRequests, msg: "too many requests"}
		}
	})
	sp := openSpool(t)
	reg := prometheus.NewPedanticRegistry()
	o := testOptions(f.srv.URL)
	o.Registerer = reg
	o.BatchRecords = 100
	w, err := New(o, sp)
	require.NoError(t, err)
	fill(t, sp, 0, 250, 3, time.Now())
	stop := running(t, w)

	require.Eventually(t, func() bool {
		return testutil.ToFloat64(w.m.failures.WithLabelValues("network")) >= 2 &&
			testutil.ToFloat64(w.m.failures.WithLabelValues("503")) >= 2 &&
			testutil.ToFloat64(w.m.failures.WithLabelValues("429")) >= 2
	}, 10*time.Second, time.Millisecond)
	fill(t, sp, 250, 50, 3, time.Now()) // messages keep coming during the outage
	require.Equal(t, uint64(1), sp.FirstIndex(), "nothing is trimmed during the outage")
	require.Equal(t, 0.0, testutil.ToFloat64(w.m.up))
	require.Empty(t, f.storedLines())

	mu.Lock()
	healed = true
	mu.Unlock()
	require.Eventually(t, func() bool { return drained(sp) }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())

	stored := f.storedLines()
	require.Len(t, stored, 300*3)
	for i := 0; i < 300; i++ {
		for j := 0; j < 3; j++ {
			require.Equal(t, 1, stored[line(i, j)], "line %d/%d", i, j)
		}
	}
	require.Equal(t, 900.0, testutil.ToFloat64(w.m.written))
	require.Equal(t, 1.0, testutil.ToFloat64(w.m.up))
	require.Equal(t, uint64(300), histCount(t, w.m.lag))
	require.Equal(t, 0.0, testutil.ToFloat64(w.m.deadLettered))
}

func TestPoisonedLineIsDeadLettered(t *testing.T) {
	wholeBatch := func(n int, lines []string) answer {
		// 1.8 refuses a whole request whose lines conflict with each other.
		a := poisoned(n, lines)
		a.store = nil
		return a
	}
	for name, decide := range map[string]func(int, []string) answer{
		"partial write": poisoned,
		"whole request": wholeBatch,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFake(t, decide)
			sp := openSpool(t)
			o := testOptions(f.srv.URL)
			o.DeadLetterPath = filepath.Join(t.TempDir(), "dead.lp")
			o.Registerer = prometheus.NewPedanticRegistry()
			w, err := New(o, sp)
			require.NoError(t, err)

			// 1000 records of one line; record 617 is poisoned.
			var recs [][]byte
			for i := 0; i < 1000; i++ {
				l := line(i, 0)
				if i == 617 {
					l = `m,site=s1 v="POISON" 1`
				}
				recs = append(recs, spool.EncodeRecord(nil, time.Now(), []byte(l+"\n")))
			}
			require.NoError(t, sp.Append(recs))
			stop := running(t, w)
			require.Eventually(t, func() bool { return drained(sp) }, 10*time.Second, time.Millisecond)
			require.NoError(t, stop())

			stored := f.storedLines()
			for i := 0; i < 1000; i++ {
				if i != 617 {
					require.GreaterOrEqual(t, stored[line(i, 0)], 1, "line %d", i)
				}
			}
			require.Len(t, stored, 999)
			require.Equal(t, 999.0, testutil.ToFloat64(w.m.written), "each good line is counted once")
			require.Equal(t, 1.0, testutil.ToFloat64(w.m.deadLettered))
			require.Equal(t, 1.0, testutil.ToFloat64(w.m.batches), "one spool batch")
			require.Equal(t, uint64(1000), histCount(t, w.m.lag))
			f.mu.Lock()
			requests := f.requests
			f.mu.Unlock()
			require.LessOrEqual(t, requests, 2*11+1, "bisection, not one request per line")

			dead, err := os.ReadFile(o.DeadLetterPath)
			require.NoError(t, err)
			require.Contains(t, string(dead), "field type conflict")
			comments := 0
			for _, l := range strings.Split(string(dead), "\n") {
				if strings.HasPrefix(l, "#") {
					comments++
				}
			}
			require.Equal(t, 1, comments, "one dead letter")
			require.True(t, strings.HasSuffix(string(dead), "code=400 error="+fmt.Sprintf("%q", decide(0, []string{`POISON`}).msg)+"\n"+`m,site=s1 v="POISON" 1`+"\n"), "%s", dead)
		})
	}
}

func TestBadLineInsideAMultiLineRecord(t *testing.T) {
	f := newFake(t, poisoned)
	sp := openSpool(t)
	o := testOptions(f.srv.URL)
	o.Registerer = prometheus.NewPedanticRegistry()
	w, err := New(o, sp)
	require.NoError(t, err)
	fill(t, sp, 0, 10, 11, time.Now())
	var b bytes.Buffer
	for j := 0; j < 11; j++ {
		if j == 4 {
			b.WriteString("m v=\"POISON\" 7\n")
			continue
		}
		b.WriteString(line(10, j) + "\n")
	}
	require.NoError(t, sp.Append([][]byte{spool.EncodeRecord(nil, time.Now(), b.Bytes())}))
	fill(t, sp, 11, 10, 11, time.Now())
	stop := running(t, w)
	require.Eventually(t, func() bool { return drained(sp) }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())

	stored := f.storedLines()
	require.Len(t, stored, 21*11-1)
	for j := 0; j < 11; j++ {
		if j != 4 {
			require.Contains(t, stored, line(10, j), "the good lines of the bad record")
		}
	}
	require.Equal(t, float64(21*11-1), testutil.ToFloat64(w.m.written))
	require.Equal(t, 1.0, testutil.ToFloat64(w.m.deadLettered))
}

func TestTooLargeIsSplit(t *testing.T) {
	const limit = 4000
	f := newFake(t, func(_ int, lines []string) answer {
		if len(strings.Join(lines, "\n")) > limit {
			return answer{status: http.StatusRequestEntityTooLarge, msg: "request entity too large"}
		}
		return answer{status: http.StatusNoContent}
	})
	sp := openSpool(t)
	w, err := New(testOptions(f.srv.URL), sp)
	require.NoError(t, err)
	fill(t, sp, 0, 100, 5, time.Now())
	stop := running(t, w)
	require.Eventually(t, func() bool { return drained(sp) }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
	require.Len(t, f.storedLines(), 500)
	require.Equal(t, 0.0, testutil.ToFloat64(w.m.deadLettered))
}

func TestUnauthorizedIsRetriedNotDropped(t *testing.T) {
	for _, code := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			var mu sync.Mutex
			fixed := false
			f := newFake(t, func(int, []string) answer {
				mu.Lock()
				defer mu.Unlock()
				if fixed {
					return answer{status: http.StatusNoContent}
				}
				return answer{status: code, msg: "authorization failed"}
			})
			sp := openSpool(t)
			var logs syncBuffer
			o := testOptions(f.srv.URL)
			o.Logger = zerolog.New(&logs)
			w, err := New(o, sp)
			require.NoError(t, err)
			fill(t, sp, 0, 20, 2, time.Now())
			stop := running(t, w)

			label := fmt.Sprint(code)
			require.Eventually(t, func() bool {
				return testutil.ToFloat64(w.m.failures.WithLabelValues(label)) >= 20
			}, 10*time.Second, time.Millisecond)
			n, _ := sp.Depth()
			require.Equal(t, int64(20), n, "nothing dropped or trimmed")
			mu.Lock()
			fixed = true // the operator fixed the token or created the database
			mu.Unlock()
			require.Eventually(t, func() bool { return drained(sp) }, 10*time.Second, time.Millisecond)
			require.NoError(t, stop())
			require.Len(t, f.storedLines(), 40)
			require.Equal(t, 0.0, testutil.ToFloat64(w.m.deadLettered))

			// Loud, but once per 30 s rather than once per attempt.
			var errorLines int
			for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var e struct {
					Level, Code string
					RetryIn     any `json:"retry_in"`
				}
				require.NoError(t, json.Unmarshal([]byte(l), &e), l)
				if e.Code == label {
					require.Equal(t, "error", e.Level, l)
					// A duration says its unit ("20ms"), not a bare 20.065.
					s, ok := e.RetryIn.(string)
					require.True(t, ok, "retry_in is not a duration with its unit: %s", l)
					_, err := time.ParseDuration(s)
					require.NoError(t, err, l)
					errorLines++
				}
			}
			require.Equal(t, 1, errorLines, logs.String())
			require.Contains(t, logs.String(), "InfluxDB accepts writes again")
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the writer's and the test's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSecretsNeverReachLogsOrErrors(t *testing.T) {
	const user, pass = "chargeguard", "Sup3r-s3cret_pw"
	const token = user + ":" + pass
	// A hostile or buggy proxy echoes the Authorization header in its
	// errors; the writer must still not repeat it.
	echo := func(r int, lines []string, auth string) answer {
		switch r {
		case 1:
			return answer{status: http.StatusUnauthorized, msg: "bad credentials: " + auth}
		case 2:
			return answer{status: dropConn}
		case 3:
			return answer{status: http.StatusInternalServerError, msg: "upstream said " + auth}
		}
		a := poisoned(r, lines)
		if a.status != http.StatusNoContent {
			a.msg += " (request had " + auth + ")"
		}
		return a
	}
	for _, mode := range []string{"token", "url"} {
		t.Run(mode, func(t *testing.T) {
			var f *fakeInflux
			f = newFake(t, func(n int, lines []string) answer {
				f.mu.Lock()
				auth := f.auth[len(f.auth)-1]
				f.mu.Unlock()
				return echo(n, lines, auth)
			})
			sp := openSpool(t)
			var logs syncBuffer
			o := testOptions(f.srv.URL)
			o.Logger = zerolog.New(&logs).Level(zerolog.DebugLevel)
			o.DeadLetterPath = filepath.Join(t.TempDir(), "dead.lp")
			if mode == "token" {
				o.Token = token
			} else {
				o.URL = strings.Replace(f.srv.URL, "http://", "http://"+token+"@", 1)
			}
			w, err := New(o, sp)
			require.NoError(t, err)
			fill(t, sp, 0, 5, 2, time.Now())
			require.NoError(t, sp.Append([][]byte{spool.EncodeRecord(nil, time.Now(), []byte(`m v="POISON" 1`))}))
			stop := running(t, w)
			require.Eventually(t, func() bool { return drained(sp) }, 10*time.Second, time.Millisecond)
			require.NoError(t, stop())
			require.Len(t, f.storedLines(), 10)

			var texts []string
			texts = append(texts, logs.String())
			dead, err := os.ReadFile(o.DeadLetterPath)
			require.NoError(t, err)
			texts = append(texts, string(dead))
			f.srv.Close()
			err = w.Ping(context.Background())
			require.Error(t, err)
			texts = append(texts, err.Error(), fmt.Sprintf("%+v", err))
			// Configuration errors never quote the URL.
			for _, bad := range []Options{
				{URL: "http://" + token + "@[::1", Bucket: "b"},
				{URL: "ftp://" + token + "@host", Bucket: "b"},
				{URL: "http://" + token + "@host/?x=1", Bucket: "b"},
				{URL: "http://" + token + "@host", Token: token, Bucket: "b"},
				{URL: "http://" + token + "@host"},
			} {
				_, err := New(bad, sp)
				require.Error(t, err)
				texts = append(texts, err.Error())
			}

			require.Contains(t, logs.String(), "<redacted>", "the echoed secret was there to be redacted")
			for _, text := range texts {
				require.NotContains(t, text, pass)
			}
			f.mu.Lock()
			require.Equal(t, "Token "+token, f.auth[0], "the token is sent to InfluxDB")
			f.mu.Unlock()
		})
	}
}

func TestRunStopsOnCancelWithoutTrimming(t *testing.T) {
	f := newFake(t, func(int, []string) answer {
		return answer{status: http.StatusInternalServerError, msg: "boom"}
	})
	sp := openSpool(t)
	w, err := New(testOptions(f.srv.URL), sp)
	require.NoError(t, err)
	fill(t, sp, 0, 7, 1, time.Now())
	stop := running(t, w)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(w.m.failures.WithLabelValues("500")) >= 3
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
	require.Equal(t, uint64(1), sp.FirstIndex())
	n, _ := sp.Depth()
	require.Equal(t, int64(7), n)
}

func TestMalformedRecordIsDeadLettered(t *testing.T) {
	f := newFake(t, nil)
	sp := openSpool(t)
	o := testOptions(f.srv.URL)
	o.DeadLetterPath = filepath.Join(t.TempDir(), "dead.lp")
	w, err := New(o, sp)
	require.NoError(t, err)
	fill(t, sp, 0, 2, 1, time.Now())
	require.NoError(t, sp.Append([][]byte{{1, 2, 3}}))
	fill(t, sp, 2, 2, 1, time.Now())
	stop := running(t, w)
	require.Eventually(t, func() bool { return drained(sp) }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
	require.Len(t, f.storedLines(), 4)
	require.Equal(t, 1.0, testutil.ToFloat64(w.m.deadLettered))
	dead, err := os.ReadFile(o.DeadLetterPath)
	require.NoError(t, err)
	require.Contains(t, string(dead), "malformed spool record")
}

func TestLagIsMeasuredFromTheRecordHeader(t *testing.T) {
	f := newFake(t, nil)
	sp := openSpool(t)
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	o := testOptions(f.srv.URL)
	o.Now = func() time.Time { return now }
	w, err := New(o, sp)
	require.NoError(t, err)
	fill(t, sp, 0, 3, 1, now.Add(-90*time.Second)) // received 90 s before it was stored
	stop := running(t, w)
	require.Eventually(t, func() bool { return drained(sp) }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
	var m dto.Metric
	require.NoError(t, w.m.lag.Write(&m))
	require.Equal(t, uint64(3), m.GetHistogram().GetSampleCount())
	require.InDelta(t, 270.0, m.GetHistogram().GetSampleSum(), 1e-9)
}

func TestPing(t *testing.T) {
	f := newFake(t, nil)
	sp := openSpool(t)
	w, err := New(testOptions(f.srv.URL), sp)
	require.NoError(t, err)
	require.NoError(t, w.Ping(context.Background()))
	f.srv.Close()
	require.Error(t, w.Ping(context.Background()))
}

func TestNewValidatesOptions(t *testing.T) {
	sp := openSpool(t)
	ok := testOptions("http://127.0.0.1:8086")
	for _, c := range []struct {
		field string
		edit  func(o *Options)
	}{
		{"Options.URL", func(o *Options) { o.URL = "" }},
		{"Options.URL", func(o *Options) { o.URL = "127.0.0.1:8086" }},
		{"Options.URL", func(o *Options) { o.URL = "http://127.0.0.1:8086/?db=x" }},
		{"Options.Token", func(o *Options) { o.URL = "http://u:p@127.0.0.1:8086"; o.Token = "u:p" }},
		{"Options.Bucket", func(o *Options) { o.Bucket = "" }},
		{"Options.Bucket", func(o *Options) { o.Bucket = "/autogen" }},
		{"Options.BatchBytes", func(o *Options) { o.BatchBytes = -1 }},
		{"Options.BatchRecords", func(o *Options) { o.BatchRecords = -1 }},
		{"Options.Timeout", func(o *Options) { o.Timeout = -time.Second }},
		{"Options.MinBackoff", func(o *Options) { o.MinBackoff, o.MaxBackoff = time.Minute, time.Second }},
	} {
		o := ok
		c.edit(&o)
		_, err := New(o, sp)
		require.ErrorContains(t, err, c.field)
	}
	_, err := New(ok, nil)
	require.ErrorContains(t, err, "spool")

	w, err := New(Options{URL: "http://127.0.0.1:8086", Bucket: "db/rp"}, sp)
	require.NoError(t, err)
	require.Equal(t, DefaultBatchBytes, w.o.BatchBytes)
	require.Equal(t, DefaultBatchRecords, w.o.BatchRecords)
	require.Equal(t, DefaultMinBackoff, w.o.MinBackoff)
	require.Equal(t, DefaultMaxBackoff, w.o.MaxBackoff)
	require.Equal(t, DefaultTimeout, w.o.Timeout)
}

func TestMetricNames(t *testing.T) {
	f := newFake(t, func(n int, _ []string) answer {
		if n == 1 {
			return answer{status: http.StatusServiceUnavailable, msg: "starting"}
		}
		return answer{status: http.StatusNoContent}
	})
	sp := openSpool(t)
	reg := prometheus.NewPedanticRegistry()
	o := testOptions(f.srv.URL)
	o.Registerer = reg
	w, err := New(o, sp)
	require.NoError(t, err)
	fill(t, sp, 0, 1, 1, time.Now())
	stop := running(t, w)
	require.Eventually(t, func() bool { return drained(sp) }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop())
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	require.ElementsMatch(t, []string{
		"chargeguard_influx_write_duration_seconds", "chargeguard_influx_write_failures_total",
		"chargeguard_influx_points_written_total", "chargeguard_influx_points_dead_lettered_total",
		"chargeguard_influx_batches_total", "chargeguard_ingest_lag_seconds", "chargeguard_influx_up",
		"chargeguard_influx_dead_letter_bytes", "chargeguard_influx_dead_letter_max_bytes",
		"chargeguard_influx_dead_letter_dropped_total",
	}, names)
}

// With two requests in flight, a later batch stored while an earlier one
// still fails must not trim the earlier one's records: the spool is trimmed
// in order. Stopped at that moment, the writer leaves both batches in the
// spool (the later one is written again at the next start: at least once),
// and a restarted writer stores everything.
func TestConcurrentBatchesTrimInOrder(t *testing.T) {
	var mu sync.Mutex
	healed := false
	f := newFake(t, func(_ int, lines []string) answer {
		mu.Lock()
		defer mu.Unlock()
		// Record 0's line fails until healed: the first batch keeps
		// retrying while the second is stored.
		if !healed && strings.Contains(lines[0], "pile=p0,") {
			return answer{status: http.StatusServiceUnavailable, msg: "busy"}
		}
		return answer{status: http.StatusNoContent}
	})
	sp := openSpool(t)
	o := testOptions(f.srv.URL)
	o.BatchRecords, o.Concurrency = 5, 2
	w, err := New(o, sp)
	require.NoError(t, err)
	fill(t, sp, 0, 10, 1, time.Now()) // two batches of 5 records
	stop := running(t, w)
	require.Eventually(t, func() bool {
		return f.storedLines()[line(9, 0)] == 1
	}, 10*time.Second, time.Millisecond, "the second batch is stored while the first is retried")
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(w.m.failures.WithLabelValues("503")) >= 3
	}, 10*time.Second, time.Millisecond)
	require.Equal(t, uint64(1), sp.FirstIndex(), "nothing trimmed past the failing first batch")
	require.NoError(t, stop())
	n, _ := sp.Depth()
	require.Equal(t, int64(10), n)

	mu.Lock()
	healed = true
	mu.Unlock()
	w2, err := New(o, sp)
	require.NoError(t, err)
	stop2 := running(t, w2)
	require.Eventually(t, func() bool { return drained(sp) }, 10*time.Second, time.Millisecond)
	require.NoError(t, stop2())
	stored := f.storedLines()
	for i := 0; i < 10; i++ {
		require.GreaterOrEqual(t, stored[line(i, 0)], 1, "record %d stored", i)
	}
}

// Concurrency 1 is the old writer: one request at a time.
func TestConcurrencyOneIsSequential(t *testing.T) {
	var inflight, most atomic.Int32
	f := newFake(t, func(int, []string) answer {
		n := inflight.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		inflight.Add(-1)
		return answer{status: http.StatusNoContent}
	})
	// OneAtATime: while the safety engine's live session is behind, three
	// allowed requests go one at a time.
	oneAtATime := func() bool { return true }
	for _, c := range []int{1, 3, -3} {
		most.Store(0)
		sp := openSpool(t)
		o := testOptions(f.srv.URL)
		o.BatchRecords, o.Concurrency = 2, c
		if c < 0 {
			o.Concurrency, o.OneAtATime = -c, oneAtATime
		}
		w, err := New(o, sp)
		require.NoError(t, err)
		fill(t, sp, 0, 40, 1, time.Now())
		stop := running(t, w)
		require.Eventually(t, func() bool { return drained(sp) }, 10*time.Second, time.Millisecond)
		require.NoError(t, stop())
		if c <= 1 {
			require.Equal(t, int32(1), most.Load(), "concurrency %d", c)
		} else {
			require.Greater(t, most.Load(), int32(1), "concurrency %d: requests overlap", c)
			require.LessOrEqual(t, most.Load(), int32(c))
		}
	}
}
