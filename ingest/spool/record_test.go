package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRecordRoundTrip(t *testing.T) {
	at := time.Date(2025, 7, 1, 12, 0, 0, 123456789, time.UTC)
	lines := []byte("pile,site=s1,pile=p1 ambient_c=31.5 1751371200000000000\nport,site=s1,pile=p1,port=1 a=1.82 1751371200000000000\n")
	rec := EncodeRecord([]byte("prefix"), at, lines)
	require.Equal(t, "prefix", string(rec[:6]))

	got, gotLines, err := DecodeRecord(rec[6:])
	require.NoError(t, err)
	require.True(t, got.Equal(at), "got %v want %v", got, at)
	require.Equal(t, lines, gotLines)

	// The header is big-endian Unix nanoseconds: the shared contract.
	require.Equal(t, uint64(at.UnixNano()), binary.BigEndian.Uint64(rec[6:14]))
}

func TestDecodeRecordRejectsShort(t *testing.T) {
	for _, rec := range [][]byte{nil, {1, 2, 3}, make([]byte, RecordHeaderLen)} {
		_, _, err := DecodeRecord(rec)
		require.True(t, errors.Is(err, ErrMalformedRecord), "len %d: %v", len(rec), err)
	}
}

func FuzzRecordRoundTrip(f *testing.F) {
	f.Add(int64(0), []byte("m f=1 1"))
	f.Add(int64(-1), []byte("a\nb\n"))
	f.Add(int64(1751371200123456789), []byte{0})
	f.Fuzz(func(t *testing.T, ns int64, lines []byte) {
		rec := EncodeRecord(nil, time.Unix(0, ns), lines)
		at, got, err := DecodeRecord(rec)
		if len(lines) == 0 {
			if err == nil {
				t.Fatal("empty lines accepted")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if at.UnixNano() != ns || !bytes.Equal(got, lines) {
			t.Fatalf("round trip: got %d %q, want %d %q", at.UnixNano(), got, ns, lines)
		}
	})
}
