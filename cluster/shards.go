package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/chargeguard/chargeguard/alerting/notify"
)

// AllSites is the claim of a replica set that guards every site (no
// mqtt.sites): it overlaps with any other shard's claim.
const AllSites = "*"

// AlertUnguarded is the alertname of the page for a site that no shard
// guards. Its labels are alertname, severity and site only, and its
// annotations depend on the site alone, so that the leaders of several
// shards that all see the site post the same alert: Alertmanager
// deduplicates it by labels (docs/scale.md).
const AlertUnguarded = "site_unguarded"

// claim is the value of a site's claim key.
type claim struct {
	Shard  string `json:"shard"` // the claiming replica set's cluster.prefix
	Member string `json:"member"`
}

// shards is the shard registry of one replica: its claims in etcd, its
// view of every shard's claims, the sites it has seen on the broker, and
// what it concluded (overlaps, unguarded sites).
type shards struct {
	c      *Cluster
	prefix string // <ShardsPrefix>sites/
	mine   map[string]bool
	all    bool // claims AllSites
	grace  time.Duration
	m      *shardMetrics
	pager  Pager
	poke   chan struct{} // register again: one of our claims was deleted

	// judging serialises judge: the watch and the ticker both call it,
	// and a Fire of one call must not pass a later call's Resolve.
	judging sync.Mutex

	mu         sync.Mutex
	claims     map[string]map[string]claim // site -> key -> claim
	synced     bool                        // claims reflect etcd (a watch is running)
	registered bool                        // our claims are written under a live lease
	piles      map[string]map[string]bool  // site -> piles whose latest status is not a death
	unclaimed  map[string]time.Time        // seen site -> since when no shard claims it
	unguarded  map[string]bool             // seen and unclaimed for longer than grace
	overlaps   map[string][]string         // our site -> the other shards that claim it
	paged      map[string]bool             // unguarded sites this replica posted
}

// Pager posts and resolves alerts; *notify.Notifier is one.
type Pager interface {
	Fire(notify.Alert)
	Resolve(notify.Alert)
}

func newShards(c *Cluster) *shards {
	o := c.o
	s := &shards{
		c:         c,
		prefix:    o.ShardsPrefix + "sites/",
		mine:      map[string]bool{},
		all:       len(o.Sites) == 0,
		grace:     o.ClaimTTL,
		m:         newShardMetrics(o.Registerer),
		pager:     o.Pager,
		poke:      make(chan struct{}, 1),
		claims:    map[string]map[string]claim{},
		piles:     map[string]map[string]bool{},
		unclaimed: map[string]time.Time{},
		unguarded: map[string]bool{},
		overlaps:  map[string][]string{},
		paged:     map[string]bool{},
	}
	for _, site := range o.Sites {
		s.mine[site] = true
	}
	if s.all {
		s.mine[AllSites] = true
	}
	return s
}

// claimKey is this replica's claim of site:
// <ShardsPrefix>sites/<site><cluster.prefix>/<member>. One key per replica,
// each under its own lease, so that a shard's claim lasts as long as any
// of its replicas lives, and a restart of one replica never drops it.
func (s *shards) claimKey(site string) string {
	return s.prefix + site + s.c.o.Prefix + "/" + s.c.o.Member
}

func (s *shards) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); s.register(ctx) }()
	go func() { defer wg.Done(); s.watch(ctx) }()
	go func() {
		defer wg.Done()
		t := time.NewTicker(min(s.c.o.TTL/2, s.grace/4))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.judge()
			}
		}
	}()
	wg.Wait()
}

// register writes this replica's claims under a lease of ClaimTTL and
// keeps it alive; a lease that ends (etcd unreachable for longer) is
// granted again and the claims written again. On a clean stop the lease
// is revoked: the claims of a shard whose replicas have all stopped go at
// once.
func (s *shards) register(ctx context.Context) {
	ttl := int64(s.c.o.ClaimTTL / time.Second)
	val, _ := json.Marshal(claim{Shard: s.c.o.Prefix, Member: s.c.o.Member})
	sites := make([]string, 0, len(s.mine))
	for site := range s.mine {
		sites = append(sites, site)
	}
	sort.Strings(sites)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		lease, err := s.c.cli.Grant(ctx, ttl)
		if err == nil {
			err = s.put(ctx, sites, string(val), lease.ID)
			if err != nil {
				rctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, _ = s.c.cli.Revoke(rctx, lease.ID)
				cancel()
			}
		}
		if err != nil {
			if ctx.Err() == nil {
				s.c.log.Warn().Err(err).Msg("shard registry: claiming this shard's sites in etcd failed; retrying")
				sleep(ctx, backoff)
				backoff = min(backoff*2, s.c.o.TTL)
			}
			continue
		}
		backoff = 100 * time.Millisecond
		s.setRegistered(true)
		kctx, cancel := context.WithCancel(ctx)
		ka, err := s.c.cli.KeepAlive(kctx, lease.ID)
		if err == nil {
		alive:
			for {
				select {
				case _, ok := <-ka:
					if !ok {
						break alive // the lease ended or ctx is done
					}
				case <-s.poke:
					// A claim of ours was deleted by hand: write them again.
					if err := s.put(ctx, sites, string(val), lease.ID); err != nil && ctx.Err() == nil {
						s.c.log.Warn().Err(err).Msg("shard registry: writing a deleted claim again failed")
					}
				}
			}
		}
		cancel()
		s.setRegistered(false)
		if ctx.Err() != nil {
			rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = s.c.cli.Revoke(rctx, lease.ID)
			rcancel()
			return
		}
		s.c.log.Warn().Msg("shard registry: the lease of this replica's claims ended; claiming again")
		// Not at once: a lease that ends as soon as it is granted must not
		// spin.
		sleep(ctx, backoff)
		backoff = min(backoff*2, s.c.o.TTL)
	}
}

// put writes the claims, at most 100 to a transaction (etcd refuses more
// than 128 operations in one).
func (s *shards) put(ctx context.Context, sites []string, val string, lease clientv3.LeaseID) error {
	for chunk := range slices.Chunk(sites, 100) {
		ops := make([]clientv3.Op, 0, len(chunk))
		for _, site := range chunk {
			ops = append(ops, clientv3.OpPut(s.claimKey(site), val, clientv3.WithLease(lease)))
		}
		wctx, cancel := context.WithTimeout(ctx, s.c.o.TTL)
		_, err := s.c.cli.Txn(wctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("cluster: claim sites under %s: %w", s.prefix, err)
		}
	}
	return nil
}

func (s *shards) setRegistered(v bool) {
	s.mu.Lock()
	s.registered = v
	s.mu.Unlock()
	s.m.registered.Set(b2f(v))
}

// watch keeps s.claims equal to every shard's claims in etcd: a read of
// the whole registry, then a watch from the revision after it; a watch
// that fails (compaction, no quorum) starts over with a new read.
func (s *shards) watch(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, s.c.o.TTL)
		resp, err := s.c.cli.Get(rctx, s.prefix, clientv3.WithPrefix())
		cancel()
		if err != nil {
			s.setSynced(false)
			if ctx.Err() == nil {
				s.c.log.Warn().Err(err).Msg("shard registry: reading every shard's claims failed; retrying")
				sleep(ctx, backoff)
				backoff = min(backoff*2, s.c.o.TTL)
			}
			continue
		}
		backoff = 100 * time.Millisecond
		s.mu.Lock()
		s.claims = map[string]map[string]claim{}
		for _, kv := range resp.Kvs {
			s.applyLocked(string(kv.Key), kv.Value, false)
		}
		s.synced = true
		s.mu.Unlock()
		s.judge()
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for wr := range s.c.cli.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
			if wr.Err() != nil {
				break
			}
			s.mu.Lock()
			for _, ev := range wr.Events {
				s.applyLocked(string(ev.Kv.Key), ev.Kv.Value, ev.Type == clientv3.EventTypeDelete)
			}
			s.mu.Unlock()
			s.judge()
		}
		wcancel()
		s.setSynced(false)
	}
}

func (s *shards) setSynced(v bool) {
	s.mu.Lock()
	s.synced = v
	s.mu.Unlock()
}

// applyLocked records one claim key's put or delete.
func (s *shards) applyLocked(key string, val []byte, deleted bool) {
	rest, ok := strings.CutPrefix(key, s.prefix)
	if !ok {
		return
	}
	site, _, _ := strings.Cut(rest, "/")
	if deleted {
		delete(s.claims[site], key)
		if len(s.claims[site]) == 0 {
			delete(s.claims, site)
		}
		if s.mine[site] && key == s.claimKey(site) && s.registered {
			select {
			case s.poke <- struct{}{}:
			default:
			}
		}
		return
	}
	var cl claim
	if err := json.Unmarshal(val, &cl); err != nil || cl.Shard == "" {
		// Not written by chargeguard: still a claim, by an unknown shard.
		cl = claim{Shard: "unknown (key " + key + ")"}
	}
	if s.claims[site] == nil {
		s.claims[site] = map[string]claim{}
	}
	s.claims[site][key] = cl
}

// SeenPile records a pile's latest status on the broker: online is false
// for a death (or a cleared retained status). A site with a pile online
// that no shard claims is unguarded. Safe from any goroutine.
func (c *Cluster) SeenPile(site, pile string, online bool) {
	s := c.shards
	if s == nil {
		return
	}
	s.mu.Lock()
	if online {
		if s.piles[site] == nil {
			s.piles[site] = map[string]bool{}
		}
		s.piles[site][pile] = true
	} else if s.piles[site] != nil {
		delete(s.piles[site], pile)
		if len(s.piles[site]) == 0 {
			delete(s.piles, site)
		}
	}
	s.mu.Unlock()
}

// othersLocked returns the other shards that claim site (or every site).
func (s *shards) othersLocked(site string) []string {
	var out []string
	add := func(m map[string]claim) {
		for _, cl := range m {
			if cl.Shard != s.c.o.Prefix && !slices.Contains(out, cl.Shard) {
				out = append(out, cl.Shard)
			}
		}
	}
	add(s.claims[site])
	if site != AllSites {
		add(s.claims[AllSites])
	}
	sort.Strings(out)
	return out
}

// judge recomputes the overlaps and the unguarded sites from the claims
// and the sites seen, logs what changed, sets the metrics, and has the
// leader page for every unguarded site (and resolve what is claimed now).
func (s *shards) judge() {
	s.judging.Lock()
	defer s.judging.Unlock()
	now := s.c.o.Now()
	role := s.c.Role()
	s.mu.Lock()
	if !s.synced {
		// Without a view of etcd nothing new is concluded: the last
		// conclusions stand (a page stays up, none is raised on a guess).
		s.mu.Unlock()
		return
	}
	// Overlaps: another shard claims one of our sites; a shard of every
	// site overlaps with every other claim.
	overlaps := map[string][]string{}
	var ours []string
	if s.all {
		for site := range s.claims {
			ours = append(ours, site)
		}
	} else {
		for site := range s.mine {
			ours = append(ours, site)
		}
	}
	for _, site := range ours {
		if o := s.othersLocked(site); len(o) > 0 {
			overlaps[site] = o
		}
	}
	type change struct {
		site   string
		others []string
	}
	var newOverlaps []change
	for site, o := range overlaps {
		if !slices.Equal(s.overlaps[site], o) {
			newOverlaps = append(newOverlaps, change{site, o})
		}
	}
	var endedOverlaps []string
	for site := range s.overlaps {
		if overlaps[site] == nil {
			endedOverlaps = append(endedOverlaps, site)
		}
	}
	s.overlaps = overlaps

	// Unguarded: a site with a pile online on the broker, claimed by no
	// shard (ours count as claimed whatever etcd says: this replica set
	// guards them), for longer than the grace.
	var raised, cleared []string
	if !s.all {
		for site := range s.piles {
			if s.mine[site] || len(s.claims[site]) > 0 || len(s.claims[AllSites]) > 0 {
				delete(s.unclaimed, site)
				continue
			}
			if _, ok := s.unclaimed[site]; !ok {
				s.unclaimed[site] = now
			}
		}
		for site, since := range s.unclaimed {
			if s.piles[site] == nil || s.mine[site] || len(s.claims[site]) > 0 || len(s.claims[AllSites]) > 0 {
				delete(s.unclaimed, site)
				continue
			}
			if now.Sub(since) >= s.grace && !s.unguarded[site] {
				s.unguarded[site] = true
				raised = append(raised, site)
			}
		}
		for site := range s.unguarded {
			if _, still := s.unclaimed[site]; !still {
				delete(s.unguarded, site)
				cleared = append(cleared, site)
			}
		}
	}
	var fire, resolve []string
	for site := range s.unguarded {
		if role == RoleLeader && s.pager != nil {
			fire = append(fire, site)
			s.paged[site] = true
		}
	}
	for site := range s.paged {
		if !s.unguarded[site] {
			resolve = append(resolve, site)
			delete(s.paged, site)
		}
	}
	nOverlaps, nUnguarded := len(s.overlaps), len(s.unguarded)
	s.mu.Unlock()

	s.m.overlapping.Set(float64(nOverlaps))
	s.m.unguarded.Set(float64(nUnguarded))
	for _, ch := range newOverlaps {
		s.c.log.Error().Str("site", ch.site).Str("shard", s.c.o.Prefix).Strs("other_shards", ch.others).
			Msg("shard registry: site claimed by two shards: both leaders send commands for it; list it in exactly one shard's mqtt.sites (or run no shard of every site beside shards of sites)")
	}
	for _, site := range endedOverlaps {
		s.c.log.Info().Str("site", site).Msg("shard registry: site no longer claimed by another shard")
	}
	for _, site := range raised {
		s.m.unguardedSite.WithLabelValues(site).Set(1)
		s.c.log.Error().Str("site", site).Dur("unclaimed_for", s.grace).
			Msg("shard registry: UNGUARDED site: its piles are on the broker but no shard lists it in mqtt.sites; no port of it is cut when it overheats")
	}
	for _, site := range cleared {
		s.m.unguardedSite.DeleteLabelValues(site)
		s.c.log.Info().Str("site", site).Msg("shard registry: site guarded again (a shard claims it, or its piles are gone)")
	}
	for _, site := range fire {
		s.pager.Fire(s.unguardedAlert(site))
	}
	for _, site := range resolve {
		s.pager.Resolve(notify.Alert{Labels: unguardedLabels(site)})
	}
}

func unguardedLabels(site string) map[string]string {
	return map[string]string{"alertname": AlertUnguarded, "severity": notify.SeverityCritical, "site": site}
}

// unguardedAlert is the page for site. Its texts name only the site and
// the registry, never this shard, so that every shard's leader posts the
// same alert.
func (s *shards) unguardedAlert(site string) notify.Alert {
	return notify.Alert{
		Labels: unguardedLabels(site),
		Annotations: map[string]string{
			"summary": "site " + site + ": guarded by no chargeguard shard",
			"description": "Piles of site " + site + " are online on the broker, but no chargeguard replica set lists the site in mqtt.sites " +
				"(no claim under " + s.prefix + site + " in etcd). No port of this site is cut when it overheats, and no alert of it is raised.",
			"on_site": "Not an on-site job first: add " + site + " to exactly one shard's mqtt.sites and restart that replica set " +
				"(docs/scale.md, Sharding sites). Until then watch the site's boards, and send someone if a port heats.",
			"summary_zh": "站点 " + site + "：没有任何 chargeguard 分片在守护",
			"on_site_zh": "先处理配置：把站点 " + site + " 加入且只加入一个分片的 mqtt.sites，并重启该副本组。在此之前请盯住该站点的看板，端口发热时派人到场。",
		},
	}
}

// ShardStatus is what the shard registry concluded, for /readyz.
type ShardStatus struct {
	// Synced: the replica has a current view of every shard's claims.
	Synced bool
	// Registered: this replica's claims are in etcd under a live lease.
	Registered bool
	// Overlaps maps each of our sites that another shard claims too to
	// those shards' prefixes.
	Overlaps map[string][]string
	// Unguarded lists the sites seen on the broker that no shard claims.
	Unguarded []string
}

// Shards reports the shard registry's conclusions; ok is false when the
// registry is off (no ShardsPrefix).
func (c *Cluster) Shards() (st ShardStatus, ok bool) {
	s := c.shards
	if s == nil {
		return st, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Synced, st.Registered = s.synced, s.registered
	st.Overlaps = make(map[string][]string, len(s.overlaps))
	for site, o := range s.overlaps {
		st.Overlaps[site] = slices.Clone(o)
	}
	for site := range s.unguarded {
		st.Unguarded = append(st.Unguarded, site)
	}
	sort.Strings(st.Unguarded)
	return st, true
}

type shardMetrics struct {
	registered    prometheus.Gauge
	overlapping   prometheus.Gauge
	unguarded     prometheus.Gauge
	unguardedSite *prometheus.GaugeVec
}

func newShardMetrics(reg prometheus.Registerer) *shardMetrics {
	m := &shardMetrics{
		registered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_shard_claims_registered",
			Help: "1 while this replica's claims of its sites are in etcd under a live lease (cluster.shards_prefix).",
		}),
		overlapping: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_shard_overlapping_sites",
			Help: "Sites of this replica set that another shard claims too: two leaders send commands for them.",
		}),
		unguarded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_shard_unguarded_sites",
			Help: "Sites with piles online on the broker that no shard claims: no port of them is cut.",
		}),
		unguardedSite: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chargeguard_shard_unguarded_site",
			Help: "1 for each site with piles online on the broker that no shard claims, by site.",
		}, []string{"site"}),
	}
	if reg != nil {
		reg.MustRegister(m.registered, m.overlapping, m.unguarded, m.unguardedSite)
	}
	return m
}
