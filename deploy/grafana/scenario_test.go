package grafana

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/telemetry"
)

// A fault scenario, written as chargeguard writes it (docs/schema.md): an
// hour of three sites, ending at 03:00 in Hangzhou.
//
//   - chunbo-nanyuan (residential, piles p01..p03, 4 ports each): the socket
//     of p02 port 3 heats up from 40 °C; at 55 °C a temp_warning fires, at
//     70 °C an overheat fires and chargeguard closes the port; the pile does
//     not answer the first close, the retry is acked, the port cools down
//     with its relay open. An operator's reset is refused because the socket
//     is still above 55 °C, and the pile's door is opened. p01 port 1 is
//     reopened after a full battery was unplugged.
//   - xintang-open (open air, piles p01, p02): p01 port 1 trips on its own
//     (local_trip event, state fault).
//   - jiubao-east (residential, piles p01..p05): a power cut takes p01..p04
//     offline (death messages, pile_offline alerts) 20 minutes before the end.
//   - three messages are rejected.
//
// Piles report every 10 s, and every second while a port is at or above the
// warning temperature, as the protocol says.
type scenario struct {
	now, start time.Time
	points     []point

	sites                []string            // sorted
	piles                map[string][]string // site → piles, sorted
	ports                int
	faultSite, faultPile string
	faultPort            int
	quietSite, quietPile string // a pile nothing happened to
	quietPort            int
	offlineSite          string
	offlinePiles         []string
}

// point is one InfluxDB point. Field values are float64, int64, string or
// bool, written as line protocol types float, integer, string, boolean.
type point struct {
	measurement string
	tags        map[string]string
	fields      map[string]any
	t           time.Time
}

func newScenario() *scenario {
	cst := time.FixedZone("CST", 8*3600)
	s := &scenario{
		now:         time.Date(2025, 7, 1, 3, 0, 0, 0, cst),
		ports:       4,
		faultSite:   "chunbo-nanyuan",
		faultPile:   "p02",
		faultPort:   3,
		quietSite:   "chunbo-nanyuan",
		quietPile:   "p03",
		quietPort:   2,
		offlineSite: "jiubao-east",
		piles: map[string][]string{
			"chunbo-nanyuan": {"p01", "p02", "p03"},
			"xintang-open":   {"p01", "p02"},
			"jiubao-east":    {"p01", "p02", "p03", "p04", "p05"},
		},
		offlinePiles: []string{"p01", "p02", "p03", "p04"},
	}
	s.start = s.now.Add(-time.Hour)
	for site := range s.piles {
		s.sites = append(s.sites, site)
	}
	sort.Strings(s.sites)
	for _, site := range s.sites {
		for _, pile := range s.piles[site] {
			s.simulatePile(site, pile)
		}
	}
	// A bike unplugged after a full charge: chargeguard reopens its port
	// (the only open that is not an operator's reset).
	s.addAudit(alerting.AuditRecord{
		At: s.now.Add(-30 * time.Minute), Site: s.faultSite, Pile: "p01", Port: 1, Kind: alerting.AuditCommand,
		Actor: "rule:full", Reason: "plug_out", CommandID: "0b5e7d1c-7f3a-4c1e-8f0a-5d2c9b4e6a13",
		Action: telemetry.ActionOpen, Attempt: 1, Detail: "bike unplugged after a full charge",
	})
	s.rejections()
	sort.SliceStable(s.points, func(i, j int) bool { return s.points[i].t.Before(s.points[j].t) })
	return s
}

func (s *scenario) add(m string, tags map[string]string, fields map[string]any, t time.Time) {
	s.points = append(s.points, point{m, tags, fields, t})
}

func pileTags(site, pile string) map[string]string {
	return map[string]string{"site": site, "pile": pile}
}

func with(tags map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for tk, tv := range tags {
		out[tk] = tv
	}
	return out
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// portState is what one port does at one instant.
type portState struct {
	state          string
	a, w, v, tempC float64
	wh             float64
	hasPower       bool
}

func (s *scenario) simulatePile(site, pile string) {
	kind := "residential"
	if site == "xintang-open" {
		kind = "open_air"
	}
	tags := pileTags(site, pile)
	birth := s.start.Add(10 * time.Second)
	s.add("status", tags, map[string]any{"online": true, "ports": int64(s.ports), "rated_a": 5.0, "fw": "2.3.1", "kind": kind}, birth)

	end := s.now.Add(-2 * time.Second)
	var death time.Time
	offline := site == s.offlineSite && contains(s.offlinePiles, pile)
	if offline {
		death = s.now.Add(-20 * time.Minute)
		end = death.Add(-time.Second)
	}
	fault := site == s.faultSite && pile == s.faultPile
	trip := site == "xintang-open" && pile == "p01"

	// The fault port's story.
	warnAt := s.now.Add(-20 * time.Minute) // reaches 55 °C
	var cutAt time.Time                    // first sample at or above 70 °C
	closedAt := time.Time{}                // the ack
	tripAt := s.now.Add(-30 * time.Minute)
	faultTemp := func(t time.Time) float64 {
		rise := s.now.Add(-30 * time.Minute)
		switch {
		case t.Before(rise):
			return 40
		case cutAt.IsZero() || t.Before(closedAt):
			return 40 + 1.5*t.Sub(rise).Minutes() // 55 °C at -20 min, 70 °C at -10 min
		default:
			return 70.2 - 1.0*t.Sub(closedAt).Minutes() // cooling, relay open
		}
	}

	wh := make([]float64, s.ports+1)
	seq := int64(1000)
	if fault {
		s.add("event", with(tags, "kind", "plug_in"), map[string]any{"port": int64(s.faultPort), "detail": "plug detected"}, s.start.Add(15*time.Second))
	}
	for t := s.start.Add(11 * time.Second); !t.After(end); {
		seq++
		ambient := 28.0 + 2*math.Sin(float64(t.Unix()%3600)/3600*2*math.Pi)
		hot := false
		for n := 1; n <= s.ports; n++ {
			ps := portState{state: StateIdle, tempC: ambient + 1, v: 221}
			if (n+len(pile))%2 == 0 || (fault && n == s.faultPort) {
				ps = portState{state: StateCharging, a: 1.6 + 0.05*float64(n), v: 221, hasPower: true}
				ps.w = round1(ps.a * ps.v)
				ps.tempC = ambient + 9 + 0.5*float64(n)
			}
			if fault && n == s.faultPort {
				ps.tempC = faultTemp(t)
				if cutAt.IsZero() && ps.tempC >= TempCutC {
					cutAt = t
					closedAt = t.Add(3500 * time.Millisecond)
					s.cut(site, pile, n, t, ps.tempC)
				}
				if !closedAt.IsZero() && !t.Before(closedAt) {
					ps = portState{state: StateClosed, tempC: ps.tempC, v: 221, hasPower: true}
				}
			}
			if trip && n == 1 && !t.Before(tripAt) {
				ps = portState{state: StateFault, tempC: ambient + 2, v: 221}
			}
			if ps.state == StateCharging {
				wh[n] += ps.w * 10 / 3600
			}
			ps.tempC = round1(ps.tempC)
			if ps.tempC >= TempWarnC {
				hot = true
			}
			fields := map[string]any{"state": ps.state, "v": ps.v, "temp_c": ps.tempC}
			if ps.hasPower {
				fields["a"], fields["w"], fields["wh"] = ps.a, ps.w, round1(wh[n])
			}
			s.add("port", with(tags, "port", strconv.Itoa(n)), fields, t)
		}
		s.add("pile", tags, map[string]any{
			"seq": seq, "ambient_c": round1(ambient),
			"leak_ma": 2.0, "smoke": false, "skew_ms": int64(40),
		}, t)
		step := 10 * time.Second
		if hot {
			step = time.Second
		}
		t = t.Add(step)
	}

	if fault {
		s.add("alert", with(with(tags, "alertname", "temp_warning"), "severity", "warning"), map[string]any{
			"port": int64(s.faultPort), "state": "firing", "value": 55.0,
			"summary": fmt.Sprintf("TEMP_WARNING at site %s, pile %s, port %d: socket above 55 °C", site, pile, s.faultPort),
		}, warnAt.Add(time.Second))
		reset := s.now.Add(-4 * time.Minute)
		s.addAudit(alerting.AuditRecord{
			At: reset, Site: site, Pile: pile, Port: s.faultPort, Kind: alerting.AuditResetRefused,
			Actor: "operator:alice", Reason: "condition_active", Detail: "socket 61.2 °C is still above 55 °C",
		})
		s.add("event", with(tags, "kind", "door_open"), map[string]any{"port": int64(0), "detail": "enclosure door opened"}, reset.Add(-time.Minute))
	}
	if trip {
		s.add("event", with(tags, "kind", "local_trip"), map[string]any{"port": int64(1), "detail": "RCD tripped"}, tripAt)
	}
	if offline {
		s.add("status", tags, map[string]any{"online": false}, death)
		s.add("alert", with(with(tags, "alertname", "pile_offline"), "severity", "critical"), map[string]any{
			"port": int64(0), "state": "firing",
			"summary": fmt.Sprintf("PILE_OFFLINE at site %s, pile %s (whole pile): no command can reach it", site, pile),
		}, death.Add(time.Second))
	}
}

// cut writes what chargeguard writes when it closes a port: the alert, the
// close, a retry after 3 s without an ack, the pile's ack and its audit.
func (s *scenario) cut(site, pile string, port int, t time.Time, temp float64) {
	tags := pileTags(site, pile)
	id := "5f0c8a2e-2a7d-4b1e-9c61-0d3b8e1f7a42"
	s.add("alert", with(with(tags, "alertname", "overheat"), "severity", "critical"), map[string]any{
		"port": int64(port), "state": "firing", "value": temp,
		"summary": fmt.Sprintf("OVERHEAT at site %s, pile %s, port %d: socket %.1f °C, port closed", site, pile, port, temp),
	}, t.Add(100*time.Millisecond))
	rec := alerting.AuditRecord{
		Site: site, Pile: pile, Port: port, Actor: "rule:overheat", Reason: "overheat",
		CommandID: id, Action: telemetry.ActionClose,
	}
	send, retry, ack := rec, rec, rec
	send.At, send.Kind, send.Attempt = t.Add(120*time.Millisecond), alerting.AuditCommand, 1
	retry.At, retry.Kind, retry.Attempt, retry.Detail = t.Add(3120*time.Millisecond), alerting.AuditRetry, 2, "no ack within 3s"
	ack.At, ack.Kind, ack.Attempt, ack.Actor = t.Add(3510*time.Millisecond), alerting.AuditAck, 2, "pile"
	s.addAudit(send)
	s.addAudit(retry)
	s.add("ack", tags, map[string]any{"id": id, "port": int64(port), "ok": true, "state": StateClosed}, t.Add(3500*time.Millisecond))
	s.addAudit(ack)
}

func (s *scenario) rejections() {
	for i, r := range []struct{ reason, kind, topic, payload, detail string }{
		{"bad_json", "telemetry", "chargers/xintang-open/p02/telemetry", `{"v":1,"ts":`, "unexpected end of JSON input"},
		{"out_of_range", "telemetry", "chargers/chunbo-nanyuan/p01/telemetry", `{"v":1,"ts":1751310000000,"seq":7,"ports":[{"n":1,"state":"charging","a":1.2,"temp_c":900}]}`, "ports[0].temp_c: 900 is outside -40..150"},
		{"bad_id", "unknown", "chargers/bad site/p1/telemetry", `{"v":1}`, "site: \"bad site\" breaks [A-Za-z0-9_-]{1,64}"},
	} {
		s.add("rejected", map[string]string{"reason": r.reason, "kind": r.kind}, map[string]any{
			"topic": r.topic, "payload": r.payload, "size": int64(len(r.payload)), "detail": r.detail,
		}, s.now.Add(-time.Duration(40-10*i)*time.Minute))
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// lineProtocol writes the points as InfluxDB line protocol, nanosecond
// times, tags and fields sorted.
func (s *scenario) lineProtocol() []string {
	tagEsc := strings.NewReplacer(",", `\,`, "=", `\=`, " ", `\ `)
	strEsc := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	lines := make([]string, 0, len(s.points))
	for _, p := range s.points {
		var b strings.Builder
		b.WriteString(p.measurement)
		for _, k := range sortedKeys(p.tags) {
			b.WriteString("," + k + "=" + tagEsc.Replace(p.tags[k]))
		}
		for i, k := range sortedKeys(p.fields) {
			if i == 0 {
				b.WriteByte(' ')
			} else {
				b.WriteByte(',')
			}
			b.WriteString(k + "=")
			switch v := p.fields[k].(type) {
			case float64:
				b.WriteString(strconv.FormatFloat(v, 'f', -1, 64))
			case int64:
				b.WriteString(strconv.FormatInt(v, 10) + "i")
			case string:
				b.WriteString(`"` + strEsc.Replace(v) + `"`)
			case bool:
				b.WriteString(strconv.FormatBool(v))
			default:
				panic(fmt.Sprintf("field %s: unsupported type %T", k, v))
			}
		}
		b.WriteString(" " + strconv.FormatInt(p.t.UnixNano(), 10))
		lines = append(lines, b.String())
	}
	return lines
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// What the boards should show, computed from the scenario's points rather
// than written down, so the expectations follow the scenario.

// in reports whether p is in [from, to].
func in(p point, from, to time.Time) bool { return !p.t.Before(from) && !p.t.After(to) }

type portKey struct{ site, pile, port string }

// lastPortStates is each port's last state in [from, to].
func (s *scenario) lastPortStates(from, to time.Time) map[portKey]string {
	out := map[portKey]string{}
	for _, p := range s.points { // sorted by time
		if p.measurement == "port" && in(p, from, to) {
			out[portKey{p.tags["site"], p.tags["pile"], p.tags["port"]}] = p.fields["state"].(string)
		}
	}
	return out
}

// statesBySite counts the ports per site whose last state is state.
func (s *scenario) statesBySite(state string, from, to time.Time) map[string]int {
	out := map[string]int{}
	for k, st := range s.lastPortStates(from, to) {
		if st == state {
			out[k.site]++
		}
	}
	return out
}

// offlineBySite counts the piles per site whose last status is a death.
func (s *scenario) offlineBySite() map[string]int {
	last := map[[2]string]bool{}
	for _, p := range s.points {
		if p.measurement == "status" {
			last[[2]string{p.tags["site"], p.tags["pile"]}] = p.fields["online"].(bool)
		}
	}
	out := map[string]int{}
	for k, online := range last {
		if !online {
			out[k[0]]++
		}
	}
	return out
}

// hottest is the port with the highest temp_c in [from, to].
func (s *scenario) hottest(from, to time.Time) (portKey, float64) {
	var best portKey
	max := math.Inf(-1)
	for _, p := range s.points {
		if p.measurement == "port" && in(p, from, to) {
			if v := p.fields["temp_c"].(float64); v > max {
				max, best = v, portKey{p.tags["site"], p.tags["pile"], p.tags["port"]}
			}
		}
	}
	return best, max
}

// energyBySite sums the non-negative steps of each port's wh in [from, to].
func (s *scenario) energyBySite(from, to time.Time) map[string]float64 {
	prev := map[portKey]float64{}
	out := map[string]float64{}
	for _, p := range s.points {
		if p.measurement != "port" || !in(p, from, to) {
			continue
		}
		v, ok := p.fields["wh"].(float64)
		if !ok {
			continue
		}
		k := portKey{p.tags["site"], p.tags["pile"], p.tags["port"]}
		if last, seen := prev[k]; seen && v >= last {
			out[k.site] += v - last
		}
		prev[k] = v
	}
	return out
}

// count counts the points of measurement in [from, to] that match.
func (s *scenario) count(measurement string, from, to time.Time, match func(point) bool) int {
	n := 0
	for _, p := range s.points {
		if p.measurement == measurement && in(p, from, to) && (match == nil || match(p)) {
			n++
		}
	}
	return n
}

// portOrPile matches points of a pile whose port field is port or 0.
func portOrPile(site, pile string, port int) func(point) bool {
	return func(p point) bool {
		n, _ := p.fields["port"].(int64)
		return p.tags["site"] == site && p.tags["pile"] == pile && (n == int64(port) || n == 0)
	}
}
