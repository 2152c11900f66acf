package spool

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// benchRecSize is about one telemetry message of a 10-port pile as line
// protocol (one pile line and ten port lines).
const benchRecSize = 1200

// BenchmarkAppend measures one group commit (write + fsync) of 1, 16 and 128
// records: the spool fsync cost that bounds how fast messages can be acked.
// The writer side is modelled as caught up: every commit is trimmed at once.
func BenchmarkAppend(b *testing.B) {
	for _, sync := range []bool{true, false} {
		for _, n := range []int{1, 16, 128} {
			name := fmt.Sprintf("fsync=on/recs=%d", n)
			if !sync {
				name = fmt.Sprintf("fsync=off/recs=%d", n)
			}
			b.Run(name, func(b *testing.B) {
				s, err := Open(Options{Dir: b.TempDir(), NoSync: !sync})
				require.NoError(b, err)
				defer s.Close()
				batch := make([][]byte, n)
				var size int64
				for i := range batch {
					batch[i] = mkRec(i, benchRecSize-RecordHeaderLen)
					size += int64(len(batch[i]))
				}
				b.SetBytes(size)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if err := s.Append(batch); err != nil {
						b.Fatal(err)
					}
					if err := s.Trim(s.next); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

// BenchmarkDrainBacklog drains a 20 MB backlog (as after an InfluxDB outage)
// in batches of 500 records, freeing disk space lazily (the spool's policy)
// or eagerly with tidwall/wal's TruncateFront after every batch.
func BenchmarkDrainBacklog(b *testing.B) {
	const backlog, batch = 16384, 500
	for _, c := range []struct {
		name    string
		segment int
		eager   bool
	}{
		{"free=lazy/segment=8MiB", 8 << 20, false},
		{"free=eager/segment=8MiB", 8 << 20, true},
		{"free=lazy/segment=20MiB", 20 << 20, false},
		{"free=eager/segment=20MiB", 20 << 20, true},
		{"free=lazy/segment=1MiB", 1 << 20, false},
		{"free=eager/segment=1MiB", 1 << 20, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var truncs int
			var truncTime time.Duration
			for b.Loop() {
				b.StopTimer()
				s, err := Open(Options{Dir: b.TempDir(), SegmentBytes: c.segment, NoSync: true})
				require.NoError(b, err)
				for i := 0; i < backlog; i += 128 {
					appendSeqs(b, s, i, i+128, benchRecSize-RecordHeaderLen)
				}
				if c.eager {
					s.truncateBytes = 1
				}
				b.StartTimer()
				from := s.FirstIndex()
				for from < s.next {
					first, recs, err := s.Next(context.Background(), from, batch, 0)
					if err != nil {
						b.Fatal(err)
					}
					from = first + uint64(len(recs))
					t := time.Now()
					if err := s.Trim(from); err != nil {
						b.Fatal(err)
					}
					if s.trimmed == 0 {
						truncs++
						truncTime += time.Since(t)
					}
				}
				b.StopTimer()
				require.NoError(b, s.Close())
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*backlog), "ns/record")
			if truncs > 0 {
				b.ReportMetric(float64(truncTime.Microseconds())/float64(truncs), "µs/truncate")
				b.ReportMetric(float64(truncs)/float64(b.N), "truncates/drain")
			}
		})
	}
}

// BenchmarkOpen measures opening a spool of 64 MiB unwritten records (eight
// 8 MiB segments): the scrub reads and checksums every segment before
// tidwall/wal loads the log. "damaged" overwrites 4 KiB in the middle of
// the second segment before each open, so the open also resyncs past the
// damage, quarantines the segment and appends what it recovered.
func BenchmarkOpen(b *testing.B) {
	for _, damaged := range []bool{false, true} {
		b.Run(fmt.Sprintf("damaged=%v", damaged), func(b *testing.B) {
			dir := b.TempDir()
			s, err := Open(Options{Dir: dir, NoSync: true})
			require.NoError(b, err)
			var batch [][]byte
			var total int64
			for i := 0; total < 64<<20; i++ {
				batch = append(batch, mkRec(i, benchRecSize-RecordHeaderLen))
				total += int64(len(batch[len(batch)-1]))
				if len(batch) == 128 {
					require.NoError(b, s.Append(batch))
					batch = batch[:0]
				}
			}
			require.NoError(b, s.Close())
			segs, err := listSegments(filepath.Join(dir, "wal"))
			require.NoError(b, err)
			second := filepath.Join(dir, "wal", segs[1].name)
			b.SetBytes(total)
			b.ResetTimer()
			for b.Loop() {
				if damaged {
					b.StopTimer()
					data, err := os.ReadFile(second)
					require.NoError(b, err)
					for i := len(data) / 2; i < len(data)/2+4096; i++ {
						data[i] = byte(i * 131)
					}
					require.NoError(b, os.WriteFile(second, data, 0o640))
					b.StartTimer()
				}
				s, err := Open(Options{Dir: dir, NoSync: true})
				require.NoError(b, err)
				require.NoError(b, s.Close())
			}
		})
	}
}
