package alerting

import "errors"

// Errors of Reset, Ack and Restore. They are sentinels: test with
// errors.Is; the returned error wraps them with the detail (which reading
// still breaks which threshold). ErrorReason maps them to short codes for
// the API.
var (
	ErrNoOperator      = errors.New("no operator: every change needs an authenticated operator")
	ErrUnknownPile     = errors.New("unknown pile")
	ErrBadPort         = errors.New("port out of range")
	ErrNotLatched      = errors.New("port is not latched or closed")
	ErrPileLatched     = errors.New("the whole pile is latched: reset port 0 first")
	ErrConditionActive = errors.New("the condition that tripped the port has not cleared")
	ErrCommandPending  = errors.New("a command to this pile is still awaiting its ack")
	ErrPileOffline     = errors.New("the pile is offline")
	ErrUnknownAlert    = errors.New("no such active alert")
	ErrNotEmpty        = errors.New("restore into an engine that already holds state")
	ErrBadState        = errors.New("invalid state")
)

var reasons = []struct {
	err  error
	code string
}{
	{ErrNoOperator, "no_operator"},
	{ErrUnknownPile, "unknown_pile"},
	{ErrBadPort, "bad_port"},
	{ErrNotLatched, "not_latched"},
	{ErrPileLatched, "pile_latched"},
	{ErrConditionActive, "condition_active"},
	{ErrCommandPending, "command_pending"},
	{ErrPileOffline, "pile_offline"},
	{ErrUnknownAlert, "unknown_alert"},
	{ErrNotEmpty, "not_empty"},
	{ErrBadState, "bad_state"},
}

// ErrorReason returns the short code of one of the sentinel errors above
// (e.g. "condition_active"), for JSON error bodies and audit records, or
// "internal" for anything else.
func ErrorReason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.code
		}
	}
	return "internal"
}
