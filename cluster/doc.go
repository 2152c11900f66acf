// Package cluster makes chargeguard replicas one guard: they elect a leader
// in etcd, only the leader publishes commands, posts alerts and writes
// alert and audit points, and the leader keeps the safety state (latches,
// pending closes, open alerts) in etcd so that a replica started cold
// restores it.
//
// It lives beside the engine, never inside it (docs/scale.md): every
// replica runs its own alerting.Engine hot on its own live subscription and
// decides the same closes from the same stream; this package only decides
// which replica's decisions leave the process. A close never waits on it:
// when no leader has been confirmed for longer than the lease TTL (etcd
// unreachable, quorum lost), every replica sends the closes its engine
// wants, and opens wait until a leader is back.
package cluster
