package ingest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A shard subscribes to its sites only, in both sessions; the storage
// session of a cluster shares each of them.
func TestSubscriptionFilters(t *testing.T) {
	require.Equal(t, []string{"chargers/#"}, subscriptionFilters("chargers", "", nil))
	require.Equal(t, []string{"$share/cg/chargers/#"}, subscriptionFilters("chargers", "cg", nil))
	require.Equal(t, []string{"chargers/north/#", "chargers/south/#"}, subscriptionFilters("chargers", "", []string{"north", "south"}))
	require.Equal(t, []string{"$share/cg-3/chargers/north/#", "$share/cg-3/chargers/south/#"},
		subscriptionFilters("chargers", "cg-3", []string{"north", "south"}))
}

func TestNewRefusesABadSite(t *testing.T) {
	_, err := New(Options{Spool: nopSpool{}, Sites: []string{"north", "a/#"}})
	require.ErrorContains(t, err, `site "a/#"`)
}

type nopSpool struct{}

func (nopSpool) Append([][]byte) error { return nil }
