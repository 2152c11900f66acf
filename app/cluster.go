package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/cluster"
	"github.com/chargeguard/chargeguard/config"
	"github.com/chargeguard/chargeguard/telemetry"
)

// forwardedHeader marks an operator's request a follower forwarded to the
// leader, so that a request is forwarded at most once (leadership may move
// while it travels).
const forwardedHeader = "X-Chargeguard-Forwarded-By"

// clusterMember is this replica's name: cluster.member, else the host name
// (a StatefulSet pod's name, chargeguard-0, is stable across restarts).
func clusterMember(cfg config.Cluster) (string, error) {
	if cfg.Member != "" {
		return cfg.Member, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("cluster.member: not set and no host name: %w", err)
	}
	if i := strings.IndexByte(h, '.'); i > 0 {
		h = h[:i]
	}
	if !telemetry.ValidID(h) {
		return "", fmt.Errorf("cluster.member: not set, and the host name %q breaks [A-Za-z0-9_-]{1,64}: set it", h)
	}
	return h, nil
}

func clusterTLS(t config.TLS) (*tls.Config, error) {
	if t.CAFile == "" && t.CertFile == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cluster.tls.ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cluster.tls.ca_file %s: no PEM certificate in it", t.CAFile)
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cluster.tls.cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// newCluster builds the membership and the gate of cluster mode.
func (a *App) newCluster(member string) error {
	cc := a.cfg.Cluster
	tc, err := clusterTLS(cc.TLS)
	if err != nil {
		return err
	}
	a.cluster, err = cluster.New(cluster.Options{
		Endpoints:    cc.Endpoints,
		Member:       member,
		AdvertiseURL: cc.AdvertiseURL,
		Prefix:       cc.Prefix,
		ShardsPrefix: cc.ShardsPrefix,
		Sites:        a.cfg.MQTT.Sites,
		Pager:        a.notify,
		TTL:          cc.LeaseTTL,
		DialTimeout:  cc.DialTimeout,
		Username:     cc.Username,
		Password:     string(cc.Password),
		TLS:          tc,
		// A new leader sends again every close its engine holds unacked
		// (contract v1.1 makes that idempotent: the pile executes an id at
		// most once) and posts the active alerts again (Alertmanager
		// deduplicates them by labels).
		OnLead: func() {
			a.guard.Reconnected()
			n := a.gate.Refire(a.notify)
			a.log.Info().Int("alerts", n).Msg("leading: pending closes resent, active alerts posted again")
		},
		// A replica that led (or ran alone) stops re-posting the alerts it
		// posted then: the leader re-posts and resolves them, and a resend
		// from here would open a resolved one again.
		OnFollow: func() {
			if n := a.notify.Abandon(); n > 0 {
				a.log.Info().Int("alerts", n).Msg("following: alerts left to the leader")
			}
		},
		Logger:     a.log,
		Registerer: a.reg,
	})
	if err != nil {
		return err
	}
	a.gate = cluster.NewGate(a.cluster)
	return nil
}

// restoreFromCluster writes the safety state the leader last kept in etcd
// to the local state file, so that a replica started cold (a new pod, a
// lost disk) starts with every latch, pending close and open alert. etcd's
// copy wins over a local file: it is the leader's, and newer than what
// this replica wrote before it stopped. With etcd unreachable the local
// file is used as it is.
func (a *App) restoreFromCluster(statePath string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*a.cfg.Cluster.DialTimeout)
	defer cancel()
	b, err := a.cluster.LoadState(ctx)
	switch {
	case err != nil:
		a.log.Warn().Err(err).Str("path", statePath).Msg("cluster: safety state not read from etcd; starting from the local state file")
		return
	case b == nil:
		return
	}
	var st alerting.State
	if err := json.Unmarshal(b, &st); err != nil {
		a.log.Error().Err(err).Msg("cluster: the safety state in etcd does not decode; starting from the local state file")
		return
	}
	tmp := statePath + ".from-etcd"
	err = os.WriteFile(tmp, b, 0o640)
	if err == nil {
		err = os.Rename(tmp, statePath)
	}
	if err != nil {
		a.log.Error().Err(err).Msg("cluster: could not write the safety state from etcd; starting from the local state file")
		return
	}
	a.log.Info().Int("piles", len(st.Piles)).Msg("cluster: safety state restored from etcd")
}

// clusterAPI carries an operator's change out on the leader: a follower
// forwards it (a reverse proxy, so the operator sees the leader's answer,
// with its reason when refused), and with no leader it is refused with
// 503 and the reason. Reads are answered by any replica (every engine is
// warm), and a rules reload applies to the replica it is sent to (each
// reads its own file: reload every replica).
func (a *App) clusterAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead || strings.HasSuffix(r.URL.Path, "/reload") {
			next.ServeHTTP(w, r)
			return
		}
		switch a.cluster.Role() {
		case cluster.RoleLeader:
			next.ServeHTTP(w, r)
			return
		case cluster.RoleFollower:
			leaderURL, leader := a.cluster.LeaderURL()
			u, err := url.Parse(leaderURL)
			if leaderURL == "" || err != nil || r.Header.Get(forwardedHeader) != "" {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{
					"error": "leader_unreachable", "reason": "leader_unreachable",
					"detail": fmt.Sprintf("this replica follows %q, which advertises no usable address (cluster.advertise_url) or is changing; try again", leader),
				})
				return
			}
			r.Header.Set(forwardedHeader, a.cluster.Member())
			p := httputil.NewSingleHostReverseProxy(u)
			p.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{
					"error": "leader_unreachable", "reason": "leader_unreachable",
					"detail": fmt.Sprintf("forwarding to the leader %q failed: %v", leader, err),
				})
			}
			p.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", fmt.Sprint(int(a.cluster.TTL()/time.Second)))
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{
				"error": "no_leader", "reason": "no_leader", "detail": cluster.ErrNoLeader.Error(),
			})
		}
	})
}

// clusterReady is the cluster's line in /readyz, and whether it is ready.
func (a *App) clusterReady() (string, bool) {
	switch a.cluster.Role() {
	case cluster.RoleLeader:
		return "leader", true
	case cluster.RoleFollower:
		_, leader := a.cluster.LeaderURL()
		return "follower of " + leader, true
	default:
		return "no leader confirmed within " + a.cluster.TTL().String() + " (etcd unreachable or quorum lost): every replica sends its closes; opens and resets refused", false
	}
}

// pileStatusObserver is what ingest hands every pile's status to: in
// cluster mode with mqtt.sites, the shard registry, which pages for a site
// on the broker that no shard guards. Otherwise nil, and there is no
// status session: a replica set of every site guards every site it could
// see, and without cluster mode there is no registry.
func (a *App) pileStatusObserver() func(site, pile string, online bool) {
	if a.cluster == nil || len(a.cfg.MQTT.Sites) == 0 {
		return nil
	}
	return a.cluster.SeenPile
}

// shardsReady is the shard registry's line in /readyz.
func (a *App) shardsReady() (string, bool) {
	st, ok := a.cluster.Shards()
	if !ok {
		return "", false
	}
	var b strings.Builder
	switch {
	case !st.Synced:
		b.WriteString("every shard's claims not read from etcd yet (or etcd unreachable): overlaps and unguarded sites are not being checked")
	case !st.Registered:
		b.WriteString("this replica's claims of its sites are not in etcd (etcd unreachable?): other shards may page for its sites")
	default:
		b.WriteString("ok")
	}
	sites := make([]string, 0, len(st.Overlaps))
	for site := range st.Overlaps {
		sites = append(sites, site)
	}
	sort.Strings(sites)
	for _, site := range sites {
		fmt.Fprintf(&b, "; OVERLAP: site %s is also claimed by shard %s (two leaders send its commands: list it in one shard's mqtt.sites)", site, strings.Join(st.Overlaps[site], ", "))
	}
	if len(st.Unguarded) > 0 {
		fmt.Fprintf(&b, "; UNGUARDED (on the broker, claimed by no shard, paged as %s): %s", cluster.AlertUnguarded, strings.Join(st.Unguarded, ", "))
	}
	return b.String(), true
}
