package telemetry

import (
	"fmt"
	"math"
	"strconv"
)

// maxTS is the largest ts accepted: 2^53-1 ms (the year 287396), the largest
// integer that every JSON implementation (JavaScript, Lua, float-only C
// libraries) carries exactly.
const maxTS = 1<<53 - 1

// members holds the top-level members a message kind knows. Members of
// other kinds (say "seq" in a status) are unknown to it and ignored.
type members struct {
	v, ts, seq, online, ports, ratedA, fw, kind value
	ambient, smoke, leak                        value
	port, detail, id, action, reason, ok, state value
	err                                         value
}

// slot returns where member key of a message of kind k goes, or nil when
// the kind does not know the key.
func (m *members) slot(k Kind, key []byte) *value {
	switch string(key) {
	case "v":
		return &m.v
	case "ts":
		return &m.ts
	case "seq":
		if k == KindTelemetry {
			return &m.seq
		}
	case "online":
		if k == KindStatus {
			return &m.online
		}
	case "ports":
		if k == KindStatus || k == KindTelemetry {
			return &m.ports
		}
	case "rated_a":
		if k == KindStatus {
			return &m.ratedA
		}
	case "fw":
		if k == KindStatus {
			return &m.fw
		}
	case "kind":
		if k == KindStatus || k == KindEvent {
			return &m.kind
		}
	case "ambient_c":
		if k == KindTelemetry {
			return &m.ambient
		}
	case "smoke":
		if k == KindTelemetry {
			return &m.smoke
		}
	case "leak_ma":
		if k == KindTelemetry {
			return &m.leak
		}
	case "port":
		if k == KindEvent || k == KindCmd || k == KindAck {
			return &m.port
		}
	case "detail":
		if k == KindEvent {
			return &m.detail
		}
	case "id":
		if k == KindCmd || k == KindAck {
			return &m.id
		}
	case "action", "reason":
		if k == KindCmd {
			if key[0] == 'a' {
				return &m.action
			}
			return &m.reason
		}
	case "ok", "state", "err":
		if k == KindAck {
			switch key[0] {
			case 'o':
				return &m.ok
			case 's':
				return &m.state
			}
			return &m.err
		}
	}
	return nil
}

// decoder decodes one payload. Errors come in three ranks:
//   - fatal errors (syntax, depth, duplicate members, bare NaN tokens) stop
//     the scan at once and win over everything else: the payload is not
//     JSON, so nothing in it can be trusted;
//   - field errors are checked after "v" (so a v2 message is
//     unknown_version, not some field error of v1);
//   - the soft error, the safety exception, only matters if nothing else is
//     wrong.
type decoder struct {
	s    scanner
	m    members
	kind Kind

	telPorts []PortSample // the parsed telemetry ports
	portErr  *RejectError // first field error inside telemetry ports
	soft     *RejectError // first sensor error of a charging port
	floats   []float64    // backing store for the optional measurements

	// nonFinite is the first bare NaN or Infinity token. It ranks with
	// the fatal errors (it is what the message is rejected for), but the
	// scan goes on past it, so that the rest can still reach the safety
	// engine (contract v1.1, partial messages).
	nonFinite *RejectError
	// dmgPorts has bit n-1 set for each port n whose state, a or temp_c
	// did not validate (Damage.Ports).
	dmgPorts uint64
}

// notFinite records a bare NaN or Infinity token at p.
func (d *decoder) notFinite(p string, v value) {
	if d.nonFinite == nil {
		d.nonFinite = d.s.nonFinite(p, v)
	}
}

func (d *decoder) damagePort(n int) {
	if n >= 1 && n <= MaxPort {
		d.dmgPorts |= 1 << (n - 1)
	}
}

// decode runs the whole decode of d.s.data as a message of kind d.kind.
// On a telemetry message that is rejected for anything but broken JSON, it
// still fills m.Telemetry with every part that validated, and m.Damage
// with what did not (contract v1.1, partial messages).
func (d *decoder) decode(m *Message) *RejectError {
	if err := d.scanTop(); err != nil {
		// Not JSON: nothing in it can be trusted. A NaN token before the
		// syntax error was the first fatal problem, as it always was.
		if d.nonFinite != nil {
			return d.nonFinite
		}
		return err
	}
	verr := d.checkVersion(d.m.v)
	err := d.nonFinite
	if err == nil {
		err = verr
	}
	if err != nil {
		if d.kind == KindTelemetry {
			m.Telemetry, m.Damage = d.partial(verr != nil && verr.Reason == ReasonUnknownVersion)
		}
		return err
	}
	switch d.kind {
	case KindStatus:
		m.Status, err = d.status()
	case KindTelemetry:
		m.Telemetry, err = d.telemetry()
	case KindEvent:
		m.Event, err = d.event()
	case KindCmd:
		m.Command, err = d.command()
	case KindAck:
		m.Ack, err = d.ack()
	}
	if err != nil && d.kind == KindTelemetry {
		m.Telemetry, m.Damage = d.partial(false)
	}
	return err
}

// scanTop scans the top-level object, capturing the members the kind knows
// and parsing telemetry ports on the way. It returns only fatal errors.
func (d *decoder) scanTop() *RejectError {
	s := &d.s
	if s.peek() != '{' {
		return s.syntax("payload is not a JSON object")
	}
	s.pos++
	first := true
	for {
		key, more, err := s.member(&first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		slot := d.m.slot(d.kind, key)
		if slot == nil {
			if err := s.skip(1); err != nil {
				return under(pathKey(key), err)
			}
			continue
		}
		if slot.kind != valAbsent {
			return &RejectError{Reason: ReasonBadJSON, Field: string(key), Detail: "member appears twice"}
		}
		if d.kind == KindTelemetry && slot == &d.m.ports && s.peek() == '[' {
			slot.kind = valArray
			if err := d.ports(); err != nil {
				return err
			}
			continue
		}
		v, err := s.value(1)
		if err != nil {
			return under(string(key), err)
		}
		if v.kind == valNonFinite {
			d.notFinite(string(key), v)
		}
		*slot = v
	}
	// Anything but whitespace after the object is trailing garbage; peek
	// returns 0 both at the end and for a NUL byte, so test the position.
	if s.skipWS(); s.pos < len(s.data) {
		return s.syntax("data after the top-level object")
	}
	return nil
}

// checkVersion runs before any other field check, so that a message of a
// later protocol version is reported as such rather than by whichever v1
// field it lacks.
func (d *decoder) checkVersion(v value) *RejectError {
	if v.missing() {
		return missing("v")
	}
	if v.kind == valNumber {
		if f, ok := parseNumber(d.s.raw(v)); ok && f == Version {
			return nil
		}
	}
	detail := "v is " + v.kind.article()
	if v.kind == valNumber || v.kind == valString {
		detail = fmt.Sprintf("v is %q, this backend speaks version %d", truncate(string(d.s.raw(v)), 16), Version)
	}
	return &RejectError{Reason: ReasonUnknownVersion, Field: "v", Detail: detail}
}

// ports parses the telemetry "ports" array, the hot path: 10 port objects
// per message at 10,000 messages/s. Field errors are kept in d.portErr and
// d.soft so that "v" can still be checked first; only fatal errors return.
func (d *decoder) ports() *RejectError {
	s := &d.s
	s.pos++ // '['
	first := true
	var seen uint64 // bit n-1 set once port n appeared
	ports := make([]PortSample, 0, 16)
	n := 0
	for i := 0; ; i++ {
		more, err := s.element(&first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		n++
		p := path{port: i}
		if i == MaxPort {
			d.portError(&RejectError{Reason: ReasonOutOfRange, Field: "ports", Detail: "more than " + strconv.Itoa(MaxPort) + " ports"})
		}
		if s.peek() != '{' {
			v, err := s.value(2)
			if err != nil {
				return under(p.String(), err)
			}
			if v.kind == valNonFinite {
				d.notFinite(p.String(), v)
			}
			d.portError(wrongType(p, "an object", v))
			continue
		}
		ps, err := d.port(i, &seen)
		if err != nil {
			return err
		}
		if i < MaxPort {
			ports = append(ports, ps)
		}
	}
	if n == 0 {
		d.portError(&RejectError{Reason: ReasonOutOfRange, Field: "ports", Detail: "no ports: want 1 to 64"})
	}
	d.telPorts = ports
	return nil
}

// port parses the port object at the scanner's position, the i-th element
// of ports.
func (d *decoder) port(i int, seen *uint64) (PortSample, *RejectError) {
	s := &d.s
	s.pos++ // '{'
	var n, state, volts, amps, watts, wh, temp value
	first := true
	for {
		key, more, err := s.member(&first)
		if err != nil {
			return PortSample{}, err
		}
		if !more {
			break
		}
		var slot *value
		switch string(key) {
		case "n":
			slot = &n
		case "state":
			slot = &state
		case "v":
			slot = &volts
		case "a":
			slot = &amps
		case "w":
			slot = &watts
		case "wh":
			slot = &wh
		case "temp_c":
			slot = &temp
		default:
			if err := s.skip(3); err != nil {
				return PortSample{}, under(path{port: i, name: pathKey(key)}.String(), err)
			}
			continue
		}
		if slot.kind != valAbsent {
			return PortSample{}, &RejectError{Reason: ReasonBadJSON, Field: path{port: i, name: string(key)}.String(), Detail: "member appears twice"}
		}
		v, err := s.value(3)
		if err != nil {
			return PortSample{}, under(path{port: i, name: string(key)}.String(), err)
		}
		*slot = v
	}

	var ps PortSample
	if n.missing() {
		d.portError(missing(path{port: i, name: "n"}.String()))
	} else if num, err := d.integer(n, path{port: i, name: "n"}, 1, MaxPort); err != nil {
		if n.kind == valNonFinite {
			d.notFinite(path{port: i, name: "n"}.String(), n)
		}
		d.portError(err)
	} else {
		ps.N = int(num)
		if bit := uint64(1) << (num - 1); *seen&bit != 0 {
			d.portError(&RejectError{Reason: ReasonBadValue, Field: path{port: i, name: "n"}.String(), Detail: "port " + strconv.Itoa(ps.N) + " appears twice"})
			// Which entry is the port's? Neither is used by the
			// rules: the first stands.
			ps.N = 0
		} else {
			*seen |= bit
		}
	}
	if state.missing() {
		d.portError(missing(path{port: i, name: "state"}.String()))
		d.damagePort(ps.N)
	} else if st, err := d.portState(state, path{port: i, name: "state"}); err != nil {
		if state.kind == valNonFinite {
			d.notFinite(path{port: i, name: "state"}.String(), state)
		}
		d.portError(err)
		d.damagePort(ps.N)
	} else {
		ps.State = st
	}

	// While charging, a and temp_c are what the safety rules run on. Their
	// absence or a garbage value is the sensor_fault case: reported as the
	// soft error so the engine still sees the port and can close it.
	charging := ps.State == StateCharging
	var err *RejectError
	aBad, tempBad := d.broken(amps, charging), d.broken(temp, charging)
	if aBad || tempBad {
		d.damagePort(ps.N)
	}
	if ps.V, err = d.measurement(volts, path{port: i, name: "v"}, false); err != nil {
		return PortSample{}, err
	}
	if ps.A, err = d.measurement(amps, path{port: i, name: "a"}, charging); err != nil {
		return PortSample{}, err
	}
	if ps.W, err = d.measurement(watts, path{port: i, name: "w"}, false); err != nil {
		return PortSample{}, err
	}
	if ps.WH, err = d.measurement(wh, path{port: i, name: "wh"}, false); err != nil {
		return PortSample{}, err
	}
	if ps.TempC, err = d.measurement(temp, path{port: i, name: "temp_c"}, charging); err != nil {
		return PortSample{}, err
	}
	return ps, nil
}

// measurement decodes an optional port measurement. With safety set (a
// charging port's a or temp_c) the value is required, and any problem with
// it is recorded as the soft error and yields nil. Otherwise a problem is a
// field error, or a fatal one for a bare NaN token, which is returned.
func (d *decoder) measurement(v value, p path, safety bool) (*float64, *RejectError) {
	var err *RejectError
	if v.missing() {
		if !safety {
			return nil, nil
		}
		err = missing(p.String())
	} else {
		f, ferr := d.number(v, p)
		if ferr == nil {
			return d.float(f), nil
		}
		err = ferr
	}
	switch {
	case safety:
		if d.soft == nil {
			d.soft = err
		}
	case v.kind == valNonFinite:
		d.notFinite(p.String(), v)
		d.portError(err)
	default:
		d.portError(err)
	}
	return nil, nil
}

// broken reports whether an a or temp_c value does not validate: present
// but not a finite number, or missing while required (charging).
func (d *decoder) broken(v value, required bool) bool {
	if v.missing() {
		return required
	}
	if v.kind != valNumber {
		return true
	}
	_, ok := parseNumber(d.s.raw(v))
	return !ok
}

// partial builds, for a rejected telemetry message, the parts that
// validate, and says what did not.
func (d *decoder) partial(badVersion bool) (*Telemetry, *Damage) {
	m := &d.m
	t := &Telemetry{V: Version}
	dmg := &Damage{BadVersion: badVersion, Ports: d.dmgPorts}
	if ts, err := d.timestamp(m.ts); err == nil {
		t.TS = ts
	} else {
		dmg.NoTS = true
	}
	if seq, err := d.requiredInt(m.seq, "seq", 0, math.MaxUint32); err == nil {
		t.Seq = uint32(seq)
	} else {
		dmg.NoSeq = true
	}
	if !m.ambient.missing() {
		if f, err := d.number(m.ambient, path{port: -1, name: "ambient_c"}); err == nil {
			t.AmbientC = d.float(f)
		}
	}
	if m.smoke.kind == valBool {
		t.Smoke = B(m.smoke.b)
	}
	if !m.leak.missing() {
		if f, err := d.number(m.leak, path{port: -1, name: "leak_ma"}); err == nil {
			t.LeakMA = d.float(f)
		}
	}
	for _, ps := range d.telPorts {
		if ps.N >= 1 && ps.N <= MaxPort {
			t.Ports = append(t.Ports, ps)
		}
	}
	return t, dmg
}

func (d *decoder) portError(err *RejectError) {
	if d.portErr == nil {
		d.portErr = err
	}
}

// float returns a pointer to f, carving it from a per-message slab so that
// a 10-port message costs one allocation for its ~50 measurements instead
// of 50. A full slab is replaced, never grown, so earlier pointers stay
// valid.
func (d *decoder) float(f float64) *float64 {
	if len(d.floats) == cap(d.floats) {
		d.floats = make([]float64, 0, 64)
	}
	d.floats = append(d.floats, f)
	return &d.floats[len(d.floats)-1]
}

func (d *decoder) status() (*Status, *RejectError) {
	m := &d.m
	if m.online.missing() {
		return nil, missing("online")
	}
	if m.online.kind != valBool {
		return nil, wrongType(path{port: -1, name: "online"}, "a boolean", m.online)
	}
	st := &Status{V: Version, Online: m.online.b}
	var err *RejectError
	if !st.Online {
		// A death message is the pile's last will, set long before it is
		// sent: it needs only v and online, and whatever birth fields it
		// carries are meaningless and ignored. Only ts is kept.
		if !m.ts.missing() {
			st.TS, err = d.timestamp(m.ts)
		}
		return st, err
	}
	if st.TS, err = d.timestamp(m.ts); err != nil {
		return nil, err
	}
	ports, err := d.requiredInt(m.ports, "ports", 1, MaxPort)
	if err != nil {
		return nil, err
	}
	st.Ports = int(ports)
	if m.ratedA.missing() {
		return nil, missing("rated_a")
	}
	if st.RatedA, err = d.number(m.ratedA, path{port: -1, name: "rated_a"}); err != nil {
		return nil, err
	}
	if st.RatedA <= 0 {
		return nil, &RejectError{Reason: ReasonOutOfRange, Field: "rated_a", Detail: "rated_a must be > 0"}
	}
	if m.kind.missing() {
		return nil, missing("kind")
	}
	raw, err := d.stringBytes(m.kind, "kind")
	if err != nil {
		return nil, err
	}
	switch SiteKind(raw) {
	case SiteResidential, SiteOpenAir:
		st.Kind = SiteKind(raw)
	default:
		return nil, badValue("kind", raw, "residential, open_air")
	}
	if st.FW, err = d.optString(m.fw, "fw"); err != nil {
		return nil, err
	}
	return st, nil
}

func (d *decoder) telemetry() (*Telemetry, *RejectError) {
	m := &d.m
	t := &Telemetry{V: Version}
	var err *RejectError
	if t.TS, err = d.timestamp(m.ts); err != nil {
		return nil, err
	}
	seq, err := d.requiredInt(m.seq, "seq", 0, math.MaxUint32)
	if err != nil {
		return nil, err
	}
	t.Seq = uint32(seq)
	if m.ports.missing() {
		return nil, missing("ports")
	}
	if m.ports.kind != valArray {
		return nil, wrongType(path{port: -1, name: "ports"}, "an array", m.ports)
	}
	if !m.ambient.missing() {
		f, err := d.number(m.ambient, path{port: -1, name: "ambient_c"})
		if err != nil {
			return nil, err
		}
		t.AmbientC = d.float(f)
	}
	if !m.smoke.missing() {
		if m.smoke.kind != valBool {
			return nil, wrongType(path{port: -1, name: "smoke"}, "a boolean", m.smoke)
		}
		t.Smoke = B(m.smoke.b)
	}
	if !m.leak.missing() {
		f, err := d.number(m.leak, path{port: -1, name: "leak_ma"})
		if err != nil {
			return nil, err
		}
		t.LeakMA = d.float(f)
	}
	if d.portErr != nil {
		return nil, d.portErr
	}
	t.Ports = d.telPorts
	return t, nil
}

func (d *decoder) event() (*Event, *RejectError) {
	m := &d.m
	e := &Event{V: Version}
	var err *RejectError
	if e.TS, err = d.timestamp(m.ts); err != nil {
		return nil, err
	}
	port, err := d.requiredInt(m.port, "port", 0, MaxPort)
	if err != nil {
		return nil, err
	}
	e.Port = int(port)
	if m.kind.missing() {
		return nil, missing("kind")
	}
	raw, err := d.stringBytes(m.kind, "kind")
	if err != nil {
		return nil, err
	}
	switch k := EventKind(raw); k {
	case EventSmoke, EventPlugIn, EventPlugOut, EventLocalTrip, EventDoorOpen:
		e.Kind = k
	default:
		return nil, badValue("kind", raw, "smoke, plug_in, plug_out, local_trip, door_open")
	}
	if e.Detail, err = d.optString(m.detail, "detail"); err != nil {
		return nil, err
	}
	return e, nil
}

func (d *decoder) command() (*Command, *RejectError) {
	m := &d.m
	c := &Command{V: Version}
	var err *RejectError
	if c.ID, err = d.commandID(m.id); err != nil {
		return nil, err
	}
	if c.TS, err = d.timestamp(m.ts); err != nil {
		return nil, err
	}
	port, err := d.requiredInt(m.port, "port", 0, MaxPort)
	if err != nil {
		return nil, err
	}
	c.Port = int(port)
	if m.action.missing() {
		return nil, missing("action")
	}
	raw, err := d.stringBytes(m.action, "action")
	if err != nil {
		return nil, err
	}
	switch a := Action(raw); a {
	case ActionClose, ActionOpen:
		c.Action = a
	default:
		return nil, badValue("action", raw, "close, open")
	}
	if c.Reason, err = d.optString(m.reason, "reason"); err != nil {
		return nil, err
	}
	return c, nil
}

func (d *decoder) ack() (*Ack, *RejectError) {
	m := &d.m
	a := &Ack{V: Version}
	var err *RejectError
	if a.ID, err = d.commandID(m.id); err != nil {
		return nil, err
	}
	if !m.ts.missing() {
		if a.TS, err = d.timestamp(m.ts); err != nil {
			return nil, err
		}
	}
	port, err := d.requiredInt(m.port, "port", 0, MaxPort)
	if err != nil {
		return nil, err
	}
	a.Port = int(port)
	if m.ok.missing() {
		return nil, missing("ok")
	}
	if m.ok.kind != valBool {
		return nil, wrongType(path{port: -1, name: "ok"}, "a boolean", m.ok)
	}
	a.OK = m.ok.b
	if !m.state.missing() {
		if a.State, err = d.portState(m.state, path{port: -1, name: "state"}); err != nil {
			return nil, err
		}
	}
	if a.Err, err = d.optString(m.err, "err"); err != nil {
		return nil, err
	}
	return a, nil
}

// path names a field for a RejectError without building the string unless
// an error needs it: the happy path of ports must not allocate names.
type path struct {
	port int    // index into ports, or -1 for a top-level member
	name string // member name; empty for the port object itself
}

func (p path) String() string {
	if p.port < 0 {
		return p.name
	}
	s := "ports[" + strconv.Itoa(p.port) + "]"
	if p.name != "" {
		s += "." + p.name
	}
	return s
}

func missing(field string) *RejectError {
	return &RejectError{Reason: ReasonMissingField, Field: field, Detail: "required field " + field + " is missing"}
}

func wrongType(p path, want string, got value) *RejectError {
	return &RejectError{Reason: ReasonWrongType, Field: p.String(), Detail: "want " + want + ", got " + got.kind.article()}
}

func badValue(field string, got []byte, want string) *RejectError {
	return &RejectError{Reason: ReasonBadValue, Field: field, Detail: fmt.Sprintf("%q is not one of %s", truncate(string(got), 32), want)}
}

// parseNumber converts a JSON number literal. ok is false when the literal
// overflows float64 (1e999): JSON has no way to spell infinity, so an
// overflow is how a careless encoder writes one.
func parseNumber(raw []byte) (f float64, ok bool) {
	// Fast path for what piles send: up to 15 digits with an optional
	// fraction and no exponent (221.3, 1751371200000). Both the digits as
	// an integer and the power of ten are exact in a float64, so one IEEE
	// division gives the correctly rounded value, the same bits as
	// strconv.ParseFloat (Clinger's fast path, which strconv also takes,
	// after more bookkeeping).
	i, neg := 0, raw[0] == '-'
	if neg {
		i = 1
	}
	var mant uint64
	nd, frac := 0, -1
	for ; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c >= '0' && c <= '9':
			if nd++; nd > 15 {
				goto slow
			}
			mant = mant*10 + uint64(c-'0')
			if frac >= 0 {
				frac++
			}
		case c == '.':
			frac = 0
		default: // an exponent
			goto slow
		}
	}
	f = float64(mant)
	if frac > 0 {
		f /= pow10[frac]
	}
	if neg {
		f = -f
	}
	return f, true
slow:
	// The scanner has checked the literal, and every JSON number is valid
	// Go float syntax, so the only possible error is ErrRange. Underflow
	// (1e-999) rounds to 0 without an error, which is what it means.
	f, err := strconv.ParseFloat(string(raw), 64)
	return f, err == nil && !math.IsInf(f, 0)
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// number returns v as a finite number.
func (d *decoder) number(v value, p path) (float64, *RejectError) {
	switch v.kind {
	case valNumber:
		if f, ok := parseNumber(d.s.raw(v)); ok {
			return f, nil
		}
		return 0, &RejectError{Reason: ReasonNotFinite, Field: p.String(), Detail: fmt.Sprintf("%s overflows a float64", truncate(string(d.s.raw(v)), 24))}
	case valNonFinite:
		return 0, d.s.nonFinite(p.String(), v)
	}
	return 0, wrongType(p, "a number", v)
}

// integer returns v as an integer in lo..hi. A number with an integer value
// is an integer however it is written (3, 3.0, 0.3e1), as JSON does not
// tell integers and floats apart and many pile encoders only know doubles.
func (d *decoder) integer(v value, p path, lo, hi int64) (int64, *RejectError) {
	f, err := d.number(v, p)
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		return 0, &RejectError{Reason: ReasonOutOfRange, Field: p.String(), Detail: fmt.Sprintf("%s is not an integer in %d..%d", truncate(string(d.s.raw(v)), 24), lo, hi)}
	}
	return int64(f), nil
}

func (d *decoder) requiredInt(v value, field string, lo, hi int64) (int64, *RejectError) {
	if v.missing() {
		return 0, missing(field)
	}
	return d.integer(v, path{port: -1, name: field}, lo, hi)
}

// timestamp returns a required ts: Unix milliseconds, > 0.
func (d *decoder) timestamp(v value) (int64, *RejectError) {
	return d.requiredInt(v, "ts", 1, maxTS)
}

// stringBytes returns the unescaped contents of a string member. The result
// may point into the payload; convert it with string() to keep it.
func (d *decoder) stringBytes(v value, field string) ([]byte, *RejectError) {
	if v.kind != valString {
		return nil, wrongType(path{port: -1, name: field}, "a string", v)
	}
	if v.esc {
		return unescape(d.s.raw(v)), nil
	}
	return d.s.raw(v), nil
}

func (d *decoder) optString(v value, field string) (string, *RejectError) {
	if v.missing() {
		return "", nil
	}
	b, err := d.stringBytes(v, field)
	return string(b), err
}

func (d *decoder) portState(v value, p path) (PortState, *RejectError) {
	if v.kind != valString {
		if v.kind == valNonFinite {
			return "", d.s.nonFinite(p.String(), v)
		}
		return "", wrongType(p, "a string", v)
	}
	raw := d.s.raw(v)
	if v.esc {
		raw = unescape(raw)
	}
	// Converting in the switch lets the compiler compare without
	// allocating; the constants are returned, never the payload's bytes.
	switch string(raw) {
	case "idle":
		return StateIdle, nil
	case "charging":
		return StateCharging, nil
	case "closed":
		return StateClosed, nil
	case "fault":
		return StateFault, nil
	}
	return "", badValue(p.String(), raw, "idle, charging, closed, fault")
}

// validCommandID reports whether s is a valid command id: 1 to MaxIDLen
// bytes of visible ASCII (0x21-0x7E). Command ids are generated by the
// backend (UUIDs) and echoed by piles; the rule keeps spaces, control
// characters and unbounded text out of logs and storage while allowing any
// id scheme a vendor's test tool may use.
func validCommandID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func (d *decoder) commandID(v value) (string, *RejectError) {
	if v.missing() {
		return "", missing("id")
	}
	b, err := d.stringBytes(v, "id")
	if err != nil {
		return "", err
	}
	id := string(b)
	if !validCommandID(id) {
		return "", &RejectError{Reason: ReasonBadID, Field: "id", Detail: fmt.Sprintf("id %q is not 1 to %d visible ASCII characters", truncate(id, 80), MaxIDLen)}
	}
	return id, nil
}
