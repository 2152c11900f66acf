package influx

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/internal/testenv"
)

// The reader reads back port points as the ingest stores them
// (docs/schema.md): the highest temp_c and a of each step, of that one
// port, oldest first, whether or not a point has seq (issue 12 drops it)
// and with state a string.
func TestReaderReadsPortPoints(t *testing.T) {
	db := testenv.Influx(t)
	t0 := time.Now().Add(-50 * time.Minute).Truncate(time.Minute)
	ns := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	db.WriteLines(t, strings.Join([]string{
		fmt.Sprintf(`port,site=s1,pile=p1,port=3 state="charging",a=2.5,temp_c=41.5,seq=1i %d`, ns(0)),
		fmt.Sprintf(`port,site=s1,pile=p1,port=3 state="charging",a=3.5,temp_c=40 %d`, ns(10*time.Second)),
		fmt.Sprintf(`port,site=s1,pile=p1,port=3 state="idle",temp_c=35 %d`, ns(5*time.Minute)),
		fmt.Sprintf(`port,site=s1,pile=p1,port=3 state="charging",a=3,temp_c=71.25 %d`, ns(10*time.Minute)),
		// Other ports, piles and sites, and a point outside the span.
		fmt.Sprintf(`port,site=s1,pile=p1,port=4 state="charging",a=9,temp_c=90 %d`, ns(time.Minute)),
		fmt.Sprintf(`port,site=s1,pile=p2,port=3 state="charging",a=9,temp_c=90 %d`, ns(time.Minute)),
		fmt.Sprintf(`port,site=s2,pile=p1,port=3 state="charging",a=9,temp_c=90 %d`, ns(time.Minute)),
		fmt.Sprintf(`port,site=s1,pile=p1,port=3 state="charging",a=9,temp_c=90 %d`, ns(20*time.Minute)),
	}, "\n"))
	r, err := NewReader(ReaderOptions{URL: db.URL, Bucket: db.Bucket()})
	require.NoError(t, err)
	got, err := r.PortReadings(context.Background(), "s1", "p1", 3, t0, t0.Add(15*time.Minute), 30*time.Second)
	require.NoError(t, err)
	require.Len(t, got, 3, "%+v", got)
	require.True(t, got[0].At.Equal(t0), "%v", got[0].At)
	require.Equal(t, 41.5, got[0].TempC, "the highest of the step")
	require.Equal(t, 3.5, got[0].A, "the highest of the step")
	require.True(t, got[1].At.Equal(t0.Add(5*time.Minute)))
	require.Equal(t, 35.0, got[1].TempC)
	require.True(t, math.IsNaN(got[1].A), "no current stored in that step")
	require.Equal(t, 71.25, got[2].TempC)

	// A database or retention policy that does not exist is an error, not
	// an empty chart.
	r, err = NewReader(ReaderOptions{URL: db.URL, Bucket: "nodb/autogen"})
	require.NoError(t, err)
	_, err = r.PortReadings(context.Background(), "s1", "p1", 3, t0, t0.Add(15*time.Minute), 30*time.Second)
	require.ErrorContains(t, err, "nodb")
}

// A reader of a server that hangs or refuses fails within its timeout,
// and its error never holds the token.
func TestReaderFailsFastAndKeepsTheSecret(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "Token reader:s3cret-pass", r.Header.Get("Authorization"))
		<-hang
	}))
	defer srv.Close()
	defer close(hang)
	r, err := NewReader(ReaderOptions{URL: srv.URL, Token: "reader:s3cret-pass", Bucket: "cg/autogen", Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	start := time.Now()
	// Without the timeout this read would hang as long as the server.
	_, err = r.PortReadings(context.Background(), "s1", "p1", 3, start.Add(-time.Hour), start, 30*time.Second)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")

	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"authorization failed for reader:s3cret-pass"}`)
	}))
	defer srv2.Close()
	r, err = NewReader(ReaderOptions{URL: srv2.URL, Token: "reader:s3cret-pass", Bucket: "cg"})
	require.NoError(t, err)
	_, err = r.PortReadings(context.Background(), "s1", "p1", 3, start.Add(-time.Hour), start, 30*time.Second)
	require.ErrorContains(t, err, "401")
	require.NotContains(t, err.Error(), "s3cret")

	_, err = NewReader(ReaderOptions{URL: "http://u:p@h:1", Token: "x", Bucket: "cg"})
	require.Error(t, err)
	_, err = NewReader(ReaderOptions{URL: "http://h:1", Bucket: "/autogen"})
	require.ErrorContains(t, err, "Bucket")
}
