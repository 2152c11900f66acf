package auth

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func writeAccounts(t *testing.T, path string, accounts map[string]string) {
	t.Helper()
	f := NewPasswordFile()
	for u, p := range accounts {
		require.NoError(t, f.Set(u, p, DefaultIterations))
	}
	require.NoError(t, f.WriteFile(path, 0o600))
}

func connect(user, pass, clientID string) (*mqtt.Client, packets.Packet) {
	cl := &mqtt.Client{ID: clientID}
	cl.Properties.Username = []byte(user)
	pk := packets.Packet{Connect: packets.ConnectParams{
		ClientIdentifier: clientID,
		Username:         []byte(user),
		UsernameFlag:     user != "",
		Password:         []byte(pass),
		PasswordFlag:     pass != "",
	}}
	return cl, pk
}

func TestHookAuthenticate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	writeAccounts(t, path, map[string]string{
		"chunbo-nanyuan/p01": "pw1",
		"chargeguard":        "guard",
		"grafana":            "graf",
	})
	reg := prometheus.NewRegistry()
	h, err := NewHook(Options{PasswordFile: path, Registerer: reg, ReloadInterval: -1})
	require.NoError(t, err)
	refused := func(reason string) float64 { return testutil.ToFloat64(h.refused.WithLabelValues(reason)) }

	cl, pk := connect("chunbo-nanyuan/p01", "pw1", "chargeguard") // tries chargeguard's client id
	assert.True(t, h.OnConnectAuthenticate(cl, pk))
	assert.Equal(t, "chunbo-nanyuan/p01", cl.ID, "a pile's client id is its username")

	cl, pk = connect("chargeguard", "guard", "chargeguard-live")
	assert.True(t, h.OnConnectAuthenticate(cl, pk))
	assert.Equal(t, "chargeguard-live", cl.ID, "a service keeps its client ids")

	cl, pk = connect("chunbo-nanyuan/p01", "pw2", "x")
	assert.False(t, h.OnConnectAuthenticate(cl, pk))
	assert.Equal(t, 1.0, refused(ReasonBadPassword))
	cl, pk = connect("chunbo-nanyuan/p01", "", "x")
	assert.False(t, h.OnConnectAuthenticate(cl, pk))
	assert.Equal(t, 2.0, refused(ReasonBadPassword))
	cl, pk = connect("chunbo-nanyuan/p02", "pw1", "x")
	assert.False(t, h.OnConnectAuthenticate(cl, pk))
	assert.Equal(t, 1.0, refused(ReasonUnknownUser))
	cl, pk = connect("", "", "x")
	assert.False(t, h.OnConnectAuthenticate(cl, pk))
	assert.Equal(t, 1.0, refused(ReasonAnonymous))
	cl, pk = connect("grafana", "graf", "x")
	assert.False(t, h.OnConnectAuthenticate(cl, pk), "an account with no rights cannot connect")
	assert.Equal(t, 1.0, refused(ReasonNoRights))

	// A last will is a publish: only to a topic the client may publish.
	cl, pk = connect("chunbo-nanyuan/p01", "pw1", "x")
	pk.Connect.WillFlag, pk.Connect.WillTopic = true, "chargers/chunbo-nanyuan/p02/cmd"
	assert.False(t, h.OnConnectAuthenticate(cl, pk))
	assert.Equal(t, 1.0, refused(ReasonWillDenied))
	cl, pk = connect("chunbo-nanyuan/p01", "pw1", "x")
	pk.Connect.WillFlag, pk.Connect.WillTopic = true, "chargers/chunbo-nanyuan/p01/status"
	assert.True(t, h.OnConnectAuthenticate(cl, pk))

	// The ACL is applied to the authenticated username.
	cl, _ = connect("chunbo-nanyuan/p01", "pw1", "x")
	assert.True(t, h.OnACLCheck(cl, "chargers/chunbo-nanyuan/p01/telemetry", true))
	assert.False(t, h.OnACLCheck(cl, "chargers/chunbo-nanyuan/p02/telemetry", true))
	assert.True(t, h.OnACLCheck(cl, "chargers/chunbo-nanyuan/p01/cmd", false))
	assert.False(t, h.OnACLCheck(cl, "chargers/#", false))
	assert.Equal(t, 1.0, testutil.ToFloat64(h.denied.WithLabelValues("publish")))
	assert.Equal(t, 1.0, testutil.ToFloat64(h.denied.WithLabelValues("read")))
	assert.Equal(t, 3.0, testutil.ToFloat64(h.users))

	assert.True(t, h.Provides(mqtt.OnConnectAuthenticate))
	assert.True(t, h.Provides(mqtt.OnACLCheck))
	assert.False(t, h.Provides(mqtt.OnPublish))
}

func TestHookRefusesToStartOpen(t *testing.T) {
	_, err := NewHook(Options{})
	assert.Error(t, err)
	_, err = NewHook(Options{PasswordFile: filepath.Join(t.TempDir(), "missing")})
	assert.ErrorIs(t, err, os.ErrNotExist)
	bad := filepath.Join(t.TempDir(), "passwd")
	require.NoError(t, os.WriteFile(bad, []byte("chunbo-nanyuan/p01:secret\n"), 0o600))
	_, err = NewHook(Options{PasswordFile: bad})
	assert.ErrorIs(t, err, ErrBadHash)
}

func TestHookReloadsChangedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	writeAccounts(t, path, map[string]string{"chunbo-nanyuan/p01": "pw1"})
	clock := &fakeClock{now: time.Unix(1_751_371_200, 0)}
	h, err := NewHook(Options{PasswordFile: path, Now: clock.Now, ReloadInterval: time.Second})
	require.NoError(t, err)
	try := func(user, pass string) bool {
		cl, pk := connect(user, pass, "x")
		return h.OnConnectAuthenticate(cl, pk)
	}

	writeAccounts(t, path, map[string]string{"chunbo-nanyuan/p01": "pw1", "chunbo-nanyuan/p02": "pw2"})
	assert.False(t, try("chunbo-nanyuan/p02", "pw2"), "not re-read within the interval")
	clock.Add(time.Second)
	assert.True(t, try("chunbo-nanyuan/p02", "pw2"), "re-read after the interval")
	assert.Equal(t, 1.0, testutil.ToFloat64(h.reloads.WithLabelValues("ok")))

	// A broken file leaves the accounts in force and is reported once.
	require.NoError(t, os.WriteFile(path+".tmp", []byte("garbage\n"), 0o600))
	require.NoError(t, os.Rename(path+".tmp", path))
	clock.Add(time.Second)
	assert.True(t, try("chunbo-nanyuan/p01", "pw1"))
	clock.Add(time.Second)
	assert.True(t, try("chunbo-nanyuan/p02", "pw2"))
	assert.Equal(t, 1.0, testutil.ToFloat64(h.reloads.WithLabelValues("error")))

	// A pile deleted from the file can no longer connect.
	writeAccounts(t, path, map[string]string{"chunbo-nanyuan/p01": "pw1"})
	clock.Add(time.Second)
	assert.False(t, try("chunbo-nanyuan/p02", "pw2"))
	assert.True(t, try("chunbo-nanyuan/p01", "pw1"))

	// Reload does it at once.
	writeAccounts(t, path, map[string]string{"chunbo-nanyuan/p03": "pw3"})
	require.NoError(t, h.Reload())
	assert.True(t, try("chunbo-nanyuan/p03", "pw3"))
}
