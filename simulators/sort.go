package simulators

import "sort"

// sortEmitted orders a batch by the model time each message was sent at,
// keeping each pile's own order (a stable sort on a batch built pile by
// pile), so reordered telemetry stays reordered.
func sortEmitted(b []Emitted) {
	sort.SliceStable(b, func(i, j int) bool { return b[i].Sent.Before(b[j].Sent) })
}
