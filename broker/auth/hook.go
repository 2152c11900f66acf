package auth

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Options configures Hook.
type Options struct {
	// PasswordFile is the Mosquitto password file. Empty means no
	// authentication at all: the embedded broker then lets anonymous
	// clients publish and read anything (the single-machine demo), and
	// NewHook refuses to build a hook.
	PasswordFile string
	// ACL is the topic policy; its zero value is root "chargers" and the
	// service account "chargeguard".
	ACL ACL
	// ReloadInterval is how often, at most, a connect or an ACL check looks
	// whether the password file changed (by size, time and inode) and
	// re-reads it, so that `cgpasswd add` and `cgpasswd delete` take effect
	// without a restart. Default 1s; negative never reloads.
	ReloadInterval time.Duration
	// Now is the clock; default time.Now.
	Now        func() time.Time
	Logger     zerolog.Logger
	Registerer prometheus.Registerer
}

// Hook is a mochi-mqtt hook that authenticates every client against a
// Mosquitto password file and authorises every publish, subscription and
// delivery with ACL. It also closes two holes that an ACL alone leaves open
// in an MQTT broker:
//
//   - A pile's client id is replaced by its username (what Mosquitto's
//     use_username_as_clientid does), so a pile cannot connect with another
//     pile's or chargeguard's client id to kick it off and take over its
//     session, with the close commands queued in it.
//   - A will message is checked like a publish when the client connects:
//     mochi-mqtt sends wills without asking the ACL, so without this a pile
//     could leave a forged command behind as its last will.
//
// Accounts that are neither a pile ("site/pile") nor a service are refused
// at connect: the ACL grants them nothing, and refusing them keeps every
// client id that a service uses out of their reach.
//
// The hook re-reads the password file when it changes (looking at most once
// per Options.ReloadInterval, on a connect or an ACL check) and then, like
// Mosquitto on SIGHUP, disconnects the clients whose account is gone or
// whose password no longer matches.
type Hook struct {
	mqtt.HookBase
	o Options

	file atomic.Pointer[PasswordFile]

	mu        sync.Mutex // serialises reloads
	stamp     os.FileInfo
	lastCheck atomic.Int64 // unix nanoseconds of the last look at the file

	// conns are the connected clients with the hash they authenticated
	// against and their password, so that a reload can disconnect the
	// clients whose account was deleted or whose password changed. Like
	// Mosquitto, which keeps every client's password for the same purpose,
	// the password stays in memory while the client is connected; it is
	// never logged.
	connMu sync.Mutex
	conns  map[*mqtt.Client]*connAuth

	refused *prometheus.CounterVec
	denied  *prometheus.CounterVec
	reloads *prometheus.CounterVec
	revoked prometheus.Counter
	users   prometheus.GaugeFunc
}

type connAuth struct {
	hash     string
	password string
}

// ErrRevoked is the cause recorded on a client that the hook disconnected
// because its account was deleted or its password changed.
var ErrRevoked = errors.New("account removed or password changed")

// Refusal reasons, the values of the reason label of
// chargeguard_broker_auth_refused_total.
const (
	ReasonAnonymous   = "anonymous"
	ReasonUnknownUser = "unknown_user"
	ReasonBadPassword = "bad_password"
	ReasonNoRights    = "no_rights"
	ReasonWillDenied  = "will_denied"
)

// NewHook reads the password file and builds the hook. A missing or
// malformed file is an error: a broker that was asked to authenticate never
// starts open.
func NewHook(o Options) (*Hook, error) {
	if o.PasswordFile == "" {
		return nil, errors.New("auth: no password file")
	}
	if o.ReloadInterval == 0 {
		o.ReloadInterval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Hook{o: o, conns: map[*mqtt.Client]*connAuth{}}
	info, err := os.Stat(o.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	f, err := ReadPasswordFile(o.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	h.file.Store(f)
	h.stamp = info
	h.lastCheck.Store(o.Now().UnixNano())

	h.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chargeguard_broker_auth_refused_total",
		Help: "Connections the embedded broker refused, by reason (anonymous, unknown_user, bad_password, no_rights, will_denied).",
	}, []string{"reason"})
	for _, r := range []string{ReasonAnonymous, ReasonUnknownUser, ReasonBadPassword, ReasonNoRights, ReasonWillDenied} {
		h.refused.WithLabelValues(r)
	}
	h.denied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chargeguard_broker_acl_denied_total",
		Help: "Publishes, subscriptions and deliveries the embedded broker's ACL refused, by access (publish, read).",
	}, []string{"access"})
	h.denied.WithLabelValues("publish")
	h.denied.WithLabelValues("read")
	h.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chargeguard_broker_auth_reloads_total",
		Help: "Re-reads of the password file after it changed, by result (ok, error). On error the previous accounts stay in force.",
	}, []string{"result"})
	h.reloads.WithLabelValues("ok")
	h.reloads.WithLabelValues("error")
	h.revoked = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "chargeguard_broker_auth_revoked_total",
		Help: "Connected clients the embedded broker disconnected because a reload of the password file removed their account or changed their password.",
	})
	h.users = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "chargeguard_broker_auth_accounts",
		Help: "Accounts in the embedded broker's password file.",
	}, func() float64 { return float64(h.file.Load().Len()) })
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{h.refused, h.denied, h.reloads, h.revoked, h.users} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("auth: register metrics: %w", err)
			}
		}
	}
	o.Logger.Info().Str("password_file", o.PasswordFile).Int("accounts", f.Len()).Msg("MQTT authentication on")
	return h, nil
}

// ID names the hook in mochi's logs.
func (h *Hook) ID() string { return "chargeguard-auth" }

// Provides says which mochi events the hook handles.
func (h *Hook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck || b == mqtt.OnDisconnect
}

// Init is called by mochi's AddHook; NewHook has done the work.
func (h *Hook) Init(any) error { return nil }

// Reload re-reads the password file now. On error the accounts read before
// stay in force.
func (h *Hook) Reload() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reloadLocked()
}

func (h *Hook) reloadLocked() error {
	info, err := os.Stat(h.o.PasswordFile)
	if err == nil {
		// Remember the attempt even if the file is broken, so that a broken
		// file is reported once, not on every connect, until it changes.
		h.stamp = info
		var f *PasswordFile
		if f, err = ReadPasswordFile(h.o.PasswordFile); err == nil {
			h.file.Store(f)
			h.reloads.WithLabelValues("ok").Inc()
			h.o.Logger.Info().Str("password_file", h.o.PasswordFile).Int("accounts", f.Len()).Msg("MQTT password file reloaded")
			h.revoke(f)
			return nil
		}
	}
	h.reloads.WithLabelValues("error").Inc()
	h.o.Logger.Error().Err(err).Msg("MQTT password file not reloaded; the previous accounts stay in force")
	return fmt.Errorf("auth: reload: %w", err)
}

// revoke disconnects, as Mosquitto does on SIGHUP, every client whose
// account is gone from f or whose password hash changed.
func (h *Hook) revoke(f *PasswordFile) {
	h.connMu.Lock()
	defer h.connMu.Unlock()
	for cl, ca := range h.conns {
		if cl.Closed() {
			delete(h.conns, cl) // gone without an OnDisconnect (a failed CONNACK)
			continue
		}
		user := string(cl.Properties.Username)
		now, ok := f.hash(user)
		if ok && now == ca.hash {
			continue // the entry did not change
		}
		if ok && f.Verify(user, ca.password) {
			ca.hash = now // rewritten with a new salt, same password
			continue
		}
		delete(h.conns, cl)
		h.revoked.Inc()
		h.o.Logger.Warn().Str("username", truncate(user, 140)).Str("client_id", truncate(cl.ID, 140)).
			Msg("MQTT client disconnected: its account was removed or its password changed")
		cl.Stop(ErrRevoked)
	}
}

// OnDisconnect forgets a client that left.
func (h *Hook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.connMu.Lock()
	delete(h.conns, cl)
	h.connMu.Unlock()
}

// maybeReload re-reads the file when it changed since the last read, at
// most once per ReloadInterval. It is called on every connect and every
// ACL check, so the fast path is one clock read and one atomic load.
func (h *Hook) maybeReload() {
	if h.o.ReloadInterval < 0 {
		return
	}
	now := h.o.Now().UnixNano()
	if now-h.lastCheck.Load() < int64(h.o.ReloadInterval) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if now-h.lastCheck.Load() < int64(h.o.ReloadInterval) {
		return // another goroutine just looked
	}
	h.lastCheck.Store(now)
	info, err := os.Stat(h.o.PasswordFile)
	if err == nil && os.SameFile(info, h.stamp) && info.Size() == h.stamp.Size() && info.ModTime().Equal(h.stamp.ModTime()) {
		return
	}
	_ = h.reloadLocked() // logged and counted
}

// OnConnectAuthenticate checks the client's username and password, the
// rights of the account and the will topic, and pins a pile's client id to
// its username.
func (h *Hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	h.maybeReload()
	user := string(pk.Connect.Username)
	refuse := func(reason string) bool {
		h.refused.WithLabelValues(reason).Inc()
		h.o.Logger.Warn().Str("username", truncate(user, 140)).Str("client_id", truncate(cl.ID, 140)).
			Str("remote", cl.Net.Remote).Str("reason", reason).Msg("MQTT connection refused")
		return false
	}
	if !pk.Connect.UsernameFlag || user == "" {
		return refuse(ReasonAnonymous)
	}
	f := h.file.Load()
	if !f.Has(user) {
		f.Verify(user, string(pk.Connect.Password)) // same work as a wrong password
		return refuse(ReasonUnknownUser)
	}
	if !pk.Connect.PasswordFlag || !f.Verify(user, string(pk.Connect.Password)) {
		return refuse(ReasonBadPassword)
	}
	_, _, isPile := SplitPileUsername(user)
	if !isPile && !h.o.ACL.IsService(user) {
		return refuse(ReasonNoRights)
	}
	if pk.Connect.WillFlag && !h.o.ACL.CanPublish(user, pk.Connect.WillTopic) {
		return refuse(ReasonWillDenied)
	}
	if isPile {
		cl.ID = user
	}
	hash, _ := f.hash(user)
	h.connMu.Lock()
	h.conns[cl] = &connAuth{hash: hash, password: string(pk.Connect.Password)}
	h.connMu.Unlock()
	return true
}

// OnACLCheck authorises a publish (write), or a subscription or delivery
// (read), by the client's authenticated username.
func (h *Hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	h.maybeReload()
	user := string(cl.Properties.Username)
	var ok bool
	if write {
		ok = h.o.ACL.CanPublish(user, topic)
	} else {
		ok = h.o.ACL.CanRead(user, topic)
	}
	if !ok {
		access := "read"
		if write {
			access = "publish"
		}
		h.denied.WithLabelValues(access).Inc()
		h.o.Logger.Debug().Str("username", truncate(user, 140)).Str("topic", truncate(topic, 200)).
			Str("access", access).Msg("MQTT ACL denied")
	}
	return ok
}

var _ mqtt.Hook = (*Hook)(nil)
