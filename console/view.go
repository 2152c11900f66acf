package console

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/telemetry"
)

// fleetView is one read of the fleet, shared by every page until the next
// poll. It is never changed after it is published.
type fleetView struct {
	version uint64
	at      time.Time
	stale   bool
	ports   []alerting.PortView // by site, pile, port
	sites   []siteSummary       // worst first
	active  []alertItem         // unacknowledged first, then critical, then newest
	recent  []alertItem         // resolved, newest first
	offline map[string]bool     // site/pile offline at the read (PortView.PileOffline, or an active pile_offline alert)
}

// siteSummary is a row of the fleet page.
type siteSummary struct {
	Site                                     string
	Piles, Ports                             int
	Charging, Warning, Latched, Offline      int
	Closed                                   int
	Critical, WarningAlerts, Unacked, Alerts int
}

// badness orders sites worst first: latched ports and critical alerts, then
// unacknowledged ones, warnings and offline piles.
func (s siteSummary) badness() [4]int {
	return [4]int{s.Critical + s.Latched, s.Unacked, s.Warning + s.WarningAlerts, s.Offline}
}

type alertItem struct {
	alerting.AlertView
	Key string
}

func pileKey(site, pile string) string { return site + "/" + pile }

func buildView(now time.Time, ports []alerting.PortView, alerts []alerting.AlertView) *fleetView {
	v := &fleetView{at: now, ports: ports, offline: map[string]bool{}}
	sites := map[string]*siteSummary{}
	site := func(name string) *siteSummary {
		s := sites[name]
		if s == nil {
			s = &siteSummary{Site: name}
			sites[name] = s
		}
		return s
	}
	for _, a := range alerts {
		it := alertItem{AlertView: a, Key: a.Key()}
		if !a.Active {
			v.recent = append(v.recent, it)
			continue
		}
		v.active = append(v.active, it)
		s := site(a.Site)
		s.Alerts++
		switch a.Severity {
		case alerting.SeverityCritical:
			s.Critical++
		case alerting.SeverityWarning:
			s.WarningAlerts++
		}
		if a.AckedBy == "" {
			s.Unacked++
		}
		if a.Name == alerting.AlertPileOffline {
			v.offline[pileKey(a.Site, a.Pile)] = true
		}
	}
	slices.SortStableFunc(v.active, func(a, b alertItem) int {
		return cmp.Or(
			boolOrder(a.AckedBy == "", b.AckedBy == ""),
			boolOrder(a.Severity == alerting.SeverityCritical, b.Severity == alerting.SeverityCritical),
			b.StartsAt.Compare(a.StartsAt),
		)
	})
	// A pile is offline as the engine's view says, whatever its alerts:
	// pile_offline fires only for a pile that falls silent while charging,
	// and an acknowledged or resolved one says nothing about the pile now
	// (nor does a restart, which starts with no alert at all).
	for _, p := range ports {
		if p.PileOffline(now) {
			v.offline[pileKey(p.Site, p.Pile)] = true
		}
	}
	lastPile := ""
	for _, p := range ports {
		s := site(p.Site)
		s.Ports++
		if pk := pileKey(p.Site, p.Pile); pk != lastPile {
			s.Piles++
			lastPile = pk
		}
		switch cellState(p, v.offline[pileKey(p.Site, p.Pile)]) {
		case "latched":
			s.Latched++
		case "closed", "closing":
			s.Closed++
		case "offline":
			s.Offline++
		case "warning":
			s.Warning++
		case "charging":
			s.Charging++
		}
	}
	for _, s := range sites {
		v.sites = append(v.sites, *s)
	}
	slices.SortFunc(v.sites, func(a, b siteSummary) int {
		ba, bb := a.badness(), b.badness()
		for i := range ba {
			if c := cmp.Compare(bb[i], ba[i]); c != 0 {
				return c
			}
		}
		return strings.Compare(a.Site, b.Site)
	})
	return v
}

// boolOrder puts true first.
func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

// cellState is what a port's cell shows, most urgent first: latched (red),
// closing or closed, the pile offline, a warning alert, charging, idle, or
// unknown (no reading yet).
func cellState(p alerting.PortView, offline bool) string {
	switch p.Control {
	case alerting.ControlLatched:
		return "latched"
	case alerting.ControlClosing:
		return "closing"
	case alerting.ControlClosed:
		return "closed"
	}
	if offline {
		return "offline"
	}
	if len(p.Alerts) > 0 {
		return "warning"
	}
	switch p.Reported {
	case telemetry.StateCharging:
		return "charging"
	case telemetry.StateFault:
		return "warning"
	case "":
		return "unknown"
	}
	return "idle"
}

// sitePorts returns the ports of one site, a sub-slice of the view.
func (v *fleetView) sitePorts(site string) []alerting.PortView {
	i, _ := slices.BinarySearchFunc(v.ports, site, func(p alerting.PortView, s string) int { return strings.Compare(p.Site, s) })
	j := i
	for j < len(v.ports) && v.ports[j].Site == site {
		j++
	}
	return v.ports[i:j]
}

func (v *fleetView) port(site, pile string, n int) (alerting.PortView, bool) {
	for _, p := range v.sitePorts(site) {
		if p.Pile == pile && p.Port == n {
			return p, true
		}
	}
	return alerting.PortView{}, false
}

func (v *fleetView) alert(key string) (alertItem, bool) {
	for _, a := range v.active {
		if a.Key == key {
			return a, true
		}
	}
	for _, a := range v.recent {
		if a.Key == key {
			return a, true
		}
	}
	return alertItem{}, false
}

// portAlerts returns the active alerts of a port or its pile (the alerts
// page keeps the resolved ones).
func (v *fleetView) portAlerts(site, pile string, n int) []alertItem {
	var out []alertItem
	for _, a := range v.active {
		if a.Site == site && a.Pile == pile && (a.Port == n || a.Port == 0) {
			out = append(out, a)
		}
	}
	return out
}

func portPath(site, pile string, n int) string {
	return "/ports/" + site + "/" + pile + "/" + strconv.Itoa(n)
}

func alertPath(key string) string { return "/alerts/" + key }
