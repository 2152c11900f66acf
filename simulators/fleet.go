package simulators

import (
	"errors"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/chargeguard/chargeguard/telemetry"
)

// Fleet is a set of charging sites and their piles, as described by a fleet
// file (see fleets/changhe.yaml).
type Fleet struct {
	// Name labels the fleet in logs and summaries.
	Name string `yaml:"name"`
	// Sites are the charging sites. Site ids are unique within a fleet.
	Sites []Site `yaml:"sites"`
}

// Site is one charging site: a residential community's shed or an open-air
// charging point.
type Site struct {
	// ID is the site id used in topics, [A-Za-z0-9_-]{1,64}.
	ID string `yaml:"id"`
	// Name is the display name (Chinese in the Changhe fleet). It never
	// reaches a topic.
	Name string `yaml:"name,omitempty"`
	// Kind is residential (indoor shed) or open_air.
	Kind telemetry.SiteKind `yaml:"kind"`
	// RatedA is the rated current of each socket, in amperes, for piles
	// that do not set their own.
	RatedA float64 `yaml:"rated_a,omitempty"`
	// Piles are groups of identical piles. A group with an ID is one pile;
	// a group with Count > 0 expands to Count piles named p01, p02, ...
	// numbered across the site's groups in order.
	Piles []PileGroup `yaml:"piles"`
}

// PileGroup describes one pile (ID set) or Count identical piles.
type PileGroup struct {
	ID     string  `yaml:"id,omitempty"`
	Count  int     `yaml:"count,omitempty"`
	Ports  int     `yaml:"ports"`
	RatedA float64 `yaml:"rated_a,omitempty"`
	FW     string  `yaml:"fw,omitempty"`
}

// PileSpec is one pile of a fleet after expansion.
type PileSpec struct {
	Site     string
	SiteName string
	Kind     telemetry.SiteKind
	ID       string
	Ports    int
	RatedA   float64
	FW       string
}

// Key is "site/pile", the form used in fault targets and logs.
func (p PileSpec) Key() string { return p.Site + "/" + p.ID }

// DefaultFW is the firmware version a pile reports when its fleet file
// does not set one.
const DefaultFW = "2.3.1"

// LoadFleet reads and validates a fleet file.
func LoadFleet(path string) (*Fleet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read fleet: %w", err)
	}
	return ParseFleet(data, path)
}

// ParseFleet parses and validates a fleet from YAML; name is used in errors.
func ParseFleet(data []byte, name string) (*Fleet, error) {
	var f Fleet
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("fleet %s: %w", name, err)
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("fleet %s: %w", name, err)
	}
	return &f, nil
}

// Validate checks ids, kinds, port counts and ratings. Every error names
// the offending field.
func (f *Fleet) Validate() error {
	if len(f.Sites) == 0 {
		return errors.New("sites: no site")
	}
	var errs []error
	seenSite := map[string]bool{}
	for i, s := range f.Sites {
		field := fmt.Sprintf("sites[%d]", i)
		if !telemetry.ValidID(s.ID) {
			errs = append(errs, fmt.Errorf("%s.id: %q breaks [A-Za-z0-9_-]{1,64}", field, s.ID))
		}
		if seenSite[s.ID] {
			errs = append(errs, fmt.Errorf("%s.id: duplicate site %q", field, s.ID))
		}
		seenSite[s.ID] = true
		if s.Kind != telemetry.SiteResidential && s.Kind != telemetry.SiteOpenAir {
			errs = append(errs, fmt.Errorf("%s.kind: %q is neither residential nor open_air", field, s.Kind))
		}
		if len(s.Piles) == 0 {
			errs = append(errs, fmt.Errorf("%s.piles: no pile", field))
		}
		for j, g := range s.Piles {
			gf := fmt.Sprintf("%s.piles[%d]", field, j)
			if g.ID == "" && g.Count <= 0 {
				errs = append(errs, fmt.Errorf("%s: set id or a positive count", gf))
			}
			if g.ID != "" && g.Count > 1 {
				errs = append(errs, fmt.Errorf("%s: id and count > 1 together", gf))
			}
			if g.ID != "" && !telemetry.ValidID(g.ID) {
				errs = append(errs, fmt.Errorf("%s.id: %q breaks [A-Za-z0-9_-]{1,64}", gf, g.ID))
			}
			if g.Ports < 1 || g.Ports > telemetry.MaxPort {
				errs = append(errs, fmt.Errorf("%s.ports: %d outside 1..%d", gf, g.Ports, telemetry.MaxPort))
			}
			rated := g.RatedA
			if rated == 0 {
				rated = s.RatedA
			}
			if !(rated > 0 && rated <= 63) {
				errs = append(errs, fmt.Errorf("%s.rated_a: %v not in (0, 63] (set it on the pile or the site)", gf, rated))
			}
		}
		seenPile := map[string]bool{}
		for _, p := range f.sitePiles(i) {
			if seenPile[p.ID] {
				errs = append(errs, fmt.Errorf("%s.piles: duplicate pile %q", field, p.ID))
			}
			seenPile[p.ID] = true
		}
	}
	return errors.Join(errs...)
}

func (f *Fleet) sitePiles(i int) []PileSpec {
	s := f.Sites[i]
	var out []PileSpec
	n := 0
	for _, g := range s.Piles {
		rated := g.RatedA
		if rated == 0 {
			rated = s.RatedA
		}
		fw := g.FW
		if fw == "" {
			fw = DefaultFW
		}
		mk := func(id string) PileSpec {
			return PileSpec{Site: s.ID, SiteName: s.Name, Kind: s.Kind, ID: id, Ports: g.Ports, RatedA: rated, FW: fw}
		}
		if g.ID != "" {
			n++
			out = append(out, mk(g.ID))
			continue
		}
		for k := 0; k < g.Count; k++ {
			n++
			out = append(out, mk(fmt.Sprintf("p%02d", n)))
		}
	}
	return out
}

// Piles expands the fleet into its piles, in file order.
func (f *Fleet) Piles() []PileSpec {
	var out []PileSpec
	for i := range f.Sites {
		out = append(out, f.sitePiles(i)...)
	}
	return out
}

// PortTotals returns the number of ports per site kind.
func (f *Fleet) PortTotals() map[telemetry.SiteKind]int {
	t := map[telemetry.SiteKind]int{}
	for _, p := range f.Piles() {
		t[p.Kind] += p.Ports
	}
	return t
}

// Filter returns the part of the fleet whose site is in sites (all sites
// when empty) and whose pile key "site/pile" or pile id is in piles (all
// piles when empty), keeping at most maxPiles piles per site when
// maxPiles > 0. Expanded pile ids are kept, so a filtered pile has the same
// id as in the whole fleet.
func (f *Fleet) Filter(sites, piles []string, maxPiles int) *Fleet {
	in := func(list []string, vals ...string) bool {
		if len(list) == 0 {
			return true
		}
		for _, l := range list {
			for _, v := range vals {
				if l == v {
					return true
				}
			}
		}
		return false
	}
	out := &Fleet{Name: f.Name}
	for i, s := range f.Sites {
		if !in(sites, s.ID) {
			continue
		}
		ns := Site{ID: s.ID, Name: s.Name, Kind: s.Kind, RatedA: s.RatedA}
		for _, p := range f.sitePiles(i) {
			if !in(piles, p.Key(), p.ID) {
				continue
			}
			if maxPiles > 0 && len(ns.Piles) >= maxPiles {
				break
			}
			ns.Piles = append(ns.Piles, PileGroup{ID: p.ID, Ports: p.Ports, RatedA: p.RatedA, FW: p.FW})
		}
		if len(ns.Piles) > 0 {
			out.Sites = append(out.Sites, ns)
		}
	}
	return out
}

// GenerateFleet makes a synthetic fleet of n piles with ports sockets each
// (10 when ports <= 0), for load tests: sites of 20 piles, alternately
// residential (3 A) and open-air (5 A), ids gen-0001, gen-0002, ...
func GenerateFleet(n, ports int) *Fleet {
	if ports <= 0 {
		ports = 10
	}
	f := &Fleet{Name: fmt.Sprintf("generated-%d", n)}
	const perSite = 20
	for i := 0; n > 0; i++ {
		c := min(n, perSite)
		n -= c
		s := Site{ID: fmt.Sprintf("gen-%04d", i+1), Kind: telemetry.SiteResidential, RatedA: 3}
		if i%2 == 1 {
			s.Kind, s.RatedA = telemetry.SiteOpenAir, 5
		}
		s.Piles = []PileGroup{{Count: c, Ports: ports}}
		f.Sites = append(f.Sites, s)
	}
	return f
}
