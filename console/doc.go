// Package console is chargeguard's on-call web console: server-rendered
// pages of the fleet, a site's port grid, a port (chart, latch reason,
// audit, reset) and the alerts (acknowledge, "on site", notes), kept live
// over server-sent events, behind a sign-in with the operator API's tokens.
//
// The console never touches the safety engine directly. It reads through the
// same service methods as the operator API, once per poll interval however
// many browsers are open, and renders every page from that one read: a busy
// console costs the engine one read a second, not one per viewer. Changes
// (reset, acknowledge, on site, note) go through the same service methods,
// with the signed-in operator's name, so they land in the engine's audit.
//
// Assets (templates, CSS, a small script) are embedded; nothing is built at
// run time and no script comes from elsewhere.
package console
