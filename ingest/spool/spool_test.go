package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/wal"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// mkRec returns record number seq: its receive time is seq nanoseconds, and
// its line protocol is padded to about size bytes.
func mkRec(seq, size int) []byte {
	line := fmt.Sprintf("port,site=s1,pile=p%d,port=1 a=1.5,temp_c=40 %d\n", seq%97, seq)
	var b bytes.Buffer
	b.WriteString(line)
	for b.Len() < size {
		b.WriteString(line)
	}
	return EncodeRecord(nil, time.Unix(0, int64(seq)), b.Bytes())
}

func seqOf(t testing.TB, rec []byte) int {
	t.Helper()
	at, _, err := DecodeRecord(rec)
	require.NoError(t, err)
	return int(at.UnixNano())
}

func openT(t testing.TB, o Options) *Spool {
	t.Helper()
	s, err := Open(o)
	require.NoError(t, err)
	return s
}

// available returns every record now readable from from on, without
// waiting for more.
func available(t testing.TB, s *Spool, from uint64) (first uint64, recs [][]byte) {
	t.Helper()
	first = from
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		f, r, err := s.Next(ctx, from, 0, 0)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return first, recs
		}
		require.NoError(t, err)
		if len(recs) == 0 {
			first = f
		}
		recs = append(recs, r...)
		from = f + uint64(len(r))
	}
}

// recBytes is the size of records from..to-1.
func recBytes(from, to, size int) int64 {
	var n int64
	for i := from; i < to; i++ {
		n += int64(len(mkRec(i, size)))
	}
	return n
}

func appendSeqs(t testing.TB, s *Spool, from, to, size int) {
	t.Helper()
	var batch [][]byte
	for i := from; i < to; i++ {
		batch = append(batch, mkRec(i, size))
	}
	require.NoError(t, s.Append(batch))
}

func seqs(t testing.TB, recs [][]byte) []int {
	out := make([]int, len(recs))
	for i, r := range recs {
		out[i] = seqOf(t, r)
	}
	return out
}

func span(from, to int) []int {
	out := []int{}
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func TestOpenRequiresDir(t *testing.T) {
	_, err := Open(Options{})
	require.ErrorContains(t, err, "Dir")
}

func TestAppendNextTrim(t *testing.T) {
	s := openT(t, Options{Dir: t.TempDir()})
	defer s.Close()
	require.Equal(t, uint64(1), s.FirstIndex())

	appendSeqs(t, s, 0, 3, 100)
	appendSeqs(t, s, 3, 10, 100)
	n, b := s.Depth()
	require.Equal(t, int64(10), n)
	require.Equal(t, recBytes(0, 10, 100), b)

	ctx := context.Background()
	first, recs, err := s.Next(ctx, s.FirstIndex(), 4, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(1), first)
	require.Equal(t, span(0, 4), seqs(t, recs))

	// maxBytes caps the batch, but one record is always returned.
	first, recs, err = s.Next(ctx, 5, 0, 1)
	require.NoError(t, err)
	require.Equal(t, uint64(5), first)
	require.Equal(t, []int{4}, seqs(t, recs))
	_, recs, err = s.Next(ctx, 5, 0, 2*len(recs[0]))
	require.NoError(t, err)
	require.Equal(t, []int{4, 5}, seqs(t, recs))

	require.NoError(t, s.Trim(5))
	require.Equal(t, uint64(5), s.FirstIndex())
	n, _ = s.Depth()
	require.Equal(t, int64(6), n)
	// Reading from before the cursor starts at the cursor.
	first, recs = available(t, s, 1)
	require.Equal(t, uint64(5), first)
	require.Equal(t, span(4, 10), seqs(t, recs))

	require.NoError(t, s.Trim(3), "trimming what is trimmed is a no-op")
	require.Error(t, s.Trim(12), "trimming past the last record")
	require.NoError(t, s.Trim(11))
	n, b = s.Depth()
	require.Equal(t, [2]int64{0, 0}, [2]int64{n, b})
}

func TestNextWaitsForAppend(t *testing.T) {
	s := openT(t, Options{Dir: t.TempDir()})
	defer s.Close()

	type result struct {
		first uint64
		recs  [][]byte
		err   error
	}
	got := make(chan result, 1)
	go func() {
		f, r, err := s.Next(context.Background(), 1, 10, 0)
		got <- result{f, r, err}
	}()
	appendSeqs(t, s, 7, 9, 10)
	r := <-got
	require.NoError(t, r.err)
	require.Equal(t, uint64(1), r.first)
	require.Equal(t, []int{7, 8}, seqs(t, r.recs))

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _, err := s.Next(ctx, 3, 10, 0)
		got <- result{err: err}
	}()
	cancel()
	require.ErrorIs(t, (<-got).err, context.Canceled)

	go func() {
		_, _, err := s.Next(context.Background(), 3, 10, 0)
		got <- result{err: err}
	}()
	require.NoError(t, s.Close())
	require.ErrorIs(t, (<-got).err, ErrClosed)
	require.ErrorIs(t, s.Append([][]byte{mkRec(1, 1)}), ErrClosed)
}

func TestRestartRecoversExactlyTheUnwritten(t *testing.T) {
	for _, clean := range []bool{true, false} {
		t.Run(fmt.Sprintf("clean=%v", clean), func(t *testing.T) {
			dir := t.TempDir()
			o := Options{Dir: dir, SegmentBytes: 4096}
			s := openT(t, o)
			for i := 0; i < 300; i += 10 {
				appendSeqs(t, s, i, i+10, 200)
			}
			segsBefore := countSegments(t, dir)
			require.Greater(t, segsBefore, 5)
			require.NoError(t, s.Trim(1+137)) // records 0..136 are in InfluxDB
			require.Less(t, countSegments(t, dir), segsBefore, "whole trimmed segments are freed")
			if clean {
				require.NoError(t, s.Close())
			} else {
				abandon(t, s) // as if SIGKILLed: no Close
			}

			s = openT(t, o)
			defer s.Close()
			require.Equal(t, uint64(138), s.FirstIndex())
			n, b := s.Depth()
			require.Equal(t, int64(300-137), n)
			require.Equal(t, recBytes(137, 300, 200), b)
			first, recs := available(t, s, s.FirstIndex())
			require.Equal(t, uint64(138), first)
			require.Equal(t, span(137, 300), seqs(t, recs))

			// Indexes go on where they stopped.
			appendSeqs(t, s, 300, 301, 200)
			first, recs, err := s.Next(context.Background(), 301, 1, 0)
			require.NoError(t, err)
			require.Equal(t, uint64(301), first)
			require.Equal(t, []int{300}, seqs(t, recs))
		})
	}
}

func TestRestartAfterEverythingTrimmed(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir})
	appendSeqs(t, s, 0, 5, 50)
	require.NoError(t, s.Trim(6))
	abandon(t, s)

	s = openT(t, Options{Dir: dir})
	defer s.Close()
	require.Equal(t, uint64(6), s.FirstIndex())
	n, _ := s.Depth()
	require.Zero(t, n)
	appendSeqs(t, s, 5, 6, 50)
	first, recs := available(t, s, s.FirstIndex())
	require.Equal(t, uint64(6), first)
	require.Equal(t, []int{5}, seqs(t, recs))
}

// abandon drops s as a SIGKILL would: the page cache keeps what was written,
// nothing is saved or synced on the way out.
func abandon(t testing.TB, s *Spool) {
	t.Helper()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	// tidwall/wal's Close only fsyncs and closes its tail segment.
	require.NoError(t, s.wal.Close())
	require.NoError(t, s.closeFiles())
}

func countSegments(t testing.TB, dir string) int {
	t.Helper()
	segs, err := listSegments(filepath.Join(dir, "wal"))
	require.NoError(t, err)
	return len(segs)
}

func lastSegmentPath(t testing.TB, dir string) string {
	t.Helper()
	segs, err := listSegments(filepath.Join(dir, "wal"))
	require.NoError(t, err)
	return filepath.Join(dir, "wal", segs[len(segs)-1].name)
}

func TestQuotaRefusesThenRecoversAfterTrim(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	quota := recBytes(0, 10, 1000)
	s := openT(t, Options{Dir: t.TempDir(), MaxBytes: quota, Registerer: reg})
	defer s.Close()

	appendSeqs(t, s, 0, 8, 1000)
	err := s.Append([][]byte{mkRec(8, 1000), mkRec(9, 1000), mkRec(10, 1000)})
	require.ErrorIs(t, err, ErrFull)
	n, b := s.Depth()
	require.Equal(t, [2]int64{8, recBytes(0, 8, 1000)}, [2]int64{n, b}, "a refused append writes nothing")
	require.Equal(t, 3.0, testutil.ToFloat64(s.m.full))

	appendSeqs(t, s, 8, 10, 1000) // exactly at the quota
	require.ErrorIs(t, s.Append([][]byte{mkRec(10, 1000)}), ErrFull)

	require.NoError(t, s.Trim(4))
	appendSeqs(t, s, 10, 13, 1000)
	_, recs := available(t, s, s.FirstIndex())
	require.Equal(t, span(3, 13), seqs(t, recs))
	require.Equal(t, 13.0, testutil.ToFloat64(s.m.appends))
	require.Equal(t, 10.0, testutil.ToFloat64(s.m.records))
	require.Equal(t, float64(recBytes(3, 13, 1000)), testutil.ToFloat64(s.m.bytes))
	require.Equal(t, float64(quota), testutil.ToFloat64(s.m.quota))
}

func TestMetricNames(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	s := openT(t, Options{Dir: t.TempDir(), Registerer: reg})
	defer s.Close()
	appendSeqs(t, s, 0, 1, 10)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, want := range []string{
		"chargeguard_spool_records", "chargeguard_spool_bytes",
		"chargeguard_spool_appends_total", "chargeguard_spool_full_total",
		"chargeguard_spool_fsync_duration_seconds", "chargeguard_spool_quota_bytes",
	} {
		require.Contains(t, names, want)
	}
	var m dto.Metric
	require.NoError(t, s.m.fsyncDur.Write(&m))
	require.Equal(t, uint64(1), m.GetHistogram().GetSampleCount(), "one fsync per group commit")
}

func TestTornTailIsCut(t *testing.T) {
	tails := map[string]func(t *testing.T, path string){
		"truncated": func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.NoError(t, os.Truncate(path, fi.Size()-5))
		},
		"zeros": func(t *testing.T, path string) { appendToFile(t, path, make([]byte, 4096)) },
		"garbage": func(t *testing.T, path string) {
			g := make([]byte, 3000)
			for i := range g {
				g[i] = byte(i*7 + 3)
			}
			appendToFile(t, path, g)
		},
	}
	for name, tear := range tails {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, Options{Dir: dir})
			appendSeqs(t, s, 0, 10, 300)
			appendSeqs(t, s, 10, 20, 300)
			require.NoError(t, s.Close())
			tear(t, lastSegmentPath(t, dir))

			s = openT(t, Options{Dir: dir})
			want := span(0, 20)
			if name == "truncated" {
				want = span(0, 19) // the torn last record was never acked
			}
			_, recs := available(t, s, s.FirstIndex())
			require.Equal(t, want, seqs(t, recs))
			require.Empty(t, quarantined(t, dir), "a torn tail is not corruption")
			require.Empty(t, s.Damage())

			// The log goes on after the cut, across restarts.
			appendSeqs(t, s, 100, 102, 300)
			require.NoError(t, s.Close())
			s = openT(t, Options{Dir: dir})
			defer s.Close()
			_, recs = available(t, s, s.FirstIndex())
			require.Equal(t, append(want, 100, 101), seqs(t, recs))
		})
	}
}

func appendToFile(t *testing.T, path string, b []byte) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(b)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// A record that fails its checksum where the framing is intact is found
// when the spool opens: reported and quarantined, and the records after it
// are kept.
func TestCorruptRecordIsReportedAtOpen(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir})
	for i := 0; i < 5; i++ {
		appendSeqs(t, s, i, i+1, 100)
	}
	require.NoError(t, s.Close())

	// Flip a byte inside record 2 (the third), which valid records follow.
	path := lastSegmentPath(t, dir)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	i := bytes.Index(data, mkRec(2, 100))
	require.Positive(t, i)
	data[i+20] ^= 0xff
	require.NoError(t, os.WriteFile(path, data, 0o640))

	s = openT(t, Options{Dir: dir})
	defer s.Close()
	_, recs := available(t, s, s.FirstIndex())
	require.Equal(t, []int{0, 1, 3, 4}, seqs(t, recs))
	require.Equal(t, 1.0, testutil.ToFloat64(s.m.quarantined))
	require.NotEmpty(t, s.Damage())
}

// A record that goes bad after the spool opened is skipped and counted
// when it is read.
func TestCorruptRecordIsSkippedAndCounted(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir, SegmentBytes: 1024})
	for i := 0; i < 20; i++ {
		appendSeqs(t, s, i, i+1, 100)
	}
	// Segment 0 is not the last one: once tidwall/wal's cache is cleared, a
	// read goes to the file.
	path := segmentPaths(t, dir)[0]
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	i := bytes.Index(data, mkRec(2, 100))
	require.Positive(t, i)
	data[i+20] ^= 0xff
	require.NoError(t, os.WriteFile(path, data, 0o640))
	require.NoError(t, s.wal.ClearCache())
	defer s.Close()
	first, recs, err := s.Next(context.Background(), 1, 0, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(1), first)
	require.Equal(t, []int{0, 1}, seqs(t, recs), "a batch stops before a corrupt record")
	first, recs, err = s.Next(context.Background(), 3, 4, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(4), first, "the corrupt record is skipped")
	require.Equal(t, []int{3, 4, 5}, seqs(t, recs))
	require.Equal(t, 1.0, testutil.ToFloat64(s.m.corrupt))
}

// TestTailMirror checks that the spool's model of tidwall/wal's segment
// files (which decides when the directory is fsynced) matches the files.
func TestTailMirror(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir, SegmentBytes: 2048})
	rng := rand.New(rand.NewPCG(1, 2))
	seq := 0
	check := func(what string) {
		idx, size, err := tailSegment(filepath.Join(dir, "wal"))
		require.NoError(t, err)
		require.Equal(t, [2]int64{int64(idx), size}, [2]int64{int64(s.tailStart), s.tailBytes}, what)
	}
	// An entry that fills the segment exactly starts a new one.
	exact := EncodeRecord(nil, time.Unix(0, 0), bytes.Repeat([]byte("x"), 2048-2-frameLen-RecordHeaderLen))
	require.Equal(t, int64(2048), entryDiskLen(frameLen+len(exact)))
	require.NoError(t, s.Append([][]byte{exact}))
	check("after an exact fill")
	require.Equal(t, 2, countSegments(t, dir))
	seq++
	for round := 0; round < 300; round++ {
		n := 1 + rng.IntN(6)
		var batch [][]byte
		for range n {
			batch = append(batch, mkRec(seq, rng.IntN(900)))
			seq++
		}
		require.NoError(t, s.Append(batch))
		check(fmt.Sprintf("after append %d", round))
		if rng.IntN(3) == 0 {
			_, next := s.FirstIndex(), s.next
			require.NoError(t, s.Trim(next-uint64(rng.IntN(3))))
			check(fmt.Sprintf("after trim %d", round))
		}
		if round%97 == 0 {
			require.NoError(t, s.Close())
			s = openT(t, Options{Dir: dir, SegmentBytes: 2048})
			check("after reopen")
		}
	}
	require.NoError(t, s.Close())
}

func TestFailedWriteReopensAndKeepsWhatLanded(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir})
	defer s.Close()
	appendSeqs(t, s, 0, 3, 100)

	// The write fails after the first two records of five reached the file.
	s.testHook = func(l *wal.Log, b *wal.Batch) error {
		var part wal.Batch
		for i := 0; i < 2; i++ {
			part.Write(4+uint64(i), appendFrame(nil, mkRec(10+i, 100)))
		}
		require.NoError(t, l.WriteBatch(&part))
		return errors.New("injected: no space left on device")
	}
	batch := [][]byte{mkRec(10, 100), mkRec(11, 100), mkRec(12, 100), mkRec(13, 100), mkRec(14, 100)}
	require.ErrorContains(t, s.Append(batch), "injected")
	n, _ := s.Depth()
	require.Equal(t, int64(5), n, "the two records on disk are taken in")

	s.testHook = nil
	require.NoError(t, s.Append(batch)) // the caller retries: duplicates are harmless
	_, recs := available(t, s, s.FirstIndex())
	require.Equal(t, []int{0, 1, 2, 10, 11, 10, 11, 12, 13, 14}, seqs(t, recs))
}

func TestConcurrentAppendAndDrain(t *testing.T) {
	const total = 3000
	s := openT(t, Options{Dir: t.TempDir(), SegmentBytes: 16 << 10, MaxBytes: 64 << 10})
	defer s.Close()

	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	appendErr := make(chan error, 1)
	wg.Add(1)
	go func() { // the appender: retries while the spool is full
		defer wg.Done()
		rng := rand.New(rand.NewPCG(3, 4))
		for seq := 0; seq < total; {
			n := min(1+rng.IntN(20), total-seq)
			var batch [][]byte
			for i := range n {
				batch = append(batch, mkRec(seq+i, 100+rng.IntN(400)))
			}
			err := s.Append(batch)
			if errors.Is(err, ErrFull) {
				select {
				case <-ctx.Done():
					appendErr <- ctx.Err()
					return
				case <-time.After(time.Millisecond):
				}
				continue
			}
			if err != nil {
				appendErr <- err
				return
			}
			seq += n
		}
		appendErr <- nil
	}()
	wg.Add(1)
	go func() { // a reader of the depth, as /metrics would be
		defer wg.Done()
		for ctx.Err() == nil {
			n, b := s.Depth()
			if n < 0 || b < 0 || b > 64<<10 {
				panic(fmt.Sprintf("depth %d records %d bytes", n, b))
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()

	var got []int
	from := s.FirstIndex()
	for len(got) < total {
		first, recs, err := s.Next(ctx, from, 50, 8<<10)
		require.NoError(t, err)
		got = append(got, seqs(t, recs)...)
		from = first + uint64(len(recs))
		require.NoError(t, s.Trim(from))
	}
	require.NoError(t, <-appendErr)
	cancel()
	wg.Wait()
	require.Equal(t, span(0, total), got)
	n, b := s.Depth()
	require.Equal(t, [2]int64{0, 0}, [2]int64{n, b})
}

// A batch larger than the whole quota used to be refused forever, so
// ingest, which retries the same batch, never acked again even once
// InfluxDB had drained the spool. An empty spool takes any batch.
func TestBatchOverQuotaFitsAnEmptySpool(t *testing.T) {
	s := openT(t, Options{Dir: t.TempDir(), MaxBytes: recBytes(0, 5, 1000)})
	defer s.Close()
	var big [][]byte
	for i := range 8 {
		big = append(big, mkRec(i, 1000))
	}
	require.NoError(t, s.Append(big), "an empty spool takes a batch over the quota")
	require.ErrorIs(t, s.Append(big), ErrFull, "a spool holding unwritten records refuses it")
	require.NoError(t, s.Trim(9))
	require.NoError(t, s.Append(big), "once drained, the batch fits again")
}
