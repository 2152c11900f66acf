package cluster

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	leader          prometheus.Gauge
	noLeader        prometheus.Gauge
	changes         *prometheus.CounterVec
	confirmFailures prometheus.Counter
	stateWrites     *prometheus.CounterVec
	heldBack        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_cluster_leader",
			Help: "1 while this replica is the confirmed leader of its cluster.",
		}),
		noLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chargeguard_cluster_no_leader",
			Help: "1 while no leader has been confirmed within the lease TTL: every replica sends its closes, opens and resets are refused.",
		}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_cluster_role_changes_total",
			Help: "Changes of this replica's role, by the role it took (leader, follower, alone).",
		}, []string{"role"}),
		confirmFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chargeguard_cluster_confirm_failures_total",
			Help: "Reads of the leader key that failed (etcd unreachable or without quorum).",
		}),
		stateWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_cluster_state_writes_total",
			Help: "Writes of the safety state to etcd by result (ok, error, not_leader).",
		}, []string{"result"}),
		heldBack: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chargeguard_cluster_held_back_total",
			Help: "Side effects of the engine this replica did not carry out, by kind (command, open, alert, record) and role.",
		}, []string{"kind", "role"}),
	}
	if reg != nil {
		reg.MustRegister(m.leader, m.noLeader, m.changes, m.confirmFailures, m.stateWrites, m.heldBack)
	}
	return m
}

func (m *metrics) setRole(r Role) {
	m.leader.Set(b2f(r == RoleLeader))
	m.noLeader.Set(b2f(r == RoleAlone))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
