package ingest

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/telemetry"
)

// pointKeys returns each line's series and time (measurement, tags and
// timestamp: what InfluxDB identifies a point by), without the fields.
func pointKeys(lines string) []string {
	var keys []string
	for _, l := range strings.Split(strings.TrimSpace(lines), "\n") {
		series, rest, _ := strings.Cut(l, " ")
		i := strings.LastIndexByte(rest, ' ')
		keys = append(keys, series+" "+rest[i+1:])
	}
	return keys
}

// What docs/schema.md says about redelivery, exactly: a message stored at
// the pile's ts is the same point however often it is delivered; one stored
// at receive time (skewed telemetry, a death without ts, a rejected
// message) is a new point on every delivery.
func TestRedeliveryIdempotence(t *testing.T) {
	const maxSkew = 5 * time.Minute
	first := time.UnixMilli(1751371200500)
	again := first.Add(40 * time.Second) // redelivered after chargeguard restarted
	tel := func(ts int64, recv time.Time) telemetry.Message {
		return telemetry.Message{
			Topic:    telemetry.Topic{Root: "chargers", Site: "s1", Pile: "p1", Kind: telemetry.KindTelemetry},
			Received: recv,
			Telemetry: &telemetry.Telemetry{V: 1, TS: ts, Seq: 7, AmbientC: telemetry.F(30),
				Ports: []telemetry.PortSample{{N: 1, State: telemetry.StateCharging, A: telemetry.F(1.5), TempC: telemetry.F(35)}}},
		}
	}
	lines := func(m telemetry.Message) string {
		b, _ := appendMessage(nil, &m, maxSkew)
		return string(b)
	}

	// In sync: the same points (skew_ms, a field, takes the later value).
	inSync := first.Add(-500 * time.Millisecond).UnixMilli()
	require.Equal(t, pointKeys(lines(tel(inSync, first))), pointKeys(lines(tel(inSync, again))))

	// Skewed by a day: stored at receive time, so a second point.
	skewed := first.Add(-24 * time.Hour).UnixMilli()
	a, b := pointKeys(lines(tel(skewed, first))), pointKeys(lines(tel(skewed, again)))
	require.Len(t, a, 2)
	for i := range a {
		require.NotEqual(t, a[i], b[i], "a skewed message redelivered is a second point")
	}

	// A death (no ts): a second point.
	death := func(recv time.Time) string {
		m := telemetry.Message{Topic: telemetry.Topic{Root: "chargers", Site: "s1", Pile: "p1", Kind: telemetry.KindStatus},
			Received: recv, Status: &telemetry.Status{Online: false}}
		return lines(m)
	}
	require.NotEqual(t, pointKeys(death(first)), pointKeys(death(again)))

	// A rejected message: a second point.
	rej := func(recv time.Time) string {
		return string(appendRejected(nil, telemetry.ReasonBadJSON, telemetry.KindTelemetry, "chargers/s1/p1/telemetry", []byte("{"), "bad json", recv))
	}
	require.NotEqual(t, pointKeys(rej(first)), pointKeys(rej(again)))
}
