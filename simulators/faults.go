package simulators

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/chargeguard/chargeguard/telemetry"
)

// FaultKind names a failure the simulator can inject.
type FaultKind string

const (
	// FaultLooseContact: the plug's contact resistance grows, so the socket
	// heats at normal current, crossing 55 then 70 °C. Value is the
	// temperature it heads for (default 95 °C), Ramp how long the
	// resistance takes to grow (default 8 min).
	FaultLooseContact FaultKind = "loose_contact"
	// FaultOvercurrent: a modified high-power charger draws Value x rated
	// (default 1.2) for as long as it is allowed to.
	FaultOvercurrent FaultKind = "overcurrent"
	// FaultShortCircuit: the charger fails short and draws Value x rated
	// (default 2.5). With Trip, the pile's own protection opens the port
	// after the first such sample (state fault, local_trip event).
	FaultShortCircuit FaultKind = "short_circuit"
	// FaultThermalRunaway: the battery on the port heads into thermal
	// runaway: the socket temperature rises Value °C/min (default 20) with
	// an erratic power draw, until the port stops conducting.
	FaultThermalRunaway FaultKind = "thermal_runaway"
	// FaultLeakage: rain reaches an open-air pile; its residual current
	// ramps over Ramp (default 1 min) to Value mA (default 45).
	FaultLeakage FaultKind = "leakage"
	// FaultSmoke: the pile's smoke detector fires. Via is "telemetry"
	// (smoke=true in telemetry), "event" (a smoke event) or "both"
	// (default).
	FaultSmoke FaultKind = "smoke"
	// FaultSensorStuck: the port's temperature sensor keeps reporting the
	// value it read when the fault started.
	FaultSensorStuck FaultKind = "sensor_stuck"
	// FaultSensorMissing: the port reports no temp_c at all. While the
	// port is charging this makes the telemetry invalid, deliberately.
	FaultSensorMissing FaultKind = "sensor_missing"
	// FaultSensorRange: the sensor reads Value °C (default 180; use -60 for
	// a broken-wire reading), outside -40..150.
	FaultSensorRange FaultKind = "sensor_out_of_range"
	// FaultWeldedRelay: the port's relay is welded: a close is acked ok,
	// state closed, but current keeps flowing. A port-0 close (the main
	// contactor) still cuts it.
	FaultWeldedRelay FaultKind = "welded_relay"
	// FaultLostAcks: commands are executed but their acks never leave
	// the pile, for For (default: to the end of the run).
	FaultLostAcks FaultKind = "lost_acks"
	// FaultLateAcks: acks leave Delay (default 5 s, wall clock) late.
	FaultLateAcks FaultKind = "late_acks"
	// FaultNetworkLoss: the pile's TCP connection drops without a
	// DISCONNECT, so the broker publishes its last will; it reconnects
	// after For (default 1 min, simulated time) with a new birth.
	FaultNetworkLoss FaultKind = "network_loss"
	// FaultDuplicate: the next Count (default 1) telemetry messages are
	// sent twice with the same seq.
	FaultDuplicate FaultKind = "duplicate_telemetry"
	// FaultReorder: Count (default 1) times, telemetry seq n+1 is sent
	// before seq n.
	FaultReorder FaultKind = "reorder_telemetry"
	// FaultClockSkew: the pile's clock jumps by Offset (default +10 min).
	FaultClockSkew FaultKind = "clock_skew"
	// FaultHotContact: a burnt plug heats its socket to Value kelvin
	// (default 35) above the enclosure: in cold weather this stays below
	// 70 °C, so only the hot_contact warning applies.
	FaultHotContact FaultKind = "hot_contact"
	// FaultLongSession: a battery that never fills: the port charges at a
	// steady Value W (default 220) for more than 8 h.
	FaultLongSession FaultKind = "long_session"
	// FaultFullBattery: a charger that keeps trickling Value W (default 8)
	// into a full battery, and a pile without auto-stop: the port stays
	// charging at <= 15 W.
	FaultFullBattery FaultKind = "full_battery"
	// FaultMalformed: the pile sends Count (default 1) malformed messages
	// of kind Payload; each is rejected by the decoder for the reason
	// MalformedReason gives.
	FaultMalformed FaultKind = "malformed"
)

// FaultKinds lists every FaultKind.
var FaultKinds = []FaultKind{
	FaultLooseContact, FaultOvercurrent, FaultShortCircuit, FaultThermalRunaway, FaultLeakage,
	FaultSmoke, FaultSensorStuck, FaultSensorMissing, FaultSensorRange, FaultWeldedRelay,
	FaultLostAcks, FaultLateAcks, FaultNetworkLoss, FaultDuplicate, FaultReorder, FaultClockSkew,
	FaultHotContact, FaultLongSession, FaultFullBattery, FaultMalformed,
}

// portFaults need a port (not 0) and a charging session on it.
var portFaults = map[FaultKind]bool{
	FaultLooseContact: true, FaultOvercurrent: true, FaultShortCircuit: true, FaultThermalRunaway: true,
	FaultSensorStuck: true, FaultSensorMissing: true, FaultSensorRange: true, FaultWeldedRelay: true,
	FaultHotContact: true, FaultLongSession: true, FaultFullBattery: true,
}

// Fault is one failure injected on a port or a pile at a time.
type Fault struct {
	Kind FaultKind `yaml:"kind"`
	// Target is "site/pile/port" or "site/pile" (the whole pile).
	Target string `yaml:"target"`
	// At is when the fault starts, from the start of the run (simulated).
	At Duration `yaml:"at"`
	// For is how long it lasts (simulated; 0: to the end of the run).
	For Duration `yaml:"for,omitempty"`
	// Value, Ramp, Delay, Offset, Count, Via, Trip and Payload are
	// kind-specific; see the FaultKind constants.
	Value   *float64  `yaml:"value,omitempty"`
	Ramp    Duration  `yaml:"ramp,omitempty"`
	Delay   Duration  `yaml:"delay,omitempty"`
	Offset  Duration  `yaml:"offset,omitempty"`
	Count   int       `yaml:"count,omitempty"`
	Via     string    `yaml:"via,omitempty"`
	Trip    bool      `yaml:"trip,omitempty"`
	Payload Malformed `yaml:"payload,omitempty"`
}

// Target is a parsed fault target.
type Target struct {
	Site, Pile string
	Port       int // 0: the whole pile
}

// Key is "site/pile".
func (t Target) Key() string { return t.Site + "/" + t.Pile }

func (t Target) String() string {
	if t.Port == 0 {
		return t.Key()
	}
	return fmt.Sprintf("%s/%d", t.Key(), t.Port)
}

// ParseTarget parses "site/pile" or "site/pile/port".
func ParseTarget(s string) (Target, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return Target{}, fmt.Errorf("target %q: want site/pile or site/pile/port", s)
	}
	t := Target{Site: parts[0], Pile: parts[1]}
	if !telemetry.ValidID(t.Site) || !telemetry.ValidID(t.Pile) {
		return Target{}, fmt.Errorf("target %q: ids must match [A-Za-z0-9_-]{1,64}", s)
	}
	if len(parts) == 3 {
		n, err := strconv.Atoi(parts[2])
		if err != nil || n < 0 || n > telemetry.MaxPort {
			return Target{}, fmt.Errorf("target %q: port must be 0..%d", s, telemetry.MaxPort)
		}
		t.Port = n
	}
	return t, nil
}

// value returns f.Value or def.
func (f *Fault) value(def float64) float64 {
	if f.Value != nil {
		return *f.Value
	}
	return def
}

func (f *Fault) dur(d Duration, def time.Duration) time.Duration {
	if d > 0 {
		return time.Duration(d)
	}
	return def
}

// Validate checks the fault on its own (not against a fleet).
func (f *Fault) Validate() error {
	known := false
	for _, k := range FaultKinds {
		known = known || k == f.Kind
	}
	if !known {
		return fmt.Errorf("kind: unknown fault %q", f.Kind)
	}
	t, err := ParseTarget(f.Target)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if portFaults[f.Kind] && t.Port == 0 {
		return fmt.Errorf("target: %s needs a port (site/pile/port)", f.Kind)
	}
	if f.At < 0 || f.For < 0 {
		return errors.New("at/for: negative duration")
	}
	if f.Kind == FaultMalformed {
		if _, ok := malformedReasons[f.Payload]; !ok {
			return fmt.Errorf("payload: unknown malformed kind %q", f.Payload)
		}
	}
	if f.Kind == FaultSmoke && f.Via != "" && f.Via != "telemetry" && f.Via != "event" && f.Via != "both" {
		return fmt.Errorf("via: %q is not telemetry, event or both", f.Via)
	}
	return nil
}

// ParseFault parses the command-line form kind@target@at[@key=value,...],
// e.g. "loose_contact@chunbo-nanyuan/p01/3@10m" or
// "malformed@baimahu/p01@30s@payload=nan,count=2". Keys are the YAML field
// names of Fault.
func ParseFault(s string) (Fault, error) {
	parts := strings.Split(s, "@")
	if len(parts) < 3 || len(parts) > 4 {
		return Fault{}, fmt.Errorf("fault %q: want kind@site/pile[/port]@at[@key=value,...]", s)
	}
	at, err := time.ParseDuration(parts[2])
	if err != nil {
		return Fault{}, fmt.Errorf("fault %q: at: %w", s, err)
	}
	f := Fault{Kind: FaultKind(parts[0]), Target: parts[1], At: Duration(at)}
	if len(parts) == 4 {
		for _, kv := range strings.Split(parts[3], ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return Fault{}, fmt.Errorf("fault %q: option %q is not key=value", s, kv)
			}
			if err := f.set(k, v); err != nil {
				return Fault{}, fmt.Errorf("fault %q: %s: %w", s, k, err)
			}
		}
	}
	if err := f.Validate(); err != nil {
		return Fault{}, fmt.Errorf("fault %q: %w", s, err)
	}
	return f, nil
}

func (f *Fault) set(k, v string) error {
	d := func(dst *Duration) error {
		x, err := time.ParseDuration(v)
		*dst = Duration(x)
		return err
	}
	switch k {
	case "for":
		return d(&f.For)
	case "ramp":
		return d(&f.Ramp)
	case "delay":
		return d(&f.Delay)
	case "offset":
		return d(&f.Offset)
	case "value":
		x, err := strconv.ParseFloat(v, 64)
		f.Value = &x
		return err
	case "count":
		n, err := strconv.Atoi(v)
		f.Count = n
		return err
	case "via":
		f.Via = v
	case "trip":
		b, err := strconv.ParseBool(v)
		f.Trip = b
		return err
	case "payload":
		f.Payload = Malformed(v)
	default:
		return errors.New("unknown option")
	}
	return nil
}

// Malformed names a kind of malformed message a pile can send.
type Malformed string

const (
	MalformedBadJSON        Malformed = "bad_json"         // truncated JSON
	MalformedNotObject      Malformed = "not_object"       // a JSON array
	MalformedNaN            Malformed = "nan"              // a NaN token where a number belongs
	MalformedOverflow       Malformed = "overflow"         // 1e999
	MalformedWrongType      Malformed = "wrong_type"       // "ts":"yesterday"
	MalformedMissingSeq     Malformed = "missing_seq"      // no seq
	MalformedUnknownVersion Malformed = "unknown_version"  // "v":2
	MalformedTooLarge       Malformed = "too_large"        // 1 MiB
	MalformedBadState       Malformed = "bad_state"        // "state":"melting"
	MalformedBadPort        Malformed = "bad_port"         // "n":99
	MalformedNegativeSeq    Malformed = "negative_seq"     // "seq":-1
	MalformedNotUTF8        Malformed = "not_utf8"         // invalid UTF-8 bytes
	MalformedHostilePlus    Malformed = "hostile_id_plus"  // site "a+b" in the topic
	MalformedHostileHash    Malformed = "hostile_id_hash"  // pile "a#b" in the topic
	MalformedHostileSpace   Malformed = "hostile_id_space" // site "a b"
	MalformedHostileComma   Malformed = "hostile_id_comma" // pile "a,b"
	MalformedHostileSlash   Malformed = "hostile_id_slash" // pile "a/b": an extra topic level
	MalformedHostileLong    Malformed = "hostile_id_long"  // a 65-character site id
)

// malformedReasons is the rejection each malformed kind must get from
// telemetry.DecodeTopic.
var malformedReasons = map[Malformed]telemetry.Reason{
	MalformedBadJSON:        telemetry.ReasonBadJSON,
	MalformedNotObject:      telemetry.ReasonBadJSON,
	MalformedNaN:            telemetry.ReasonNotFinite,
	MalformedOverflow:       telemetry.ReasonNotFinite,
	MalformedWrongType:      telemetry.ReasonWrongType,
	MalformedMissingSeq:     telemetry.ReasonMissingField,
	MalformedUnknownVersion: telemetry.ReasonUnknownVersion,
	MalformedTooLarge:       telemetry.ReasonTooLarge,
	MalformedBadState:       telemetry.ReasonBadValue,
	MalformedBadPort:        telemetry.ReasonOutOfRange,
	MalformedNegativeSeq:    telemetry.ReasonOutOfRange,
	MalformedNotUTF8:        telemetry.ReasonNotUTF8,
	MalformedHostilePlus:    telemetry.ReasonBadID,
	MalformedHostileHash:    telemetry.ReasonBadID,
	MalformedHostileSpace:   telemetry.ReasonBadID,
	MalformedHostileComma:   telemetry.ReasonBadID,
	MalformedHostileSlash:   telemetry.ReasonBadID,
	MalformedHostileLong:    telemetry.ReasonBadID,
}

// MalformedKinds lists every Malformed kind.
var MalformedKinds = []Malformed{
	MalformedBadJSON, MalformedNotObject, MalformedNaN, MalformedOverflow, MalformedWrongType,
	MalformedMissingSeq, MalformedUnknownVersion, MalformedTooLarge, MalformedBadState,
	MalformedBadPort, MalformedNegativeSeq, MalformedNotUTF8, MalformedHostilePlus,
	MalformedHostileHash, MalformedHostileSpace, MalformedHostileComma, MalformedHostileSlash,
	MalformedHostileLong,
}

// MalformedReason is the rejection reason the decoder must give for m.
func MalformedReason(m Malformed) (telemetry.Reason, bool) {
	r, ok := malformedReasons[m]
	return r, ok
}

// MalformedMessage builds malformed message m as pile (site, pile) would
// send it at ts: the topic and the payload.
func MalformedMessage(m Malformed, root, site, pile string, ts int64, seq uint32) (topic string, payload []byte) {
	topic = root + "/" + site + "/" + pile + "/telemetry"
	hostile := func(s, p string) string { return root + "/" + s + "/" + p + "/telemetry" }
	good := fmt.Sprintf(`{"v":1,"ts":%d,"seq":%d,"ports":[{"n":1,"state":"idle","a":0,"temp_c":20.5}]}`, ts, seq)
	switch m {
	case MalformedBadJSON:
		payload = []byte(fmt.Sprintf(`{"v":1,"ts":%d,"seq":%d,"ports":[{"n":1,"st`, ts, seq))
	case MalformedNotObject:
		payload = []byte(`[1,2,3]`)
	case MalformedNaN:
		payload = []byte(fmt.Sprintf(`{"v":1,"ts":%d,"seq":%d,"ports":[{"n":1,"state":"charging","a":NaN,"temp_c":30.1}]}`, ts, seq))
	case MalformedOverflow:
		payload = []byte(fmt.Sprintf(`{"v":1,"ts":%d,"seq":%d,"ports":[{"n":1,"state":"charging","a":1.2,"temp_c":1e999}]}`, ts, seq))
	case MalformedWrongType:
		payload = []byte(fmt.Sprintf(`{"v":1,"ts":"yesterday","seq":%d,"ports":[{"n":1,"state":"idle"}]}`, seq))
	case MalformedMissingSeq:
		payload = []byte(fmt.Sprintf(`{"v":1,"ts":%d,"ports":[{"n":1,"state":"idle"}]}`, ts))
	case MalformedUnknownVersion:
		payload = []byte(fmt.Sprintf(`{"v":2,"ts":%d,"seq":%d,"ports":[{"n":1,"state":"idle"}]}`, ts, seq))
	case MalformedTooLarge:
		// A syntactically valid message padded to 1 MiB with an unknown
		// field: only its size is wrong.
		pad := strings.Repeat("x", 1<<20)
		payload = []byte(fmt.Sprintf(`{"v":1,"ts":%d,"seq":%d,"pad":"%s","ports":[{"n":1,"state":"idle"}]}`, ts, seq, pad))
	case MalformedBadState:
		payload = []byte(fmt.Sprintf(`{"v":1,"ts":%d,"seq":%d,"ports":[{"n":1,"state":"melting"}]}`, ts, seq))
	case MalformedBadPort:
		payload = []byte(fmt.Sprintf(`{"v":1,"ts":%d,"seq":%d,"ports":[{"n":99,"state":"idle"}]}`, ts, seq))
	case MalformedNegativeSeq:
		payload = []byte(fmt.Sprintf(`{"v":1,"ts":%d,"seq":-1,"ports":[{"n":1,"state":"idle"}]}`, ts))
	case MalformedNotUTF8:
		payload = []byte(fmt.Sprintf(`{"v":1,"ts":%d,"seq":%d,"fw":"`, ts, seq) + "\xff\xfe" + `","ports":[{"n":1,"state":"idle"}]}`)
	case MalformedHostilePlus:
		topic, payload = hostile("a+b", pile), []byte(good)
	case MalformedHostileHash:
		topic, payload = hostile(site, "a#b"), []byte(good)
	case MalformedHostileSpace:
		topic, payload = hostile("a b", pile), []byte(good)
	case MalformedHostileComma:
		topic, payload = hostile(site, "a,b"), []byte(good)
	case MalformedHostileSlash:
		topic, payload = hostile(site, "a/b"), []byte(good)
	case MalformedHostileLong:
		topic, payload = hostile(strings.Repeat("s", telemetry.MaxIDLen+1), pile), []byte(good)
	default:
		payload = []byte(good)
	}
	return topic, payload
}

// brokerRefuses reports whether an MQTT broker must refuse a PUBLISH to
// topic: wildcards are not allowed in topic names (MQTT 3.1.1, 4.7.1), and
// Mosquitto disconnects a client that tries. Such messages go out on a
// throwaway connection so the pile's own connection survives.
func brokerRefuses(topic string) bool { return strings.ContainsAny(topic, "+#") }
