package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// frameLen is the size of the CRC-32C that precedes every record inside a
// tidwall/wal entry. tidwall/wal stores only a length prefix, so without it a
// tail of zeros left by a crash (or any bit rot) would read back as records.
const frameLen = 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends the wal entry for rec (CRC-32C, then rec) to dst.
func appendFrame(dst, rec []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(rec, castagnoli))
	return append(dst, rec...)
}

// unframe returns the record inside a wal entry, or false if the entry is
// too short or fails its checksum.
func unframe(entry []byte) ([]byte, bool) {
	if len(entry) < frameLen {
		return nil, false
	}
	rec := entry[frameLen:]
	if binary.BigEndian.Uint32(entry) != crc32.Checksum(rec, castagnoli) {
		return nil, false
	}
	return rec, true
}

// entryDiskLen is how many bytes tidwall/wal's binary format spends on an
// entry of n data bytes: a uvarint length, then the data.
func entryDiskLen(n int) int64 {
	var buf [binary.MaxVarintLen64]byte
	return int64(binary.PutUvarint(buf[:], uint64(n)) + n)
}

// segmentFile is one file tidwall/wal counts as a segment.
type segmentFile struct {
	name  string
	index uint64 // first index held by the segment
	start bool   // a .START file left by an interrupted TruncateFront
}

// listSegments returns the files tidwall/wal's load would consider, in the
// order it sees them (sorted by name). It mirrors wal.(*Log).load.
func listSegments(walDir string) ([]segmentFile, error) {
	ents, err := os.ReadDir(walDir)
	if err != nil {
		return nil, fmt.Errorf("list spool segments: %w", err)
	}
	var segs []segmentFile
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || len(name) < 20 {
			continue
		}
		index, err := strconv.ParseUint(name[:20], 10, 64)
		if err != nil || index == 0 {
			continue
		}
		isStart := len(name) == 26 && strings.HasSuffix(name, ".START")
		isEnd := len(name) == 24 && strings.HasSuffix(name, ".END")
		if len(name) == 20 || isStart || isEnd {
			segs = append(segs, segmentFile{name: name, index: index, start: isStart})
		}
	}
	return segs, nil
}

// repairTail cuts the segment that tidwall/wal will append to back to the end
// of its last valid entry, and returns how many bytes it dropped. Entries are
// appended in order and every earlier segment was fsynced before the next one
// was created, so only this one can hold a half-written (torn) entry; the
// spool acked none of it. A record that fails its checksum but is followed by
// valid ones is kept (Next skips and counts it): cutting there would drop
// acked records.
func repairTail(walDir string) (dropped int64, err error) {
	segs, err := listSegments(walDir)
	if err != nil || len(segs) == 0 {
		return 0, err
	}
	path := filepath.Join(walDir, segs[len(segs)-1].name)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("open spool tail segment: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return 0, fmt.Errorf("read spool tail segment %s: %w", path, err)
	}
	good := validPrefix(data)
	if good == len(data) {
		return 0, nil
	}
	if err := f.Truncate(int64(good)); err != nil {
		return 0, fmt.Errorf("cut torn tail of %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync %s: %w", path, err)
	}
	return int64(len(data) - good), nil
}

// validPrefix returns the length of data up to the end of its last complete
// entry with a valid checksum.
func validPrefix(data []byte) int {
	pos, good := 0, 0
	for pos < len(data) {
		size, n := binary.Uvarint(data[pos:])
		if n <= 0 || uint64(len(data)-pos-n) < size {
			break
		}
		end := pos + n + int(size)
		if _, ok := unframe(data[pos+n : end]); ok {
			good = end
		}
		pos = end
	}
	return good
}

// tailSegment returns the first index and size of the segment tidwall/wal
// appends to, for a log that has been opened (no .START files left).
func tailSegment(walDir string) (index uint64, size int64, err error) {
	segs, err := listSegments(walDir)
	if err != nil {
		return 0, 0, err
	}
	if len(segs) == 0 {
		return 0, 0, fmt.Errorf("no segment in %s", walDir)
	}
	last := segs[len(segs)-1]
	fi, err := os.Stat(filepath.Join(walDir, last.name))
	if err != nil {
		return 0, 0, fmt.Errorf("stat spool tail segment: %w", err)
	}
	return last.index, fi.Size(), nil
}

// The cursor file holds the first unwritten index: magic, index, CRC-32C of
// both. It is rewritten in place; a torn or missing one is ignored.
const (
	cursorMagic = "cgc1"
	cursorLen   = 16
)

func encodeCursor(index uint64) []byte {
	b := make([]byte, 0, cursorLen)
	b = append(b, cursorMagic...)
	b = binary.BigEndian.AppendUint64(b, index)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeCursor(b []byte) (uint64, bool) {
	if len(b) != cursorLen || string(b[:4]) != cursorMagic ||
		binary.BigEndian.Uint32(b[12:]) != crc32.Checksum(b[:12], castagnoli) {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[4:12]), true
}

// readCursor returns the saved cursor, or false if there is none or it is
// unreadable.
func readCursor(f *os.File) (uint64, bool, error) {
	b := make([]byte, cursorLen+1)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, false, fmt.Errorf("read spool cursor: %w", err)
	}
	idx, ok := decodeCursor(b[:n])
	return idx, ok, nil
}

func openCursor(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "cursor"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open spool cursor: %w", err)
	}
	return f, nil
}
