package testenv

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestEtcdQuorum: three members start healthy; with two killed the third
// reports no quorum (and is stopped by the cleanup even so: a member
// without quorum may ignore SIGTERM); restarted, the cluster is healthy
// again with its data.
func TestEtcdQuorum(t *testing.T) {
	c := Etcd(t, 3)
	require.Len(t, c.Endpoints(), 3)
	for _, m := range c.Members {
		require.NoError(t, m.healthy())
	}
	c.Members[1].Kill()
	c.Members[2].Kill()
	require.Eventually(t, func() bool { return c.Members[0].healthy() != nil }, 10*time.Second, 50*time.Millisecond,
		"a member without quorum must not report healthy")
	c.Members[1].Start()
	c.Members[2].Start()
	for _, m := range c.Members {
		require.NoError(t, m.healthy())
	}
}
