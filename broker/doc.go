// Package broker runs the embedded MQTT broker (mochi-mqtt) that chargeguard
// starts in-process when no external broker is configured, so that a single
// binary serves a single site or a demo. A city deployment uses Mosquitto or
// EMQX instead (deploy/mosquitto); chargeguard speaks to both the same way,
// over TCP.
//
// Its memory is bounded per connection (Options.MaxWritesPending), and a
// QoS 1 burst that chargeguard cannot take yet waits in the piles, which
// keep it until PUBACK, rather than in the broker (HoldOptions).
package broker
