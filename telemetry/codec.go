package telemetry

import (
	"encoding/json"
	"time"
)

// Decode validates payload as a message of topic t's kind and returns it.
// The returned Message holds no reference to payload: the caller may reuse
// the buffer once Decode returns. Every failure is a *RejectError.
//
// TODO(decoder): full validation per docs/protocol.md is being written; this
// placeholder only unmarshals.
func Decode(t Topic, payload []byte, received time.Time) (Message, error) {
	m := Message{Topic: t, Received: received}
	var err error
	switch t.Kind {
	case KindStatus:
		m.Status = new(Status)
		err = json.Unmarshal(payload, m.Status)
	case KindTelemetry:
		m.Telemetry = new(Telemetry)
		err = json.Unmarshal(payload, m.Telemetry)
	case KindEvent:
		m.Event = new(Event)
		err = json.Unmarshal(payload, m.Event)
	case KindCmd:
		m.Command = new(Command)
		err = json.Unmarshal(payload, m.Command)
	case KindAck:
		m.Ack = new(Ack)
		err = json.Unmarshal(payload, m.Ack)
	}
	if err != nil {
		return Message{}, &RejectError{Reason: ReasonBadJSON, Detail: err.Error()}
	}
	return m, nil
}

// DecodeTopic parses topic under root and decodes payload as its kind.
func DecodeTopic(root, topic string, payload []byte, received time.Time) (Message, error) {
	t, err := ParseTopic(root, topic)
	if err != nil {
		return Message{}, err
	}
	return Decode(t, payload, received)
}

// Encode marshals a payload (*Status, *Telemetry, *Event, *Command, *Ack or
// their values) to protocol v1 JSON, setting "v" to Version when it is zero.
func Encode(v any) ([]byte, error) {
	switch p := v.(type) {
	case *Status:
		if p.V == 0 {
			p.V = Version
		}
	case *Telemetry:
		if p.V == 0 {
			p.V = Version
		}
	case *Event:
		if p.V == 0 {
			p.V = Version
		}
	case *Command:
		if p.V == 0 {
			p.V = Version
		}
	case *Ack:
		if p.V == 0 {
			p.V = Version
		}
	}
	return json.Marshal(v)
}
