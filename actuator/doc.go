// Package actuator publishes the safety engine's commands to piles over
// MQTT: QoS 1, not retained, on {root}/{site}/{pile}/cmd. It has its own
// MQTT session so a busy ingest connection never queues a close behind
// thousands of readings. Whether a command was executed is not its concern:
// the engine tracks every command until the pile's ack and resends it with
// the same id.
package actuator
