package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// RecordHeaderLen is the size of a record's header: the receive time as a
// big-endian int64 of Unix nanoseconds.
const RecordHeaderLen = 8

// ErrMalformedRecord is returned by DecodeRecord for a record too short to
// hold its header and at least one byte of line protocol.
var ErrMalformedRecord = errors.New("malformed spool record")

// EncodeRecord appends to dst the record of lines received at received, and
// returns the extended slice. lines is one or more line-protocol lines
// separated by '\n'; it may end with '\n'. lines is copied; the caller keeps
// it.
func EncodeRecord(dst []byte, received time.Time, lines []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(received.UnixNano()))
	return append(dst, lines...)
}

// DecodeRecord splits a record made by EncodeRecord into its receive time and
// its lines. lines aliases rec: it is valid as long as rec is and must not be
// modified if rec is shared.
func DecodeRecord(rec []byte) (received time.Time, lines []byte, err error) {
	if len(rec) <= RecordHeaderLen {
		return time.Time{}, nil, fmt.Errorf("record of %d bytes, want more than %d: %w",
			len(rec), RecordHeaderLen, ErrMalformedRecord)
	}
	ns := int64(binary.BigEndian.Uint64(rec))
	return time.Unix(0, ns), rec[RecordHeaderLen:], nil
}
