package telemetry

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// testTopics is a valid topic of each kind.
var testTopics = map[Kind]Topic{
	KindStatus:    {Root: DefaultRoot, Site: "s1", Pile: "p1", Kind: KindStatus},
	KindTelemetry: {Root: DefaultRoot, Site: "s1", Pile: "p1", Kind: KindTelemetry},
	KindEvent:     {Root: DefaultRoot, Site: "s1", Pile: "p1", Kind: KindEvent},
	KindCmd:       {Root: DefaultRoot, Site: "s1", Pile: "p1", Kind: KindCmd},
	KindAck:       {Root: DefaultRoot, Site: "s1", Pile: "p1", Kind: KindAck},
}

// checkDecode decodes payload as kind and checks every property a decode
// must have, whatever the input; the fuzz targets run it on random input.
//   - A failure is a *RejectError with a known reason, and the Message is
//     zero, except for the safety exception, whose shape is checked.
//   - A success is valid JSON by encoding/json's standard, and agrees with
//     encoding/json on every value it returns.
//   - A success re-encodes, and the encoding decodes to an equal Message.
//   - bad_json on input that encoding/json accepts is only for a top level
//     that is not an object, depth, or a duplicated member.
func checkDecode(t *testing.T, kind Kind, payload []byte) {
	t.Helper()
	checkDecodeAt(t, testTopics[kind], payload)
}

// checkDecodeAt is checkDecode for a message received on topic.
func checkDecodeAt(t *testing.T, topic Topic, payload []byte) {
	t.Helper()
	m, err := Decode(topic, payload, goldenReceived)
	if err != nil {
		var rej *RejectError
		require.ErrorAs(t, err, &rej)
		require.Contains(t, Reasons, rej.Reason, "%v", err)
		require.NotContains(t, err.Error(), "\n", "a reject error reaches logs and must stay on one line")
		switch rej.Reason {
		case ReasonTooLarge:
			require.Greater(t, len(payload), MaxPayload)
		case ReasonNotUTF8:
			require.False(t, utf8.Valid(payload))
		case ReasonBadJSON:
			if json.Valid(payload) {
				notObject := bytes.TrimLeft(payload, " \t\r\n")[0] != '{'
				require.True(t, notObject || jsonDepth(payload) > MaxDepth || hasDuplicateKey(payload),
					"bad_json (%v) for a JSON object that encoding/json accepts, within depth and without duplicates: %q", err, payload)
			}
		}
		if m.Invalid == nil {
			require.Zero(t, m, "a failed decode must return the zero Message")
			return
		}
		checkSafetyException(t, m, rej)
		return
	}
	require.True(t, json.Valid(payload), "accepted invalid JSON %q", payload)
	require.Nil(t, m.Invalid)
	require.Equal(t, topic, m.Topic)
	require.Equal(t, goldenReceived, m.Received)

	p := payloadOf(t, m)
	enc, err := Encode(p)
	require.NoError(t, err, "decoded %q but cannot encode it back", payload)
	m2, err := Decode(topic, enc, goldenReceived)
	require.NoError(t, err, "%s", enc)
	require.Equal(t, m, m2, "re-encoded as %s", enc)

	// Everything the decoder returned must be what encoding/json reads in
	// the payload: the re-encoded message must be a sub-tree of it.
	requireSubtree(t, decodeGeneric(t, enc), decodeGeneric(t, payload), "")
}

// checkSafetyException checks the shape of a decode that both failed and
// returned a Message (contract v1.1, partial messages): a telemetry message
// whose payload holds only what validated, with Damage saying what did
// not, or a message of an unknown version with no payload at all.
func checkSafetyException(t *testing.T, m Message, rej *RejectError) {
	t.Helper()
	require.Same(t, rej, m.Invalid)
	if m.Telemetry == nil {
		require.Equal(t, ReasonUnknownVersion, rej.Reason, "only an unknown version comes without a payload")
		require.Nil(t, m.Status)
		require.Nil(t, m.Event)
		require.Nil(t, m.Ack)
		require.Nil(t, m.Command)
		require.Nil(t, m.Damage)
		return
	}
	require.Equal(t, KindTelemetry, m.Topic.Kind)
	require.NotNil(t, m.Damage, "a partial telemetry message says what is damaged")
	if rej.Reason == ReasonUnknownVersion {
		require.True(t, m.Damage.BadVersion)
	}
	tel := *m.Telemetry
	seen := map[int]bool{}
	fixed := tel
	fixed.Ports = nil
	for _, p := range tel.Ports {
		require.True(t, p.N >= 1 && p.N <= MaxPort, "port entry with a broken n reached the engine: %+v", p)
		require.False(t, seen[p.N], "port %d twice", p.N)
		seen[p.N] = true
		if !m.Damage.PortBroken(p.N) {
			require.Contains(t, []PortState{StateIdle, StateCharging, StateClosed, StateFault}, p.State)
			if p.State == StateCharging {
				require.NotNil(t, p.A, "charging port %d without a and not marked damaged", p.N)
				require.NotNil(t, p.TempC, "charging port %d without temp_c and not marked damaged", p.N)
			}
		}
		// Repair what is marked broken; what is left must be valid.
		if p.State == "" {
			p.State = StateIdle
		}
		if p.State == StateCharging {
			if p.A == nil {
				p.A = F(0)
			}
			if p.TempC == nil {
				p.TempC = F(20)
			}
		}
		fixed.Ports = append(fixed.Ports, p)
	}
	if m.Damage.NoTS {
		fixed.TS = 1
	}
	if len(fixed.Ports) == 0 {
		fixed.Ports = []PortSample{{N: 1, State: StateIdle}}
	}
	_, err := Encode(&fixed)
	require.NoError(t, err, "what the partial message holds must be valid: %+v", fixed)
}

func payloadOf(t *testing.T, m Message) any {
	t.Helper()
	var set []any
	for _, p := range []any{m.Status, m.Telemetry, m.Event, m.Command, m.Ack} {
		if !isNilPtr(p) {
			set = append(set, p)
		}
	}
	require.Len(t, set, 1, "exactly one payload must be set")
	return set[0]
}

func isNilPtr(p any) bool {
	switch p := p.(type) {
	case *Status:
		return p == nil
	case *Telemetry:
		return p == nil
	case *Event:
		return p == nil
	case *Command:
		return p == nil
	case *Ack:
		return p == nil
	}
	return true
}

func decodeGeneric(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	return v
}

// requireSubtree checks that every member of sub is in full with the same
// value (numbers compared as float64, a null in full counting as absent).
func requireSubtree(t *testing.T, sub, full any, path string) {
	t.Helper()
	switch s := sub.(type) {
	case map[string]any:
		f, ok := full.(map[string]any)
		require.True(t, ok, "%s: want an object, payload has %T", path, full)
		for k, v := range s {
			fv, ok := f[k]
			require.True(t, ok, "%s.%s: decoded but not in the payload", path, k)
			requireSubtree(t, v, fv, path+"."+k)
		}
	case []any:
		f, ok := full.([]any)
		require.True(t, ok, "%s: want an array, payload has %T", path, full)
		require.Len(t, f, len(s), path)
		for i := range s {
			requireSubtree(t, s[i], f[i], path+"["+strconv.Itoa(i)+"]")
		}
	case json.Number:
		f, ok := full.(json.Number)
		require.True(t, ok, "%s: want a number, payload has %T", path, full)
		a, err := strconv.ParseFloat(string(s), 64)
		require.NoError(t, err)
		b, err := strconv.ParseFloat(string(f), 64)
		require.NoError(t, err)
		require.True(t, a == b, "%s: decoded %v, payload has %v", path, s, f)
	default:
		require.Equal(t, full, sub, path)
	}
}

// jsonDepth returns the deepest nesting of valid JSON, the top level being 1.
func jsonDepth(data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // 1e999 is valid JSON; without this Token fails on it
	depth, maxDepth := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return maxDepth
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			maxDepth = max(maxDepth, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

// hasDuplicateKey reports whether any object in valid JSON has a key twice.
func hasDuplicateKey(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool
		atKey  bool // in an object, the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.atKey {
			if k, ok := tok.(string); ok {
				if top.keys[k] {
					return true
				}
				top.keys[k] = true
				top.atKey = false
				continue
			}
		}
		if top != nil && top.object && tok != json.Delim('}') {
			top.atKey = true // this token is a value; a key comes next
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, atKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}
