package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/tidwall/wal"
)

// Defaults of Options.
const (
	DefaultMaxBytes     = 1 << 30
	DefaultSegmentBytes = 8 << 20
	// MaxRecordBytes bounds one record; an MQTT payload is at most 64 KiB,
	// so anything near this is a bug upstream.
	MaxRecordBytes = 64 << 20
)

var (
	// ErrFull is wrapped by Append's error when the records would take the
	// unwritten data past Options.MaxBytes. Nothing was written; the caller
	// should not ack and retry later (InfluxDB is probably down).
	ErrFull = errors.New("spool full")
	// ErrClosed is returned by operations on a closed spool.
	ErrClosed = errors.New("spool closed")
	// ErrFailed is wrapped by every operation once the spool could not
	// recover from a failed write: it must be closed and opened again.
	ErrFailed = errors.New("spool failed")
)

// Options configures a Spool. Only Dir is required.
type Options struct {
	// Dir holds the spool; it is created if missing. One process at a time.
	Dir string
	// MaxBytes is the quota of unwritten record bytes; default 1 GiB. An
	// Append that would exceed it fails with ErrFull.
	MaxBytes int64
	// SegmentBytes is the target size of one segment file; default 8 MiB.
	// Trimmed records are freed a segment's worth at a time.
	SegmentBytes int
	// NoSync skips fsync. For benchmarks only: an acked record may be lost.
	NoSync     bool
	Logger     zerolog.Logger
	Registerer prometheus.Registerer
}

// Spool is a durable FIFO of records with consecutive indexes. Append may be
// called from any goroutine (calls are serialised: use one appender that
// batches, since each call costs one fsync); Next and Trim are meant for one
// writer goroutine; Depth and FirstIndex are safe from anywhere.
type Spool struct {
	opts    Options
	walDir  string
	log     zerolog.Logger
	m       *metrics
	walOpts wal.Options

	// appendMu serialises Append, and excludes it while tidwall/wal's files
	// change under it (TruncateFront, reopen), so the tail mirror stays true.
	appendMu  sync.Mutex
	batch     wal.Batch
	scratch   []byte
	tailStart uint64   // first index of the segment tidwall/wal appends to
	tailBytes int64    // its size; mirrors tidwall/wal's rule for new segments
	dirFile   *os.File // Dir/wal, fsynced when a segment file is created

	// walMu guards the wal pointer: RLock to use the log (it is safe for
	// concurrent use), Lock to replace it after a failure.
	walMu sync.RWMutex
	wal   *wal.Log

	trimMu        sync.Mutex // serialises Trim
	cursorFile    *os.File
	truncateBytes int64 // free trimmed records once this many are on disk

	mu      sync.Mutex
	next    uint64 // index of the next appended record
	cursor  uint64 // first unwritten index
	sizes   sizeQueue
	bytes   int64 // unwritten record bytes
	trimmed int64 // bytes of trimmed records still on disk
	notify  chan struct{}
	closed  bool
	failed  error

	testHook func(l *wal.Log, b *wal.Batch) error // replaces WriteBatch in tests
}

// Open opens or creates the spool in o.Dir, cutting a torn tail, and recovers
// every record that was appended and not trimmed.
func Open(o Options) (*Spool, error) {
	if o.Dir == "" {
		return nil, errors.New("spool: Options.Dir is required")
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	s := &Spool{
		opts:   o,
		walDir: filepath.Join(o.Dir, "wal"),
		log:    o.Logger.With().Str("component", "spool").Logger(),
		m:      newMetrics(o.Dir),
		notify: make(chan struct{}),
		// Freeing costs a copy of the rest of one segment (TruncateFront), so
		// free at most about once per segment drained.
		truncateBytes: int64(o.SegmentBytes),
		walOpts: wal.Options{
			// The spool fsyncs itself after WriteBatch, to time it; tidwall/wal
			// still fsyncs a segment before it starts the next one.
			NoSync:           true,
			SegmentSize:      o.SegmentBytes,
			SegmentCacheSize: 2,
			AllowEmpty:       true,
		},
	}
	if err := os.MkdirAll(s.walDir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := s.open(); err != nil {
		if s.wal != nil {
			_ = s.wal.Close()
		}
		_ = s.closeFiles()
		return nil, fmt.Errorf("spool %s: %w", o.Dir, err)
	}
	if err := s.m.register(o.Registerer); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("spool: register metrics: %w", err)
	}
	return s, nil
}

func (s *Spool) open() error {
	start := time.Now()
	var saved uint64
	if b, err := os.ReadFile(filepath.Join(s.opts.Dir, "cursor")); err == nil {
		saved, _ = decodeCursor(b)
	}
	res, err := scrub(s.opts.Dir, s.walDir, saved, time.Now())
	if err != nil {
		return err
	}
	if res.tornBytes > 0 {
		s.log.Warn().Int64("bytes", res.tornBytes).Msg("cut a torn tail (never acked) from the last spool segment")
	}
	for _, r := range res.reports {
		s.log.Error().Str("damage", r).Msg("spool segment corrupt: kept aside in quarantine, every record that still checks out recovered")
	}
	s.m.lostBytes.Add(float64(res.lostBytes))
	if s.wal, err = wal.Open(s.walDir, &s.walOpts); err != nil {
		return fmt.Errorf("open wal: %w", err)
	}
	if s.dirFile, err = os.Open(s.walDir); err != nil {
		return err
	}
	if s.cursorFile, err = openCursor(s.opts.Dir); err != nil {
		return err
	}
	first, err := s.wal.FirstIndex()
	if err != nil {
		return err
	}
	last, err := s.wal.LastIndex()
	if err != nil {
		return err
	}
	s.next = last + 1
	s.cursor = first
	if c, ok, err := readCursor(s.cursorFile); err != nil {
		return err
	} else if ok && c > first {
		s.cursor = min(c, s.next)
	}
	for i := s.cursor; i < s.next; i++ {
		// scrub has just read every segment; reading each record again
		// through tidwall/wal would double the cost of a large spool's open
		// (which the safety engine's start waits for).
		n, ok := res.sizeOf(i)
		if !ok {
			entry, err := s.wal.Read(i)
			if err != nil {
				return fmt.Errorf("read record %d: %w", i, err)
			}
			n = uint32(max(len(entry)-frameLen, 0))
		}
		s.sizes.push(n)
		s.bytes += int64(n)
	}
	if len(res.recovered) > 0 {
		if err := s.appendRecovered(res.recovered); err != nil {
			return err
		}
	}
	if s.cursor > first {
		// Records trimmed before the last shutdown are still on disk.
		if err := s.wal.TruncateFront(s.cursor); err != nil {
			return fmt.Errorf("free trimmed records: %w", err)
		}
	}
	if s.tailStart, s.tailBytes, err = tailSegment(s.walDir); err != nil {
		return err
	}
	s.m.quota.Set(float64(s.opts.MaxBytes))
	s.setGauges()
	s.log.Info().Uint64("first", s.cursor).Uint64("next", s.next).
		Int64("records", int64(s.next-s.cursor)).Int64("bytes", s.bytes).
		Dur("took", time.Since(start)).Msg("spool opened")
	return nil
}

// appendRecovered appends the records scrub found after a damaged region,
// during open. They were acked once, so the quota does not refuse them;
// they get indexes at or after the cursor, so they are written to InfluxDB
// (perhaps again: that is harmless).
func (s *Spool) appendRecovered(recs [][]byte) error {
	var b wal.Batch
	for i, r := range recs {
		b.Write(s.next+uint64(i), appendFrame(nil, r))
	}
	if err := s.wal.WriteBatch(&b); err != nil {
		return fmt.Errorf("append recovered records: %w", err)
	}
	if err := s.wal.Sync(); err != nil {
		return fmt.Errorf("append recovered records: %w", err)
	}
	if err := syncDir(s.walDir); err != nil {
		return fmt.Errorf("append recovered records: %w", err)
	}
	s.cursor = min(s.cursor, s.next)
	for _, r := range recs {
		s.sizes.push(uint32(len(r)))
		s.bytes += int64(len(r))
	}
	s.next += uint64(len(recs))
	s.m.recovered.Add(float64(len(recs)))
	return nil
}

// Damage describes the corrupt segments kept in Dir/quarantine, or is
// empty. They stay reported until an operator removes them (see
// docs/runbooks/chargeguard-spool-quarantine.md).
func (s *Spool) Damage() string {
	n := countQuarantined(s.opts.Dir)
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d corrupt spool segment(s) kept in %s; the records that still checked out were recovered",
		n, filepath.Join(s.opts.Dir, "quarantine"))
}

// setGauges publishes the depth; s.mu must be held (or s not yet shared).
func (s *Spool) setGauges() {
	s.m.records.Set(float64(s.next - s.cursor))
	s.m.bytes.Set(float64(s.bytes))
}

// Append durably appends recs as one group commit: every record is written,
// then one fsync, and only then does Append return nil; after that the
// records may be acked. If they would take the unwritten bytes past the quota,
// Append writes nothing and returns an error wrapping ErrFull, unless the
// spool holds no unwritten record (then any batch fits). recs are
// copied: the caller keeps its slices and may reuse them at once.
func (s *Spool) Append(recs [][]byte) error {
	if len(recs) == 0 {
		return nil
	}
	var n int64
	for _, r := range recs {
		if len(r) == 0 {
			return errors.New("spool append: empty record")
		}
		if len(r) > MaxRecordBytes {
			return fmt.Errorf("spool append: record of %d bytes exceeds %d", len(r), MaxRecordBytes)
		}
		n += int64(len(r))
	}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()

	s.mu.Lock()
	if err := s.usable(); err != nil {
		s.mu.Unlock()
		return err
	}
	// An empty spool takes any batch: one larger than the whole quota
	// would otherwise be refused forever, and the caller, which retries the
	// same batch, would never ack again. The quota is exceeded by at most
	// one batch.
	if s.bytes > 0 && s.bytes+n > s.opts.MaxBytes {
		used := s.bytes
		s.mu.Unlock()
		s.m.full.Add(float64(len(recs)))
		return fmt.Errorf("spool append of %d records (%d bytes) with %d of %d bytes unwritten: %w",
			len(recs), n, used, s.opts.MaxBytes, ErrFull)
	}
	first := s.next
	s.mu.Unlock()

	// Mirror tidwall/wal's writeBatch: it starts a new segment file when the
	// tail already exceeds SegmentSize, and after any entry that takes it to
	// SegmentSize. A new file needs the directory fsynced to survive a crash.
	seg := int64(s.opts.SegmentBytes)
	tailStart, tailBytes, cycled := s.tailStart, s.tailBytes, false
	if tailBytes > seg {
		tailStart, tailBytes, cycled = first, 0, true
	}
	s.batch.Clear()
	for i, r := range recs {
		s.scratch = appendFrame(s.scratch[:0], r)
		s.batch.Write(first+uint64(i), s.scratch)
		tailBytes += entryDiskLen(len(s.scratch))
		if tailBytes >= seg {
			tailStart, tailBytes, cycled = first+uint64(i)+1, 0, true
		}
	}

	s.walMu.RLock()
	err := s.write(s.wal, &s.batch)
	if err == nil && !s.opts.NoSync {
		t := time.Now()
		err = s.wal.Sync()
		if err == nil && cycled {
			err = s.dirFile.Sync()
		}
		s.m.fsyncDur.Observe(time.Since(t).Seconds())
	}
	s.walMu.RUnlock()
	if err != nil {
		s.batch.Clear()
		err = fmt.Errorf("spool append of %d records: %w", len(recs), err)
		// tidwall/wal's in-memory index may now disagree with its files;
		// reopen the log from disk before anything else uses it.
		if rerr := s.reopen(); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	s.tailStart, s.tailBytes = tailStart, tailBytes

	s.mu.Lock()
	for _, r := range recs {
		s.sizes.push(uint32(len(r)))
	}
	s.next += uint64(len(recs))
	s.bytes += n
	s.setGauges()
	s.wake()
	s.mu.Unlock()
	s.m.appends.Add(float64(len(recs)))
	return nil
}

func (s *Spool) write(l *wal.Log, b *wal.Batch) error {
	if s.testHook != nil {
		return s.testHook(l, b)
	}
	return l.WriteBatch(b)
}

// wake tells waiting Next calls that something changed; s.mu must be held.
func (s *Spool) wake() {
	close(s.notify)
	s.notify = make(chan struct{})
}

// usable returns why the spool cannot be used, if it cannot; s.mu must be
// held.
func (s *Spool) usable() error {
	if s.closed {
		return ErrClosed
	}
	return s.failed
}

// reopen rebuilds the wal from its files after a failed write or truncation,
// and takes in any records the failed write left complete on disk (they were
// not acked; storing them twice is harmless). If the log cannot be reopened,
// or lost records the spool had acked, the spool fails for good. s.appendMu
// must be held.
func (s *Spool) reopen() error {
	s.walMu.Lock()
	defer s.walMu.Unlock()
	fail := func(err error) error {
		err = fmt.Errorf("%w: reopen after error: %w", ErrFailed, err)
		s.mu.Lock()
		s.failed = err
		s.wake()
		s.mu.Unlock()
		s.log.Error().Err(err).Msg("spool failed; restart to recover")
		return err
	}
	_ = s.wal.Close() // it may report the failure again
	if _, err := repairTail(s.walDir); err != nil {
		return fail(err)
	}
	l, err := wal.Open(s.walDir, &s.walOpts)
	if err != nil {
		return fail(err)
	}
	s.wal = l
	first, err := l.FirstIndex()
	if err != nil {
		return fail(err)
	}
	last, err := l.LastIndex()
	if err != nil {
		return fail(err)
	}
	if s.tailStart, s.tailBytes, err = tailSegment(s.walDir); err != nil {
		return fail(err)
	}
	s.mu.Lock()
	cursor, next := s.cursor, s.next
	s.mu.Unlock()
	if last+1 < next || first > cursor {
		return fail(fmt.Errorf("log holds %d..%d, spool expected %d..%d", first, last, cursor, next-1))
	}
	var extra []uint32
	for i := next; i <= last; i++ {
		entry, err := l.Read(i)
		if err != nil {
			return fail(err)
		}
		extra = append(extra, uint32(max(len(entry)-frameLen, 0)))
	}
	s.mu.Lock()
	for _, n := range extra {
		s.sizes.push(n)
		s.bytes += int64(n)
	}
	s.next = last + 1
	s.setGauges()
	s.wake()
	s.mu.Unlock()
	s.log.Warn().Int("kept", len(extra)).Msg("spool reopened after a failed write")
	return nil
}

// Next waits until a record with index >= from exists (or ctx is done) and
// returns the records from there: at most maxRecs records and, past the
// first, at most maxBytes bytes in total (a value <= 0 means no limit).
// first is the index of recs[0]; from is raised to FirstIndex if below it.
// Records that fail their checksum are skipped and counted, so first may
// exceed from; the writer should Trim(first+len(recs)) once they are stored.
// The records are freshly allocated and belong to the caller.
func (s *Spool) Next(ctx context.Context, from uint64, maxRecs, maxBytes int) (first uint64, recs [][]byte, err error) {
	for {
		s.mu.Lock()
		if err := s.usable(); err != nil {
			s.mu.Unlock()
			return 0, nil, err
		}
		from = max(from, s.cursor)
		if from >= s.next {
			ch := s.notify
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return 0, nil, ctx.Err()
			case <-ch:
				continue
			}
		}
		end := s.next
		s.mu.Unlock()
		if maxRecs > 0 && end-from > uint64(maxRecs) {
			end = from + uint64(maxRecs)
		}
		first, recs, err = s.read(from, end, maxBytes)
		if err != nil || len(recs) > 0 {
			return first, recs, err
		}
		from = first // everything read was corrupt and skipped
	}
}

// read returns the valid records of [from, end), stopping before the first
// corrupt one that follows a valid one, or at maxBytes. If all are corrupt it
// returns none and first = end.
func (s *Spool) read(from, end uint64, maxBytes int) (first uint64, recs [][]byte, err error) {
	s.walMu.RLock()
	defer s.walMu.RUnlock()
	first, total := from, 0
	for i := from; i < end; i++ {
		entry, err := s.wal.Read(i)
		if err != nil {
			return 0, nil, fmt.Errorf("spool read %d: %w", i, err)
		}
		rec, ok := unframe(entry)
		if ok && len(rec) == 0 {
			// A tombstone: a record lost to corruption, reported when the
			// spool was opened.
			if len(recs) > 0 {
				break
			}
			first = i + 1
			continue
		}
		if !ok {
			if len(recs) > 0 {
				break
			}
			s.m.corrupt.Inc()
			s.log.Error().Uint64("index", i).Int("bytes", len(entry)).Msg("spool record fails its checksum; skipped")
			first = i + 1
			continue
		}
		if len(recs) > 0 && maxBytes > 0 && total+len(rec) > maxBytes {
			break
		}
		recs = append(recs, rec)
		total += len(rec)
	}
	return first, recs, nil
}

// Trim marks the records before index before as stored in InfluxDB: they
// leave the depth and the quota at once, and their disk space is freed once a
// segment's worth has accumulated. Trimming what is already trimmed is a
// no-op; trimming past the last record is an error.
func (s *Spool) Trim(before uint64) error {
	s.trimMu.Lock()
	defer s.trimMu.Unlock()
	s.mu.Lock()
	if err := s.usable(); err != nil {
		s.mu.Unlock()
		return err
	}
	if before > s.next {
		next := s.next
		s.mu.Unlock()
		return fmt.Errorf("spool trim before %d: only %d records exist", before, next-1)
	}
	if before <= s.cursor {
		s.mu.Unlock()
		return nil
	}
	freed := s.sizes.pop(int(before - s.cursor))
	s.bytes -= freed
	s.trimmed += freed
	s.cursor = before
	truncate := s.trimmed >= s.truncateBytes
	s.setGauges()
	s.mu.Unlock()

	if _, err := s.cursorFile.WriteAt(encodeCursor(before), 0); err != nil {
		return fmt.Errorf("spool trim: save cursor: %w", err)
	}
	if truncate {
		return s.truncate(before)
	}
	return nil
}

// truncate frees the records before index on disk.
func (s *Spool) truncate(index uint64) error {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.walMu.RLock()
	err := s.wal.TruncateFront(index)
	s.walMu.RUnlock()
	if err != nil {
		err = fmt.Errorf("spool free records before %d: %w", index, err)
		if rerr := s.reopen(); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	if index >= s.tailStart {
		// The tail segment was rewritten from index on.
		var serr error
		if s.tailStart, s.tailBytes, serr = tailSegment(s.walDir); serr != nil {
			return fmt.Errorf("spool free records before %d: %w", index, serr)
		}
	}
	s.mu.Lock()
	s.trimmed = 0
	s.mu.Unlock()
	return nil
}

// FirstIndex returns the index of the first unwritten record: where a writer
// starts after a restart.
func (s *Spool) FirstIndex() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursor
}

// Depth returns the unwritten records and their bytes.
func (s *Spool) Depth() (records, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(s.next - s.cursor), s.bytes
}

// Close waits for a running Append and Trim, wakes waiting Next calls (they
// return ErrClosed), saves the cursor and closes the files. Closing twice is
// a no-op.
func (s *Spool) Close() error {
	s.trimMu.Lock()
	defer s.trimMu.Unlock()
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.wake()
	cursor := s.cursor
	s.mu.Unlock()

	var errs []error
	if _, err := s.cursorFile.WriteAt(encodeCursor(cursor), 0); err != nil {
		errs = append(errs, err)
	}
	if !s.opts.NoSync {
		errs = append(errs, s.cursorFile.Sync())
	}
	s.walMu.Lock()
	if err := s.wal.Close(); err != nil && !errors.Is(err, wal.ErrClosed) {
		errs = append(errs, err)
	}
	s.walMu.Unlock()
	errs = append(errs, s.closeFiles())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("spool close: %w", err)
	}
	return nil
}

// closeFiles closes the spool's own files (not the wal).
func (s *Spool) closeFiles() error {
	var errs []error
	if s.cursorFile != nil {
		errs = append(errs, s.cursorFile.Close())
	}
	if s.dirFile != nil {
		errs = append(errs, s.dirFile.Close())
	}
	return errors.Join(errs...)
}
