package lineproto

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTag(t *testing.T) {
	require.Equal(t, `a\,b\=c\ d\\e_f`, string(Tag(nil, "a,b=c d\\e\nf")))
}

func TestString(t *testing.T) {
	require.Equal(t, `"say \"hi\" \\ \\x0a"`, string(String(nil, "say \"hi\" \\ \n", 100)))
	require.Equal(t, `"ok`+"\uFFFD"+`春"`, string(String(nil, "ok\xff春", 100)))
	require.Equal(t, `"abc"`, string(String(nil, "abcdef", 3)))
}

func TestFields(t *testing.T) {
	var b []byte
	b = append(b, "m,t=1 x=1i"...)
	b = Float(b, "f", 1.5)
	b = Float(b, "nan", math.NaN())
	b = Float(b, "inf", math.Inf(1))
	b = OptFloat(b, "nil", nil)
	b = Int(b, "i", -3)
	b = Bool(b, "b", true)
	b = Str(b, "s", "v", 10)
	b = Time(b, 42)
	require.Equal(t, "m,t=1 x=1i,f=1.5,i=-3i,b=true,s=\"v\" 42\n", string(b))
}
