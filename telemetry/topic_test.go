package telemetry

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// hostileIDs break the id alphabet in every way that could corrupt an MQTT
// topic (wildcards, level separator), an InfluxDB line (comma, equals,
// space, newline) or a log line, plus the length limits.
var hostileIDs = map[string]string{
	"plus":           "si+te",
	"hash":           "#",
	"slash":          "a/b",
	"comma":          "pile,x=1",
	"equals":         "a=b",
	"space":          "pile 1",
	"newline":        "pile\n1",
	"carriage":       "pile\r",
	"tab":            "p\tq",
	"nul":            "p\x00q",
	"quote":          `p"q`,
	"backslash":      `p\q`,
	"dot":            "p.q",
	"dollar":         "$SYS",
	"unicode letter": "pilé",
	"emoji":          "🔥",
	"empty":          "",
	"65 chars":       strings.Repeat("a", 65),
}

func TestValidID(t *testing.T) {
	for _, ok := range []string{"a", "Z", "0", "_", "-", "site-1", "pile_07", strings.Repeat("x", 64), "ABC-def_123"} {
		require.True(t, ValidID(ok), "%q", ok)
	}
	for name, id := range hostileIDs {
		require.False(t, ValidID(id), "%s: %q", name, id)
	}
}

func TestNewTopic(t *testing.T) {
	topic, err := NewTopic("chargers", "site-1", "pile_07", KindCmd)
	require.NoError(t, err)
	require.Equal(t, Topic{Root: "chargers", Site: "site-1", Pile: "pile_07", Kind: KindCmd}, topic)
	require.Equal(t, "chargers/site-1/pile_07/cmd", topic.String())

	for name, id := range hostileIDs {
		t.Run(name, func(t *testing.T) {
			_, err := NewTopic("chargers", id, "p1", KindCmd)
			requireReject(t, err, ReasonBadID, "site")
			_, err = NewTopic("chargers", "s1", id, KindCmd)
			requireReject(t, err, ReasonBadID, "pile")
		})
	}
	_, err = NewTopic("chargers", "s1", "p1", KindUnknown)
	requireReject(t, err, ReasonBadTopic, "")
	_, err = NewTopic("chargers", "s1", "p1", Kind(99))
	requireReject(t, err, ReasonBadTopic, "")
}

func TestParseTopic(t *testing.T) {
	for k := KindStatus; k <= KindAck; k++ {
		want := Topic{Root: "chargers", Site: "s-1", Pile: "P_2", Kind: k}
		got, err := ParseTopic("chargers", want.String())
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	got, err := ParseTopic("a/b", "a/b/s1/p1/ack")
	require.NoError(t, err)
	require.Equal(t, Topic{Root: "a/b", Site: "s1", Pile: "p1", Kind: KindAck}, got)

	for name, id := range hostileIDs {
		t.Run(name, func(t *testing.T) {
			// An id holding '/' adds a level, which is still a bad id.
			_, err := ParseTopic("chargers", "chargers/"+id+"/p1/telemetry")
			requireReject(t, err, ReasonBadID, fieldUnlessSlash(id, "site"))
			_, err = ParseTopic("chargers", "chargers/s1/"+id+"/telemetry")
			requireReject(t, err, ReasonBadID, fieldUnlessSlash(id, "pile"))
		})
	}

	for topic, reason := range map[string]Reason{
		"chargers/s1/p1/config":          ReasonBadTopic, // unknown kind
		"chargers/s1/p1/Status":          ReasonBadTopic, // kinds are case-sensitive
		"chargers/s1/p1/status/":         ReasonBadTopic, // trailing level
		"chargers/s1/status":             ReasonBadTopic, // too few levels
		"chargers/status":                ReasonBadTopic,
		"chargers/":                      ReasonBadTopic,
		"chargers":                       ReasonBadTopic,
		"":                               ReasonBadTopic,
		"other/s1/p1/status":             ReasonBadTopic, // wrong root
		"chargersX/s1/p1/status":         ReasonBadTopic,
		"/chargers/s1/p1/status":         ReasonBadTopic,
		"chargers/s1/p1/x/status":        ReasonBadID, // a '/' in an id
		"chargers//p1/status":            ReasonBadID, // empty site
		"chargers/s1//status":            ReasonBadID, // empty pile
		"chargers/+/+/status":            ReasonBadID, // a subscription filter is not a topic
		"chargers/s1/p1/" + "status\x00": ReasonBadTopic,
	} {
		_, err := ParseTopic("chargers", topic)
		var rej *RejectError
		require.ErrorAs(t, err, &rej, "%q", topic)
		require.Equal(t, reason, rej.Reason, "%q: %v", topic, err)
	}
}

func fieldUnlessSlash(id, field string) string {
	if strings.Contains(id, "/") {
		return ""
	}
	return field
}

// requireReject checks that err is a *RejectError with reason and field,
// and that its message stays on one line (it reaches logs).
func requireReject(t *testing.T, err error, reason Reason, field string) {
	t.Helper()
	var rej *RejectError
	require.True(t, errors.As(err, &rej), "want *RejectError %s, got %v", reason, err)
	require.Equal(t, reason, rej.Reason, "%v", err)
	require.Equal(t, field, rej.Field, "%v", err)
	require.NotContains(t, err.Error(), "\n")
}
