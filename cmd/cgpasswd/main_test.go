package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chargeguard/chargeguard/broker/auth"
	"github.com/chargeguard/chargeguard/broker/auth/authtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type result struct {
	code           int
	stdout, stderr string
}

func cg(t *testing.T, stdin string, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb, func(k string) string { return env[k] })
	return result{code, out.String(), errb.String()}
}

func TestAddGeneratesAndPrintsPassword(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	r := cg(t, "", nil, "-f", path, "add", "chunbo-nanyuan/p01")
	require.Equal(t, 0, r.code, r.stderr)
	pw := strings.TrimSpace(r.stdout)
	assert.Regexp(t, `^[A-Za-z0-9_-]{24}$`, pw, "only the password on stdout")
	assert.Contains(t, r.stderr, "added chunbo-nanyuan/p01")
	assert.NotContains(t, r.stderr, pw, "the password is not repeated on stderr")

	f, err := auth.ReadPasswordFile(path)
	require.NoError(t, err)
	assert.True(t, f.Verify("chunbo-nanyuan/p01", pw))
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), info.Mode().Perm())

	// Adding again gives a new password and invalidates the old one.
	r = cg(t, "", nil, "-f", path, "add", "chunbo-nanyuan/p01")
	require.Equal(t, 0, r.code, r.stderr)
	pw2 := strings.TrimSpace(r.stdout)
	assert.NotEqual(t, pw, pw2)
	assert.Contains(t, r.stderr, "changed the password of chunbo-nanyuan/p01")
	f, err = auth.ReadPasswordFile(path)
	require.NoError(t, err)
	assert.True(t, f.Verify("chunbo-nanyuan/p01", pw2))
	assert.False(t, f.Verify("chunbo-nanyuan/p01", pw))
}

func TestAddFromStdinAndEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	r := cg(t, "guard secret\r\nignored\n", nil, "-f", path, "add", "-stdin", "chargeguard")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, r.stdout, "a given password is not printed")
	r = cg(t, "", map[string]string{"PW": "from-env"}, "-f", path, "add", "-password-env", "PW", "-iterations", "1000", "chunbo-nanyuan/p02")
	require.Equal(t, 0, r.code, r.stderr)

	f, err := auth.ReadPasswordFile(path)
	require.NoError(t, err)
	assert.True(t, f.Verify("chargeguard", "guard secret"))
	assert.True(t, f.Verify("chunbo-nanyuan/p02", "from-env"))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(b), "chunbo-nanyuan/p02:$7$1000$")

	for name, args := range map[string][]string{
		"empty stdin":     {"-f", path, "add", "-stdin", "chunbo-nanyuan/p03"},
		"unset env":       {"-f", path, "add", "-password-env", "NOPE", "chunbo-nanyuan/p03"},
		"both sources":    {"-f", path, "add", "-stdin", "-password-env", "PW", "chunbo-nanyuan/p03"},
		"no username":     {"-f", path, "add"},
		"bad iterations":  {"-f", path, "add", "-iterations", "0", "chunbo-nanyuan/p03"},
		"two usernames":   {"-f", path, "add", "chunbo-nanyuan/p03", "chunbo-nanyuan/p04"},
		"unknown command": {"-f", path, "frobnicate"},
		"no file":         {"add", "chunbo-nanyuan/p03"},
		"bad mode":        {"-f", path, "-mode", "999", "list"},
		"bad owner":       {"-f", path, "-owner", "mosquitto", "list"},
	} {
		t.Run(name, func(t *testing.T) {
			r := cg(t, "", map[string]string{"PW": "x"}, args...)
			assert.Equal(t, 2, r.code)
			assert.NotEmpty(t, r.stderr)
		})
	}
	f, err = auth.ReadPasswordFile(path)
	require.NoError(t, err)
	assert.Equal(t, []string{"chargeguard", "chunbo-nanyuan/p02"}, f.Users(), "failed commands change nothing")
}

func TestAddRefusesBadIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	for _, user := range []string{
		"chunbo-nanyuan/p01/x", "chunbo nanyuan/p01", "chunbo-nanyuan/+", "#", "site/p#1",
		"chunbo-nanyuan/", "/p01", "a,b/c", "site/pile\n", strings.Repeat("s", 65) + "/p", "站点/p01", "a:b",
	} {
		r := cg(t, "", nil, "-f", path, "add", user)
		assert.Equal(t, 2, r.code, "%q", user)
		assert.Contains(t, r.stderr, "[A-Za-z0-9_-]{1,64}", "%q", user)
		assert.Empty(t, r.stdout)
	}
	_, err := os.Stat(path)
	assert.ErrorIs(t, err, os.ErrNotExist, "no file written for a refused id")
}

func TestDeleteListCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	env := map[string]string{"A": "pw-a", "B": "pw-b"}
	require.Equal(t, 0, cg(t, "", env, "-f", path, "add", "-password-env", "A", "chunbo-nanyuan/p01").code)
	require.Equal(t, 0, cg(t, "", env, "-f", path, "add", "-password-env", "B", "chargeguard").code)

	r := cg(t, "", nil, "-f", path, "list")
	require.Equal(t, 0, r.code)
	assert.Equal(t, "chargeguard\nchunbo-nanyuan/p01\n", r.stdout)

	assert.Equal(t, 0, cg(t, "pw-a\n", nil, "-f", path, "check", "chunbo-nanyuan/p01").code)
	assert.Equal(t, 1, cg(t, "pw-b\n", nil, "-f", path, "check", "chunbo-nanyuan/p01").code)
	assert.Equal(t, 1, cg(t, "pw-a\n", nil, "-f", path, "check", "chunbo-nanyuan/p09").code)

	r = cg(t, "", nil, "-f", path, "delete", "chunbo-nanyuan/p01")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, 2, cg(t, "", nil, "-f", path, "delete", "chunbo-nanyuan/p01").code)
	assert.Equal(t, "chargeguard\n", cg(t, "", nil, "-f", path, "list").stdout)
	assert.Equal(t, 2, cg(t, "", nil, "-f", filepath.Join(t.TempDir(), "missing"), "list").code)
}

func TestOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	path := filepath.Join(t.TempDir(), "passwd")
	r := cg(t, "", nil, "-f", path, "-owner", "1883:1883", "add", "chargeguard")
	require.Equal(t, 0, r.code, r.stderr)
	st := statOwner(t, path)
	assert.Equal(t, [2]uint32{1883, 1883}, st)
	// A later edit without -owner keeps the owner (the broker's user).
	r = cg(t, "", nil, "-f", path, "add", "chunbo-nanyuan/p01")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, [2]uint32{1883, 1883}, statOwner(t, path))
}

func statOwner(t *testing.T, path string) [2]uint32 {
	info, err := os.Stat(path)
	require.NoError(t, err)
	st := info.Sys().(*syscall.Stat_t)
	return [2]uint32{st.Uid, st.Gid}
}

// TestMosquittoAcceptsCgpasswdFile: the real Mosquitto, with the shipped
// configuration, authenticates piles and chargeguard from a file that
// cgpasswd wrote, including an entry with a non-default iteration count.
func TestMosquittoAcceptsCgpasswdFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	r := cg(t, "", nil, "-f", path, "add", "chunbo-nanyuan/p01")
	require.Equal(t, 0, r.code, r.stderr)
	pilePW := strings.TrimSpace(r.stdout)
	r = cg(t, "guard-pw\n", nil, "-f", path, "add", "-stdin", "-iterations", "5000", "chargeguard")
	require.Equal(t, 0, r.code, r.stderr)

	m := authtest.Start(t, authtest.Options{PasswordFile: path})
	connect := func(url, user, pass string) error {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("cgpasswd-test").
			SetUsername(user).SetPassword(pass).SetProtocolVersion(4).
			SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second))
		tok := c.Connect()
		require.True(t, tok.WaitTimeout(10*time.Second))
		if tok.Error() == nil {
			c.Disconnect(50)
		}
		return tok.Error()
	}
	assert.NoError(t, connect(m.URL(authtest.PilePort), "chunbo-nanyuan/p01", pilePW))
	assert.NoError(t, connect(m.URL(authtest.ServicePort), "chargeguard", "guard-pw"))
	assert.Error(t, connect(m.URL(authtest.PilePort), "chunbo-nanyuan/p01", pilePW+"x"))
	assert.Error(t, connect(m.URL(authtest.ServicePort), "chargeguard", pilePW))
}
