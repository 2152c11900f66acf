package simulators

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/telemetry"
)

func TestChangheFleetMatchesTheReport(t *testing.T) {
	f, err := LoadFleet("fleets/changhe.yaml")
	require.NoError(t, err)

	sites := map[telemetry.SiteKind]int{}
	for _, s := range f.Sites {
		sites[s.Kind]++
	}
	require.Equal(t, 16, sites[telemetry.SiteResidential], "residential communities")
	require.Equal(t, 6, sites[telemetry.SiteOpenAir], "open-air points")

	totals := f.PortTotals()
	require.Equal(t, 1622, totals[telemetry.SiteResidential], "residential ports")
	require.Equal(t, 176, totals[telemetry.SiteOpenAir], "open-air ports")

	names := map[string]bool{}
	for _, p := range f.Piles() {
		require.True(t, telemetry.ValidID(p.Site) && telemetry.ValidID(p.ID), p.Key())
		require.Greater(t, p.RatedA, 0.0)
		names[p.SiteName] = true
		if p.Kind == telemetry.SiteResidential {
			require.Contains(t, []int{10, 12}, p.Ports, p.Key())
		} else {
			require.True(t, p.Ports >= 8 && p.Ports <= 16, p.Key())
		}
	}
	for _, n := range []string{"春波南苑", "江虹小区", "长江西苑", "齐虹雅园", "忆东枫里"} {
		require.True(t, names[n], "named in the report: %s", n)
	}
}

func TestFleetValidateNamesTheField(t *testing.T) {
	_, err := ParseFleet([]byte(`
sites:
  - {id: "a+b", kind: residential, rated_a: 3, piles: [{count: 1, ports: 10}]}
  - {id: ok, kind: shed, piles: [{count: 1, ports: 65}]}
`), "bad.yaml")
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{"bad.yaml", "sites[0].id", "sites[1].kind", "sites[1].piles[0].ports", "sites[1].piles[0].rated_a"} {
		require.True(t, strings.Contains(msg, want), "error %q lacks %q", msg, want)
	}
}

func TestGenerateAndFilter(t *testing.T) {
	g := GenerateFleet(45, 10)
	require.NoError(t, g.Validate())
	require.Len(t, g.Piles(), 45)
	require.Len(t, g.Sites, 3)

	f, err := LoadFleet("fleets/changhe.yaml")
	require.NoError(t, err)
	sub := f.Filter([]string{"baimahu", "chunbo-nanyuan"}, nil, 2)
	require.NoError(t, sub.Validate())
	var keys []string
	for _, p := range sub.Piles() {
		keys = append(keys, p.Key())
	}
	require.Equal(t, []string{"chunbo-nanyuan/p01", "chunbo-nanyuan/p02", "baimahu/p01", "baimahu/p02"}, keys)
	one := f.Filter(nil, []string{"chunbo-nanyuan/p16"}, 0)
	require.Equal(t, 12, one.Piles()[0].Ports, "p15-p18 of chunbo-nanyuan have 12 ports")
}
