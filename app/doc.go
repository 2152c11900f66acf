// Package app owns the lifecycle of a chargeguard process: it builds every
// component from the configuration, starts them sinks first and sources
// last, serves /metrics, /healthz and /readyz, and stops them in the reverse
// order. cmd/chargeguard only parses flags and calls it, so tests run the
// whole service in-process.
package app
