package telemetry

import (
	"fmt"
	"strings"
)

// MaxIDLen is the longest site or pile id.
const MaxIDLen = 64

// ValidID reports whether s is a valid site or pile id: 1 to 64 characters
// of [A-Za-z0-9_-]. Anything else (wildcards, separators, spaces, commas,
// newlines) would corrupt a topic or a storage key, so it is rejected
// wherever it appears.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// CanaryPrefix starts the topics where chargeguard's live session sends
// itself a canary through the broker to measure its own lag
// (CanaryPrefix + its client id). They are outside every topic root and
// not part of the pile protocol: no pile publishes or reads them.
const CanaryPrefix = "chargeguard/canary/"

// Topic is a parsed topic: {root}/{site}/{pile}/{kind}.
type Topic struct {
	Root string
	Site string
	Pile string
	Kind Kind
}

// String builds the topic name. It does not validate; use NewTopic to build
// a topic from ids that came from outside.
func (t Topic) String() string {
	return t.Root + "/" + t.Site + "/" + t.Pile + "/" + t.Kind.String()
}

// NewTopic builds the topic for a pile's message of the given kind, refusing
// ids that break the alphabet so that no hostile id ever becomes a topic.
func NewTopic(root, site, pile string, kind Kind) (Topic, error) {
	if !ValidID(site) {
		return Topic{}, &RejectError{Reason: ReasonBadID, Field: "site", Detail: fmt.Sprintf("site id %q breaks [A-Za-z0-9_-]{1,64}", truncate(site, 80))}
	}
	if !ValidID(pile) {
		return Topic{}, &RejectError{Reason: ReasonBadID, Field: "pile", Detail: fmt.Sprintf("pile id %q breaks [A-Za-z0-9_-]{1,64}", truncate(pile, 80))}
	}
	if kind == KindUnknown || int(kind) >= len(kindNames) {
		return Topic{}, &RejectError{Reason: ReasonBadTopic, Detail: "unknown message kind"}
	}
	return Topic{Root: root, Site: site, Pile: pile, Kind: kind}, nil
}

// ParseTopic splits a topic received under root into its parts. A topic with
// the wrong number of levels or an unknown kind is ReasonBadTopic; a site or
// pile id that breaks the alphabet is ReasonBadID, and so is a topic with
// extra levels before a known kind, which is what an id holding '/' looks
// like.
func ParseTopic(root, topic string) (Topic, error) {
	rest, ok := strings.CutPrefix(topic, root+"/")
	if !ok {
		return Topic{}, &RejectError{Reason: ReasonBadTopic, Detail: fmt.Sprintf("topic is not under the root %q", root)}
	}
	parts := strings.Split(rest, "/")
	kind := kindOf(parts[len(parts)-1])
	switch {
	case len(parts) > 3 && kind != KindUnknown:
		// An id holding '/' shows up here as extra levels.
		return Topic{}, &RejectError{Reason: ReasonBadID, Detail: fmt.Sprintf("want {site}/{pile}/{kind} under the root, got %d levels: an id holds '/'", len(parts))}
	case len(parts) != 3:
		return Topic{}, &RejectError{Reason: ReasonBadTopic, Detail: fmt.Sprintf("want {site}/{pile}/{kind} under the root, got %d levels", len(parts))}
	case kind == KindUnknown:
		return Topic{}, &RejectError{Reason: ReasonBadTopic, Detail: fmt.Sprintf("unknown message kind %q", truncate(parts[2], 40))}
	}
	return NewTopic(root, parts[0], parts[1], kind)
}

// kindOf returns the Kind named by a topic's last level, or KindUnknown.
func kindOf(name string) Kind {
	for k := KindStatus; int(k) < len(kindNames); k++ {
		if name == kindNames[k] {
			return k
		}
	}
	return KindUnknown
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
