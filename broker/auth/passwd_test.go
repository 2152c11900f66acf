package auth

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/internal/testenv"
)

// Lines written by mosquitto_passwd 2.0.11 (Debian bookworm):
//
//	mosquitto_passwd -c -b f chunbo-nanyuan/p01 secret1
//	mosquitto_passwd -c -b f chargeguard cg-secret
//	mosquitto_passwd -H sha512 -c -b f chunbo-nanyuan/p03 'secret 3:with colon'
const mosquittoFile = `chunbo-nanyuan/p01:$7$101$d6hAckj44ssYcRmf$w/okNfczp5K/NpuU0XtYfVZ8WIwjZnv6TqShgBnTNYKmofMUe8Ae/5oj69gNkdRwYNT3yyvdPToshYmt6l6IsA==
chargeguard:$7$101$ylbduitiBbPcgT6L$HOv/vTNS9NiQ3HGdA8tJ4sbQwfVNXHbuRuVst4aa9tuUZSAkxxjHp/suzXTsxqhktdm+Nr6uWrKJmfQk6FgQoA==
chunbo-nanyuan/p03:$6$fOh88EBl8wcTxlQD$0/pj41iRqAVO5isuKeGcfPwzY6r+veoFYpxZeoHY4c2fFUtFzT5OSjSauy7FBU/eFENz50yQHqccIiFRX1RFpg==
`

func TestVerifyMosquittoPasswdVectors(t *testing.T) {
	f, err := ParsePasswordFile(strings.NewReader(mosquittoFile))
	require.NoError(t, err)
	assert.Equal(t, []string{"chargeguard", "chunbo-nanyuan/p01", "chunbo-nanyuan/p03"}, f.Users())

	assert.True(t, f.Verify("chunbo-nanyuan/p01", "secret1"))
	assert.True(t, f.Verify("chargeguard", "cg-secret"))
	assert.True(t, f.Verify("chunbo-nanyuan/p03", "secret 3:with colon"), "$6$ (mosquitto_passwd -H sha512)")

	assert.False(t, f.Verify("chunbo-nanyuan/p01", "secret2"))
	assert.False(t, f.Verify("chunbo-nanyuan/p01", "secret1 "))
	assert.False(t, f.Verify("chunbo-nanyuan/p01", ""))
	assert.False(t, f.Verify("chunbo-nanyuan/p02", "secret1"), "unknown user")
	assert.False(t, f.Verify("chargeguard", "secret1"), "another user's password")
	assert.False(t, f.Verify("chunbo-nanyuan/p03", "secret 3"))
}

func TestHashPasswordRoundTrip(t *testing.T) {
	for _, it := range []int{1, DefaultIterations, 2000} {
		h, err := HashPassword("pw-ü€", it, rand.Reader)
		require.NoError(t, err)
		parts := strings.Split(h, "$")
		require.Len(t, parts, 5, h)
		assert.Equal(t, "7", parts[1])
		ok, err := CheckHash(h, "pw-ü€")
		require.NoError(t, err)
		assert.True(t, ok, "iterations %d", it)
		ok, err = CheckHash(h, "pw-u€")
		require.NoError(t, err)
		assert.False(t, ok)
	}
	// A fixed salt gives a fixed hash: the encoding does not depend on
	// anything but the inputs.
	zero := bytes.NewReader(make([]byte, saltLen))
	h, err := HashPassword("secret1", DefaultIterations, zero)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(h, "$7$101$AAAAAAAAAAAAAAAA$"), h)

	_, err = HashPassword("x", 0, rand.Reader)
	assert.Error(t, err)
	_, err = HashPassword("x", MaxIterations+1, rand.Reader)
	assert.Error(t, err)
}

func TestParsePasswordFileRejects(t *testing.T) {
	good := "$7$101$d6hAckj44ssYcRmf$w/okNfczp5K/NpuU0XtYfVZ8WIwjZnv6TqShgBnTNYKmofMUe8Ae/5oj69gNkdRwYNT3yyvdPToshYmt6l6IsA=="
	for name, file := range map[string]string{
		"no colon":          "chunbo-nanyuan/p01\n",
		"empty user":        ":" + good + "\n",
		"plain text":        "u:secret\n",
		"unknown type":      "u:$5$d6hAckj44ssYcRmf$w/ok\n",
		"zero iterations":   "u:$7$0$d6hAckj44ssYcRmf$w/okNfczp5K/NpuU0XtYfVZ8WIwjZnv6TqShgBnTNYKmofMUe8Ae/5oj69gNkdRwYNT3yyvdPToshYmt6l6IsA==\n",
		"huge iterations":   "u:$7$99999999999$d6hAckj44ssYcRmf$w/okNfczp5K/NpuU0XtYfVZ8WIwjZnv6TqShgBnTNYKmofMUe8Ae/5oj69gNkdRwYNT3yyvdPToshYmt6l6IsA==\n",
		"short salt":        "u:$7$101$d6hAckj4$w/okNfczp5K/NpuU0XtYfVZ8WIwjZnv6TqShgBnTNYKmofMUe8Ae/5oj69gNkdRwYNT3yyvdPToshYmt6l6IsA==\n",
		"short hash":        "u:$7$101$d6hAckj44ssYcRmf$w/okNfczp5K/NpuU0XtYfVZ8\n",
		"bad base64":        "u:$7$101$d6hAckj44ssYcRm!$w/okNfczp5K/NpuU0XtYfVZ8WIwjZnv6TqShgBnTNYKmofMUe8Ae/5oj69gNkdRwYNT3yyvdPToshYmt6l6IsA==\n",
		"missing hash part": "u:$7$101$d6hAckj44ssYcRmf\n",
		"duplicate user":    "u:" + good + "\n# note\nu:" + good + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParsePasswordFile(strings.NewReader(file))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "line ")
		})
	}
	_, err := ParsePasswordFile(strings.NewReader("u:$7$101$short$hash\n"))
	assert.True(t, errors.Is(err, ErrBadHash), "%v", err)
}

func TestPasswordFileEditKeepsNotes(t *testing.T) {
	in := "# Changhe street piles\n\nchunbo-nanyuan/p01:$7$101$d6hAckj44ssYcRmf$w/okNfczp5K/NpuU0XtYfVZ8WIwjZnv6TqShgBnTNYKmofMUe8Ae/5oj69gNkdRwYNT3yyvdPToshYmt6l6IsA==  \r\n# service\nchargeguard:$7$101$ylbduitiBbPcgT6L$HOv/vTNS9NiQ3HGdA8tJ4sbQwfVNXHbuRuVst4aa9tuUZSAkxxjHp/suzXTsxqhktdm+Nr6uWrKJmfQk6FgQoA==\n"
	f, err := ParsePasswordFile(strings.NewReader(in))
	require.NoError(t, err)
	require.NoError(t, f.Set("chunbo-nanyuan/p02", "pw2", DefaultIterations))
	require.NoError(t, f.Set("chargeguard", "new-cg", DefaultIterations))
	assert.True(t, f.Delete("chunbo-nanyuan/p01"))
	assert.False(t, f.Delete("chunbo-nanyuan/p01"))

	var out bytes.Buffer
	_, err = f.WriteTo(&out)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	require.Len(t, lines, 5, out.String())
	assert.Equal(t, "# Changhe street piles", lines[0])
	assert.Equal(t, "", lines[1])
	assert.Equal(t, "# service", lines[2])
	assert.True(t, strings.HasPrefix(lines[3], "chargeguard:$7$101$"), "replaced in place")
	assert.True(t, strings.HasPrefix(lines[4], "chunbo-nanyuan/p02:$7$101$"), "added at the end")

	g, err := ParsePasswordFile(&out)
	require.NoError(t, err)
	assert.True(t, g.Verify("chargeguard", "new-cg"))
	assert.False(t, g.Verify("chargeguard", "cg-secret"))
	assert.True(t, g.Verify("chunbo-nanyuan/p02", "pw2"))
	assert.False(t, g.Has("chunbo-nanyuan/p01"))

	assert.Error(t, f.Set("bad/id/x", "pw", DefaultIterations))
	assert.Error(t, f.Set("chunbo-nanyuan/p09", "", DefaultIterations))
	assert.Error(t, f.Set("chunbo-nanyuan/p09", "a\nb", DefaultIterations))
}

func TestValidUsername(t *testing.T) {
	for _, u := range []string{"chunbo-nanyuan/p01", "chargeguard", "a/b", "S_1/P-2", strings.Repeat("a", 64) + "/" + strings.Repeat("b", 64)} {
		assert.NoError(t, ValidUsername(u), u)
	}
	for _, u := range []string{"", "/", "a/", "/b", "a/b/c", "a b/c", "a/+", "#", "a/#", "site/pile\n", "a:b", "ü/p", strings.Repeat("a", 65), strings.Repeat("a", 65) + "/b"} {
		assert.Error(t, ValidUsername(u), "%q", u)
	}
	site, pile, ok := SplitPileUsername("chunbo-nanyuan/p01")
	assert.True(t, ok)
	assert.Equal(t, "chunbo-nanyuan", site)
	assert.Equal(t, "p01", pile)
	_, _, ok = SplitPileUsername("chargeguard")
	assert.False(t, ok)
	assert.Equal(t, "s/p", PileUsername("s", "p"))
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		pw, err := GeneratePassword()
		require.NoError(t, err)
		assert.Len(t, pw, 24)
		assert.Regexp(t, `^[A-Za-z0-9_-]{24}$`, pw)
		assert.False(t, seen[pw])
		seen[pw] = true
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "passwd")
	f := NewPasswordFile()
	require.NoError(t, f.Set("chunbo-nanyuan/p01", "pw1", DefaultIterations))
	require.NoError(t, f.WriteFile(path, 0o640))
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), info.Mode().Perm())

	// An existing file keeps its mode.
	require.NoError(t, os.Chmod(path, 0o600))
	require.NoError(t, f.Set("chunbo-nanyuan/p02", "pw2", DefaultIterations))
	require.NoError(t, f.WriteFile(path, 0o644))
	info, err = os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	g, err := ReadPasswordFile(path)
	require.NoError(t, err)
	assert.True(t, g.Verify("chunbo-nanyuan/p01", "pw1"))
	assert.True(t, g.Verify("chunbo-nanyuan/p02", "pw2"))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left behind")
}

// TestMosquittoPasswdFileVerifiedInGo: a file written now by the real
// mosquitto_passwd, in both of its hash formats, is read and checked by the
// Go verifier.
func TestMosquittoPasswdFileVerifiedInGo(t *testing.T) {
	testenv.Integration(t)
	bin := testenv.Binary(t, "mosquitto_passwd", "mosquitto_passwd", "/usr/bin/mosquitto_passwd")
	path := filepath.Join(t.TempDir(), "passwd")
	run := func(args ...string) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	run("-c", "-b", path, "chunbo-nanyuan/p01", "pile-one")
	run("-b", path, "chargeguard", "the-guard")
	run("-H", "sha512", "-b", path, "chunbo-nanyuan/p02", "pile two")

	f, err := ReadPasswordFile(path)
	require.NoError(t, err)
	assert.Equal(t, 3, f.Len())
	assert.True(t, f.Verify("chunbo-nanyuan/p01", "pile-one"))
	assert.True(t, f.Verify("chargeguard", "the-guard"))
	assert.True(t, f.Verify("chunbo-nanyuan/p02", "pile two"))
	assert.False(t, f.Verify("chunbo-nanyuan/p01", "the-guard"))
	assert.False(t, f.Verify("chunbo-nanyuan/p02", "pile-two"))

	// And cgpasswd's edits keep mosquitto_passwd's entries usable by it.
	require.NoError(t, f.Set("chunbo-nanyuan/p03", "pile-three", DefaultIterations))
	require.NoError(t, f.WriteFile(path, 0o640))
	run("-b", path, "chunbo-nanyuan/p04", "pile-four") // mosquitto_passwd parses our file
	g, err := ReadPasswordFile(path)
	require.NoError(t, err)
	assert.True(t, g.Verify("chunbo-nanyuan/p03", "pile-three"))
	assert.True(t, g.Verify("chunbo-nanyuan/p04", "pile-four"))
	assert.True(t, g.Verify("chunbo-nanyuan/p01", "pile-one"))
}

func FuzzParsePasswordFile(f *testing.F) {
	f.Add(mosquittoFile)
	f.Add("# c\n\nu:$7$1$AAAAAAAAAAAAAAAA$" + strings.Repeat("A", 86) + "==\n")
	f.Add("a:$6$$\n")
	f.Fuzz(func(t *testing.T, s string) {
		pf, err := ParsePasswordFile(strings.NewReader(s))
		if err != nil {
			return
		}
		var out bytes.Buffer
		_, err = pf.WriteTo(&out)
		require.NoError(t, err)
		again, err := ParsePasswordFile(&out)
		require.NoError(t, err, "a file we wrote must parse: %q", out.String())
		assert.Equal(t, pf.Users(), again.Users())
	})
}
