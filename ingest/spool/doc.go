// Package spool is the durable write-ahead log between the MQTT subscriber
// and InfluxDB: a message is acked to the broker only once its record is
// fsynced here, and a record leaves the spool only once InfluxDB accepted it,
// so telemetry survives InfluxDB outages and SIGKILL restarts (at-least-once;
// InfluxDB points are idempotent, so a re-write after a crash is harmless).
//
// # Records
//
// A record is an 8-byte big-endian receive time in Unix nanoseconds followed
// by one or more InfluxDB line-protocol lines separated by '\n' (see
// EncodeRecord and DecodeRecord). The spool itself treats records as opaque
// bytes.
//
// # Indexes
//
// Records get consecutive indexes that keep growing across restarts. The
// appender calls Append (one group commit: write, one fsync); the writer calls
// Next from FirstIndex, writes the batch to InfluxDB, then Trim(first+n).
//
// # On disk
//
// Dir holds wal/ (segment files of github.com/tidwall/wal; every entry is a
// CRC-32C followed by the record) and cursor (the first unwritten index,
// rewritten in place on every Trim without fsync: if it is lost or torn, the
// spool falls back to the oldest record still on disk, which re-writes
// records InfluxDB already has; that is harmless).
//
// Trimmed records are freed lazily: tidwall/wal's TruncateFront rewrites the
// rest of the segment that holds the new first index, so the spool calls it
// only once a segment's worth of trimmed records is on disk
// (docs/benchmarks.md has the measurement).
//
// A record half-written when the process or the machine died (a torn tail)
// was never acked; Open cuts the last segment back to its last valid entry
// (tidwall/wal itself refuses to open such a log).
//
// # Corruption
//
// Open checks every entry of every segment first, because tidwall/wal
// trusts its length prefixes: one flipped length byte makes it refuse the
// log, panic, or read shifted records. A damaged region is a torn tail only
// at the very end of the last segment with nothing valid after it. Anywhere
// else it is corruption of acked records: the segment is copied to
// Dir/quarantine (reported by chargeguard_spool_quarantined_segments, the
// log and Damage, until an operator removes it) and rewritten. The entries
// before the damage stay in place; an older segment is padded with
// tombstones (empty records that Next skips) so later indexes do not move;
// and the records after the damage are found again by resyncing on the
// CRC-32C framing (the next offset where a complete entry with a valid
// checksum starts) and appended to the log, to be written (again) to
// InfluxDB. Only the records in the damaged bytes are lost.
package spool
