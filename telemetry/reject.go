package telemetry

import "fmt"

// Reason is why a message was rejected. The set is small and fixed so it can
// be a metric label and a storage tag without ever carrying message content.
type Reason string

const (
	ReasonBadJSON        Reason = "bad_json"        // not a JSON object, or nested too deep
	ReasonBadID          Reason = "bad_id"          // a site or pile id breaks the alphabet
	ReasonBadTopic       Reason = "bad_topic"       // topic not of the form root/site/pile/kind
	ReasonMissingField   Reason = "missing_field"   // a required field is absent
	ReasonWrongType      Reason = "wrong_type"      // a field has the wrong JSON type
	ReasonNotFinite      Reason = "not_finite"      // a number is NaN, ±Inf or overflows
	ReasonOutOfRange     Reason = "out_of_range"    // a number outside its domain (port 0..64, negative seq...)
	ReasonBadValue       Reason = "bad_value"       // an enum (state, kind, action) with an unknown value
	ReasonTooLarge       Reason = "too_large"       // payload over MaxPayload
	ReasonUnknownVersion Reason = "unknown_version" // "v" is not 1
	ReasonNotUTF8        Reason = "not_utf8"        // payload is not valid UTF-8
)

// Reasons lists every Reason, for pre-creating metric series.
var Reasons = []Reason{
	ReasonBadJSON, ReasonBadID, ReasonBadTopic, ReasonMissingField, ReasonWrongType,
	ReasonNotFinite, ReasonOutOfRange, ReasonBadValue, ReasonTooLarge,
	ReasonUnknownVersion, ReasonNotUTF8,
}

// RejectError is the error for a message that breaks the protocol. Detail is
// for humans and logs; it may quote at most a short, truncated piece of the
// offending input.
type RejectError struct {
	Reason Reason
	Field  string // JSON path of the offending field, e.g. "ports[2].temp_c"; empty when not about one field
	Detail string
}

func (e *RejectError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: field %s: %s", e.Reason, e.Field, e.Detail)
	}
	return fmt.Sprintf("%s: %s", e.Reason, e.Detail)
}
