package alerting

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/chargeguard/chargeguard/telemetry"
)

// checkActions holds the invariants of every batch of actions: commands
// go to valid topics with an id, everything marshals (no NaN), and — unless
// an operator asked — the engine never opens a port.
func checkActions(t *testing.T, acts []Action, mayOpen bool) {
	t.Helper()
	for _, a := range acts {
		if c, ok := a.(SendCommand); ok {
			if _, err := telemetry.NewTopic(c.Topic.Root, c.Topic.Site, c.Topic.Pile, telemetry.KindCmd); err != nil || c.Topic.Kind != telemetry.KindCmd {
				t.Fatalf("command to an invalid topic %q: %v", c.Topic, err)
			}
			if c.Cmd.ID == "" || c.Attempt < 1 || c.Cmd.Port < 0 || c.Cmd.Port > telemetry.MaxPort || c.Cmd.V != 1 {
				t.Fatalf("malformed command %+v", c)
			}
			if c.Cmd.Action == telemetry.ActionOpen && !mayOpen {
				t.Fatalf("the engine opened a port on its own: %+v", c)
			}
		}
		if _, err := json.Marshal(a); err != nil {
			t.Fatalf("action does not marshal: %v (%#v)", err, a)
		}
	}
}

// FuzzObserve feeds decoded messages (whatever the decoder lets through,
// including the Invalid ones it hands to the engine) to an engine, with
// ticks and resets, and checks the invariants and a snapshot round trip.
func FuzzObserve(f *testing.F) {
	f.Add([]byte(`{"v":1,"ts":1751371200000,"online":true,"ports":4,"rated_a":5,"kind":"residential"}`),
		[]byte(`{"v":1,"ts":1751371201000,"seq":1,"ambient_c":20,"leak_ma":1,"smoke":false,"ports":[{"n":1,"state":"charging","a":2,"w":440,"temp_c":71}]}`),
		[]byte(`{"v":1,"id":"`+"id-1"+`","ts":1751371201100,"port":1,"ok":true,"state":"closed"}`), uint8(1), int64(5000))
	f.Add([]byte(`{"v":1,"online":false}`),
		[]byte(`{"v":1,"ts":1751371201000,"seq":4294967295,"leak_ma":31,"ports":[{"n":2,"state":"charging","a":11,"temp_c":null}]}`),
		[]byte(`{"v":1,"ts":1751371201000,"port":0,"kind":"smoke"}`), uint8(0), int64(60000))
	f.Add([]byte(`{"v":1,"ts":1,"online":true,"ports":64,"rated_a":1e300}`),
		[]byte(`{"v":1,"ts":1751371201000,"seq":0,"ports":[{"n":64,"state":"charging","a":1e999,"temp_c":-41}]}`),
		[]byte(`{"v":1,"id":"x","port":64,"ok":false,"err":"boom"}`), uint8(64), int64(3000))
	start := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status, tele, third []byte, port uint8, step int64) {
		n := 0
		e, err := NewEngine(DefaultRules(), EngineOptions{NewID: func() string { n++; return "id-" + strconv.Itoa(n) }})
		if err != nil {
			t.Fatal(err)
		}
		if step < 0 {
			step = -step
		}
		step = step%(10*60*1000) + 1
		now := start
		feed := func(kind telemetry.Kind, payload []byte) {
			topic := telemetry.Topic{Root: telemetry.DefaultRoot, Site: "s", Pile: "p", Kind: kind}
			m, err := telemetry.Decode(topic, payload, now)
			if err != nil && m.Invalid == nil {
				return
			}
			checkActions(t, e.Observe(now, m), false)
		}
		kinds := []telemetry.Kind{telemetry.KindTelemetry, telemetry.KindEvent, telemetry.KindAck, telemetry.KindStatus}
		feed(telemetry.KindStatus, status)
		for i := 0; i < 6; i++ {
			feed(telemetry.KindTelemetry, tele)
			feed(kinds[(int(port)+i)%len(kinds)], third)
			// Move the telemetry on so that it is not a duplicate.
			tele = bytes.Replace(tele, []byte(`"seq":`), []byte(`"seq":1`), 1)
			now = now.Add(time.Duration(step) * time.Millisecond)
			checkActions(t, e.Tick(now), false)
		}
		acts, err := e.Reset(now, "s", "p", int(port), "fuzz")
		checkActions(t, acts, err == nil)
		_, _ = e.Ack(now, string(third), "fuzz")
		_ = e.Ports(PortFilter{})
		_ = e.Alerts(false)

		data, err := json.Marshal(e.Snapshot())
		if err != nil {
			t.Fatalf("snapshot does not marshal: %v", err)
		}
		var s State
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatalf("snapshot does not unmarshal: %v", err)
		}
		e2, _ := NewEngine(DefaultRules(), EngineOptions{})
		if err := e2.Restore(s); err != nil {
			t.Fatalf("restore of a snapshot failed: %v\n%s", err, data)
		}
		checkActions(t, e2.Tick(now.Add(time.Hour)), false)
	})
}

// FuzzResetInput throws arbitrary reset and acknowledgement input (as the
// operator API passes it on) at an engine holding a latched port: it never
// panics, never opens anything but a latched port whose condition cleared,
// and refuses with one of the documented reasons.
func FuzzResetInput(f *testing.F) {
	f.Add("s", "p", 1, "alice", "overheat/s/p/1")
	f.Add("s\n", "p/../q", -1, "", "overheat/s/p/99999999999999999999")
	f.Add("", "", 65, " ", "/")
	f.Add("s", "p", 0, "\x00", "temp_warning/s/p/1/")
	f.Fuzz(func(t *testing.T, site, pile string, port int, operator, key string) {
		e := newTestEngine(t)
		at := t0
		e.Observe(at, msg("s", "p", at, birth(4, 5)))
		e.Observe(at, msg("s", "p", at, tel(1, at, charging(1, 2, 80))))
		at = at.Add(time.Second)
		e.Observe(at, msg("s", "p", at, &telemetry.Ack{V: 1, ID: "id-1", Port: 1, OK: true, State: telemetry.StateClosed}))
		e.Observe(at, msg("s", "p", at, tel(2, at, telemetry.PortSample{N: 1, State: telemetry.StateClosed, A: telemetry.F(0), TempC: telemetry.F(30)})))

		acts, err := e.Reset(at, site, pile, port, operator)
		checkActions(t, acts, err == nil)
		if err != nil && ErrorReason(err) == "internal" {
			t.Fatalf("reset refused without a documented reason: %v", err)
		}
		if err == nil && (site != "s" || pile != "p" || port != 1) {
			t.Fatalf("reset of %q/%q port %d succeeded", site, pile, port)
		}
		acts, err = e.Ack(at, key, operator)
		checkActions(t, acts, false)
		if err != nil && ErrorReason(err) == "internal" {
			t.Fatalf("ack refused without a documented reason: %v", err)
		}
	})
}
