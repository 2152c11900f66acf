// Package api is the operator HTTP API of the safety engine: it lets the
// people who run the charging sheds see every port's state and latch
// reason, the active and recent alerts and a port's command audit, and lets
// an authenticated operator acknowledge an alert, reset a latched port and
// reload the rules.
//
// The API never touches the engine directly. It calls a Guard, a small
// interface that the service owning the engine implements in a thread-safe
// way, and it checks everything that comes from the request before the
// Guard sees it: site and pile ids (telemetry.ValidID), port numbers
// (0..telemetry.MaxPort), alert keys, the request body (bounded, JSON) and,
// before any of those, the bearer token and its role.
//
// Tokens and roles come from the configuration (Token). A viewer may read;
// an operator may also reset, acknowledge and reload, and the operator's
// name in the audit is always the token's Name, never something the request
// says about itself. With tokens every request needs one; with none the
// API refuses every change ("no token, no change") and serves reads only
// when Options.AnonymousReads says so. Tokens are compared in constant
// time and never reach a log line, an error or a response.
//
// Reads (Guard.PortsPage, Alerts, Audit) are served from the engine's
// published view, never from the engine's goroutine; ports come in pages
// (limit, after) in the order site, pile, port. Lists are rendered in a
// bounded number of read slots so that readers never take every core
// from the safety engine.
//
// Every response is JSON. Errors have the form
//
//	{"error": "conflict", "reason": "condition_active", "detail": "..."}
//
// where error is the class (bad_request, unauthorized, forbidden,
// not_found, conflict, ...), reason a stable code for programs (for engine
// refusals the code of alerting.ErrorReason) and detail a text for people.
// docs/api.md describes every endpoint.
package api
