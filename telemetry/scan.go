package telemetry

// This file is the JSON scanner under Decode. It is written by hand, not
// taken from encoding/json, for two reasons. Speed: ingest decodes 10,000
// ten-port messages a second on a 2-core box it shares with Mosquitto and
// InfluxDB, and encoding/json alone, without any validation, costs several
// times what this scanner does with all of it (docs/benchmarks.md).
// Exactness: the protocol needs things encoding/json does not give, namely
// telling a bare NaN token from a syntax error, presence of a member as
// opposed to its zero value, field paths with array indices, case-sensitive
// keys, and refusing a member given twice instead of keeping the last.
// The fuzz tests hold the scanner to encoding/json on everything both
// accept.

import (
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of objects and arrays a payload may have;
// the top-level object is depth 1 and a telemetry port object is depth 3.
// The limit is checked while scanning, so a hostile payload of 60 KiB of
// '[' is rejected after MaxDepth+1 bytes.
const MaxDepth = 8

// valKind is the JSON type of a scanned value.
type valKind uint8

const (
	valAbsent valKind = iota // the member did not appear
	valNull
	valBool
	valNumber
	valString
	valObject
	valArray
	// valNonFinite is a bare NaN, Infinity or -Infinity token. It is not
	// JSON, but piles written in C or Python emit it when a sensor fails, so
	// the scanner names it instead of calling it a syntax error: the decoder
	// then reports not_finite, or applies the safety exception.
	valNonFinite
)

// article names a JSON type for error details ("got a string").
func (k valKind) article() string {
	switch k {
	case valNull:
		return "null"
	case valBool:
		return "a boolean"
	case valNumber:
		return "a number"
	case valString:
		return "a string"
	case valObject:
		return "an object"
	case valArray:
		return "an array"
	case valNonFinite:
		return "a non-finite number"
	}
	return "nothing"
}

// value is one scanned member value. Scalars keep the offsets of their raw
// bytes in the payload (a number literal, a string's contents without the
// quotes and still escaped, or a bare token), so that a value holds no
// pointer: values are copied around a lot, and a pointer-free copy costs no
// GC write barrier. Objects and arrays are skipped and only their kind is
// kept.
type value struct {
	kind       valKind
	esc        bool  // a string holding backslash escapes
	b          bool  // the boolean, for valBool
	start, end int32 // raw bytes: payload[start:end]; payloads are at most MaxPayload bytes
}

// missing reports whether a member counts as absent: JSON null is the same
// as leaving the member out, for required and optional members alike.
func (v value) missing() bool { return v.kind == valAbsent || v.kind == valNull }

// scanner reads JSON from a payload that is already known to be valid
// UTF-8. It is a strict RFC 8259 scanner (no comments, no trailing commas,
// no leading zeros, no single quotes), plus the recognition of bare
// non-finite tokens described at valNonFinite.
type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) syntax(detail string) *RejectError {
	return &RejectError{Reason: ReasonBadJSON, Detail: detail + " at byte " + strconv.Itoa(s.pos)}
}

func (s *scanner) skipWS() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next non-whitespace byte, or 0 at the end of the input.
func (s *scanner) peek() byte {
	s.skipWS()
	if s.pos >= len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

// member advances to the next member of an object whose '{' has been
// consumed. It returns the member's key, unescaped, with the scanner at the
// member's value, or more == false once it has consumed the closing '}'.
// first must start true for each object. The key may point into the
// payload.
func (s *scanner) member(first *bool) (key []byte, more bool, err *RejectError) {
	c := s.peek()
	if c == '}' {
		s.pos++
		return nil, false, nil
	}
	if !*first {
		if c != ',' {
			return nil, false, s.syntax("want , or } after an object member")
		}
		s.pos++
		c = s.peek()
	}
	*first = false
	if c != '"' {
		return nil, false, s.syntax("want a string key")
	}
	v, err := s.str()
	if err != nil {
		return nil, false, err
	}
	raw := s.raw(v)
	if v.esc {
		raw = unescape(raw)
	}
	if s.peek() != ':' {
		return nil, false, s.syntax("want : after an object key")
	}
	s.pos++
	s.skipWS()
	return raw, true, nil
}

// element advances to the next element of an array whose '[' has been
// consumed, like member does for objects.
func (s *scanner) element(first *bool) (more bool, err *RejectError) {
	c := s.peek()
	if c == ']' {
		s.pos++
		return false, nil
	}
	if !*first {
		if c != ',' {
			return false, s.syntax("want , or ] after an array element")
		}
		s.pos++
		s.skipWS()
	}
	*first = false
	return true, nil
}

// value scans the value at the scanner's position, which sits inside a
// container at depth. Objects and arrays are skipped, see skip.
func (s *scanner) value(depth int) (value, *RejectError) {
	s.skipWS()
	if s.pos >= len(s.data) {
		return value{}, s.syntax("unexpected end of input, want a value")
	}
	switch c := s.data[s.pos]; {
	case c == '"':
		return s.str()
	case c == '-' || c >= '0' && c <= '9':
		if c == '-' && s.pos+1 < len(s.data) && isLetter(s.data[s.pos+1]) {
			return s.word()
		}
		return s.number()
	case c == '{' || c == '[':
		kind := valObject
		if c == '[' {
			kind = valArray
		}
		return value{kind: kind}, s.skip(depth)
	case c == '+' || isLetter(c):
		return s.word()
	}
	return value{}, s.syntax("want a value")
}

// skip scans over one value of any type, checking its syntax and depth.
// A bare non-finite token inside it is a not_finite error whose Field is the
// path below the skipped value ("[2].x"), for the caller to prefix.
func (s *scanner) skip(depth int) *RejectError {
	c := s.peek()
	if c != '{' && c != '[' {
		v, err := s.value(depth)
		if err == nil && v.kind == valNonFinite {
			err = s.nonFinite("", v)
		}
		return err
	}
	if depth+1 > MaxDepth {
		return s.syntax("nested deeper than " + strconv.Itoa(MaxDepth) + " levels")
	}
	s.pos++
	first := true
	if c == '{' {
		for {
			key, more, err := s.member(&first)
			if err != nil || !more {
				return err
			}
			if err := s.skip(depth + 1); err != nil {
				return under("."+pathKey(key), err)
			}
		}
	}
	for i := 0; ; i++ {
		more, err := s.element(&first)
		if err != nil || !more {
			return err
		}
		if err := s.skip(depth + 1); err != nil {
			return under("["+strconv.Itoa(i)+"]", err)
		}
	}
}

// nonFinite is the error for a bare non-finite token v at field.
func (s *scanner) nonFinite(field string, v value) *RejectError {
	return &RejectError{Reason: ReasonNotFinite, Field: field, Detail: "bare " + string(s.raw(v)) + " is not a JSON number"}
}

// under prefixes the path of a not_finite error found inside a skipped
// value with the step that led to it. Syntax errors carry a byte offset
// instead of a path.
func under(step string, err *RejectError) *RejectError {
	if err.Reason == ReasonNotFinite {
		err.Field = step + err.Field
	}
	return err
}

// raw returns the raw bytes of a scanned scalar, pointing into the payload.
func (s *scanner) raw(v value) []byte { return s.data[v.start:v.end] }

// str scans a string whose opening quote is at the scanner's position.
func (s *scanner) str() (value, *RejectError) {
	start := s.pos + 1
	esc := false
	for i := start; i < len(s.data); i++ {
		switch c := s.data[i]; {
		case c == '"':
			s.pos = i + 1
			return value{kind: valString, esc: esc, start: int32(start), end: int32(i)}, nil
		case c == '\\':
			esc = true
			i++
			if i >= len(s.data) {
				s.pos = i
				return value{}, s.syntax("unterminated string")
			}
			switch s.data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s.data) || hex4(s.data[i+1:i+5]) < 0 {
					s.pos = i
					return value{}, s.syntax(`bad \u escape`)
				}
				i += 4
			default:
				s.pos = i
				return value{}, s.syntax("bad escape in string")
			}
		case c < 0x20:
			s.pos = i
			return value{}, s.syntax("control character in string")
		}
	}
	s.pos = len(s.data)
	return value{}, s.syntax("unterminated string")
}

// number scans a JSON number literal.
func (s *scanner) number() (value, *RejectError) {
	d := s.data
	start, i := s.pos, s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		i = digits(d, i)
	default:
		s.pos = i
		return value{}, s.syntax("bad number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if j := digits(d, i); j > i {
			i = j
		} else {
			s.pos = i
			return value{}, s.syntax("bad number: want a digit after .")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if j := digits(d, i); j > i {
			i = j
		} else {
			s.pos = i
			return value{}, s.syntax("bad number: want a digit in the exponent")
		}
	}
	s.pos = i
	return value{kind: valNumber, start: int32(start), end: int32(i)}, nil
}

func digits(d []byte, i int) int {
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		i++
	}
	return i
}

// word scans a bare token: true, false, null, or a non-finite token such as
// NaN, Infinity, -Infinity, nan, inf or -inf (any case, optional sign).
func (s *scanner) word() (value, *RejectError) {
	start := s.pos
	i := start
	if s.data[i] == '-' || s.data[i] == '+' {
		i++
	}
	letters := i
	for i < len(s.data) && isLetter(s.data[i]) {
		i++
	}
	w := s.data[start:i]
	switch string(w) {
	case "null":
		s.pos = i
		return value{kind: valNull}, nil
	case "true", "false":
		s.pos = i
		return value{kind: valBool, b: w[0] == 't'}, nil
	}
	if isNonFinite(s.data[letters:i]) {
		s.pos = i
		return value{kind: valNonFinite, start: int32(start), end: int32(i)}, nil
	}
	return value{}, s.syntax("bad literal " + strconv.Quote(truncate(string(w), 16)))
}

func isNonFinite(w []byte) bool {
	if len(w) > len("infinity") {
		return false
	}
	var lower [8]byte
	for i, c := range w {
		lower[i] = c | 0x20 // ASCII letters only, checked by the caller
	}
	switch string(lower[:len(w)]) {
	case "nan", "inf", "infinity":
		return true
	}
	return false
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// hex4 decodes four hex digits, or returns -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unescape decodes the escapes of a string that str has already checked.
// Like encoding/json, an unpaired UTF-16 surrogate becomes U+FFFD, so the
// result is always valid UTF-8. The result is a new slice.
func unescape(raw []byte) []byte {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(raw[i+1:])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					r2 = hex4(raw[i+3:])
				}
				if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
					r = dec
					i += 6
				} else {
					r = unicode.ReplacementChar
				}
			}
			out = utf8.AppendRune(out, r)
		default: // '"', '\\', '/'
			out = append(out, raw[i])
		}
	}
	return out
}

// pathKey renders an object key for an error's Field. Keys come from the
// payload, so anything but a short plain name is quoted and truncated: a
// Field may reach logs, and must never carry a 60 KiB key or a newline.
func pathKey(key []byte) string {
	if len(key) <= 40 && ValidID(string(key)) {
		return string(key)
	}
	return strconv.Quote(truncate(string(key), 32))
}
