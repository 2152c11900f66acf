package lineproto

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// Tag appends a tag value, escaping ',', '=', ' ' and '\'. Newlines cannot
// be escaped in line protocol and become '_'.
func Tag(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ',', '=', ' ', '\\':
			dst = append(dst, '\\', c)
		case '\n', '\r':
			dst = append(dst, '_')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// String appends a quoted string field value holding at most max bytes of
// s. Control characters are written as the text \xNN so that no value can
// ever end a line; invalid UTF-8 becomes U+FFFD.
func String(dst []byte, s string, max int) []byte {
	if len(s) > max {
		s = s[:max]
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n <= 1 {
				dst = append(dst, "\uFFFD"...)
				i++
				continue
			}
			dst = append(dst, s[i:i+n]...)
			i += n
			continue
		}
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c == 0x7f:
			const hex = "0123456789abcdef"
			dst = append(dst, '\\', '\\', 'x', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
		i++
	}
	return append(dst, '"')
}

// Field appends ",key=" (the separator before every field but the first).
func Field(dst []byte, key string) []byte {
	dst = append(dst, ',')
	dst = append(dst, key...)
	return append(dst, '=')
}

// Float appends a float field ",key=v". NaN and infinities, which line
// protocol cannot carry, are left out.
func Float(dst []byte, key string, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return dst
	}
	return strconv.AppendFloat(Field(dst, key), v, 'g', -1, 64)
}

// OptFloat appends a float field when v is not nil.
func OptFloat(dst []byte, key string, v *float64) []byte {
	if v == nil {
		return dst
	}
	return Float(dst, key, *v)
}

// Int appends an integer field ",key=vi".
func Int(dst []byte, key string, v int64) []byte {
	return append(strconv.AppendInt(Field(dst, key), v, 10), 'i')
}

// Bool appends a boolean field ",key=v".
func Bool(dst []byte, key string, v bool) []byte {
	return strconv.AppendBool(Field(dst, key), v)
}

// Str appends a string field ",key=\"v\"" of at most max bytes.
func Str(dst []byte, key, v string, max int) []byte {
	return String(Field(dst, key), v, max)
}

// Time appends " ns\n", ending the point.
func Time(dst []byte, ns int64) []byte {
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, ns, 10)
	return append(dst, '\n')
}
