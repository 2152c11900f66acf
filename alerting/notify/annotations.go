package notify

import (
	"sort"
	"strconv"
	"strings"
)

// Severities, the values of the "severity" label. deploy/alertmanager routes
// on them: critical pages on-call at once, warning goes to the operators.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
)

// DefaultRunbookBase is where the runbooks live unless Options.RunbookBaseURL
// says otherwise: runbook_url is <base>/docs/runbooks/<alertname>.md.
const DefaultRunbookBase = "https://github.com/chargeguard/chargeguard/blob/main"

// alertText is what on-call reads about one alert name. %s verbs are not
// used: the texts are assembled by Annotations so that a site or pile id can
// never be mistaken for a format directive.
type alertText struct {
	severity string
	// pile is true for alerts about the whole pile (port 0).
	pile bool
	// summary is one line, without the place: Annotations prefixes it.
	summary string
	// what tells what happened and what chargeguard already did.
	what string
	// onSite is what the person on call does, in order.
	onSite string
}

// catalogue holds every alert name the safety engine raises (see the policy
// table in docs/protocol.md). Keep the texts short: they are read on a phone
// at 3 a.m.
var catalogue = map[string]alertText{
	"smoke": {
		severity: SeverityCritical, pile: true,
		summary: "SMOKE detected: possible fire",
		what:    "The pile's smoke detector tripped. chargeguard has cut every port of the pile.",
		onSite:  "1. Call 119 now. 2. Evacuate the shed and keep people out. 3. Go on site with an extinguisher (dry powder or CO2, never water on live equipment). 4. Switch off the pile's breaker when it is safe to reach. Do not reset any port until the fire service has cleared the site.",
	},
	"overheat": {
		severity: SeverityCritical,
		summary:  "port overheated, port cut",
		what:     "The socket temperature reached the cut-off limit. chargeguard has cut the port; it stays cut until an operator resets it.",
		onSite:   "1. If there is smoke or a burning smell, call 119. 2. Unplug the battery and move it away from the shed if it is hot or swollen. 3. Check the plug and socket for burn marks or melted plastic before any reset; a marked socket must be replaced, not reset.",
	},
	"overheat_rate": {
		severity: SeverityCritical,
		summary:  "port temperature rising fast, port cut",
		what:     "The socket temperature rose faster than the allowed rate while charging. chargeguard has cut the port.",
		onSite:   "1. Check the battery: if it keeps heating, swells, hisses or smokes after the cut, call 119 and move people away (thermal runaway). 2. Unplug it only if safe. 3. Check plug and socket for burn marks before any reset.",
	},
	"overcurrent": {
		severity: SeverityCritical,
		summary:  "port drew overcurrent, port cut",
		what:     "The port drew more than its rated current for several samples. chargeguard has cut the port.",
		onSite:   "1. Check the charger: modified, damaged or non-compliant chargers are the usual cause. 2. Tell the owner not to use it again. 3. Reset only with a compliant charger.",
	},
	"short_circuit": {
		severity: SeverityCritical,
		summary:  "short circuit on port, port cut",
		what:     "The port drew at least twice its rated current. chargeguard cut it at once.",
		onSite:   "1. Look for smoke or scorch marks; call 119 if there is any. 2. Check the cable, plug and socket for damage or water. 3. Keep the port out of service until an electrician has checked it.",
	},
	"leakage": {
		severity: SeverityCritical, pile: true,
		summary: "leakage current on the pile, all ports cut",
		what:    "The pile's residual current is above the limit: risk of electric shock. chargeguard has cut every port of the pile.",
		onSite:  "1. Do not touch the pile housing, especially when wet. 2. Switch off the pile's breaker. 3. Look for water ingress or damaged cables. 4. Call an electrician; reset only after the fault is found.",
	},
	"sensor_fault": {
		severity: SeverityCritical,
		summary:  "temperature sensor fault, port cut",
		what:     "The port's temperature reading is missing or impossible while charging, so the port cannot be watched. chargeguard has cut it (fail-safe).",
		onSite:   "1. Check the port for heat or burn marks. 2. Have the sensor and its wiring repaired. 3. Do not reset before the sensor reads plausibly again.",
	},
	"close_failed": {
		severity: SeverityCritical,
		summary:  "pile does not answer the cut command: power may still flow",
		what:     "chargeguard ordered a cut and the pile never acknowledged it, even after retries. It then ordered the whole pile off, which may not have arrived either.",
		onSite:   "1. Go on site now and switch off the pile's breaker by hand. 2. Check whether the port still charges. 3. Check the pile's network link and power before switching it back on.",
	},
	"relay_welded": {
		severity: SeverityCritical,
		summary:  "relay did not open: port still live after the cut",
		what:     "The pile acknowledged the cut but the port still draws current: its relay is probably welded. chargeguard ordered the whole pile off.",
		onSite:   "1. Go on site now and switch off the pile's breaker by hand; no command can stop this port. 2. Unplug the battery. 3. Keep the pile off until it is repaired.",
	},
	"pile_offline": {
		severity: SeverityCritical, pile: true,
		summary: "pile offline while charging: no cut can reach it",
		what:    "The pile went offline (death message or silence) while at least one port was charging. chargeguard can neither watch it nor cut it.",
		onSite:  "1. Try to restore the pile's network link or power. 2. If it is not back within a few minutes, go on site and switch off the pile's breaker. 3. Check the charging batteries for heat.",
	},
	"temp_warning": {
		severity: SeverityWarning,
		summary:  "port temperature high",
		what:     "The socket is above the warning temperature. The port still charges; chargeguard cuts it automatically at the cut-off limit.",
		onSite:   "Check the plug and socket at the next round; look for discoloured or loose plugs.",
	},
	"hot_contact": {
		severity: SeverityWarning,
		summary:  "port much hotter than ambient: loose or burnt plug?",
		what:     "The socket is far hotter than the enclosure while charging, the early sign of a loose or burnt contact.",
		onSite:   "At the next visit check the plug and socket; replace a discoloured or loose socket before it overheats.",
	},
	"max_duration": {
		severity: SeverityWarning,
		summary:  "charging session too long, port closed",
		what:     "The port charged for longer than the session limit. chargeguard has closed it.",
		onSite:   "Tell the owner: a battery that never fills points to a faulty charger or a worn battery.",
	},
	// The pile_* warnings close nothing: chargeguard sees less of the pile
	// than it should, and the pile wants a look before that hides a fault.
	"pile_stream": {
		severity: SeverityWarning, pile: true,
		summary: "pile repeats or reorders its messages: timed rules degraded",
		what:    "Ten messages in a row from the pile were repeated, old or out of order (redelivery storm, firmware bug, restarted counter). Instant cuts (overheat, short circuit, leakage, smoke, sensor fault) still work; rate of rise, overcurrent, full battery and the 8 h cap wait for messages in order. Nothing was closed.",
		onSite:  "1. Open the Site board: does the pile still send new readings? 2. Check its network link; restart the pile if it keeps repeating. 3. If it comes back, report it to the vendor (clock, counter or firmware).",
	},
	"pile_protocol": {
		severity: SeverityWarning, pile: true,
		summary: "pile sends messages that break the protocol",
		what:    "The pile's telemetry was rejected 3 times in a row, or it speaks a protocol version chargeguard does not (firmware update?). chargeguard still acts on every reading that parses; the broken messages are not stored as readings. Nothing was closed.",
		onSite:  "1. Fleet board, Latest rejected messages: what is wrong. 2. Firmware just updated? Have the vendor fix or roll it back. 3. Until then, check this pile's charging ports at the next round.",
	},
	"pile_config": {
		severity: SeverityWarning, pile: true,
		summary: "pile announces an impossible rated current",
		what:    "The pile's birth message announced a rated current above the configured cap (max_rated_a; mA sent as A?). chargeguard uses the cap for the overcurrent and short-circuit rules. Nothing was closed.",
		onSite:  "1. Compare with the rated current on the pile's label. 2. Have the vendor correct the pile's setting; the alert resolves at its next birth within the cap. 3. Raise max_rated_a only if the label really says more.",
	},
}

// Alertnames returns every alert name chargeguard raises, sorted.
func Alertnames() []string {
	names := make([]string, 0, len(catalogue))
	for n := range catalogue {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Severity returns the severity label value of an alert name (critical or
// warning), or "" for a name chargeguard does not raise.
func Severity(alertname string) string {
	return catalogue[alertname].severity
}

// Annotations returns the annotations of one alert: summary, description,
// on_site (what on-call does), and board_url when boardURL is not empty.
// value is the reading that tripped the alert as the reader should see it
// (for example "72.5 °C" or "31 mA"); it may be empty. port 0 means the whole
// pile. An alert name not in the catalogue gets generic texts.
//
// The runbook_url annotation is added by the Notifier, which knows the
// runbook base URL (see RunbookURL).
func Annotations(alertname string, site, pile string, port int, value string, boardURL string) map[string]string {
	t, ok := catalogue[alertname]
	if !ok {
		t = alertText{
			summary: "chargeguard alert " + alertname,
			what:    "chargeguard raised an alert it has no description for.",
			onSite:  "Open the port's board, check the port on site, and follow the runbook.",
		}
	}
	place := "site " + site + ", pile " + pile
	if port > 0 {
		place += ", port " + strconv.Itoa(port)
	} else if !t.pile {
		place += " (whole pile)"
	}
	var desc strings.Builder
	desc.WriteString(t.what)
	if value != "" {
		desc.WriteString(" Reading: ")
		desc.WriteString(value)
		desc.WriteString(".")
	}
	desc.WriteString(" Where: ")
	desc.WriteString(place)
	desc.WriteString(".")

	a := map[string]string{
		"summary":     strings.ToUpper(alertname) + " at " + place + ": " + t.summary,
		"description": desc.String(),
		"on_site":     t.onSite,
	}
	if boardURL != "" {
		a["board_url"] = boardURL
	}
	return a
}

// RunbookURL returns the runbook of an alert name: <base>/docs/runbooks/<alertname>.md.
// An empty base means DefaultRunbookBase.
func RunbookURL(base, alertname string) string {
	if base == "" {
		base = DefaultRunbookBase
	}
	return strings.TrimRight(base, "/") + "/docs/runbooks/" + alertname + ".md"
}
