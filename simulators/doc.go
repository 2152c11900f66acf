// Package simulators is chargeguard's fleet in software: simulated e-bike
// charging piles that speak protocol v1 over MQTT (shared protocol.md)
// through the telemetry package, charge batteries the way e-bikes do, heat
// their sockets the way plugs do, and fail the way piles fail, so that every
// alert rule can be tested honestly, including the ones that must not fire
// on a hot summer afternoon.
//
// The parts:
//
//   - A Fleet (fleets/*.yaml) lists sites and piles; fleets/changhe.yaml is
//     the Changhe district's 22 sites (16 residential sheds with 1,622 ports,
//     6 open-air points with 176). GenerateFleet makes synthetic ones.
//   - The physics: charging sessions arrive by time of day (evening peak in
//     residential sheds, daytime at open-air points) and follow an e-bike
//     charger's curve (Session); a socket's temperature is a first-order lag
//     towards the enclosure temperature plus I²·R heating of its contact;
//     the enclosure follows Hangzhou's weather (Weather), with sun on
//     open-air boxes. Everything is deterministic given a seed, and time is
//     an input: Simulate runs a fleet offline, a Runner runs it on a clock
//     that can go faster than real time.
//   - Faults (Fault, FaultKind): loose contacts, overcurrent, short
//     circuits, thermal-runaway precursors, leakage in rain, smoke, broken
//     sensors, welded relays, lost and late acks, network loss, duplicated
//     and reordered telemetry, clock skew, hot contacts in cold weather,
//     long sessions, full batteries and malformed payloads, each injectable
//     on a port or a pile at a time.
//   - An oracle that evaluates the default safety policy on what each pile
//     actually sent (Met), so that a Scenario can check that the backend
//     closed the right port soon enough after the evidence was complete,
//     and nothing else.
//   - Runner connects a fleet to a broker: one MQTT client per pile by
//     default, a retained birth on every connect with a retained death as
//     last will, telemetry every 10 s (1 s while warm), events, and a relay
//     per port that executes a command id at most once and acks it.
//   - RunScenario runs a scenario file (scenarios/*.yaml) and checks its
//     expectations; Load drives a broker at a target message rate.
//
// cmd/pilesim is the command-line front end.
package simulators
