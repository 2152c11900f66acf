package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/chargeguard/chargeguard/alerting/notify"
	"github.com/chargeguard/chargeguard/cluster"
	"github.com/chargeguard/chargeguard/internal/testenv"
)

const shardsPrefix = "/cg-test-shards/"

// shardMember is one replica of one shard of sites, in this process.
type shardMember struct {
	*member
	reg *prometheus.Registry
}

func startShardMember(t *testing.T, name, shard string, sites []string, endpoints []string, pager cluster.Pager) *shardMember {
	t.Helper()
	sm := &shardMember{member: &member{done: make(chan struct{})}, reg: prometheus.NewRegistry()}
	var err error
	sm.c, err = cluster.New(cluster.Options{
		Endpoints:    endpoints,
		Member:       name,
		Prefix:       shard,
		TTL:          time.Second,
		ShardsPrefix: shardsPrefix,
		Sites:        sites,
		ClaimTTL:     2 * time.Second,
		Pager:        pager,
		Logger:       zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		Registerer:   sm.reg,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	sm.cancel = cancel
	go func() { defer close(sm.done); _ = sm.c.Run(ctx) }()
	t.Cleanup(func() {
		sm.stop()
		require.NoError(t, sm.c.Close())
	})
	return sm
}

// stopOnce stops m unless it has stopped already (a test may stop a member
// before its cleanup does).
func (m *member) stopOnce() {
	select {
	case <-m.done:
	default:
		m.stop()
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// activeUnguarded returns the site_unguarded alerts Alertmanager holds as
// active, by site.
func activeUnguarded(t *testing.T, am *testenv.AlertmanagerServer) map[string]int {
	out := map[string]int{}
	for _, a := range am.Alerts(t) {
		if a.Labels["alertname"] == cluster.AlertUnguarded && a.EndsAt.After(time.Now()) {
			out[a.Labels["site"]]++
		}
	}
	return out
}

// Two shards that both list a site each see the overlap, naming the other;
// a site whose piles are on the broker and that no shard claims is paged
// (one alert in Alertmanager, though both leaders post it) and counted;
// once a third shard claims it the page is resolved; when that shard stops,
// its claims go and the site is paged again.
func TestShardRegistryOverlapAndUnguarded(t *testing.T) {
	testenv.Integration(t)
	etcd := testenv.Etcd(t, 3)
	am := testenv.Alertmanager(t, "")
	pager := func() *notify.Notifier {
		n, err := notify.New(notify.Options{URLs: []string{am.URL}, MinBackoff: 50 * time.Millisecond})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = n.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		return n
	}
	a := startShardMember(t, "a0", "/cg-test/shard-a", []string{"s1", "s2"}, etcd.Endpoints(), pager())
	b := startShardMember(t, "b0", "/cg-test/shard-b", []string{"s2", "s3"}, etcd.Endpoints(), pager())
	require.Eventually(t, func() bool { return a.c.Leader() && b.c.Leader() }, 10*time.Second, 20*time.Millisecond)

	require.Eventually(t, func() bool {
		sa, _ := a.c.Shards()
		sb, _ := b.c.Shards()
		return len(sa.Overlaps) == 1 && len(sb.Overlaps) == 1 &&
			equal(sa.Overlaps["s2"], "/cg-test/shard-b") && equal(sb.Overlaps["s2"], "/cg-test/shard-a")
	}, 10*time.Second, 20*time.Millisecond, "both shards see the overlap on s2")
	require.Equal(t, 1.0, gauge(t, a.reg, "chargeguard_shard_overlapping_sites"))
	require.Equal(t, 1.0, gauge(t, b.reg, "chargeguard_shard_overlapping_sites"))
	require.Equal(t, 1.0, gauge(t, a.reg, "chargeguard_shard_claims_registered"))

	// s9's piles are on the broker; no shard lists s9. A site of ours, or
	// one another shard claims, is never unguarded.
	for _, m := range []*shardMember{a, b} {
		m.c.SeenPile("s9", "p1", true)
		m.c.SeenPile("s3", "p1", true)
		m.c.SeenPile("s1", "p1", true)
	}
	require.Eventually(t, func() bool {
		sa, _ := a.c.Shards()
		sb, _ := b.c.Shards()
		return equal(sa.Unguarded, "s9") && equal(sb.Unguarded, "s9")
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 1.0, gauge(t, a.reg, "chargeguard_shard_unguarded_sites"))
	require.Equal(t, 1.0, gaugeOf(t, a.reg, "chargeguard_shard_unguarded_site", "s9"))
	require.Eventually(t, func() bool {
		u := activeUnguarded(t, am)
		return len(u) == 1 && u["s9"] == 1
	}, 10*time.Second, 50*time.Millisecond, "one page for s9, though both leaders post it")

	// A pile whose latest status is a death does not make its site seen.
	a.c.SeenPile("s1", "p1", false)

	// A third shard claims s9: the page is resolved.
	c := startShardMember(t, "c0", "/cg-test/shard-c", []string{"s9"}, etcd.Endpoints(), pager())
	require.Eventually(t, func() bool {
		sa, _ := a.c.Shards()
		sb, _ := b.c.Shards()
		return len(sa.Unguarded) == 0 && len(sb.Unguarded) == 0
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 0.0, gauge(t, a.reg, "chargeguard_shard_unguarded_sites"))
	require.Equal(t, -1.0, gaugeOf(t, a.reg, "chargeguard_shard_unguarded_site", "s9"))
	require.Eventually(t, func() bool { return len(activeUnguarded(t, am)) == 0 }, 10*time.Second, 50*time.Millisecond, "the page is resolved")

	// The third shard stops: its claims go with it, and s9 is paged again.
	c.stopOnce()
	require.Eventually(t, func() bool {
		sa, _ := a.c.Shards()
		return equal(sa.Unguarded, "s9")
	}, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return activeUnguarded(t, am)["s9"] == 1 }, 10*time.Second, 50*time.Millisecond)
}

// A shard of every site (no mqtt.sites) overlaps with any shard of sites.
func TestShardRegistryAllSitesOverlap(t *testing.T) {
	testenv.Integration(t)
	etcd := testenv.Etcd(t, 1)
	all := startShardMember(t, "x0", "/cg-test/all", nil, etcd.Endpoints(), nil)
	some := startShardMember(t, "y0", "/cg-test/some", []string{"s1"}, etcd.Endpoints(), nil)
	require.Eventually(t, func() bool {
		sa, _ := all.c.Shards()
		ss, _ := some.c.Shards()
		return equal(sa.Overlaps["s1"], "/cg-test/some") && equal(ss.Overlaps["s1"], "/cg-test/all")
	}, 10*time.Second, 20*time.Millisecond)
	// A claim deleted by hand is written again by its replica.
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	key := shardsPrefix + "sites/s1/cg-test/some/y0"
	resp, err := cli.Delete(context.Background(), key)
	require.NoError(t, err)
	require.EqualValues(t, 1, resp.Deleted, "the claim is at %s", key)
	require.Eventually(t, func() bool {
		r, err := cli.Get(context.Background(), key)
		return err == nil && len(r.Kvs) == 1 && r.Kvs[0].Lease != 0
	}, 10*time.Second, 20*time.Millisecond, "the deleted claim is written again, under its lease")

	// A shard of every site pages for nothing: it guards every site.
	all.c.SeenPile("s7", "p1", true)
	some.c.SeenPile("s7", "p1", true)
	// Past the 2 s grace nothing may be raised.
	require.Never(t, func() bool {
		sa, _ := all.c.Shards()
		ss, _ := some.c.Shards()
		return len(sa.Unguarded)+len(ss.Unguarded) > 0
	}, 3*time.Second, 50*time.Millisecond, "s7 is claimed by the shard of every site")
}

func equal(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// gaugeOf is the value of the gauge name{site=site}, -1 when there is none.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name, site string) float64 {
	t.Helper()
	if v, ok := testenv.Gathered(t, reg, name, "site", site); ok {
		return v
	}
	return -1
}

// readyzLine is one line of a replica's /readyz, with its status code.
func readyzLine(r *replica, key string) (int, string) {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get(r.base + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var m map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m[key]
}

// The whole path with real processes: a pile of a site that no shard
// lists publishes its retained birth on Mosquitto; the shard's leader
// pages site_unguarded to Alertmanager, says so on /metrics and /readyz
// (still ready). A second shard that lists the site (and one of the
// first's, an overlap both report) clears the page. Killed with SIGKILL,
// the second shard revokes nothing: its claims expire with their lease
// (5 s), and the site is paged again.
func TestUnguardedSitePagedAcrossShards(t *testing.T) {
	testenv.Integration(t)
	etcd := testenv.Etcd(t, 3)
	mq := testenv.Mosquitto(t)
	am := testenv.Alertmanager(t, "")
	a := startReplicaSet(t, 2, mq.URL, etcd.Endpoints(), "http://127.0.0.1:1", "chargeguard/autogen", am.URL, shardConf{name: "a", sites: []string{"s1", "s2"}})
	waitOneLeader(t, a, 15*time.Second)

	pub := paho.NewClient(paho.NewClientOptions().AddBroker(mq.URL).SetClientID("test-births"))
	tok := pub.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	t.Cleanup(func() { pub.Disconnect(100) })
	birth := func(site, pile string) {
		tok := pub.Publish("chargers/"+site+"/"+pile+"/status", 1, true, fmt.Sprintf(`{"v":1,"ts":%d,"online":true,"ports":2,"rated_a":5,"fw":"t","kind":"residential"}`, time.Now().UnixMilli()))
		require.True(t, tok.WaitTimeout(5*time.Second))
		require.NoError(t, tok.Error())
	}
	birth("s1", "p1")   // a's own site: never unguarded
	birth("lost", "p1") // listed by no shard
	t.Cleanup(func() {
		// Retained births outlive the test's broker only on disk: clear them anyway.
		pub.Publish("chargers/lost/p1/status", 1, true, "").WaitTimeout(time.Second)
		pub.Publish("chargers/s1/p1/status", 1, true, "").WaitTimeout(time.Second)
	})

	require.Eventually(t, func() bool { return activeUnguarded(t, am)["lost"] == 1 }, 30*time.Second, 200*time.Millisecond, "site_unguarded for site lost")
	require.Len(t, activeUnguarded(t, am), 1, "only the unlisted site is paged")
	for _, r := range a {
		require.Eventually(t, func() bool { return scrape(t, r, "chargeguard_shard_unguarded_sites") == 1 }, 10*time.Second, 100*time.Millisecond)
		require.Equal(t, 1.0, scrapeLabeled(t, r, `chargeguard_shard_unguarded_site{site="lost"}`))
		code, line := readyzLine(r, "shards")
		require.Equal(t, http.StatusOK, code, "an unguarded site is reported, the replica stays ready")
		require.Contains(t, line, "UNGUARDED")
		require.Contains(t, line, "lost")
	}

	// Shard b lists the lost site, and s2 of shard a's.
	b := startReplicaSet(t, 1, mq.URL, etcd.Endpoints(), "http://127.0.0.1:1", "chargeguard/autogen", am.URL, shardConf{name: "b", sites: []string{"lost", "s2"}})
	require.Eventually(t, func() bool { return len(activeUnguarded(t, am)) == 0 }, 30*time.Second, 200*time.Millisecond, "the page is resolved once shard b claims the site")
	for _, r := range append(a, b...) {
		require.Eventually(t, func() bool { return scrape(t, r, "chargeguard_shard_overlapping_sites") == 1 }, 10*time.Second, 100*time.Millisecond)
		code, line := readyzLine(r, "shards")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, line, "OVERLAP: site s2")
	}
	_, line := readyzLine(a[0], "shards")
	require.Contains(t, line, "/chargeguard/b", "shard a names shard b")
	_, line = readyzLine(b[0], "shards")
	require.Contains(t, line, "/chargeguard/a", "shard b names shard a")

	// Shard b dies without a word: its claims expire with their lease.
	b[0].kill(t)
	killed := time.Now()
	require.Eventually(t, func() bool { return activeUnguarded(t, am)["lost"] == 1 }, 30*time.Second, 200*time.Millisecond, "paged again once the dead shard's claims expire")
	require.Greater(t, time.Since(killed), 4*time.Second, "a SIGKILL revokes nothing: the claim lasts its 5 s lease")
	for _, r := range a {
		require.Eventually(t, func() bool { return scrape(t, r, "chargeguard_shard_overlapping_sites") == 0 }, 10*time.Second, 100*time.Millisecond)
	}
}
