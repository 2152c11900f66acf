package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// protocolDoc is the vendor-facing protocol description. Pile emulators are
// written from it, so its examples are tested here against the decoder.
const protocolDoc = "../docs/protocol.md"

// TestProtocolDocMessageExamples decodes every JSON example of section 4 as
// the kind of its subsection: they must all be valid.
func TestProtocolDocMessageExamples(t *testing.T) {
	doc, err := os.ReadFile(protocolDoc)
	require.NoError(t, err)
	heading := regexp.MustCompile("(?m)^### 4\\.\\d+ (\\w+)")
	block := regexp.MustCompile("(?s)```json\n(.*?)```")
	kinds := map[string]Kind{"status": KindStatus, "telemetry": KindTelemetry, "event": KindEvent, "cmd": KindCmd, "ack": KindAck}
	checked := 0
	sections := heading.FindAllSubmatchIndex(doc, -1)
	for i, sec := range sections {
		end := len(doc)
		if i+1 < len(sections) {
			end = sections[i+1][0]
		}
		kind, ok := kinds[string(doc[sec[2]:sec[3]])]
		require.True(t, ok, "section %s", doc[sec[2]:sec[3]])
		for _, b := range block.FindAllSubmatch(doc[sec[1]:end], -1) {
			dec := json.NewDecoder(bytes.NewReader(b[1]))
			for {
				var raw json.RawMessage
				if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
					break
				} else {
					require.NoError(t, err)
				}
				_, err := Decode(testTopics[kind], raw, goldenReceived)
				require.NoError(t, err, "%s example %s", kind, raw)
				checked++
			}
		}
	}
	require.GreaterOrEqual(t, checked, 7)
}

// TestProtocolDocRejectionExamples replays the table of examples of
// section 8: "| `payload` [on `kind`] | accepted... or `reason field`... |".
func TestProtocolDocRejectionExamples(t *testing.T) {
	doc, err := os.ReadFile(protocolDoc)
	require.NoError(t, err)
	_, examples, ok := strings.Cut(string(doc), "### Examples")
	require.True(t, ok)
	row := regexp.MustCompile("(?m)^\\| `([^`]+)`(?: on `(\\w+)`)? \\| (.*) \\|$")
	anyPayload := regexp.MustCompile("(?m)^\\| any payload on `([^`]+)` \\| `(\\w+) (\\S+)` \\|$")
	checked := 0
	for _, r := range row.FindAllStringSubmatch(examples, -1) {
		topic := testTopics[KindTelemetry]
		if r[2] != "" {
			var err error
			topic, err = ParseTopic(DefaultRoot, "chargers/s1/p1/"+r[2])
			require.NoError(t, err)
		}
		_, err := Decode(topic, []byte(r[1]), goldenReceived)
		result := r[3]
		if strings.HasPrefix(result, "accepted") {
			require.NoError(t, err, r[1])
		} else {
			want := regexp.MustCompile("^`(\\w+)(?: (\\S+))?`").FindStringSubmatch(result)
			require.NotNil(t, want, "cannot read the result %q", result)
			var rej *RejectError
			require.ErrorAs(t, err, &rej, r[1])
			require.Equal(t, Reason(want[1]), rej.Reason, r[1])
			require.Equal(t, want[2], rej.Field, r[1])
		}
		checked++
	}
	for _, r := range anyPayload.FindAllStringSubmatch(examples, -1) {
		_, err := DecodeTopic(DefaultRoot, r[1], []byte(`{"v":1,"online":false}`), goldenReceived)
		requireReject(t, err, Reason(r[2]), r[3])
		checked++
	}
	require.GreaterOrEqual(t, checked, 18)
}
