package spool

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// tombstone is the wal entry that takes the place of a record lost to
// corruption: a valid frame of an empty record (CRC-32C of nothing is 0).
// It keeps tidwall/wal's indexes, which are positional, true for the
// segments that follow; Next skips it.
var tombstone = []byte{frameLen, 0, 0, 0, 0}

// region is a byte range of a segment that holds no valid entry.
type region struct{ start, end int }

// segmentScan is what a segment file holds: its valid entries, in order,
// and the damaged regions between them.
type segmentScan struct {
	entries []entryPos
	bad     []region
}

type entryPos struct{ start, end int } // the whole entry: uvarint length, CRC, record

// entryAt parses the entry at pos and says whether it is complete and
// passes its checksum. A resync candidate must also hold a record: an
// empty one is a tombstone, and accepting it there would let a run of
// bytes that happens to read 04 00 00 00 00 pass for data.
func entryAt(data []byte, pos int, needRecord bool) (end int, ok bool) {
	size, n := binary.Uvarint(data[pos:])
	if n <= 0 || size < frameLen || size > MaxRecordBytes+frameLen || uint64(len(data)-pos-n) < size {
		return 0, false
	}
	end = pos + n + int(size)
	if needRecord && int(size) == frameLen {
		return 0, false
	}
	_, ok = unframe(data[pos+n : end])
	return end, ok
}

// scanSegment splits data into valid entries and damaged regions. After a
// damaged entry it resyncs on the CRC framing: it looks, byte by byte, for
// the next offset where a complete entry with a valid checksum starts. A
// random match costs a chance of 2^-32 per offset; tidwall/wal's length
// prefix alone would take any bytes for an entry.
func scanSegment(data []byte) segmentScan {
	var sc segmentScan
	pos := 0
	for pos < len(data) {
		if end, ok := entryAt(data, pos, false); ok {
			sc.entries = append(sc.entries, entryPos{pos, end})
			pos = end
			continue
		}
		start := pos
		for pos++; pos < len(data); pos++ {
			if _, ok := entryAt(data, pos, true); ok {
				break
			}
		}
		sc.bad = append(sc.bad, region{start, pos})
	}
	return sc
}

// liveSegments returns the segments tidwall/wal will load, mirroring the
// clean-up of an interrupted truncation in wal.(*Log).load: files before
// the last .START are deleted, files after the first .END too.
func liveSegments(segs []segmentFile) []segmentFile {
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i].start {
			segs = segs[i:]
			break
		}
	}
	for i, sg := range segs {
		if strings.HasSuffix(sg.name, ".END") {
			segs = segs[:i+1]
			if i > 0 && segs[i-1].index == sg.index {
				segs = append(segs[:i-1], sg)
			}
			break
		}
	}
	return segs
}

// scrubResult is what scrub found and did.
type scrubResult struct {
	tornBytes   int64    // cut from the tail: a write the crash interrupted, never acked
	quarantined []string // copies of the damaged segments, in Dir/quarantine
	lostBytes   int64    // bytes in damaged regions
	recovered   [][]byte // valid records found after a damaged region, to append again
	reports     []string
	// segments are the record sizes of every live segment as tidwall/wal
	// will number them, so that Open need not read every record again.
	segments []segmentSizes
}

type segmentSizes struct {
	index uint64   // first index of the segment
	sizes []uint32 // record size of each entry (0 for a tombstone)
}

// sizeOf returns the size of record i, if scrub saw it.
func (r *scrubResult) sizeOf(i uint64) (uint32, bool) {
	j, _ := slices.BinarySearchFunc(r.segments, i, func(s segmentSizes, i uint64) int {
		switch {
		case s.index > i:
			return 1
		case s.index+uint64(len(s.sizes)) <= i:
			return -1
		}
		return 0
	})
	if j == len(r.segments) || r.segments[j].index > i || i-r.segments[j].index >= uint64(len(r.segments[j].sizes)) {
		return 0, false
	}
	return r.segments[j].sizes[i-r.segments[j].index], true
}

// recordSizes returns the record size of each entry of data; data holds
// valid entries only.
func recordSizes(data []byte) []uint32 {
	var out []uint32
	for pos := 0; pos < len(data); {
		size, n := binary.Uvarint(data[pos:])
		if n <= 0 || uint64(len(data)-pos-n) < size {
			break
		}
		out = append(out, uint32(max(int(size)-frameLen, 0)))
		pos += n + int(size)
	}
	return out
}

// scrub checks every segment before tidwall/wal opens the log, since
// tidwall/wal trusts its length prefixes: a damaged one makes it refuse the
// log, panic, or read shifted records.
//
// Only the end of the last segment may legitimately be damaged: a write
// interrupted by a crash, which was never fsynced and so never acked. It is
// cut. Anywhere else, damage is corruption of acked records. Such a
// segment is copied to Dir/quarantine and rewritten: the valid entries
// before the first damaged region stay where they are; an older segment is
// padded with tombstones to its original number of entries, so the
// indexes of the segments after it do not move; and the valid records
// found after the damage (by resyncing on the CRC framing) are returned to
// be appended to the log again. Nothing that still checks out is lost;
// nothing is silently cut.
//
// writtenBefore is the saved cursor (0 if none): records of a segment that
// ends before it are already in InfluxDB and are not appended again.
func scrub(dir, walDir string, writtenBefore uint64, now time.Time) (res scrubResult, err error) {
	// A rewrite interrupted by a crash leaves its temporary file behind;
	// the segment itself was not replaced, so it is scrubbed again.
	if tmps, err := filepath.Glob(filepath.Join(walDir, "*.scrub")); err == nil {
		for _, tmp := range tmps {
			_ = os.Remove(tmp)
		}
	}
	all, err := listSegments(walDir)
	if err != nil {
		return res, err
	}
	segs := liveSegments(all)
	for i, sg := range segs {
		path := filepath.Join(walDir, sg.name)
		data, err := os.ReadFile(path)
		if err != nil {
			return res, fmt.Errorf("read spool segment %s: %w", sg.name, err)
		}
		sc := scanSegment(data)
		if len(sc.bad) == 0 {
			res.segments = append(res.segments, segmentSizes{sg.index, recordSizes(data)})
			continue
		}
		tail := i == len(segs)-1
		first := sc.bad[0]
		k := 0 // valid entries before the first damaged region
		for k < len(sc.entries) && sc.entries[k].end <= first.start {
			k++
		}
		if tail && k == len(sc.entries) {
			// Damage runs to the end of the last segment, with nothing
			// valid after it: a torn write.
			if err := rewrite(path, data[:first.start]); err != nil {
				return res, err
			}
			res.tornBytes += int64(len(data) - first.start)
			res.segments = append(res.segments, segmentSizes{sg.index, recordSizes(data[:first.start])})
			continue
		}

		qdir := filepath.Join(dir, "quarantine")
		if err := os.MkdirAll(qdir, 0o750); err != nil {
			return res, fmt.Errorf("spool quarantine: %w", err)
		}
		qpath := filepath.Join(qdir, fmt.Sprintf("%s.%s", sg.name, now.UTC().Format("20060102T150405.000000000Z")))
		if err := writeSynced(qpath, data); err != nil {
			return res, fmt.Errorf("spool quarantine: %w", err)
		}
		res.quarantined = append(res.quarantined, qpath)
		var lost int64
		for _, r := range sc.bad {
			lost += int64(r.end - r.start)
		}
		res.lostBytes += lost

		keep := data[:first.start]
		entries := k
		var recovered [][]byte
		for _, e := range sc.entries[k:] {
			_, n := binary.Uvarint(data[e.start:])
			if rec := data[e.start+n+frameLen : e.end]; len(rec) > 0 {
				recovered = append(recovered, append([]byte(nil), rec...))
			}
		}
		if !tail {
			want := int(segs[i+1].index - sg.index) // entries the segment held
			if entries > want {
				// Cannot happen for a segment tidwall/wal wrote; keep the
				// indexes true and replay the surplus.
				keep = data[:sc.entries[want].start]
				for _, e := range sc.entries[want:k] {
					_, n := binary.Uvarint(data[e.start:])
					recovered = append(recovered, append([]byte(nil), data[e.start+n+frameLen:e.end]...))
				}
				entries = want
			}
			keep = append([]byte(nil), keep...)
			for ; entries < want; entries++ {
				keep = append(keep, tombstone...)
			}
			if segs[i+1].index <= writtenBefore {
				recovered = nil // already in InfluxDB
			}
		}
		if err := rewrite(path, keep); err != nil {
			return res, err
		}
		res.segments = append(res.segments, segmentSizes{sg.index, recordSizes(keep)})
		res.recovered = append(res.recovered, recovered...)
		res.reports = append(res.reports, fmt.Sprintf(
			"segment %s: %d damaged region(s), %d bytes, from offset %d; %d records before kept in place, %d after recovered; original kept as %s",
			sg.name, len(sc.bad), lost, first.start, k, len(recovered), qpath))
	}
	return res, nil
}

// rewrite replaces the file at path with data, atomically.
func rewrite(path string, data []byte) error {
	tmp := path + ".scrub" // a name tidwall/wal ignores
	if err := writeSynced(tmp, data); err != nil {
		return fmt.Errorf("rewrite spool segment: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rewrite spool segment: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// countQuarantined is the number of files in Dir/quarantine.
func countQuarantined(dir string) int {
	ents, err := os.ReadDir(filepath.Join(dir, "quarantine"))
	if err != nil {
		return 0
	}
	return len(ents)
}
