package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// update rewrites the expected files of the golden tests from what the
// decoder does now: go test ./telemetry -run TestDecodeGolden -update.
// Review the diff before committing it.
var update = flag.Bool("update", false, "rewrite testdata/*/expected.{json,err} from the decoder's output")

// goldenReceived is the receive time every golden case is decoded with.
var goldenReceived = time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)

// generatedPayloads are golden cases whose payload is built here rather than
// committed: they are large, and their point is only their size or shape.
var generatedPayloads = map[string]func() []byte{
	// 1 MiB of a valid-looking telemetry: too_large, before any parsing.
	"too_large_1mib": func() []byte { return paddedTelemetry(1 << 20) },
	// One byte over the limit.
	"too_large_64kib_plus_1": func() []byte { return paddedTelemetry(MaxPayload + 1) },
	// Exactly at the limit, and valid: the limit is inclusive.
	"max_payload_64kib_ok": func() []byte { return paddedTelemetry(MaxPayload) },
	// 60 KiB of '[' inside a member: bad_json after MaxDepth levels.
	"bad_json_deep_60kib": func() []byte {
		return append([]byte(`{"v":1,"x":`), bytes.Repeat([]byte("["), 60<<10)...)
	},
}

// paddedTelemetry returns a valid one-port telemetry of exactly size bytes,
// padded with an unknown string member.
func paddedTelemetry(size int) []byte {
	head := `{"v":1,"ts":1751371200000,"seq":1,"ports":[{"n":1,"state":"idle"}],"pad":"`
	tail := `"}`
	return []byte(head + strings.Repeat("x", size-len(head)-len(tail)) + tail)
}

// goldenCase is one testdata/<name> folder.
type goldenCase struct {
	name    string
	dir     string
	topic   string
	payload []byte
}

func loadGoldenCases(tb testing.TB) []goldenCase {
	tb.Helper()
	dirs, err := os.ReadDir("testdata")
	require.NoError(tb, err)
	var cases []goldenCase
	for _, e := range dirs {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join("testdata", e.Name())
		topic, err := os.ReadFile(filepath.Join(dir, "topic.txt"))
		if errors.Is(err, os.ErrNotExist) {
			continue // a fuzz corpus folder, not a golden case
		}
		require.NoError(tb, err)
		c := goldenCase{name: e.Name(), dir: dir, topic: strings.TrimSuffix(string(topic), "\n")}
		if gen, ok := generatedPayloads[c.name]; ok {
			c.payload = gen()
		} else {
			c.payload, err = os.ReadFile(filepath.Join(dir, "payload.json"))
			require.NoError(tb, err, "case %s has neither payload.json nor a generator", c.name)
		}
		cases = append(cases, c)
	}
	return cases
}

// goldenView is how a decoded Message is written to expected.json: the
// topic as its string, and only the payload pointer that is set.
type goldenView struct {
	Topic     string       `json:"topic"`
	Received  time.Time    `json:"received"`
	Status    *Status      `json:"status,omitempty"`
	Telemetry *Telemetry   `json:"telemetry,omitempty"`
	Event     *Event       `json:"event,omitempty"`
	Command   *Command     `json:"cmd,omitempty"`
	Ack       *Ack         `json:"ack,omitempty"`
	Invalid   *RejectError `json:"invalid,omitempty"`
	Damage    *Damage      `json:"damage,omitempty"`
}

func TestDecodeGolden(t *testing.T) {
	cases := loadGoldenCases(t)
	require.GreaterOrEqual(t, len(cases), 40)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := DecodeTopic(DefaultRoot, c.topic, c.payload, goldenReceived)

			var gotErr, gotJSON []byte
			if err != nil {
				var rej *RejectError
				require.ErrorAs(t, err, &rej)
				require.Contains(t, Reasons, rej.Reason)
				gotErr = []byte(strings.TrimSpace(string(rej.Reason)+" "+rej.Field) + "\n")
				if m.Invalid != nil {
					require.Same(t, rej, m.Invalid, "Invalid must be the returned error itself")
				}
			}
			if (m != Message{}) {
				var buf bytes.Buffer
				enc := json.NewEncoder(&buf)
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				require.NoError(t, enc.Encode(goldenView{
					Topic: m.Topic.String(), Received: m.Received,
					Status: m.Status, Telemetry: m.Telemetry, Event: m.Event, Command: m.Command, Ack: m.Ack,
					Invalid: m.Invalid, Damage: m.Damage,
				}))
				gotJSON = buf.Bytes()
			}

			errPath := filepath.Join(c.dir, "expected.err")
			jsonPath := filepath.Join(c.dir, "expected.json")
			if *update {
				writeOrRemove(t, errPath, gotErr)
				writeOrRemove(t, jsonPath, gotJSON)
				return
			}
			requireFile(t, errPath, gotErr)
			requireFile(t, jsonPath, gotJSON)
		})
	}
}

// requireFile checks that path holds want, or does not exist when want is
// nil.
func requireFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if want == nil {
		require.ErrorIs(t, err, os.ErrNotExist, "%s exists but the decoder produced nothing for it", path)
		return
	}
	require.NoError(t, err, "the decoder produced %s:\n%s", filepath.Base(path), want)
	require.Equal(t, string(got), string(want), "%s (run with -update to rewrite, then review the diff)", path)
}

func writeOrRemove(t *testing.T, path string, data []byte) {
	t.Helper()
	if data == nil {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		return
	}
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

// TestGoldenCoverage keeps the golden set honest: every reason, every kind,
// and the safety exception must have a case.
func TestGoldenCoverage(t *testing.T) {
	reasons := map[Reason]bool{}
	kinds := map[Kind]bool{}
	soft := 0
	for _, c := range loadGoldenCases(t) {
		m, err := DecodeTopic(DefaultRoot, c.topic, c.payload, goldenReceived)
		var rej *RejectError
		if errors.As(err, &rej) {
			reasons[rej.Reason] = true
		}
		if err == nil {
			kinds[m.Topic.Kind] = true
		}
		if m.Invalid != nil {
			soft++
		}
	}
	for _, r := range Reasons {
		require.True(t, reasons[r], "no golden case is rejected with %s", r)
	}
	for _, k := range []Kind{KindStatus, KindTelemetry, KindEvent, KindCmd, KindAck} {
		require.True(t, kinds[k], "no golden case decodes a valid %s", k)
	}
	require.GreaterOrEqual(t, soft, 5, "safety exception cases")
}
