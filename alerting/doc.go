// Package alerting is chargeguard's safety engine: it turns every decoded
// pile message into the actions that keep a charging port from starting a
// fire — close commands (tracked until acked, resent, escalated), alerts for
// on-call staff, and an audit of who did what and why.
//
// The Engine is pure and deterministic: it does no I/O, starts no goroutine
// and reads no clock. Time is an argument of every call, and what must happen
// comes back as a slice of Action values (SendCommand, AlertFired,
// AlertResolved, Audit, Info) that the service around it carries out: it
// publishes the commands over MQTT, posts the alerts to Alertmanager, stores
// the audit, and calls Tick regularly so that ack timeouts, staleness and the
// charging timers are evaluated even when no message arrives. One goroutine
// owns an Engine; it is not safe for concurrent use.
//
// Service runs the engine in that one goroutine. Readers never enter it:
// the Service publishes an immutable View of the engine's state (an
// atomic pointer swapped at most once per tick, re-rendering only the
// piles that changed), and Ports, PortsPage, Alerts, Audit and View read
// that. Only changes (Reset, AckAlert, Reload) run on the engine's
// goroutine, one at a time.
//
// The rules are the default safety policy of protocol v1
// (docs/protocol.md), configurable per site kind and per site (Rules). A port
// closed for safety stays latched: the engine never sends "open" on its own.
// Only Reset, an operator's request, reopens a port, and only once the
// condition that tripped it has cleared. Snapshot and Restore carry latches,
// open alerts and commands awaiting their ack across a restart.
//
// Scenario tests live in testdata/*.test; testdata/README.md describes their
// format.
package alerting
