package alerting

import (
	"time"

	"github.com/chargeguard/chargeguard/telemetry"
)

// Action is something the service must do because of what the engine saw:
// SendCommand, AlertFired, AlertResolved, Audit or Info. The caller owns the
// slices the engine returns; the engine keeps no reference to them.
type Action interface{ isAction() }

// SendCommand orders the service to publish Cmd (QoS 1) on Topic, built
// with telemetry.NewTopic from valid ids. Attempt is 1 for the first send
// and counts up on each resend of the same Cmd.ID. DetectedAt is when the
// condition behind it was detected (the receive time of the message that
// showed it, or the Tick that found it): the service measures
// detection-to-command latency from it, on Attempt 1.
type SendCommand struct {
	Topic      telemetry.Topic
	Cmd        telemetry.Command
	Attempt    int
	DetectedAt time.Time
}

// AlertFired is a new alert: post it to Alertmanager and keep re-posting
// it while it is active.
type AlertFired struct{ Alert Alert }

// AlertResolved is an alert that ended: post it once more with EndsAt set.
type AlertResolved struct{ Alert Alert }

// Audit is a record to store and log: every command, retry, ack, reset and
// refused reset.
type Audit struct{ Record AuditRecord }

// Info is an event worth storing that is not an alert: "full" (a port
// closed because its battery is full), "local_trip" and "door_open" events
// from the pile.
type Info struct {
	Kind   string    `json:"kind"`
	Site   string    `json:"site"`
	Pile   string    `json:"pile"`
	Port   int       `json:"port"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail,omitempty"`
}

func (SendCommand) isAction()   {}
func (AlertFired) isAction()    {}
func (AlertResolved) isAction() {}
func (Audit) isAction()         {}
func (Info) isAction()          {}

// AuditKind is what an audit record is about.
type AuditKind string

const (
	AuditCommand       AuditKind = "command"        // a command was sent for the first time
	AuditRetry         AuditKind = "retry"          // a command was resent with the same id
	AuditAck           AuditKind = "ack"            // the pile acked a command ok
	AuditAckFailed     AuditKind = "ack_failed"     // the pile acked a command not ok (or in the wrong state)
	AuditAckUnknown    AuditKind = "ack_unknown"    // an ack for no command this engine knows
	AuditCloseFailed   AuditKind = "close_failed"   // a close was never acked
	AuditOpenFailed    AuditKind = "open_failed"    // an open was never acked (the port stays closed)
	AuditOpenCanceled  AuditKind = "open_canceled"  // an open awaiting its ack was superseded by a newer close
	AuditReset         AuditKind = "reset"          // an operator reset a port
	AuditResetRefused  AuditKind = "reset_refused"  // an operator's reset was refused
	AuditAlertAck      AuditKind = "alert_ack"      // an operator acknowledged an alert
	AuditLatchReassert AuditKind = "latch_reassert" // a latched port's close was resent after the pile's birth
)

// AuditRecord says who (a rule, an operator, the pile) did what, why and
// when.
type AuditRecord struct {
	At   time.Time `json:"at"`
	Site string    `json:"site"`
	Pile string    `json:"pile"`
	Port int       `json:"port"`
	Kind AuditKind `json:"kind"`
	// Actor is "rule:<alertname>" (or "rule:full"), "operator:<name>" or
	// "pile".
	Actor     string           `json:"actor"`
	Reason    string           `json:"reason,omitempty"`
	CommandID string           `json:"command_id,omitempty"`
	Action    telemetry.Action `json:"action,omitempty"`
	Attempt   int              `json:"attempt,omitempty"`
	Detail    string           `json:"detail,omitempty"`
}
