package alerting

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chargeguard/chargeguard/telemetry"
)

// AlertName is the alertname label of an alert: which policy row fired.
type AlertName uint8

// The alert names. The zero value is no alert.
const (
	AlertTempWarning  AlertName = iota + 1 // temp_c ≥ warn_c: warning, no close
	AlertOverheat                          // temp_c ≥ overheat_c: close, latched
	AlertOverheatRate                      // sustained rise ≥ rise_c_per_min: close, latched
	AlertOvercurrent                       // a ≥ 1.1 × rated in 3 samples: close, latched
	AlertShortCircuit                      // a ≥ 2 × rated in one sample: close, latched
	AlertLeakage                           // leak_ma ≥ 30: port-0 close, pile latched
	AlertSmoke                             // smoke: port-0 close, pile latched
	AlertSensorFault                       // charging port without a plausible temp_c or a: close, latched
	AlertPileOffline                       // death or silence while charging: no command can reach it
	AlertHotContact                        // temp_c − ambient ≥ 30 while charging: warning
	AlertCloseFailed                       // close never acked: port-0 close, pile latched
	AlertRelayWelded                       // current after an acked close: port-0 close, pile latched
	AlertMaxDuration                       // charging over max_session: close, not latched
	AlertPileStream                        // 10 telemetry messages in a row set aside (dup, stale, late): warning
	AlertPileProtocol                      // 3 rejected telemetry messages in a row, or an unknown v: warning
	AlertPileConfig                        // a birth's rated_a above the configured cap: warning
	alertCount
)

// reasonFull is the close reason of a full battery. It is not an alert.
const reasonFull = alertCount

var alertNames = [...]string{
	"", "temp_warning", "overheat", "overheat_rate", "overcurrent", "short_circuit",
	"leakage", "smoke", "sensor_fault", "pile_offline", "hot_contact",
	"close_failed", "relay_welded", "max_duration",
	"pile_stream", "pile_protocol", "pile_config", "full",
}

// AlertNames lists every alert name, for pre-creating metric series.
func AlertNames() []AlertName {
	out := make([]AlertName, 0, alertCount-1)
	for n := AlertTempWarning; n < alertCount; n++ {
		out = append(out, n)
	}
	return out
}

func (n AlertName) String() string {
	if int(n) < len(alertNames) {
		return alertNames[n]
	}
	return "alert(" + strconv.Itoa(int(n)) + ")"
}

// ParseAlertName is the inverse of AlertName.String for alert names.
func ParseAlertName(s string) (AlertName, bool) {
	for n := AlertTempWarning; n < alertCount; n++ {
		if alertNames[n] == s {
			return n, true
		}
	}
	return 0, false
}

// MarshalText writes the name, so that JSON state and views carry
// "overheat", not a number.
func (n AlertName) MarshalText() ([]byte, error) { return []byte(n.String()), nil }

// UnmarshalText reads an alert name (or "full", a close reason).
func (n *AlertName) UnmarshalText(b []byte) error {
	if string(b) == "" {
		*n = 0
		return nil
	}
	if string(b) == alertNames[reasonFull] {
		*n = reasonFull
		return nil
	}
	v, ok := ParseAlertName(string(b))
	if !ok {
		return fmt.Errorf("unknown alert name %q", truncate(string(b), 40))
	}
	*n = v
	return nil
}

// alertMask is a set of alert names (and reasonFull), one bit each.
type alertMask uint32

func (n AlertName) bit() alertMask { return 1 << n }

// Severity is the severity label of an alert.
type Severity string

const (
	SeverityCritical Severity = "critical"
	SeverityWarning  Severity = "warning"
	SeverityInfo     Severity = "info"
)

// What each alert does. pileWide alerts close port 0 and latch the pile;
// latches alerts latch the port; closes alerts close the port.
type policy struct {
	severity Severity
	closes   bool // close the port (or port 0 when pileWide)
	latches  bool // the close latches: only a reset reopens
	pileWide bool // close and latch port 0, not the alert's port
	onSite   string
}

var policies = [alertCount]policy{
	AlertTempWarning: {severity: SeverityWarning,
		onSite: "Look at the bike and plug at this port; the port closes by itself at the overheat limit."},
	AlertOverheat: {severity: SeverityCritical, closes: true, latches: true,
		onSite: "Go to the pile: check socket and plug for scorching and the battery for swelling. Reset only once it has cooled."},
	AlertOverheatRate: {severity: SeverityCritical, closes: true, latches: true,
		onSite: "Go to the pile: a fast temperature rise precedes thermal runaway. Move the battery away from others if it is hot; reset only once cooled."},
	AlertOvercurrent: {severity: SeverityCritical, closes: true, latches: true,
		onSite: "Check the charger and cable at this port for damage; the bike's charger may be faulty. Reset once the cause is removed."},
	AlertShortCircuit: {severity: SeverityCritical, closes: true, latches: true,
		onSite: "Inspect the socket, plug and cable for a short (melted or blackened parts); do not reset before an electrician has looked."},
	AlertLeakage: {severity: SeverityCritical, closes: true, latches: true, pileWide: true,
		onSite: "Residual current at the pile: keep people away from wet equipment, have an electrician check insulation before reset."},
	AlertSmoke: {severity: SeverityCritical, closes: true, latches: true, pileWide: true,
		onSite: "Possible fire: be on site in minutes, call the fire service if there are flames, do not touch batteries with bare hands."},
	// Critical although the cut is already done: a sensor that vanishes or
	// reads 180 °C in the middle of a charge may have burnt, and the guard is
	// blind on that port until someone looks.
	AlertSensorFault: {severity: SeverityCritical, closes: true, latches: true,
		onSite: "The port's temperature or current reading is missing or implausible: check the sensor before reset."},
	AlertPileOffline: {severity: SeverityCritical,
		onSite: "The pile went silent while charging, so it cannot be switched off remotely: check it on site and cut its supply if needed."},
	AlertHotContact: {severity: SeverityWarning,
		onSite: "The plug is much hotter than the air around it: look for a loose or burnt plug at this port."},
	AlertCloseFailed: {severity: SeverityCritical, closes: true, latches: true, pileWide: true,
		onSite: "The pile did not confirm switching the port off: cut the pile's supply on site and check its controller."},
	AlertRelayWelded: {severity: SeverityCritical, closes: true, latches: true, pileWide: true,
		onSite: "The port still draws current after it was switched off (welded relay): cut the pile's supply on site and replace the relay."},
	AlertMaxDuration: {severity: SeverityWarning, closes: true,
		onSite: "A bike charged for too long in one session; the port was closed. Check the bike, then reset the port to reopen it."},
	// The three pile_* warnings say that the guard sees less than it
	// should of this pile. The rules keep running on what does arrive
	// (single-sample trips on every message, receive time for the
	// timers), so nothing closes on them; but the pile wants a look
	// before it hides a real fault.
	AlertPileStream: {severity: SeverityWarning,
		onSite: "The pile keeps sending telemetry the guard must set aside (repeated, old or out-of-order counters): check its clock and firmware; single-reading trips still work, windowed rules are degraded."},
	AlertPileProtocol: {severity: SeverityWarning,
		onSite: "The pile sends telemetry that breaks the protocol (or a version this backend does not speak): the guard acts on what still parses, storage loses those readings. Have the vendor fix or roll back its firmware."},
	AlertPileConfig: {severity: SeverityWarning,
		onSite: "The pile announces a rated current above the configured cap (an mA/A mix-up?): the guard uses the cap. Correct the pile's configuration."},
}

// Alert is one firing or resolved alert. Its labels are alertname,
// severity, site, pile, port (0 for the whole pile) and kind; its
// annotations summary and on_site.
type Alert struct {
	Name     AlertName          `json:"alertname"`
	Severity Severity           `json:"severity"`
	Site     string             `json:"site"`
	Pile     string             `json:"pile"`
	Port     int                `json:"port"`
	Kind     telemetry.SiteKind `json:"kind,omitempty"`
	// Summary says what was seen; OnSite what to do about it on site.
	Summary string `json:"summary"`
	OnSite  string `json:"on_site"`
	// Value is the reading that fired the alert (°C, A, mA, °C/min...),
	// NaN-free: 0 when there is none.
	Value    float64   `json:"value"`
	StartsAt time.Time `json:"starts_at"`
	// EndsAt is zero while the alert fires.
	EndsAt time.Time `json:"ends_at,omitzero"`
}

// Key identifies the alert: alertname/site/pile/port. One condition on one
// port is one key, however many samples repeat it.
func (a Alert) Key() string { return alertKeyString(a.Name, a.Site, a.Pile, a.Port) }

func alertKeyString(n AlertName, site, pile string, port int) string {
	return n.String() + "/" + site + "/" + pile + "/" + strconv.Itoa(port)
}

// parseAlertKey splits a Key.
func parseAlertKey(key string) (n AlertName, site, pile string, port int, ok bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 4 {
		return 0, "", "", 0, false
	}
	n, ok = ParseAlertName(parts[0])
	if !ok || !telemetry.ValidID(parts[1]) || !telemetry.ValidID(parts[2]) {
		return 0, "", "", 0, false
	}
	port, err := strconv.Atoi(parts[3])
	if err != nil || port < 0 || port > telemetry.MaxPort {
		return 0, "", "", 0, false
	}
	return n, parts[1], parts[2], port, true
}

// Labels returns the Alertmanager labels. kind is left out while the pile's
// kind is unknown.
func (a Alert) Labels() map[string]string {
	l := map[string]string{
		"alertname": a.Name.String(),
		"severity":  string(a.Severity),
		"site":      a.Site,
		"pile":      a.Pile,
		"port":      strconv.Itoa(a.Port),
	}
	if a.Kind != "" {
		l["kind"] = string(a.Kind)
	}
	return l
}

// Annotations returns the Alertmanager annotations (summary, on_site). The
// service adds the link to the port's board.
func (a Alert) Annotations() map[string]string {
	return map[string]string{"summary": a.Summary, "on_site": a.OnSite}
}

// AlertView is an alert as the operator API shows it.
type AlertView struct {
	Alert
	Active  bool      `json:"active"`
	AckedBy string    `json:"acked_by,omitempty"`
	AckedAt time.Time `json:"acked_at,omitzero"`
}

// truncate cuts s to at most n bytes, at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
