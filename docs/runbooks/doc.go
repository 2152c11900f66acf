// Package runbooks holds no code: its test checks that every alert
// chargeguard can raise, from its safety engine or from the Prometheus rules,
// has its runbook page in this directory and is listed in README.md.
package runbooks
