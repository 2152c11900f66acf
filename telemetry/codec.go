package telemetry

import (
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// Decode validates payload as a protocol v1 message of topic t's kind and
// returns it, stamped with t and received. t is trusted: it comes from
// ParseTopic or NewTopic, which have already checked its ids.
//
// Every failure is a *RejectError whose Reason says why and whose Field is
// the JSON path of the offending member (for example "ports[2].temp_c").
// Checks run in this order, and the first failing one decides the reason:
// size (too_large, before any parsing), UTF-8 (not_utf8), JSON syntax,
// nesting deeper than MaxDepth, a known member given twice, and bare NaN or
// Infinity tokens (bad_json, not_finite), then "v" (missing_field,
// unknown_version), then the fields of the kind.
//
// Safety exception: when the only thing wrong with a telemetry message is
// that a charging port's temp_c or a is missing, null, not finite (a bare
// NaN token, 1e999) or not a number, Decode returns both an error and a
// filled Message. The error is the *RejectError of the first such value
// (missing_field, not_finite or wrong_type), so storage rejects the message
// and counts it; Message.Invalid is that same *RejectError, and the bad
// values are nil in Message.Telemetry, so the safety engine still sees the
// charging port and can close it (sensor_fault). On every other failure the
// returned Message is the zero value.
//
// The returned Message holds no reference to payload: the caller may reuse
// the buffer once Decode returns. Decode is safe for concurrent use.
func Decode(t Topic, payload []byte, received time.Time) (Message, error) {
	if t.Kind == KindUnknown || int(t.Kind) >= len(kindNames) {
		return Message{}, &RejectError{Reason: ReasonBadTopic, Detail: "unknown message kind " + t.Kind.String()}
	}
	if len(payload) > MaxPayload {
		return Message{}, &RejectError{Reason: ReasonTooLarge, Detail: fmt.Sprintf("payload of %d bytes is over the %d byte limit", len(payload), MaxPayload)}
	}
	if !utf8.Valid(payload) {
		return Message{}, &RejectError{Reason: ReasonNotUTF8, Detail: "payload is not valid UTF-8"}
	}
	d := decoder{s: scanner{data: payload}, kind: t.Kind}
	m := Message{Topic: t, Received: received}
	if err := d.decode(&m); err != nil {
		switch {
		case m.Telemetry != nil:
			// Contract v1.1: the parts that validated still reach
			// the safety engine.
			m.Invalid = err
			return m, err
		case err.Reason == ReasonUnknownVersion:
			// No payload, but the engine must learn that this pile
			// speaks a version it cannot read (pile_protocol).
			return Message{Topic: t, Received: received, Invalid: err}, err
		}
		return Message{}, err
	}
	if d.soft != nil {
		m.Invalid = d.soft
		m.Damage = &Damage{Ports: d.dmgPorts}
		return m, d.soft
	}
	return m, nil
}

// DecodeTopic parses topic under root and decodes payload as its kind. A
// bad topic (bad_topic, bad_id) is reported before the payload is looked
// at.
func DecodeTopic(root, topic string, payload []byte, received time.Time) (Message, error) {
	t, err := ParseTopic(root, topic)
	if err != nil {
		return Message{}, err
	}
	return Decode(t, payload, received)
}

// Encode marshals a payload (*Status, *Telemetry, *Event, *Command, *Ack or
// their values) to protocol v1 JSON. A V of zero is encoded as Version; the
// caller's value is not modified.
//
// Encode refuses, with a *RejectError (possibly wrapped), any message that
// Decode would reject: non-finite floats, bad ids, unknown enum values,
// missing required fields, and so on. It does so by decoding its own output,
// so the encoder and the decoder cannot disagree about what is valid, and a
// simulator never sends invalid traffic by accident. A tool that sends
// invalid messages on purpose uses EncodeUnchecked, or writes raw bytes for
// what is not even JSON.
func Encode(v any) ([]byte, error) {
	kind, out, err := encode(v)
	if err != nil {
		return nil, err
	}
	if _, err := Decode(Topic{Kind: kind}, out, time.Time{}); err != nil {
		return nil, fmt.Errorf("telemetry: encode %s: %w", kind, err)
	}
	return out, nil
}

// EncodeUnchecked is Encode without the protocol checks: it writes any
// payload that JSON can represent (finite floats, UTF-8 strings), whether
// the backend would accept it or not. It is for simulators and tests that
// send a protocol violation on purpose, such as a charging port without
// temp_c; everything else must use Encode.
func EncodeUnchecked(v any) ([]byte, error) {
	_, out, err := encode(v)
	return out, err
}

// encode writes v as JSON after the checks that JSON itself needs.
func encode(v any) (Kind, []byte, error) {
	var p encodable
	switch x := v.(type) {
	case *Status:
		if x != nil {
			p = *x
		}
	case *Telemetry:
		if x != nil {
			p = *x
		}
	case *Event:
		if x != nil {
			p = *x
		}
	case *Command:
		if x != nil {
			p = *x
		}
	case *Ack:
		if x != nil {
			p = *x
		}
	case Status, Telemetry, Event, Command, Ack:
		p = x.(encodable)
	}
	if p == nil {
		return KindUnknown, nil, fmt.Errorf("telemetry: encode %T: not a protocol message", v)
	}
	kind, msg, err := p.encodable()
	if err != nil {
		return kind, nil, fmt.Errorf("telemetry: encode %s: %w", kind, err)
	}
	size := 256
	if t, ok := msg.(*Telemetry); ok {
		size = 128 + 128*len(t.Ports)
	}
	return kind, msg.appendJSON(make([]byte, 0, size)), nil
}

// encodable is a protocol payload that Encode can marshal.
type encodable interface {
	// encodable returns the kind of the payload and a copy of it with V
	// defaulted, after the checks that the decode of the output cannot
	// make: a float that JSON cannot spell, and a string that is not
	// UTF-8 (which encoding/json would silently repair to U+FFFD, so the
	// pile would receive something other than what the caller built).
	encodable() (Kind, appender, *RejectError)
}

// appender is a payload that writes itself as JSON (encode.go).
type appender interface {
	appendJSON(b []byte) []byte
}

func (s Status) encodable() (Kind, appender, *RejectError) {
	s.V = defaultVersion(s.V)
	return KindStatus, &s, firstErr(finite(top("rated_a"), &s.RatedA), utf8Field(top("fw"), s.FW), utf8Field(top("kind"), string(s.Kind)))
}

func (t Telemetry) encodable() (Kind, appender, *RejectError) {
	t.V = defaultVersion(t.V)
	if err := firstErr(finite(top("ambient_c"), t.AmbientC), finite(top("leak_ma"), t.LeakMA)); err != nil {
		return KindTelemetry, nil, err
	}
	for i := range t.Ports {
		p := &t.Ports[i]
		err := firstErr(
			finite(path{port: i, name: "v"}, p.V),
			finite(path{port: i, name: "a"}, p.A),
			finite(path{port: i, name: "w"}, p.W),
			finite(path{port: i, name: "wh"}, p.WH),
			finite(path{port: i, name: "temp_c"}, p.TempC),
			utf8Field(path{port: i, name: "state"}, string(p.State)),
		)
		if err != nil {
			return KindTelemetry, nil, err
		}
	}
	return KindTelemetry, &t, nil
}

func (e Event) encodable() (Kind, appender, *RejectError) {
	e.V = defaultVersion(e.V)
	return KindEvent, &e, firstErr(utf8Field(top("kind"), string(e.Kind)), utf8Field(top("detail"), e.Detail))
}

func (c Command) encodable() (Kind, appender, *RejectError) {
	c.V = defaultVersion(c.V)
	return KindCmd, &c, firstErr(utf8Field(top("id"), c.ID), utf8Field(top("action"), string(c.Action)), utf8Field(top("reason"), c.Reason))
}

func (a Ack) encodable() (Kind, appender, *RejectError) {
	a.V = defaultVersion(a.V)
	return KindAck, &a, firstErr(utf8Field(top("id"), a.ID), utf8Field(top("state"), string(a.State)), utf8Field(top("err"), a.Err))
}

// top names a top-level member.
func top(name string) path { return path{port: -1, name: name} }

func defaultVersion(v int) int {
	if v == 0 {
		return Version
	}
	return v
}

func finite(p path, f *float64) *RejectError {
	if f != nil && (math.IsNaN(*f) || math.IsInf(*f, 0)) {
		return &RejectError{Reason: ReasonNotFinite, Field: p.String(), Detail: fmt.Sprintf("%v is not a finite number", *f)}
	}
	return nil
}

func utf8Field(p path, s string) *RejectError {
	if !utf8.ValidString(s) {
		return &RejectError{Reason: ReasonNotUTF8, Field: p.String(), Detail: "string is not valid UTF-8"}
	}
	return nil
}

func firstErr(errs ...*RejectError) *RejectError {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
