// Package telemetry holds the wire types of protocol v1, the contract that
// charging piles and chargeguard speak over MQTT (docs/protocol.md), with the
// decoder that validates what piles send and the encoder that simulators and
// the actuator use to send.
//
// Ingest, alerting and the simulators all import this package, so there is
// exactly one definition of what a valid message is.
package telemetry
