package ingest

import (
	"strconv"
	"time"

	lp "github.com/chargeguard/chargeguard/lineproto"
	"github.com/chargeguard/chargeguard/telemetry"
)

// The InfluxDB schema (docs/schema.md). Tags hold only validated ids, port
// numbers and fixed enums, so series cardinality is bounded by the fleet.
const (
	MeasurementPort     = "port"
	MeasurementPile     = "pile"
	MeasurementStatus   = "status"
	MeasurementEvent    = "event"
	MeasurementAck      = "ack"
	MeasurementRejected = "rejected"

	// MaxRejectedPayload is how much of a rejected payload is kept for
	// inspection.
	MaxRejectedPayload = 1024
	maxRejectedTopic   = 256
)

// pointTime is the time a message is stored at: the pile's ts, unless the
// pile's clock is more than maxSkew away from ours, when it is the receive
// time. skewed reports which.
func pointTime(ts int64, received time.Time, maxSkew time.Duration) (t int64, skewed bool) {
	recv := received.UnixNano()
	if ts <= 0 {
		return recv, false
	}
	pile := ts * int64(time.Millisecond)
	if d := time.Duration(recv - pile); d > maxSkew || d < -maxSkew {
		return recv, true
	}
	return pile, false
}

// appendMessage appends the line protocol of a valid message to dst.
// Timestamps are in nanoseconds.
func appendMessage(dst []byte, m *telemetry.Message, maxSkew time.Duration) (out []byte, skewed bool) {
	site, pile := m.Topic.Site, m.Topic.Pile
	switch {
	case m.Telemetry != nil:
		// Every value once (docs/schema.md): seq is on the pile point only
		// (the port points of a message share its time, so they are found by
		// it), and what the port points already hold, such as how many
		// ports charge, is not written again. Tag keys in InfluxDB's order
		// (pile, port, site), so it has nothing to sort.
		t := m.Telemetry
		ts, sk := pointTime(t.TS, m.Received, maxSkew)
		for i := range t.Ports {
			p := &t.Ports[i]
			dst = append(dst, MeasurementPort+",pile="...)
			dst = lp.Tag(dst, pile)
			dst = append(dst, ",port="...)
			dst = strconv.AppendInt(dst, int64(p.N), 10)
			dst = append(dst, ",site="...)
			dst = lp.Tag(dst, site)
			dst = append(dst, " state="...)
			dst = lp.String(dst, string(p.State), 32)
			dst = lp.OptFloat(dst, "v", p.V)
			dst = lp.OptFloat(dst, "a", p.A)
			dst = lp.OptFloat(dst, "w", p.W)
			dst = lp.OptFloat(dst, "wh", p.WH)
			dst = lp.OptFloat(dst, "temp_c", p.TempC)
			dst = lp.Time(dst, ts)
		}
		dst = appendSeries(dst, MeasurementPile, site, pile)
		dst = append(dst, " seq="...)
		dst = strconv.AppendInt(dst, int64(t.Seq), 10)
		dst = append(dst, 'i')
		dst = lp.OptFloat(dst, "ambient_c", t.AmbientC)
		dst = lp.OptFloat(dst, "leak_ma", t.LeakMA)
		if t.Smoke != nil {
			dst = lp.Bool(dst, "smoke", *t.Smoke)
		}
		dst = lp.Int(dst, "skew_ms", (m.Received.UnixNano()/int64(time.Millisecond))-t.TS)
		dst = lp.Time(dst, ts)
		return dst, sk
	case m.Status != nil:
		s := m.Status
		ts, sk := pointTime(s.TS, m.Received, maxSkew)
		dst = appendSeries(dst, MeasurementStatus, site, pile)
		dst = append(dst, " online="...)
		dst = strconv.AppendBool(dst, s.Online)
		if s.Online {
			dst = lp.Int(dst, "ports", int64(s.Ports))
			dst = lp.Float(dst, "rated_a", s.RatedA)
			dst = append(dst, ",fw="...)
			dst = lp.String(dst, s.FW, 64)
			dst = append(dst, ",kind="...)
			dst = lp.String(dst, string(s.Kind), 32)
		}
		return lp.Time(dst, ts), sk
	case m.Event != nil:
		e := m.Event
		ts, sk := pointTime(e.TS, m.Received, maxSkew)
		dst = appendSeries(dst, MeasurementEvent, site, pile)
		dst = append(dst, ",kind="...)
		dst = lp.Tag(dst, string(e.Kind))
		dst = append(dst, " port="...)
		dst = strconv.AppendInt(dst, int64(e.Port), 10)
		dst = append(dst, "i,detail="...)
		dst = lp.String(dst, e.Detail, 256)
		return lp.Time(dst, ts), sk
	case m.Ack != nil:
		a := m.Ack
		ts, sk := pointTime(a.TS, m.Received, maxSkew)
		dst = appendSeries(dst, MeasurementAck, site, pile)
		dst = append(dst, " id="...)
		dst = lp.String(dst, a.ID, 64)
		dst = lp.Int(dst, "port", int64(a.Port))
		dst = lp.Bool(dst, "ok", a.OK)
		dst = append(dst, ",state="...)
		dst = lp.String(dst, string(a.State), 32)
		if a.Err != "" {
			dst = append(dst, ",err="...)
			dst = lp.String(dst, a.Err, 256)
		}
		return lp.Time(dst, ts), sk
	}
	return dst, false
}

// appendRejected appends the point that keeps a rejected message for
// inspection. Only the reason and the message kind (both fixed enums) are
// tags; the topic and the payload, which may be hostile, are string fields,
// truncated and escaped, so they can never become a tag or a measurement.
func appendRejected(dst []byte, reason telemetry.Reason, kind telemetry.Kind, topic string, payload []byte, detail string, received time.Time) []byte {
	dst = append(dst, MeasurementRejected...)
	dst = append(dst, ",kind="...)
	dst = lp.Tag(dst, kind.String())
	dst = append(dst, ",reason="...)
	dst = lp.Tag(dst, string(reason))
	dst = append(dst, " topic="...)
	dst = lp.String(dst, topic, maxRejectedTopic)
	dst = append(dst, ",payload="...)
	dst = lp.String(dst, string(payload[:min(len(payload), MaxRejectedPayload)]), MaxRejectedPayload)
	dst = lp.Int(dst, "size", int64(len(payload)))
	dst = append(dst, ",detail="...)
	dst = lp.String(dst, detail, 256)
	return lp.Time(dst, received.UnixNano())
}

func appendSeries(dst []byte, measurement, site, pile string) []byte {
	dst = append(dst, measurement...)
	dst = append(dst, ",pile="...)
	dst = lp.Tag(dst, pile)
	dst = append(dst, ",site="...)
	return lp.Tag(dst, site)
}
