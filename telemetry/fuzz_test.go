package telemetry

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The fuzz targets decode piles' input, which is hostile by assumption.
// Each is seeded with every golden payload (whatever its kind: a status
// payload is interesting input for the telemetry decoder too) and checks
// the properties in checkDecode. Run one for a while with, for example:
//
//	go test ./telemetry -run '^$' -fuzz '^FuzzDecodeTelemetry$' -fuzztime 20s

func FuzzDecodeTelemetry(f *testing.F) { fuzzDecode(f, KindTelemetry) }
func FuzzDecodeStatus(f *testing.F)    { fuzzDecode(f, KindStatus) }
func FuzzDecodeEvent(f *testing.F)     { fuzzDecode(f, KindEvent) }
func FuzzDecodeCmd(f *testing.F)       { fuzzDecode(f, KindCmd) }
func FuzzDecodeAck(f *testing.F)       { fuzzDecode(f, KindAck) }

func fuzzDecode(f *testing.F, kind Kind) {
	for _, c := range loadGoldenCases(f) {
		if len(c.payload) <= 4<<10 { // the big generated ones only slow the fuzzer
			f.Add(c.payload)
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkDecode(t, kind, payload)
	})
}

// FuzzDecodeTopic fuzzes the topic and the payload together through
// DecodeTopic, the entry point ingest uses.
func FuzzDecodeTopic(f *testing.F) {
	for _, c := range loadGoldenCases(f) {
		if len(c.payload) <= 4<<10 {
			f.Add(c.topic, c.payload)
		}
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		m, err := DecodeTopic(DefaultRoot, topic, payload, goldenReceived)
		parsed, topicErr := ParseTopic(DefaultRoot, topic)
		if topicErr != nil {
			// A bad topic is reported as such, before the payload is read.
			require.Equal(t, topicErr, err)
			require.Zero(t, m)
			var rej *RejectError
			require.ErrorAs(t, err, &rej)
			require.Contains(t, []Reason{ReasonBadTopic, ReasonBadID}, rej.Reason)
			return
		}
		// A parsed topic is made of valid ids, rebuilds to the same string,
		// and NewTopic agrees with it.
		require.True(t, ValidID(parsed.Site) && ValidID(parsed.Pile))
		require.Equal(t, topic, parsed.String())
		rebuilt, err2 := NewTopic(DefaultRoot, parsed.Site, parsed.Pile, parsed.Kind)
		require.NoError(t, err2)
		require.Equal(t, parsed, rebuilt)

		if err == nil || m.Invalid != nil {
			require.Equal(t, parsed, m.Topic)
		}
		checkDecodeAt(t, parsed, payload)
	})
}
