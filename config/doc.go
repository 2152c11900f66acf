// Package config is chargeguard's configuration: one YAML file decoded into a
// typed struct with safe defaults, checked by Validate with errors that name
// the file and the field. Environment variables and flags are layered on top
// by cmd/chargeguard; this package never reads either.
package config
