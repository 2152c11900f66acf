package telemetry

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// The append functions write a payload as JSON, byte for byte what
// encoding/json writes for the struct with HTML escaping off (a test holds
// them to it), without its reflection: simulators encode tens of thousands
// of messages a second on the box that runs the backend they load.

func (s *Status) appendJSON(b []byte) []byte {
	b = appendInt(append(b, `{"v":`...), int64(s.V))
	if s.TS != 0 {
		b = appendInt(append(b, `,"ts":`...), s.TS)
	}
	b = strconv.AppendBool(append(b, `,"online":`...), s.Online)
	if s.Ports != 0 {
		b = appendInt(append(b, `,"ports":`...), int64(s.Ports))
	}
	if s.RatedA != 0 {
		b = appendFloat(append(b, `,"rated_a":`...), s.RatedA)
	}
	if s.FW != "" {
		b = appendString(append(b, `,"fw":`...), s.FW)
	}
	if s.Kind != "" {
		b = appendString(append(b, `,"kind":`...), string(s.Kind))
	}
	return append(b, '}')
}

func (t *Telemetry) appendJSON(b []byte) []byte {
	b = appendInt(append(b, `{"v":`...), int64(t.V))
	b = appendInt(append(b, `,"ts":`...), t.TS)
	b = appendInt(append(b, `,"seq":`...), int64(t.Seq))
	b = appendOptFloat(b, `,"ambient_c":`, t.AmbientC)
	if t.Smoke != nil {
		b = strconv.AppendBool(append(b, `,"smoke":`...), *t.Smoke)
	}
	b = appendOptFloat(b, `,"leak_ma":`, t.LeakMA)
	b = append(b, `,"ports":`...)
	if t.Ports == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i := range t.Ports {
		p := &t.Ports[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendInt(append(b, `{"n":`...), int64(p.N))
		b = appendString(append(b, `,"state":`...), string(p.State))
		b = appendOptFloat(b, `,"v":`, p.V)
		b = appendOptFloat(b, `,"a":`, p.A)
		b = appendOptFloat(b, `,"w":`, p.W)
		b = appendOptFloat(b, `,"wh":`, p.WH)
		b = appendOptFloat(b, `,"temp_c":`, p.TempC)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

func (e *Event) appendJSON(b []byte) []byte {
	b = appendInt(append(b, `{"v":`...), int64(e.V))
	b = appendInt(append(b, `,"ts":`...), e.TS)
	b = appendInt(append(b, `,"port":`...), int64(e.Port))
	b = appendString(append(b, `,"kind":`...), string(e.Kind))
	if e.Detail != "" {
		b = appendString(append(b, `,"detail":`...), e.Detail)
	}
	return append(b, '}')
}

func (c *Command) appendJSON(b []byte) []byte {
	b = appendInt(append(b, `{"v":`...), int64(c.V))
	b = appendString(append(b, `,"id":`...), c.ID)
	b = appendInt(append(b, `,"ts":`...), c.TS)
	b = appendInt(append(b, `,"port":`...), int64(c.Port))
	b = appendString(append(b, `,"action":`...), string(c.Action))
	if c.Reason != "" {
		b = appendString(append(b, `,"reason":`...), c.Reason)
	}
	return append(b, '}')
}

func (a *Ack) appendJSON(b []byte) []byte {
	b = appendInt(append(b, `{"v":`...), int64(a.V))
	b = appendString(append(b, `,"id":`...), a.ID)
	if a.TS != 0 {
		b = appendInt(append(b, `,"ts":`...), a.TS)
	}
	b = appendInt(append(b, `,"port":`...), int64(a.Port))
	b = strconv.AppendBool(append(b, `,"ok":`...), a.OK)
	if a.State != "" {
		b = appendString(append(b, `,"state":`...), string(a.State))
	}
	if a.Err != "" {
		b = appendString(append(b, `,"err":`...), a.Err)
	}
	return append(b, '}')
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

func appendOptFloat(b []byte, key string, f *float64) []byte {
	if f == nil {
		return b
	}
	return appendFloat(append(b, key...), *f)
}

// appendFloat formats a finite float like encoding/json: the shortest
// representation that parses back to the same bits, in plain notation
// except for very large or small magnitudes. The caller has checked that f
// is finite.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Shorten e-07 to e-7, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as a JSON string the way encoding/json does with
// HTML escaping off. s is valid UTF-8 (Encode checks it first).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			// U+2028 and U+2029 end lines in JavaScript; encoding/json
			// escapes them so a payload can be pasted into a script.
			if r == '\u2028' || r == '\u2029' {
				b = append(b, s[start:i]...)
				b = append(b, `\u202`...)
				b = append(b, hexDigits[r&0xf])
				start = i + size
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
