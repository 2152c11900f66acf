package telemetry

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		var p any
		kind := Kind(1 + r.IntN(5))
		switch kind {
		case KindStatus:
			p = randomStatus(r)
		case KindTelemetry:
			p = randomTelemetry(r)
		case KindEvent:
			p = randomEvent(r)
		case KindCmd:
			p = randomCommand(r)
		case KindAck:
			p = randomAck(r)
		}
		data, err := Encode(p)
		require.NoError(t, err, "%+v", p)
		m, err := Decode(testTopics[kind], data, goldenReceived)
		require.NoError(t, err, "%s", data)
		require.Equal(t, p, payloadOf(t, m), "%s", data)
		checkDecode(t, kind, data)
	}
}

func randomStatus(r *rand.Rand) *Status {
	if r.IntN(4) == 0 {
		s := &Status{V: Version}
		if r.IntN(2) == 0 {
			s.TS = randomTS(r)
		}
		return s
	}
	return &Status{
		V: Version, TS: randomTS(r), Online: true,
		Ports:  1 + r.IntN(MaxPort),
		RatedA: math.Abs(randomFloat(r)) + math.SmallestNonzeroFloat64,
		FW:     randomString(r, 12),
		Kind:   []SiteKind{SiteResidential, SiteOpenAir}[r.IntN(2)],
	}
}

func randomTelemetry(r *rand.Rand) *Telemetry {
	t := &Telemetry{V: Version, TS: randomTS(r), Seq: r.Uint32()}
	t.AmbientC = randomOptFloat(r)
	t.LeakMA = randomOptFloat(r)
	if r.IntN(2) == 0 {
		t.Smoke = B(r.IntN(2) == 0)
	}
	ns := r.Perm(MaxPort)[:1+r.IntN(MaxPort)]
	for _, n := range ns {
		p := PortSample{
			N:     n + 1,
			State: []PortState{StateIdle, StateCharging, StateClosed, StateFault}[r.IntN(4)],
			V:     randomOptFloat(r), A: randomOptFloat(r), W: randomOptFloat(r),
			WH: randomOptFloat(r), TempC: randomOptFloat(r),
		}
		if p.State == StateCharging {
			p.A, p.TempC = F(randomFloat(r)), F(randomFloat(r))
		}
		t.Ports = append(t.Ports, p)
	}
	return t
}

func randomEvent(r *rand.Rand) *Event {
	return &Event{
		V: Version, TS: randomTS(r), Port: r.IntN(MaxPort + 1),
		Kind:   []EventKind{EventSmoke, EventPlugIn, EventPlugOut, EventLocalTrip, EventDoorOpen}[r.IntN(5)],
		Detail: randomString(r, 40),
	}
}

func randomCommand(r *rand.Rand) *Command {
	return &Command{
		V: Version, ID: randomCommandID(r), TS: randomTS(r), Port: r.IntN(MaxPort + 1),
		Action: []Action{ActionClose, ActionOpen}[r.IntN(2)],
		Reason: randomString(r, 20),
	}
}

func randomAck(r *rand.Rand) *Ack {
	a := &Ack{V: Version, ID: randomCommandID(r), Port: r.IntN(MaxPort + 1), OK: r.IntN(2) == 0, Err: randomString(r, 20)}
	if r.IntN(2) == 0 {
		a.TS = randomTS(r)
	}
	if r.IntN(4) > 0 {
		a.State = []PortState{StateIdle, StateCharging, StateClosed, StateFault}[r.IntN(4)]
	}
	return a
}

func randomTS(r *rand.Rand) int64 {
	if r.IntN(10) == 0 {
		return 1 + r.Int64N(maxTS)
	}
	return 1751371200000 + r.Int64N(1e10)
}

// randomFloat favours the values that break encoders: extremes, negative
// zero, denormals, large integers, and long fractions.
func randomFloat(r *rand.Rand) float64 {
	switch r.IntN(10) {
	case 0:
		return []float64{0, math.Copysign(0, -1), math.MaxFloat64, -math.MaxFloat64,
			math.SmallestNonzeroFloat64, 1e21, 1e-7, 1 << 53, -(1 << 60)}[r.IntN(9)]
	case 1:
		return math.Float64frombits(r.Uint64() &^ (0x7ff << 52)) // a random finite bit pattern
	case 2:
		return float64(r.IntN(1000))
	}
	return (r.Float64() - 0.3) * 300
}

func randomOptFloat(r *rand.Rand) *float64 {
	if r.IntN(3) == 0 {
		return nil
	}
	return F(randomFloat(r))
}

// randomString returns up to n runes of text that JSON must escape:
// quotes, backslashes, control characters, HTML, non-ASCII and emoji.
func randomString(r *rand.Rand, n int) string {
	alphabet := []rune("ab 0\"\\/\n\t\x00\x1f\x7f<>&é过流🔥\u2028\ufffd")
	var b strings.Builder
	for range r.IntN(n + 1) {
		b.WriteRune(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

func randomCommandID(r *rand.Rand) string {
	b := make([]byte, 1+r.IntN(MaxIDLen))
	for i := range b {
		b[i] = byte(0x21 + r.IntN(0x7e-0x21+1))
	}
	return string(b)
}

// TestEncodeSpecExamples pins the exact bytes: the field order and number
// format are what vendors see in captures and in docs/protocol.md.
func TestEncodeSpecExamples(t *testing.T) {
	for _, c := range []struct {
		msg  any
		want string
	}{
		{&Command{ID: "c8f1e0b2-7b5a-4c1e-9b0a-1f2d3c4b5a69", TS: 1751371200456, Port: 3, Action: ActionClose, Reason: "overheat"},
			`{"v":1,"id":"c8f1e0b2-7b5a-4c1e-9b0a-1f2d3c4b5a69","ts":1751371200456,"port":3,"action":"close","reason":"overheat"}`},
		{Ack{ID: "c8f1e0b2-7b5a-4c1e-9b0a-1f2d3c4b5a69", TS: 1751371200480, Port: 3, OK: true, State: StateClosed},
			`{"v":1,"id":"c8f1e0b2-7b5a-4c1e-9b0a-1f2d3c4b5a69","ts":1751371200480,"port":3,"ok":true,"state":"closed"}`},
		{&Status{TS: 1751371200000, Online: true, Ports: 10, RatedA: 5, FW: "2.3.1", Kind: SiteResidential},
			`{"v":1,"ts":1751371200000,"online":true,"ports":10,"rated_a":5,"fw":"2.3.1","kind":"residential"}`},
		{&Status{}, `{"v":1,"online":false}`},
		{&Event{TS: 1751371200123, Port: 3, Kind: EventSmoke, Detail: "detector <1> & 2"},
			`{"v":1,"ts":1751371200123,"port":3,"kind":"smoke","detail":"detector <1> & 2"}`},
		{&Telemetry{TS: 1751371200000, Seq: 4411, AmbientC: F(31.5), Smoke: B(false), LeakMA: F(2), Ports: []PortSample{
			{N: 1, State: StateCharging, V: F(221.3), A: F(1.82), W: F(398), WH: F(120.5), TempC: F(38.2)},
			{N: 2, State: StateIdle},
		}}, `{"v":1,"ts":1751371200000,"seq":4411,"ambient_c":31.5,"smoke":false,"leak_ma":2,"ports":[` +
			`{"n":1,"state":"charging","v":221.3,"a":1.82,"w":398,"wh":120.5,"temp_c":38.2},{"n":2,"state":"idle"}]}`},
	} {
		got, err := Encode(c.msg)
		require.NoError(t, err)
		require.Equal(t, c.want, string(got))
	}
}

func TestEncodeDoesNotModifyItsInput(t *testing.T) {
	s := &Status{Online: false}
	_, err := Encode(s)
	require.NoError(t, err)
	require.Zero(t, s.V)
}

// TestEncodeRefusesInvalid: a simulator must not be able to send, by
// accident, what the backend would reject.
func TestEncodeRefusesInvalid(t *testing.T) {
	good := func() *Telemetry {
		return &Telemetry{TS: 1751371200000, Seq: 1, Ports: []PortSample{
			{N: 1, State: StateCharging, A: F(1), TempC: F(30)},
			{N: 2, State: StateIdle},
		}}
	}
	tel := func(edit func(*Telemetry)) *Telemetry { t := good(); edit(t); return t }
	_, err := Encode(good())
	require.NoError(t, err)

	birth := Status{TS: 1751371200000, Online: true, Ports: 10, RatedA: 5, Kind: SiteResidential}
	cmd := Command{ID: "c1", TS: 1751371200000, Port: 1, Action: ActionClose}

	for name, c := range map[string]struct {
		msg    any
		reason Reason
		field  string
	}{
		"temp NaN":           {tel(func(t *Telemetry) { t.Ports[0].TempC = F(math.NaN()) }), ReasonNotFinite, "ports[0].temp_c"},
		"w +Inf":             {tel(func(t *Telemetry) { t.Ports[1].W = F(math.Inf(1)) }), ReasonNotFinite, "ports[1].w"},
		"ambient -Inf":       {tel(func(t *Telemetry) { t.AmbientC = F(math.Inf(-1)) }), ReasonNotFinite, "ambient_c"},
		"charging no temp":   {tel(func(t *Telemetry) { t.Ports[0].TempC = nil }), ReasonMissingField, "ports[0].temp_c"},
		"charging no a":      {tel(func(t *Telemetry) { t.Ports[0].A = nil }), ReasonMissingField, "ports[0].a"},
		"no ports":           {tel(func(t *Telemetry) { t.Ports = nil }), ReasonMissingField, "ports"},
		"empty ports":        {tel(func(t *Telemetry) { t.Ports = []PortSample{} }), ReasonOutOfRange, "ports"},
		"65 ports":           {tel(func(t *Telemetry) { t.Ports = manyPorts(65) }), ReasonOutOfRange, "ports"},
		"duplicate port":     {tel(func(t *Telemetry) { t.Ports[1].N = 1 }), ReasonBadValue, "ports[1].n"},
		"port 0":             {tel(func(t *Telemetry) { t.Ports[1].N = 0 }), ReasonOutOfRange, "ports[1].n"},
		"bad state":          {tel(func(t *Telemetry) { t.Ports[1].State = "on" }), ReasonBadValue, "ports[1].state"},
		"no state":           {tel(func(t *Telemetry) { t.Ports[1].State = "" }), ReasonBadValue, "ports[1].state"},
		"ts 0":               {tel(func(t *Telemetry) { t.TS = 0 }), ReasonOutOfRange, "ts"},
		"v 2":                {tel(func(t *Telemetry) { t.V = 2 }), ReasonUnknownVersion, "v"},
		"birth no kind":      {func() Status { s := birth; s.Kind = ""; return s }(), ReasonMissingField, "kind"},
		"birth bad kind":     {func() Status { s := birth; s.Kind = "shed"; return s }(), ReasonBadValue, "kind"},
		"birth rated_a Inf":  {func() Status { s := birth; s.RatedA = math.Inf(1); return s }(), ReasonNotFinite, "rated_a"},
		"birth no rated_a":   {func() Status { s := birth; s.RatedA = 0; return s }(), ReasonMissingField, "rated_a"},
		"birth bad fw":       {func() Status { s := birth; s.FW = "\xff"; return s }(), ReasonNotUTF8, "fw"},
		"birth 65 ports":     {func() Status { s := birth; s.Ports = 65; return s }(), ReasonOutOfRange, "ports"},
		"cmd id space":       {func() Command { c := cmd; c.ID = "c 1"; return c }(), ReasonBadID, "id"},
		"cmd id empty":       {func() Command { c := cmd; c.ID = ""; return c }(), ReasonBadID, "id"},
		"cmd id newline":     {func() Command { c := cmd; c.ID = "c\n1"; return c }(), ReasonBadID, "id"},
		"cmd id 65":          {func() Command { c := cmd; c.ID = strings.Repeat("c", 65); return c }(), ReasonBadID, "id"},
		"cmd id non-ASCII":   {func() Command { c := cmd; c.ID = "cé"; return c }(), ReasonBadID, "id"},
		"cmd port 65":        {func() Command { c := cmd; c.Port = 65; return c }(), ReasonOutOfRange, "port"},
		"cmd bad action":     {func() Command { c := cmd; c.Action = "reboot"; return c }(), ReasonBadValue, "action"},
		"cmd no ts":          {func() Command { c := cmd; c.TS = 0; return c }(), ReasonOutOfRange, "ts"},
		"ack id with quote":  {&Ack{ID: "a\"b c", Port: 1, OK: true}, ReasonBadID, "id"},
		"ack bad state":      {&Ack{ID: "a", Port: 1, OK: true, State: "open"}, ReasonBadValue, "state"},
		"ack negative ts":    {&Ack{ID: "a", TS: -1, Port: 1, OK: true}, ReasonOutOfRange, "ts"},
		"event bad kind":     {&Event{TS: 1, Port: 1, Kind: "fire"}, ReasonBadValue, "kind"},
		"event port -1":      {&Event{TS: 1, Port: -1, Kind: EventSmoke}, ReasonOutOfRange, "port"},
		"event huge detail":  {&Event{TS: 1, Port: 1, Kind: EventSmoke, Detail: strings.Repeat("x", MaxPayload)}, ReasonTooLarge, ""},
		"event detail utf-8": {&Event{TS: 1, Port: 1, Kind: EventSmoke, Detail: "a\xc0\xafb"}, ReasonNotUTF8, "detail"},
	} {
		t.Run(name, func(t *testing.T) {
			data, err := Encode(c.msg)
			require.Nil(t, data)
			requireReject(t, err, c.reason, c.field)
		})
	}

	for _, notMessage := range []any{nil, "x", 42, (*Status)(nil), (*Telemetry)(nil), &Message{}, []byte("{}")} {
		_, err := Encode(notMessage)
		require.Error(t, err, "%T", notMessage)
	}
}

// manyPorts returns n idle ports numbered 1, 2, ... 64, 1, 2, ...
func manyPorts(n int) []PortSample {
	ports := make([]PortSample, n)
	for i := range ports {
		ports[i] = PortSample{N: 1 + i%MaxPort, State: StateIdle}
	}
	return ports
}

// TestDecodeDoesNotKeepThePayload: ingest reuses its receive buffer, so a
// decoded message must not change when the payload bytes do.
func TestDecodeDoesNotKeepThePayload(t *testing.T) {
	for _, c := range []struct {
		kind    Kind
		payload string
	}{
		{KindStatus, `{"v":1,"ts":1751371200000,"online":true,"ports":10,"rated_a":5.0,"fw":"2.3.1","kind":"residential"}`},
		{KindTelemetry, `{"v":1,"ts":1751371200000,"seq":1,"ambient_c":30,"smoke":true,"ports":[{"n":1,"state":"charging","a":1,"temp_c":30}]}`},
		{KindEvent, `{"v":1,"ts":1751371200123,"port":3,"kind":"smoke","detail":"detector 1"}`},
		{KindEvent, `{"v":1,"ts":1751371200123,"port":3,"kind":"smoke","detail":"esc\u00e9aped"}`},
		{KindCmd, `{"v":1,"id":"c8f1e0b2","ts":1751371200456,"port":3,"action":"close","reason":"overheat"}`},
		{KindAck, `{"v":1,"id":"c8f1e0b2","ts":1751371200480,"port":3,"ok":false,"state":"fault","err":"stuck"}`},
	} {
		buf := []byte(c.payload)
		m, err := Decode(testTopics[c.kind], buf, goldenReceived)
		require.NoError(t, err)
		want, err := Decode(testTopics[c.kind], []byte(c.payload), goldenReceived)
		require.NoError(t, err)
		for i := range buf {
			buf[i] = 'X'
		}
		require.Equal(t, want, m, c.payload)
	}
}

func TestDecodeBadTopicKind(t *testing.T) {
	for _, k := range []Kind{KindUnknown, Kind(6), Kind(255)} {
		m, err := Decode(Topic{Root: "chargers", Site: "s", Pile: "p", Kind: k}, []byte(`{"v":1}`), time.Time{})
		requireReject(t, err, ReasonBadTopic, "")
		require.Zero(t, m)
	}
}

// TestDecodeOrderOfChecks pins which reason wins when a payload breaks
// several rules at once, as docs/protocol.md promises.
func TestDecodeOrderOfChecks(t *testing.T) {
	big := append([]byte(`{"v":2,"x":"`+"\xff"), make([]byte, MaxPayload)...)
	for _, c := range []struct {
		name, payload string
		reason        Reason
		field         string
	}{
		{"size before UTF-8 and syntax", string(big), ReasonTooLarge, ""},
		{"UTF-8 before syntax", "{\"v\":1,\xff", ReasonNotUTF8, ""},
		{"syntax before version", `{"v":2,"ts":1,}`, ReasonBadJSON, ""},
		{"bare NaN before version", `{"v":2,"ts":NaN}`, ReasonNotFinite, "ts"},
		{"duplicate before version", `{"v":2,"v":1}`, ReasonBadJSON, "v"},
		{"version before fields", `{"ports":[{"n":99}],"v":3}`, ReasonUnknownVersion, "v"},
		{"missing version before fields", `{"ports":7}`, ReasonMissingField, "v"},
		{"version 1.0 is 1", `{"v":1.0}`, ReasonMissingField, "ts"},
		{"overflow is a field error", `{"v":2,"ts":1e999}`, ReasonUnknownVersion, "v"},
		{"hard error beats the safety exception", `{"v":1,"ts":1,"seq":1,"ports":[{"n":1,"state":"charging"},{"n":1,"state":"idle"}]}`, ReasonBadValue, "ports[1].n"},
		{"top-level error beats the safety exception", `{"v":1,"ts":1,"seq":1,"smoke":1,"ports":[{"n":1,"state":"charging"}]}`, ReasonWrongType, "smoke"},
		{"syntax beats the safety exception", `{"v":1,"ts":1,"seq":1,"ports":[{"n":1,"state":"charging"}],}`, ReasonBadJSON, ""},
		{"first soft error wins", `{"v":1,"ts":1,"seq":1,"ports":[{"n":1,"state":"charging","temp_c":1,"a":"x"},{"n":2,"state":"charging"}]}`, ReasonWrongType, "ports[0].a"},
		{"deep nesting is found before the end", `{"v":1,"x":[[[[[[[[[`, ReasonBadJSON, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(testTopics[KindTelemetry], []byte(c.payload), time.Time{})
			requireReject(t, err, c.reason, c.field)
		})
	}
}

// TestNonFiniteTokens: every spelling of a non-finite number that piles are
// known to send is not_finite, never bad_json, and a look-alike word is
// bad_json.
func TestNonFiniteTokens(t *testing.T) {
	for _, tok := range []string{"NaN", "nan", "-nan", "+nan", "NAN", "Infinity", "-Infinity", "+Infinity", "infinity", "inf", "-inf", "+inf", "Inf", "-Inf", "INF"} {
		payload := `{"v":1,"ts":1,"seq":1,"ports":[{"n":1,"state":"idle","w":` + tok + `}]}`
		_, err := Decode(testTopics[KindTelemetry], []byte(payload), time.Time{})
		requireReject(t, err, ReasonNotFinite, "ports[0].w")
		require.Contains(t, err.Error(), tok)

		payload = `{"v":1,"ts":1,"seq":1,"ports":[{"n":1,"state":"charging","a":1,"temp_c":` + tok + `}]}`
		m, err := Decode(testTopics[KindTelemetry], []byte(payload), time.Time{})
		requireReject(t, err, ReasonNotFinite, "ports[0].temp_c")
		require.NotNil(t, m.Telemetry)
		require.Nil(t, m.Telemetry.Ports[0].TempC)
	}
	for _, word := range []string{"NaNa", "nul", "nulls", "True", "infinit", "infinityy", "-", "+1", "+", "undefined", "None"} {
		payload := `{"v":1,"ts":1,"seq":1,"ports":[{"n":1,"state":"idle","w":` + word + `}]}`
		_, err := Decode(testTopics[KindTelemetry], []byte(payload), time.Time{})
		requireReject(t, err, ReasonBadJSON, "")
	}
}

// TestAppendJSONMatchesEncodingJSON holds the hand-written encoder to the
// exact bytes of encoding/json (HTML escaping off), on random messages that
// include zero values and empty strings, where omitempty matters.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []rune("a\"\\/\b\f\n\r\t\x00\x01\x1f\x7f<>&é\u2028\u2029\U0001F525\ufffd")
	str := func() string {
		var b strings.Builder
		for range r.IntN(6) {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	maybe := func(f float64) float64 {
		if r.IntN(3) == 0 {
			return 0
		}
		return f
	}
	for range 2000 {
		tel := randomTelemetry(r)
		switch r.IntN(4) {
		case 0:
			tel.Ports = nil
		case 1:
			tel.Ports = []PortSample{}
		}
		for _, p := range []appender{
			&Status{V: r.IntN(3), TS: int64(maybe(float64(randomTS(r)))), Online: r.IntN(2) == 0, Ports: int(maybe(float64(r.IntN(70)))),
				RatedA: maybe(randomFloat(r)), FW: str(), Kind: SiteKind(str())},
			tel,
			&Event{V: 1, TS: randomTS(r), Port: r.IntN(70) - 2, Kind: EventKind(str()), Detail: str()},
			&Command{V: 1, ID: str(), TS: int64(maybe(1)), Port: r.IntN(70), Action: Action(str()), Reason: str()},
			&Ack{V: 1, ID: str(), TS: int64(maybe(float64(randomTS(r)))), Port: r.IntN(70), OK: r.IntN(2) == 0, State: PortState(str()), Err: str()},
		} {
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(false)
			require.NoError(t, enc.Encode(p))
			require.Equal(t, strings.TrimSuffix(want.String(), "\n"), string(p.appendJSON(nil)))
		}
	}
}

// TestParseNumberMatchesStrconv: the fast path must give the same bits as
// strconv.ParseFloat for every literal.
func TestParseNumberMatchesStrconv(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
		return string(b)
	}
	lits := []string{"0", "-0", "0.0", "-0.0", "1", "221.3", "0.1", "0.3", "999999999999999", "9999999999999999",
		"123456789012345.6", "0.000000000000001", "0.0000000000000001", "4294967295", "9007199254740993", "1e999", "1e-999", "5e-324"}
	for range 30000 {
		lit := digits(1 + r.IntN(20))
		lit = strings.TrimLeft(lit, "0")
		if lit == "" {
			lit = "0"
		}
		if r.IntN(2) == 0 {
			lit += "." + digits(1+r.IntN(18))
		}
		if r.IntN(5) == 0 {
			lit += "e" + []string{"", "+", "-"}[r.IntN(3)] + digits(1+r.IntN(3))
		}
		if r.IntN(2) == 0 {
			lit = "-" + lit
		}
		lits = append(lits, lit)
	}
	for _, lit := range lits {
		s := scanner{data: []byte(lit)}
		v, err := s.number()
		require.Nil(t, err, lit)
		require.Equal(t, lit, string(s.raw(v)))
		got, ok := parseNumber(s.raw(v))
		want, werr := strconv.ParseFloat(lit, 64)
		require.Equal(t, werr == nil, ok, lit)
		if ok {
			require.Equal(t, math.Float64bits(want), math.Float64bits(got), "%s: got %v, want %v", lit, got, want)
		}
	}
}

// TestEncodeUnchecked: the opt-out writes protocol violations on purpose,
// but never JSON that is not JSON.
func TestEncodeUnchecked(t *testing.T) {
	noTemp := &Telemetry{TS: 1, Seq: 1, Ports: []PortSample{{N: 1, State: StateCharging, A: F(1)}}}
	_, err := Encode(noTemp)
	requireReject(t, err, ReasonMissingField, "ports[0].temp_c")
	data, err := EncodeUnchecked(noTemp)
	require.NoError(t, err)
	require.Equal(t, `{"v":1,"ts":1,"seq":1,"ports":[{"n":1,"state":"charging","a":1}]}`, string(data))
	m, err := Decode(testTopics[KindTelemetry], data, goldenReceived)
	requireReject(t, err, ReasonMissingField, "ports[0].temp_c")
	require.NotNil(t, m.Invalid)

	data, err = EncodeUnchecked(&Command{ID: "a b", Port: 99, Action: "reboot"})
	require.NoError(t, err)
	require.Equal(t, `{"v":1,"id":"a b","ts":0,"port":99,"action":"reboot"}`, string(data))

	_, err = EncodeUnchecked(&Telemetry{TS: 1, Ports: []PortSample{{N: 1, TempC: F(math.NaN())}}})
	requireReject(t, err, ReasonNotFinite, "ports[0].temp_c")
	_, err = EncodeUnchecked(&Event{Detail: "\xff"})
	requireReject(t, err, ReasonNotUTF8, "detail")
	_, err = EncodeUnchecked("x")
	require.Error(t, err)
}
