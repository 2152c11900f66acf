package telemetry

import (
	"fmt"
	"time"
)

// Version is the protocol version every message carries in its "v" field.
const Version = 1

// MaxPayload is the largest payload accepted, in bytes. Larger payloads are
// rejected with ReasonTooLarge before any parsing.
const MaxPayload = 64 << 10

// MaxPort is the highest port number a pile may have.
const MaxPort = 64

// DefaultRoot is the default topic root.
const DefaultRoot = "chargers"

// Kind is the kind of a message, given by the last level of its topic.
type Kind uint8

const (
	KindUnknown Kind = iota
	KindStatus
	KindTelemetry
	KindEvent
	KindCmd
	KindAck
)

var kindNames = [...]string{"unknown", "status", "telemetry", "event", "cmd", "ack"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// PortState is the state of one port's relay as the pile reports it.
type PortState string

const (
	StateIdle     PortState = "idle"
	StateCharging PortState = "charging"
	StateClosed   PortState = "closed" // relay open by order of the backend
	StateFault    PortState = "fault"  // the pile's own protection tripped
)

// SiteKind is the kind of site a pile stands in.
type SiteKind string

const (
	SiteResidential SiteKind = "residential"
	SiteOpenAir     SiteKind = "open_air"
)

// EventKind is what an event reports.
type EventKind string

const (
	EventSmoke     EventKind = "smoke"
	EventPlugIn    EventKind = "plug_in"
	EventPlugOut   EventKind = "plug_out"
	EventLocalTrip EventKind = "local_trip"
	EventDoorOpen  EventKind = "door_open"
)

// Action is what a command orders.
type Action string

const (
	ActionClose Action = "close"
	ActionOpen  Action = "open"
)

// Status is a pile's birth (Online true) or death (Online false) message,
// published retained on the status topic. A death carries only V and Online;
// the other fields are zero then.
type Status struct {
	V      int      `json:"v"`
	TS     int64    `json:"ts,omitempty"`
	Online bool     `json:"online"`
	Ports  int      `json:"ports,omitempty"`
	RatedA float64  `json:"rated_a,omitempty"`
	FW     string   `json:"fw,omitempty"`
	Kind   SiteKind `json:"kind,omitempty"`
}

// Telemetry is one periodic reading of a pile and all its ports.
type Telemetry struct {
	V   int    `json:"v"`
	TS  int64  `json:"ts"`
	Seq uint32 `json:"seq"`
	// AmbientC, LeakMA and Smoke are optional; nil means not reported.
	AmbientC *float64     `json:"ambient_c,omitempty"`
	Smoke    *bool        `json:"smoke,omitempty"`
	LeakMA   *float64     `json:"leak_ma,omitempty"`
	Ports    []PortSample `json:"ports"`
}

// PortSample is one port's reading inside a Telemetry message. The optional
// measurements are nil when the pile did not report them; A and TempC are
// always set when State is StateCharging (the decoder enforces it).
type PortSample struct {
	N     int       `json:"n"`
	State PortState `json:"state"`
	V     *float64  `json:"v,omitempty"`
	A     *float64  `json:"a,omitempty"`
	W     *float64  `json:"w,omitempty"`
	WH    *float64  `json:"wh,omitempty"`
	TempC *float64  `json:"temp_c,omitempty"`
}

// Event is something that happened at a pile now. Port 0 means the whole pile.
type Event struct {
	V      int       `json:"v"`
	TS     int64     `json:"ts"`
	Port   int       `json:"port"`
	Kind   EventKind `json:"kind"`
	Detail string    `json:"detail,omitempty"`
}

// Command is an order from the backend to a pile. Port 0 means every port.
// A retry of a command reuses its ID; a pile executes an ID at most once.
type Command struct {
	V      int    `json:"v"`
	ID     string `json:"id"`
	TS     int64  `json:"ts"`
	Port   int    `json:"port"`
	Action Action `json:"action"`
	Reason string `json:"reason,omitempty"`
}

// Ack is a pile's answer to one Command.
type Ack struct {
	V     int       `json:"v"`
	ID    string    `json:"id"`
	TS    int64     `json:"ts,omitempty"`
	Port  int       `json:"port"`
	OK    bool      `json:"ok"`
	State PortState `json:"state,omitempty"`
	Err   string    `json:"err,omitempty"`
}

// Message is one decoded, validated message with where and when it came
// from. Exactly one of the payload pointers is set, matching Topic.Kind.
type Message struct {
	Topic    Topic
	Received time.Time

	Status    *Status
	Telemetry *Telemetry
	Event     *Event
	Command   *Command
	Ack       *Ack

	// Invalid is set when the message breaks the protocol only in a way the
	// safety engine must still see: a charging port whose temp_c or a is
	// missing, null, not finite or not a number. Storage rejects such a
	// message (it is counted and kept as rejected), but the engine gets it,
	// with the bad values nil, so that it can apply its fail-safe close
	// (sensor_fault). Decode returns the same *RejectError as its error.
	//
	// Contract v1.1 widens this to every telemetry message that is not
	// broken beyond parsing (see Damage): Invalid is the reason storage
	// rejects it, and Telemetry holds every part that validated.
	Invalid *RejectError
	// Damage, set only with Invalid on a telemetry message, says which
	// parts did not validate, so that the safety engine knows what it
	// cannot trust. For other kinds, an Invalid message with no payload
	// set is one of an unknown protocol version.
	Damage *Damage

	// Retained is set when the broker delivered the message because it
	// was retained (a status re-delivered on a new subscription), not
	// because the pile just published it.
	Retained bool
}

// Damage describes what did not validate in a telemetry message that is
// otherwise parseable JSON. The engine acts on the parts that did: the
// pile-level fields that parsed, and every port entry whose n parsed.
type Damage struct {
	// BadVersion: v is not this backend's version. The message is read as
	// version 1, as far as it goes.
	BadVersion bool `json:"bad_version,omitempty"`
	// NoSeq, NoTS: seq or ts is missing or broken, so the message cannot
	// be placed in the pile's stream or on its clock.
	NoSeq bool `json:"no_seq,omitempty"`
	NoTS  bool `json:"no_ts,omitempty"`
	// Ports has bit n-1 set when port n's entry has a broken state, a or
	// temp_c (a missing a or temp_c on a charging port included). A
	// broken v, w or wh costs only the storage of the message and is not
	// marked. Entries whose n is broken are left out of Telemetry.Ports.
	Ports uint64 `json:"ports,omitempty"`
}

// PortBroken reports whether port n's state, a or temp_c is broken.
func (d *Damage) PortBroken(n int) bool {
	return d != nil && n >= 1 && n <= MaxPort && d.Ports&(1<<(n-1)) != 0
}

// F returns a pointer to v, for building optional fields.
func F(v float64) *float64 { return &v }

// B returns a pointer to v, for building optional fields.
func B(v bool) *bool { return &v }
