// Package docs holds no code: its test checks that the enums docs/schema.md
// promises (alert names, audit actions) are exactly the ones chargeguard
// writes, so that a query or a board built from the schema finds its points.
package docs
