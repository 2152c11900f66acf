// Package auth decides who may connect to chargeguard's MQTT broker and what
// each client may publish and read, so that a pile can never speak for
// another pile nor send a command.
//
// It holds three things that the deployed Mosquitto and the embedded broker
// share:
//
//   - PasswordFile reads and writes Mosquitto 2.0's password file
//     (`username:$7$iterations$salt$hash`, PBKDF2-SHA512, as written by
//     mosquitto_passwd), so one file serves both brokers. cmd/cgpasswd adds a
//     pile's credentials to it.
//   - ACL is chargeguard's topic policy in code: a pile, whose username is
//     its "site/pile", may publish only its own status, telemetry, event and
//     ack and read only its own cmd; a service account (chargeguard) may read
//     every pile topic and is the only one that may publish cmd. It mirrors
//     deploy/mosquitto/acl line for line; the integration tests run the same
//     cases against both brokers.
//   - Hook enforces both in the embedded mochi-mqtt broker.
//
// The username of a pile is "{site}/{pile}" with both ids in
// [A-Za-z0-9_-]{1,64}; any other valid username ([A-Za-z0-9_-]{1,64}) is an
// account that the ACL grants nothing unless it is listed as a service.
package auth
