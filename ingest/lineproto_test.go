package ingest

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/telemetry"
)

func TestAppendMessageTelemetry(t *testing.T) {
	recv := time.UnixMilli(1751371200500)
	m := telemetry.Message{
		Topic:    telemetry.Topic{Root: "chargers", Site: "s1", Pile: "p-1", Kind: telemetry.KindTelemetry},
		Received: recv,
		Telemetry: &telemetry.Telemetry{
			V: 1, TS: 1751371200000, Seq: 4411,
			AmbientC: telemetry.F(31.5), Smoke: telemetry.B(false), LeakMA: telemetry.F(2),
			Ports: []telemetry.PortSample{
				{N: 1, State: telemetry.StateCharging, V: telemetry.F(221.3), A: telemetry.F(1.82), W: telemetry.F(398), WH: telemetry.F(120.5), TempC: telemetry.F(38.2)},
				{N: 2, State: telemetry.StateIdle, A: telemetry.F(0), TempC: telemetry.F(30.1)},
			},
		},
	}
	got, skewed := appendMessage(nil, &m, 5*time.Minute)
	require.False(t, skewed)
	want := "port,pile=p-1,port=1,site=s1 state=\"charging\",v=221.3,a=1.82,w=398,wh=120.5,temp_c=38.2 1751371200000000000\n" +
		"port,pile=p-1,port=2,site=s1 state=\"idle\",a=0,temp_c=30.1 1751371200000000000\n" +
		"pile,pile=p-1,site=s1 seq=4411i,ambient_c=31.5,leak_ma=2,smoke=false,skew_ms=500i 1751371200000000000\n"
	require.Equal(t, want, string(got))
}

func TestPointTimeSkew(t *testing.T) {
	recv := time.UnixMilli(1_000_000_000_000)
	for _, tc := range []struct {
		name   string
		ts     int64
		want   int64
		skewed bool
	}{
		{"in time", recv.UnixMilli() - 1000, (recv.UnixMilli() - 1000) * 1e6, false},
		{"just inside", recv.UnixMilli() - 5*60*1000, (recv.UnixMilli() - 5*60*1000) * 1e6, false},
		{"too old", recv.UnixMilli() - 5*60*1000 - 1, recv.UnixNano(), true},
		{"future", recv.UnixMilli() + 10*60*1000, recv.UnixNano(), true},
		{"no ts (death)", 0, recv.UnixNano(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, skewed := pointTime(tc.ts, recv, 5*time.Minute)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.skewed, skewed)
		})
	}
}

func TestAppendRejectedKeepsHostileContentInFields(t *testing.T) {
	payload := []byte("{\"v\":1,\"x\":\"a\nb\\\" ,=\"}\r\n" + strings.Repeat("z", 2000))
	got := string(appendRejected(nil, telemetry.ReasonBadJSON, telemetry.KindUnknown,
		"chargers/a b,c=d/p\n1/telemetry", payload, "bad \"json\"", time.Unix(0, 42)))
	require.Equal(t, 1, strings.Count(got, "\n"), "a hostile payload must never start a second line: %q", got)
	require.True(t, strings.HasPrefix(got, "rejected,kind=unknown,reason=bad_json topic=\""), got)
	require.True(t, strings.HasSuffix(got, ",size=2024i,detail=\"bad \\\"json\\\"\" 42\n"), got)
	require.Contains(t, got, `\\x0a`, "newline kept as text")
	// The kept payload is at most 1 KiB of the original.
	require.Less(t, len(got), MaxRejectedPayload*2)
}

func TestRedactURL(t *testing.T) {
	require.Equal(t, "tcp://<redacted>@host:1883", redactURL("tcp://user:secret@host:1883"))
	require.Equal(t, "tcp://host:1883", redactURL("tcp://host:1883"))
}

func BenchmarkAppendMessage(b *testing.B) {
	m := telemetry.Message{
		Topic:     telemetry.Topic{Root: "chargers", Site: "chunbo-nanyuan", Pile: "p01", Kind: telemetry.KindTelemetry},
		Received:  time.UnixMilli(1751371200100),
		Telemetry: &telemetry.Telemetry{V: 1, TS: 1751371200000, Seq: 7, AmbientC: telemetry.F(31.5), Smoke: telemetry.B(false), LeakMA: telemetry.F(2)},
	}
	for n := 1; n <= 10; n++ {
		m.Telemetry.Ports = append(m.Telemetry.Ports, telemetry.PortSample{N: n, State: telemetry.StateCharging,
			V: telemetry.F(221.3), A: telemetry.F(1.82), W: telemetry.F(398), WH: telemetry.F(120.5), TempC: telemetry.F(38.2)})
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = appendMessage(buf[:0], &m, 5*time.Minute)
	}
	b.ReportMetric(float64(b.N)*10/b.Elapsed().Seconds(), "port_samples/s")
}
