package auth

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestACLPublish(t *testing.T) {
	acl := ACL{}
	const p01 = "chunbo-nanyuan/p01"
	for _, tc := range []struct {
		user, topic string
		want        bool
	}{
		{p01, "chargers/chunbo-nanyuan/p01/status", true},
		{p01, "chargers/chunbo-nanyuan/p01/telemetry", true},
		{p01, "chargers/chunbo-nanyuan/p01/event", true},
		{p01, "chargers/chunbo-nanyuan/p01/ack", true},
		{p01, "chargers/chunbo-nanyuan/p01/cmd", false},         // a pile never commands, not even itself
		{p01, "chargers/chunbo-nanyuan/p02/telemetry", false},   // another pile
		{p01, "chargers/chunbo-nanyuan/p02/cmd", false},         // another pile's commands
		{p01, "chargers/other-site/p01/telemetry", false},       // same pile id, other site
		{p01, "chargers/chunbo-nanyuan/p01/telemetry/x", false}, // extra level
		{p01, "chargers/chunbo-nanyuan/p01", false},
		{p01, "other/chunbo-nanyuan/p01/telemetry", false}, // other root
		{p01, "chargers/chunbo-nanyuan/p01/+", false},
		{p01, "chargers/chunbo-nanyuan/p01/#", false},
		{p01, "$SYS/broker/uptime", false},
		{"chargeguard", "chargers/chunbo-nanyuan/p01/cmd", true},
		{"chargeguard", "chargers/a_b/C-9/cmd", true},
		{"chargeguard", "chargers/chunbo-nanyuan/p01/telemetry", false}, // chargeguard never speaks for a pile
		{"chargeguard", "chargers/chunbo-nanyuan/p01/status", false},
		{"chargeguard", "chargers/+/+/cmd", false}, // not a topic name
		{"chargeguard", "chargers/chunbo nanyuan/p01/cmd", false},
		{"chargeguard", "other/chunbo-nanyuan/p01/cmd", false},
		{"grafana", "chargers/chunbo-nanyuan/p01/cmd", false}, // an account that is no service
		{"grafana", "chargers/chunbo-nanyuan/p01/telemetry", false},
		{"", "chargers/chunbo-nanyuan/p01/telemetry", false},
		{"chunbo-nanyuan/p01/x", "chargers/chunbo-nanyuan/p01/x/telemetry", false}, // username with 3 levels
		{"chunbo-nanyuan/+", "chargers/chunbo-nanyuan/+/telemetry", false},
	} {
		assert.Equal(t, tc.want, acl.CanPublish(tc.user, tc.topic), "%s publishes %s", tc.user, tc.topic)
	}
}

func TestACLRead(t *testing.T) {
	acl := ACL{}
	const p01 = "chunbo-nanyuan/p01"
	for _, tc := range []struct {
		user, topic string
		want        bool
	}{
		{p01, "chargers/chunbo-nanyuan/p01/cmd", true},
		{p01, "chargers/chunbo-nanyuan/p02/cmd", false},
		{p01, "chargers/chunbo-nanyuan/p01/telemetry", false},
		{p01, "chargers/chunbo-nanyuan/p01/+", false}, // would match its telemetry too
		{p01, "chargers/+/+/cmd", false},
		{p01, "chargers/#", false},
		{p01, "#", false},
		{"chargeguard", "chargers/#", true},
		{"chargeguard", "chargers/+/+/+", true},
		{"chargeguard", "chargers/chunbo-nanyuan/p01/telemetry", true},
		{"chargeguard", "$share/guard/chargers/#", true},
		{"chargeguard", "$share/guard", false},
		{"chargeguard", "#", false},
		{"chargeguard", "+/+/+/+", false},
		{"chargeguard", "$SYS/#", false},
		{"chargeguard", "other/#", false},
		{"chargeguard", "chargeguard/canary/chargeguard-live", true},
		{"chargeguard", "chargeguard/canary/#", true},
		{"chargeguard", "chargeguard/other", false},
		{p01, "chargeguard/canary/chargeguard-live", false},
		{p01, "chargeguard/canary/#", false},
		{"grafana", "chargers/#", false},
		{"", "chargers/#", false},
	} {
		assert.Equal(t, tc.want, acl.CanRead(tc.user, tc.topic), "%s reads %s", tc.user, tc.topic)
	}
}

func TestACLRootAndServices(t *testing.T) {
	acl := ACL{Root: "hz", Services: []string{"guard-a", "guard-b"}}
	assert.True(t, acl.CanPublish("guard-b", "hz/s/p/cmd"))
	assert.False(t, acl.CanPublish("chargeguard", "hz/s/p/cmd"), "the default service is replaced, not added to")
	assert.False(t, acl.CanPublish("guard-a", "chargers/s/p/cmd"))
	assert.True(t, acl.CanPublish("s/p", "hz/s/p/telemetry"))
	assert.False(t, acl.CanPublish("s/p", "chargers/s/p/telemetry"))
	assert.True(t, acl.CanRead("guard-a", "hz/#"))
	assert.True(t, acl.CanRead("s/p", "hz/s/p/cmd"))
	assert.True(t, acl.IsService("guard-a"))
	assert.False(t, acl.IsService("chargeguard"))
	assert.True(t, ACL{}.IsService(DefaultService))
	assert.True(t, acl.CanPublish("guard-a", "chargeguard/canary/guard-a-live"), "the canary is outside the root")
	assert.False(t, acl.CanPublish("chargeguard", "chargeguard/canary/x"))
	assert.False(t, acl.CanPublish("s/p", "chargeguard/canary/guard-a-live"))
}
