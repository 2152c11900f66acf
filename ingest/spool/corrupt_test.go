package spool

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// entryOffset returns where the wal entry holding record seq starts in a
// segment file: its uvarint length, then the CRC, then the record.
func entryOffset(t *testing.T, data []byte, seq, size int) (lenPos int) {
	t.Helper()
	rec := mkRec(seq, size)
	i := bytes.Index(data, rec)
	require.Positive(t, i, "record %d is in the segment", seq)
	var buf [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(buf[:], uint64(len(rec)+frameLen))
	return i - frameLen - n
}

func segmentPaths(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := listSegments(filepath.Join(dir, "wal"))
	require.NoError(t, err)
	var out []string
	for _, s := range segs {
		out = append(out, filepath.Join(dir, "wal", s.name))
	}
	return out
}

func sorted(v []int) []int {
	v = slices.Clone(v)
	slices.Sort(v)
	return v
}

func without(v []int, drop ...int) []int {
	return slices.DeleteFunc(slices.Clone(v), func(x int) bool { return slices.Contains(drop, x) })
}

func quarantined(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "quarantine"))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// One flipped length byte in the middle of the last segment used to make
// Open cut every acked record after it as a "torn tail". Only the damaged
// record may be lost; the segment is kept in quarantine and reported.
func TestFlippedLengthMidSegmentIsNotATornTail(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir})
	appendSeqs(t, s, 0, 10, 300)
	require.NoError(t, s.Close())

	path := lastSegmentPath(t, dir)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data[entryOffset(t, data, 4, 300)] ^= 0x40
	require.NoError(t, os.WriteFile(path, data, 0o640))

	reg := prometheus.NewPedanticRegistry()
	s = openT(t, Options{Dir: dir, Registerer: reg})
	_, recs := available(t, s, s.FirstIndex())
	require.Equal(t, without(span(0, 10), 4), sorted(seqs(t, recs)), "records after the damaged one are acked and must survive")
	require.Len(t, quarantined(t, dir), 1, "the damaged segment is kept aside for inspection")
	require.Equal(t, 1.0, testutil.ToFloat64(s.m.quarantined))
	require.Equal(t, 5.0, testutil.ToFloat64(s.m.recovered))
	require.Contains(t, s.Damage(), "quarantine")

	// The log goes on, and a restart finds nothing new to quarantine.
	appendSeqs(t, s, 100, 102, 300)
	require.NoError(t, s.Close())
	s = openT(t, Options{Dir: dir})
	defer s.Close()
	_, recs = available(t, s, s.FirstIndex())
	require.Equal(t, append(without(span(0, 10), 4), 100, 101), sorted(seqs(t, recs)))
	require.Len(t, quarantined(t, dir), 1)

	// The operator removes the evidence: the report clears without a restart.
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "quarantine")))
	require.Zero(t, testutil.ToFloat64(s.m.quarantined))
	require.Empty(t, s.Damage())
}

// Corruption in an older segment made Open fail (or tidwall/wal panic), and
// with it the whole of chargeguard. The spool must open, keep every record
// that still checks out, and keep the later segments' indexes.
func TestCorruptOlderSegment(t *testing.T) {
	for name, damage := range map[string]func(data []byte, at int){
		"flipped length": func(data []byte, at int) { data[at] ^= 0x40 },
		"garbage":        func(data []byte, at int) { copy(data[at:], bytes.Repeat([]byte{0xff}, 100)) },
		"zeroed sector":  func(data []byte, at int) { copy(data[at:], make([]byte, 500)) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, Options{Dir: dir, SegmentBytes: 2048})
			for i := 0; i < 40; i += 5 {
				appendSeqs(t, s, i, i+5, 300)
			}
			require.NoError(t, s.Close())
			paths := segmentPaths(t, dir)
			require.Greater(t, len(paths), 3)

			data, err := os.ReadFile(paths[1])
			require.NoError(t, err)
			seq := 0
			for i := 0; i < 40; i++ {
				if bytes.Contains(data, mkRec(i, 300)) {
					seq = i + 1 // the second record of the segment
					break
				}
			}
			damage(data, entryOffset(t, data, seq, 300))
			require.NoError(t, os.WriteFile(paths[1], data, 0o640))

			s = openT(t, Options{Dir: dir, SegmentBytes: 2048, Registerer: prometheus.NewPedanticRegistry()})
			_, recs := available(t, s, s.FirstIndex())
			got := sorted(seqs(t, recs))
			require.Subset(t, got, without(span(0, 40), seq, seq+1), "only the records in the damaged bytes may be lost")
			require.NotContains(t, got, seq)
			require.Len(t, quarantined(t, dir), 1)
			require.Equal(t, 1.0, testutil.ToFloat64(s.m.quarantined))
			require.NoError(t, s.Close())

			s = openT(t, Options{Dir: dir, SegmentBytes: 2048})
			defer s.Close()
			_, recs = available(t, s, s.FirstIndex())
			require.Equal(t, got, sorted(seqs(t, recs)), "a restart keeps the same records")
			require.Len(t, quarantined(t, dir), 1)
		})
	}
}

// A segment entirely written to InfluxDB before the damage loses nothing
// unwritten: it is reported, and its records are not stored again.
func TestCorruptWrittenSegmentIsNotReplayed(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, Options{Dir: dir, SegmentBytes: 2048})
	for i := 0; i < 40; i += 5 {
		appendSeqs(t, s, i, i+5, 300)
	}
	require.NoError(t, s.Close())
	paths := segmentPaths(t, dir)
	segs, err := listSegments(filepath.Join(dir, "wal"))
	require.NoError(t, err)
	// Segment 0 is in InfluxDB; a large SegmentBytes keeps Trim from
	// freeing it at once.
	s = openT(t, Options{Dir: dir, SegmentBytes: 1 << 20})
	require.NoError(t, s.Trim(segs[1].index))
	require.NoError(t, s.Close())

	data, err := os.ReadFile(paths[0])
	require.NoError(t, err)
	data[len(data)/2] ^= 0xff
	require.NoError(t, os.WriteFile(paths[0], data, 0o640))

	s = openT(t, Options{Dir: dir, SegmentBytes: 2048})
	defer s.Close()
	first, recs := available(t, s, s.FirstIndex())
	require.Equal(t, segs[1].index, first)
	require.Equal(t, span(int(segs[1].index-1), 40), seqs(t, recs), "nothing written is replayed")
	require.Len(t, quarantined(t, dir), 1, "the damage is still reported")
}

// Property: whatever bytes of whatever segments are flipped, the spool
// opens, and every record whose entry was not touched is still there.
// Failing seeds are printed for replay.
func TestRandomDamageNeverLosesUntouchedRecords(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, 9))
		dir := t.TempDir()
		s := openT(t, Options{Dir: dir, SegmentBytes: 2048})
		n := 0
		for n < 60 {
			k := 1 + rng.IntN(5)
			appendSeqs(t, s, n, n+k, 50+rng.IntN(400))
			n += k
		}
		require.NoError(t, s.Close())
		touched := map[int]bool{}
		for range 1 + rng.IntN(4) {
			paths := segmentPaths(t, dir)
			path := paths[rng.IntN(len(paths))]
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			if len(data) == 0 {
				continue
			}
			at := rng.IntN(len(data))
			for _, e := range scanSegment(data).entries {
				if e.start <= at && at < e.end {
					_, m := binary.Uvarint(data[e.start:])
					touched[seqOf(t, data[e.start+m+frameLen:e.end])] = true
				}
			}
			data[at] ^= byte(1 + rng.IntN(255))
			require.NoError(t, os.WriteFile(path, data, 0o640))
		}
		s, err := Open(Options{Dir: dir, SegmentBytes: 2048})
		require.NoError(t, err, "seed %d", seed)
		_, recs := available(t, s, s.FirstIndex())
		got := seqs(t, recs)
		var total int64
		for _, r := range recs {
			total += int64(len(r))
		}
		_, depth := s.Depth()
		require.Equal(t, total, depth, "seed %d: the quota counts exactly the records there are", seed)
		require.NoError(t, s.Close())
		for i := range n {
			if !touched[i] {
				require.Contains(t, got, i, "seed %d: record %d was not damaged", seed, i)
			}
		}
	}
}

// FuzzDamagedSegment overwrites part of one segment of a three-segment spool
// with arbitrary bytes: Open must succeed, every record must read back, and
// the quota must count exactly the records there are.
func FuzzDamagedSegment(f *testing.F) {
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f}, uint16(10), uint8(0))
	f.Add(make([]byte, 600), uint16(300), uint8(1))
	f.Add([]byte{4, 0, 0, 0, 0, 4, 0, 0, 0, 0}, uint16(1), uint8(2))
	f.Fuzz(func(t *testing.T, junk []byte, at uint16, seg uint8) {
		dir := t.TempDir()
		s := openT(t, Options{Dir: dir, SegmentBytes: 1024, NoSync: true})
		for i := 0; i < 24; i += 3 {
			appendSeqs(t, s, i, i+3, 100)
		}
		require.NoError(t, s.Close())
		paths := segmentPaths(t, dir)
		path := paths[int(seg)%len(paths)]
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		if len(data) == 0 {
			return
		}
		copy(data[int(at)%len(data):], junk)
		require.NoError(t, os.WriteFile(path, data, 0o640))

		s, err = Open(Options{Dir: dir, SegmentBytes: 1024, NoSync: true})
		require.NoError(t, err)
		defer s.Close()
		n, depth := s.Depth()
		var total int64
		for from, end := s.FirstIndex(), s.FirstIndex()+uint64(n); from < end; {
			first, recs, err := s.read(from, end, 0)
			require.NoError(t, err)
			for _, r := range recs {
				total += int64(len(r))
			}
			from = max(first+uint64(len(recs)), from+1)
		}
		require.Equal(t, total, depth)
	})
}
