package cluster_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chargeguard/chargeguard/cluster"
	"github.com/chargeguard/chargeguard/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type member struct {
	c      *cluster.Cluster
	cancel context.CancelFunc
	done   chan struct{}
	leads  atomic.Int32
}

func (m *member) stop() {
	m.cancel()
	<-m.done
}

func startMember(t *testing.T, name string, endpoints []string) *member {
	t.Helper()
	m := &member{done: make(chan struct{})}
	var err error
	m.c, err = cluster.New(cluster.Options{
		Endpoints:    endpoints,
		Member:       name,
		AdvertiseURL: "http://" + name + ":9466",
		Prefix:       "/cg-test",
		TTL:          time.Second,
		OnLead:       func() { m.leads.Add(1) },
		Logger:       zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		Registerer:   prometheus.NewRegistry(),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() { defer close(m.done); _ = m.c.Run(ctx) }()
	t.Cleanup(func() {
		m.stop()
		require.NoError(t, m.c.Close())
	})
	return m
}

func roles(ms []*member) (leaders, followers, alone int) {
	for _, m := range ms {
		switch m.c.Role() {
		case cluster.RoleLeader:
			leaders++
		case cluster.RoleFollower:
			followers++
		default:
			alone++
		}
	}
	return
}

// One leader among three, confirmed by all; its state (and only its) is
// written to etcd; when it stops another leads and is told; without quorum
// every member is alone; with quorum back exactly one leads again.
func TestElectionStateAndQuorum(t *testing.T) {
	testenv.Integration(t)
	etcd := testenv.Etcd(t, 3)
	var ms []*member
	for _, n := range []string{"a", "b", "c"} {
		ms = append(ms, startMember(t, n, etcd.Endpoints()))
	}
	require.Eventually(t, func() bool { l, f, _ := roles(ms); return l == 1 && f == 2 }, 10*time.Second, 20*time.Millisecond)
	var leader *member
	for _, m := range ms {
		if m.c.Leader() {
			leader = m
		}
	}
	require.EqualValues(t, 1, leader.leads.Load(), "the leader is told once")
	for _, m := range ms {
		url, name := m.c.LeaderURL()
		require.Equal(t, leader.c.Member(), name)
		require.Equal(t, "http://"+name+":9466", url)
	}

	// A follower's state is never written; the leader's is.
	for _, m := range ms {
		if m != leader {
			m.c.SaveState([]byte(`{"from":"follower"}`))
		}
	}
	leader.c.SaveState([]byte(`{"version":1,"piles":[]}`))
	require.Eventually(t, func() bool {
		b, err := leader.c.LoadState(context.Background())
		return err == nil && string(b) == `{"version":1,"piles":[]}`
	}, 5*time.Second, 20*time.Millisecond)

	// The leader stops: another leads, is told, and writes the state it
	// holds (here the follower's, kept for this moment).
	leader.stop()
	rest := make([]*member, 0, 2)
	for _, m := range ms {
		if m != leader {
			rest = append(rest, m)
		}
	}
	require.Eventually(t, func() bool { l, f, _ := roles(rest); return l == 1 && f == 1 }, 5*time.Second, 20*time.Millisecond)
	for _, m := range rest {
		if m.c.Leader() {
			require.EqualValues(t, 1, m.leads.Load())
		}
	}
	require.Eventually(t, func() bool {
		b, _ := rest[0].c.LoadState(context.Background())
		return string(b) == `{"from":"follower"}`
	}, 5*time.Second, 20*time.Millisecond)

	// Quorum lost: every member is alone once the TTL has passed.
	etcd.Members[1].Kill()
	etcd.Members[2].Kill()
	require.Eventually(t, func() bool { _, _, a := roles(rest); return a == 2 }, 10*time.Second, 20*time.Millisecond)
	require.False(t, rest[0].c.LeaderConfirmed())
	url, _ := rest[0].c.LeaderURL()
	require.Empty(t, url)

	etcd.Members[1].Start()
	etcd.Members[2].Start()
	require.Eventually(t, func() bool { l, f, _ := roles(rest); return l == 1 && f == 1 }, 20*time.Second, 20*time.Millisecond)
}
