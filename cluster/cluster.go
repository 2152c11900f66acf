package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// Role is what a replica may do now.
type Role int32

const (
	// RoleAlone: no leader has been confirmed within the lease TTL (etcd
	// unreachable or without quorum). The replica sends the closes its
	// engine wants and posts its alerts; it sends no open and refuses
	// resets.
	RoleAlone Role = iota
	// RoleFollower: another replica is the confirmed leader. The replica
	// keeps its engine warm and sends nothing.
	RoleFollower
	// RoleLeader: this replica is the confirmed leader and acts for all.
	RoleLeader
)

func (r Role) String() string {
	switch r {
	case RoleLeader:
		return "leader"
	case RoleFollower:
		return "follower"
	default:
		return "alone"
	}
}

// ErrNoLeader is returned for what only a leader may do (an open, a reset)
// while no leader is confirmed.
var ErrNoLeader = errors.New("no leader confirmed within the lease TTL (etcd unreachable or quorum lost): opens and resets wait until a leader is back; closes still go out")

// Options configures a Cluster. Endpoints and Member are required.
type Options struct {
	Endpoints []string
	// Member names this replica; it is in the leader key's value.
	Member string
	// AdvertiseURL is this replica's HTTP base URL, for forwarding an
	// operator's request to the leader.
	AdvertiseURL string
	// Prefix of every key; default "/chargeguard".
	Prefix string
	// TTL of the session lease; default 3s. Whole seconds.
	TTL         time.Duration
	DialTimeout time.Duration // default 2s
	Username    string
	Password    string
	TLS         *tls.Config

	// ShardsPrefix, when set, turns the shard registry on (docs/scale.md,
	// "Sharding sites"): this replica claims Sites (AllSites when Sites is
	// empty) under <ShardsPrefix>sites/, a key space every shard of a city
	// shares, and watches every shard's claims for overlaps and, given
	// SeenPile, for sites on the broker that no shard claims. It ends with
	// a slash.
	ShardsPrefix string
	// Sites this replica set guards (mqtt.sites); empty: every site.
	Sites []string
	// ClaimTTL is the lease of this replica's claims (a dead shard's claims
	// go after it) and how long a site seen on the broker may stay
	// unclaimed before it is unguarded. Default 5 × TTL, whole seconds.
	ClaimTTL time.Duration
	// Pager gets the site_unguarded alerts while this replica leads (and
	// their resolves); nil: none are posted.
	Pager Pager

	// OnLead is called each time this replica becomes the confirmed
	// leader, from the cluster's goroutine: it must not block. The app
	// resends every pending close and re-posts active alerts there.
	OnLead func()
	// OnFollow is called each time this replica becomes a follower of
	// another confirmed leader (from leading, or from running alone), from
	// the cluster's goroutine: it must not block. The app drops the alerts
	// its notifier was re-posting: the leader owns them now.
	OnFollow func()

	Logger     zerolog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Cluster is this replica's membership: its campaign for leadership, what
// it knows of the leader, and the writer of the replicated state.
type Cluster struct {
	o   Options
	log zerolog.Logger
	cli *clientv3.Client
	m   *metrics

	mu          sync.Mutex
	confirmedAt time.Time // last read (linearizable, so with quorum) that showed a leader
	leader      leaderInfo
	self        bool             // that leader is this replica's current session
	lease       clientv3.LeaseID // this replica's current session lease, 0 when none
	won         *concurrency.Election
	role        Role

	state chan []byte   // newest safety state to write, latest wins
	poke  chan struct{} // confirm now: the campaign just won

	shards *shards // the shard registry; nil when Options.ShardsPrefix is ""
}

// leaderInfo is the value of the leader key.
type leaderInfo struct {
	Member string `json:"member"`
	URL    string `json:"url,omitempty"`
}

// New builds a Cluster. It does not contact etcd: Run does, and a replica
// whose etcd is unreachable runs alone (see RoleAlone).
func New(o Options) (*Cluster, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("cluster: Options.Endpoints is required")
	}
	if o.Member == "" {
		return nil, errors.New("cluster: Options.Member is required")
	}
	if o.Prefix == "" {
		o.Prefix = "/chargeguard"
	}
	o.Prefix = strings.TrimSuffix(o.Prefix, "/")
	if o.TTL <= 0 {
		o.TTL = 3 * time.Second
	}
	if o.TTL < time.Second || o.TTL%time.Second != 0 {
		return nil, fmt.Errorf("cluster: lease TTL %v: want whole seconds", o.TTL)
	}
	if o.ClaimTTL <= 0 {
		o.ClaimTTL = 5 * o.TTL
	}
	if o.ShardsPrefix != "" && (o.ClaimTTL < time.Second || o.ClaimTTL%time.Second != 0) {
		return nil, fmt.Errorf("cluster: claim TTL %v: want whole seconds", o.ClaimTTL)
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            o.Endpoints,
		DialTimeout:          o.DialTimeout,
		DialKeepAliveTime:    o.TTL,
		DialKeepAliveTimeout: o.TTL,
		Username:             o.Username,
		Password:             o.Password,
		TLS:                  o.TLS,
		// etcd's client logs through zap; its retries are ours to report.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: etcd client: %w", err)
	}
	c := &Cluster{
		o:     o,
		log:   o.Logger.With().Str("component", "cluster").Str("member", o.Member).Logger(),
		cli:   cli,
		m:     newMetrics(o.Registerer),
		state: make(chan []byte, 1),
		poke:  make(chan struct{}, 1),
	}
	if o.ShardsPrefix != "" {
		c.shards = newShards(c)
	}
	return c, nil
}

func (c *Cluster) electionPrefix() string { return c.o.Prefix + "/leader" }

// StateKey is the etcd key the leader keeps the safety state under.
func (c *Cluster) StateKey() string { return c.o.Prefix + "/state" }

// Role says what this replica may do now. It is cheap and safe from any
// goroutine.
func (c *Cluster) Role() Role {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.roleLocked()
}

func (c *Cluster) roleLocked() Role {
	if c.confirmedAt.IsZero() || c.o.Now().Sub(c.confirmedAt) > c.o.TTL {
		return RoleAlone
	}
	if c.self {
		return RoleLeader
	}
	return RoleFollower
}

// Leader reports whether this replica is the leader, confirmed within the
// lease TTL.
func (c *Cluster) Leader() bool { return c.Role() == RoleLeader }

// LeaderConfirmed reports whether some replica (this one or another) was
// confirmed leader within the lease TTL.
func (c *Cluster) LeaderConfirmed() bool { return c.Role() != RoleAlone }

// LeaderURL is the confirmed leader's advertised HTTP base URL and member
// name ("" when no leader is confirmed).
func (c *Cluster) LeaderURL() (url, member string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.roleLocked() == RoleAlone {
		return "", ""
	}
	return c.leader.URL, c.leader.Member
}

// Member is this replica's name.
func (c *Cluster) Member() string { return c.o.Member }

// TTL is the lease TTL.
func (c *Cluster) TTL() time.Duration { return c.o.TTL }

// SaveState hands the newest safety state (alerting.State as JSON) to be
// written to etcd while this replica leads. It never blocks: an older
// state not yet written is replaced. It keeps b: the caller must not
// change it afterwards.
func (c *Cluster) SaveState(b []byte) {
	for {
		select {
		case c.state <- b:
			return
		default:
			select {
			case <-c.state:
			default:
			}
		}
	}
}

// LoadState reads the safety state the leader last wrote; nil when there
// is none.
func (c *Cluster) LoadState(ctx context.Context) ([]byte, error) {
	resp, err := c.cli.Get(ctx, c.StateKey())
	if err != nil {
		return nil, fmt.Errorf("cluster: read %s: %w", c.StateKey(), err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0].Value, nil
}

// Close releases the etcd client. Run must have returned.
func (c *Cluster) Close() error { return c.cli.Close() }

// Run campaigns for leadership, confirms the leader every quarter TTL and
// writes the state while leading, until ctx is done. On return this
// replica has resigned (when etcd answers) and every goroutine has exited.
func (c *Cluster) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); c.campaign(ctx) }()
	go func() { defer wg.Done(); c.confirm(ctx) }()
	go func() { defer wg.Done(); c.writeState(ctx) }()
	if c.shards != nil {
		wg.Add(1)
		go func() { defer wg.Done(); c.shards.run(ctx) }()
	}
	wg.Wait()
	return nil
}

// campaign keeps this replica in the election: a session (lease with the
// TTL), a campaign that returns once it leads, and a new session whenever
// the old one ends (its lease expired while etcd was unreachable).
func (c *Cluster) campaign(ctx context.Context) {
	val, _ := json.Marshal(leaderInfo{Member: c.o.Member, URL: c.o.AdvertiseURL})
	backoff := 100 * time.Millisecond
	var old clientv3.LeaseID
	for ctx.Err() == nil {
		if old != 0 {
			// The lease of a session we gave up on may still hold the
			// leader key (a new etcd leader extends every lease): revoke it
			// so that the election need not wait it out.
			rctx, cancel := context.WithTimeout(ctx, c.o.TTL)
			_, _ = c.cli.Revoke(rctx, old)
			cancel()
			old = 0
		}
		s, err := concurrency.NewSession(c.cli, concurrency.WithTTL(int(c.o.TTL/time.Second)), concurrency.WithContext(ctx))
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn().Err(err).Msg("etcd session failed; retrying")
				sleep(ctx, backoff)
				backoff = min(backoff*2, c.o.TTL)
			}
			continue
		}
		backoff = 100 * time.Millisecond
		c.mu.Lock()
		c.lease = s.Lease()
		c.mu.Unlock()
		e := concurrency.NewElection(s, c.electionPrefix())
		cctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-s.Done():
			case <-cctx.Done():
			}
			cancel()
		}()
		err = e.Campaign(cctx, string(val))
		if err == nil {
			c.mu.Lock()
			c.won = e
			c.mu.Unlock()
			c.log.Info().Msg("won the election; leading once confirmed")
			// Confirm at once rather than at the next tick: a failover is
			// waiting on it.
			select {
			case c.poke <- struct{}{}:
			default:
			}
			select {
			case <-s.Done():
				c.log.Warn().Msg("etcd session lost (lease expired); no longer leader, campaigning again")
			case <-ctx.Done():
			}
		} else if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			c.log.Warn().Err(err).Msg("campaign failed; retrying")
		}
		cancel()
		c.mu.Lock()
		c.won, c.lease = nil, 0
		c.self = false
		c.mu.Unlock()
		if ctx.Err() != nil {
			// Resign so a follower takes over at once, not after the TTL.
			rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
			if err == nil {
				_ = e.Resign(rctx)
			}
			_, _ = c.cli.Revoke(rctx, s.Lease())
			rcancel()
			s.Orphan()
			return
		}
		s.Orphan()
		old = s.Lease()
	}
}

// confirm reads the leader key every quarter TTL. Only a read that
// succeeds (etcd reads are linearizable: they need quorum) confirms a
// leader; when none succeeds for a TTL the replica is alone.
func (c *Cluster) confirm(ctx context.Context) {
	every := c.o.TTL / 4
	t := time.NewTicker(every)
	defer t.Stop()
	last := RoleAlone
	c.m.setRole(last)
	for {
		rctx, cancel := context.WithTimeout(ctx, c.o.TTL/2)
		resp, err := c.cli.Get(rctx, c.electionPrefix(), clientv3.WithFirstCreate()...)
		cancel()
		now := c.o.Now()
		c.mu.Lock()
		if err == nil && len(resp.Kvs) > 0 {
			kv := resp.Kvs[0]
			var li leaderInfo
			_ = json.Unmarshal(kv.Value, &li)
			c.leader = li
			c.self = c.won != nil && c.lease != 0 && clientv3.LeaseID(kv.Lease) == c.lease
			c.confirmedAt = now
		} else if err == nil {
			// No leader at all (between one leader's lease and the next
			// campaign's win): not confirmed.
			c.self = false
		}
		role := c.roleLocked()
		c.role = role
		c.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			c.m.confirmFailures.Inc()
		}
		if role != last {
			c.m.setRole(role)
			c.m.changes.WithLabelValues(role.String()).Inc()
			ev := c.log.Info()
			if role == RoleAlone {
				ev = c.log.Error().AnErr("last_error", err)
			}
			ev.Str("from", last.String()).Str("to", role.String()).Msg("cluster role changed")
			if role == RoleFollower && c.o.OnFollow != nil {
				c.o.OnFollow()
			}
			if role == RoleLeader && c.o.OnLead != nil {
				c.o.OnLead()
			}
			last = role
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.poke:
		}
	}
}

// writeState writes the newest safety state while this replica leads,
// guarded by its leader key: a deposed leader's late write is refused by
// etcd, never overwrites the new leader's.
func (c *Cluster) writeState(ctx context.Context) {
	var pending []byte
	retry := time.NewTicker(c.o.TTL / 2)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-c.state:
			pending = b
		case <-retry.C:
		}
		if pending == nil {
			continue
		}
		c.mu.Lock()
		e, lead := c.won, c.roleLocked() == RoleLeader
		c.mu.Unlock()
		if !lead || e == nil {
			continue // kept: written if this replica comes to lead
		}
		wctx, cancel := context.WithTimeout(ctx, c.o.TTL)
		resp, err := c.cli.Txn(wctx).
			If(clientv3.Compare(clientv3.CreateRevision(e.Key()), "=", e.Rev())).
			Then(clientv3.OpPut(c.StateKey(), string(pending))).
			Commit()
		cancel()
		switch {
		case err != nil:
			c.m.stateWrites.WithLabelValues("error").Inc()
			c.log.Warn().Err(err).Int("bytes", len(pending)).Msg("write safety state to etcd failed; retrying")
		case !resp.Succeeded:
			c.m.stateWrites.WithLabelValues("not_leader").Inc()
		default:
			c.m.stateWrites.WithLabelValues("ok").Inc()
			pending = nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
