package ingest

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/internal/testenv"
	"github.com/chargeguard/chargeguard/telemetry"
)

// gateHook lets every client in and refuses every subscription under the
// pile topics until allow is set: a broker whose ACL does not (yet) grant
// chargeguard's account.
type gateHook struct {
	mqtt.HookBase
	allow atomic.Bool
}

func (h *gateHook) ID() string { return "gate" }
func (h *gateHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}
func (h *gateHook) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }
func (h *gateHook) OnACLCheck(_ *mqtt.Client, topic string, write bool) bool {
	return write || h.allow.Load() || !strings.HasPrefix(topic, "chargers/")
}

// Invariant: a session the broker refuses to subscribe is not ready, and
// it subscribes by itself once the broker grants it. paho reports a
// refusal in the SUBACK as a success, and after the Disconnect this code
// used to call on a failed subscribe paho never reconnects: the engine
// looked ready and received nothing, or stayed down for good.
func TestRefusedSubscriptionIsNotReadyAndRecovers(t *testing.T) {
	gate := &gateHook{}
	srv := mqtt.New(&mqtt.Options{InlineClient: false})
	require.NoError(t, srv.AddHook(gate, nil))
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	require.NoError(t, srv.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: addr})))
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { _ = srv.Close() })

	in := runIngesterNoWait(t, Options{BrokerURL: "tcp://" + addr, ClientID: "refused", Spool: nopSpool{},
		Observer: ObserverFunc(func(telemetry.Message) {}), Logger: zerolog.New(zerolog.NewTestWriter(t))})
	require.Never(t, func() bool { return in.Ready() == nil }, 3*time.Second, 20*time.Millisecond,
		"ready though the broker refused the subscriptions")

	gate.allow.Store(true)
	require.Eventually(t, func() bool { return in.Ready() == nil }, 30*time.Second, 20*time.Millisecond,
		"never subscribed again once the broker granted it: %v", in.Ready())
}
