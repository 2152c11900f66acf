package auth

import (
	"strings"

	"github.com/chargeguard/chargeguard/telemetry"
)

// DefaultService is the account chargeguard itself connects with.
const DefaultService = "chargeguard"

// ACL is chargeguard's topic policy for the fixed topic layout of protocol
// v1, {root}/{site}/{pile}/{kind}. It is the Go twin of
// deploy/mosquitto/acl:
//
//	pattern write chargers/%u/status     (and telemetry, event, ack)
//	pattern read  chargers/%u/cmd
//	user chargeguard
//	topic read  chargers/#
//	topic write chargers/+/+/cmd
//	topic readwrite chargeguard/canary/#
//
// Everything not granted is denied, for every account. The canary topics
// (telemetry.CanaryPrefix) are where chargeguard's live session measures its own lag
// through the broker; only the service accounts may touch them.
type ACL struct {
	// Root is the first topic level; default telemetry.DefaultRoot.
	Root string
	// Services are the accounts that run chargeguard: they may read every
	// topic under Root and are the only ones that may publish commands.
	// Default [DefaultService].
	Services []string
}

func (a ACL) root() string {
	if a.Root == "" {
		return telemetry.DefaultRoot
	}
	return a.Root
}

// IsService reports whether user is one of the service accounts.
func (a ACL) IsService(user string) bool {
	if len(a.Services) == 0 {
		return user == DefaultService
	}
	for _, s := range a.Services {
		if s == user {
			return true
		}
	}
	return false
}

// pileKinds are what a pile publishes; cmd is the one kind it reads.
var pileKinds = map[string]bool{"status": true, "telemetry": true, "event": true, "ack": true}

// CanPublish reports whether user may publish to topic (a topic name, never
// a filter).
func (a ACL) CanPublish(user, topic string) bool {
	if strings.ContainsAny(topic, "+#") {
		return false
	}
	if strings.HasPrefix(topic, telemetry.CanaryPrefix) {
		return a.IsService(user)
	}
	root, site, pile, kind, ok := splitTopic(topic)
	if !ok || root != a.root() {
		return false
	}
	if a.IsService(user) {
		return kind == "cmd" && telemetry.ValidID(site) && telemetry.ValidID(pile)
	}
	ps, pp, isPile := SplitPileUsername(user)
	return isPile && ps == site && pp == pile && pileKinds[kind]
}

// CanRead reports whether user may receive messages on topic, or subscribe
// to it when topic is a filter with wildcards. A pile reads only its own
// cmd topic, so any wildcard filter of a pile is refused: it could only ever
// match more than that. A service may read anything under Root, including
// through a shared subscription ($share/{group}/{filter}).
func (a ACL) CanRead(user, topic string) bool {
	if a.IsService(user) && strings.HasPrefix(topic, telemetry.CanaryPrefix) {
		return true
	}
	if a.IsService(user) {
		if rest, ok := strings.CutPrefix(topic, "$share/"); ok {
			_, filter, found := strings.Cut(rest, "/")
			if !found {
				return false
			}
			topic = filter
		}
		first, _, _ := strings.Cut(topic, "/")
		return first == a.root()
	}
	site, pile, isPile := SplitPileUsername(user)
	return isPile && topic == a.root()+"/"+site+"/"+pile+"/cmd"
}

func splitTopic(topic string) (root, site, pile, kind string, ok bool) {
	parts := strings.Split(topic, "/")
	if len(parts) != 4 {
		return "", "", "", "", false
	}
	return parts[0], parts[1], parts[2], parts[3], true
}
