// Package notify keeps one or more Prometheus Alertmanagers informed of
// chargeguard's alerts, through the Alertmanager API v2 (POST /api/v2/alerts).
//
// It follows what Prometheus' own notifier does (notifier/sendloop.go):
//
//   - Fire and Resolve never block. They record the alert's latest state and
//     queue an update for each Alertmanager; Run's goroutines post the queued
//     updates, one goroutine per Alertmanager, so a slow or dead one never
//     holds up the others, and never the safety engine that calls Fire on its
//     hot path.
//   - An active alert is re-posted every ResendInterval with endsAt set to
//     four resend intervals ahead (Prometheus' rule manager does the same). An
//     alert that chargeguard still holds never times out in Alertmanager; an
//     alert whose sender died does, a few minutes later, instead of paging
//     forever.
//   - A resolved alert is posted once more with endsAt, then forgotten.
//   - Every queue is bounded, and holds one pending update per alert and
//     status (a storm of updates of one alert takes one slot). When a queue
//     is full, what goes first is an update already superseded by a newer
//     one, then the oldest update of an alert that is still active (its
//     latest state stays in the active set and goes out again at the next
//     resend); a resolve goes only when nothing else is left. Every drop is
//     counted in chargeguard_notify_dropped_total.
//   - A failed post is retried with exponential back-off; a post that
//     Alertmanager refuses as invalid (HTTP 4xx) is dropped and counted, not
//     retried forever.
//
// With no Alertmanager URL configured, alerts go to a log receiver instead:
// each firing or resolved alert is logged once, at warn level, or at error
// level for critical alerts.
//
// Credentials in an Alertmanager URL (user:password@, or a token in the query)
// are used for the requests but never reach a log line, an error or a metric
// label: an Alertmanager is named by its host:port only.
//
// The package also holds the catalogue of chargeguard alert names with their
// severities (Severity) and the short, actionable texts that on-call staff
// read when paged (Annotations), in English and Simplified Chinese
// (SummaryZH, OnSiteZH: the console shows the same Chinese texts), and
// deploy/alertmanager holds the
// Alertmanager configuration that routes these alerts.
package notify
