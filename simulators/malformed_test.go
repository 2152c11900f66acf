package simulators

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/telemetry"
)

// Every malformed kind is rejected by the project's decoder for exactly
// the reason it names.
func TestMalformedPayloadsAreRejectedForTheirReason(t *testing.T) {
	for _, m := range MalformedKinds {
		t.Run(string(m), func(t *testing.T) {
			want, ok := MalformedReason(m)
			require.True(t, ok)
			topic, payload := MalformedMessage(m, "chargers", "baimahu", "p01", 1751371200000, 42)
			_, err := telemetry.DecodeTopic("chargers", topic, payload, time.Now())
			var rej *telemetry.RejectError
			require.True(t, errors.As(err, &rej), "%s: %s %.200s decoded without error", m, topic, payload)
			require.Equal(t, want, rej.Reason, "%s: %v", m, err)
		})
	}
}

// The malformed fault sends its message from the pile, marked with the
// reason, and the sensor_missing fault makes a charging port's telemetry
// invalid (missing_field) while the engine still gets the port.
func TestFaultsEmitDeliberatelyInvalidMessages(t *testing.T) {
	p, start := onePile(t,
		Fault{Kind: FaultMalformed, Target: "site/pile", At: Duration(10 * time.Second), Payload: MalformedNaN, Count: 2},
		Fault{Kind: FaultSensorMissing, Target: "site/pile/6", At: Duration(10 * time.Second)})
	var malformed, missing int
	for _, ob := range p.Advance(start.Add(time.Minute)) {
		if ob.Kind != telemetry.KindTelemetry {
			continue
		}
		topic := ob.Topic
		if topic == "" {
			topic = "chargers/site/pile/telemetry"
		}
		m, err := telemetry.DecodeTopic("chargers", topic, ob.Payload, time.Now())
		switch ob.Reject {
		case "":
			require.NoError(t, err)
		case telemetry.ReasonNotFinite:
			malformed++
			require.ErrorContains(t, err, "not_finite")
		case telemetry.ReasonMissingField:
			missing++
			var rej *telemetry.RejectError
			require.True(t, errors.As(err, &rej))
			require.Equal(t, telemetry.ReasonMissingField, rej.Reason)
			require.Same(t, rej, m.Invalid, "the engine still gets the message")
			require.Equal(t, telemetry.StateCharging, portOf(m.Telemetry, 6).State)
			require.Nil(t, portOf(m.Telemetry, 6).TempC)
		default:
			t.Fatalf("unexpected reject %s", ob.Reject)
		}
	}
	require.Equal(t, 2, malformed)
	require.GreaterOrEqual(t, missing, 4)
}

func TestParseFault(t *testing.T) {
	f, err := ParseFault("loose_contact@chunbo-nanyuan/p01/3@10m")
	require.NoError(t, err)
	require.Equal(t, Fault{Kind: FaultLooseContact, Target: "chunbo-nanyuan/p01/3", At: Duration(10 * time.Minute)}, f)
	f, err = ParseFault("malformed@baimahu/p01@30s@payload=nan,count=2")
	require.NoError(t, err)
	require.Equal(t, MalformedNaN, f.Payload)
	require.Equal(t, 2, f.Count)
	f, err = ParseFault("network_loss@baimahu/p01@1m@for=2m")
	require.NoError(t, err)
	require.Equal(t, Duration(2*time.Minute), f.For)
	for _, bad := range []string{
		"loose_contact@chunbo-nanyuan/p01@10m", // needs a port
		"melt@a/b/1@1m",                        // unknown kind
		"smoke@a+b/p@1m",                       // hostile id
		"smoke@a/b@soon",                       // bad time
		"malformed@a/b@1m@payload=nope",        // unknown malformed kind
		"smoke@a/b@1m@colour=red",              // unknown option
	} {
		_, err := ParseFault(bad)
		require.Error(t, err, bad)
	}
}
