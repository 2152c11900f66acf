package alerting

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/chargeguard/chargeguard/telemetry"
)

// The scenario format is described in testdata/README.md.

// scenarioEpoch is time 0s of every scenario.
var scenarioEpoch = time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenario files in testdata")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".test"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			r := newRunner(t, f)
			r.run(string(data))
		})
	}
}

// fataler is the part of testing.T the runner uses, so that a test can
// check that the runner itself catches wrong expectations.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// runner executes one scenario file.
type runner struct {
	t       fataler
	file    string
	line    int
	rules   Rules
	eng     *Engine
	nextID  int
	now     time.Duration
	pile    string // current pile, site/pile
	seq     map[string]uint32
	pending []Action // actions not yet matched by an expectation
	sent    []SendCommand
	lastErr error
	errSeen bool // lastErr was checked by "expect error"
	auto    bool // tick after every timed step
	started bool
}

func newRunner(t fataler, file string) *runner {
	return &runner{t: t, file: file, rules: DefaultRules(), seq: map[string]uint32{}}
}

func (r *runner) fatalf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("%s:%d: %s", r.file, r.line, fmt.Sprintf(format, args...))
}

func (r *runner) engine() *Engine {
	if r.eng == nil {
		e, err := NewEngine(r.rules, EngineOptions{NewID: func() string { r.nextID++; return "cmd-" + strconv.Itoa(r.nextID) }})
		if err != nil {
			r.fatalf("rules: %v", err)
		}
		r.eng = e
	}
	return r.eng
}

func (r *runner) run(src string) {
	for i, raw := range strings.Split(src, "\n") {
		r.line = i + 1
		line := strings.TrimSpace(raw)
		if j := strings.Index(line, "#"); j >= 0 {
			line = strings.TrimSpace(line[:j])
		}
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if f[0] == "expect" {
			r.expect(f[1:], line)
			continue
		}
		r.checkDrained()
		r.step(f, line)
	}
	r.line++
	r.checkDrained()
}

// checkDrained fails on actions (other than audits) and errors that no
// expectation accounted for.
func (r *runner) checkDrained() {
	r.t.Helper()
	for _, a := range r.pending {
		if _, ok := a.(Audit); !ok {
			r.fatalf("unexpected action before this line: %s", describe(a))
		}
	}
	if r.lastErr != nil && !r.errSeen {
		r.fatalf("unexpected error before this line: %v", r.lastErr)
	}
	r.pending, r.lastErr, r.errSeen = nil, nil, false
}

func parseAt(s string, now time.Duration) (time.Duration, error) {
	if rest, ok := strings.CutPrefix(s, "+"); ok {
		d, err := time.ParseDuration(rest)
		return now + d, err
	}
	return time.ParseDuration(s)
}

func (r *runner) step(f []string, line string) {
	switch f[0] {
	case "rules":
		if r.started {
			r.fatalf("rules must come before the first step (use reload)")
		}
		r.rules = r.parseRules(strings.TrimSpace(strings.TrimPrefix(line, "rules")))
		return
	case "autotick":
		r.auto = len(f) > 1 && f[1] == "on"
		return
	case "pile":
		// pile s/p ...: a birth now, and the current pile from here on.
		r.started = true
		r.pile = f[1]
		r.observe(r.now, append([]string{"birth"}, f[1:]...))
		return
	}
	r.started = true
	if f[0] != "at" {
		r.do(r.now, f, line)
		return
	}
	if len(f) < 3 {
		r.fatalf("want: at TIME STEP")
	}
	at, err := parseAt(f[1], r.now)
	if err != nil {
		r.fatalf("bad time %q: %v", f[1], err)
	}
	if len(f) >= 6 && f[2] == "every" {
		// at T every D until T2 STEP...
		every, err1 := time.ParseDuration(f[3])
		until, err2 := parseAt(f[5], at)
		if err1 != nil || err2 != nil || f[4] != "until" || every <= 0 {
			r.fatalf("want: at TIME every DURATION until TIME STEP")
		}
		for ts := at; ts <= until; ts += every {
			r.do(ts, f[6:], line)
		}
		return
	}
	r.do(at, f[2:], line)
}

// do runs one step at time at.
func (r *runner) do(at time.Duration, f []string, line string) {
	if at < r.now {
		r.fatalf("time goes backwards: %s after %s", at, r.now)
	}
	r.now = at
	now := scenarioEpoch.Add(at)
	e := r.engine()
	switch f[0] {
	case "tick":
		r.add(e.Tick(now))
		return
	case "reconnect":
		// Our command session (re)connected to the broker.
		r.add(e.Reconnected(now))
		return
	case "raw":
		// raw [s/p] KIND JSON: a payload as a pile sent it, through the
		// real decoder, as the service's live session hands it over.
		r.raw(now, f, line)
		return
	case "reset":
		// reset [s/p] port N by OP
		pile, rest := r.pileArg(f[1:])
		kv := r.kv(rest, "port", "by")
		site, id, _ := strings.Cut(pile, "/")
		acts, err := e.Reset(now, site, id, r.atoi(kv["port"]), kv["by"])
		r.add(acts)
		r.lastErr, r.errSeen = err, false
		return
	case "reset-anonymous":
		pile, rest := r.pileArg(f[1:])
		kv := r.kv(rest, "port")
		site, id, _ := strings.Cut(pile, "/")
		acts, err := e.Reset(now, site, id, r.atoi(kv["port"]), "")
		r.add(acts)
		r.lastErr, r.errSeen = err, false
		return
	case "ackalert":
		// ackalert KEY by OP
		kv := r.kv(f[2:], "by")
		acts, err := e.Ack(now, f[1], kv["by"])
		r.add(acts)
		r.lastErr, r.errSeen = err, false
		return
	case "reload":
		i := strings.Index(line, "reload")
		cfg := r.parseRules(strings.TrimSpace(line[i+len("reload"):]))
		if err := e.Reload(cfg); err != nil {
			r.fatalf("reload: %v", err)
		}
		return
	case "reload-invalid":
		i := strings.Index(line, "reload-invalid")
		var cfg Rules
		src := strings.TrimSpace(line[i+len("reload-invalid"):])
		cfg = DefaultRules()
		if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
			r.fatalf("reload-invalid: %v", err)
		}
		r.lastErr, r.errSeen = e.Reload(cfg), false
		return
	case "restart":
		// Persist the state as the service would, and start over.
		data, err := json.Marshal(e.Snapshot())
		if err != nil {
			r.fatalf("snapshot: %v", err)
		}
		var s State
		if err := json.Unmarshal(data, &s); err != nil {
			r.fatalf("snapshot round trip: %v", err)
		}
		r.eng = nil
		if err := r.engine().Restore(s); err != nil {
			r.fatalf("restore: %v\n%s", err, data)
		}
		return
	}
	r.observe(at, f)
}

// raw decodes a payload with telemetry.Decode and feeds what the live
// session would: a valid message, or a rejected one that still carries a
// payload (contract v1.1 partial telemetry) or an unknown version.
func (r *runner) raw(now time.Time, f []string, line string) {
	pile, rest := r.pileArg(f[1:])
	if len(rest) < 2 {
		r.fatalf("want: raw [site/pile] KIND JSON")
	}
	site, id, _ := strings.Cut(pile, "/")
	retained := rest[0] == "retained"
	if retained {
		rest = rest[1:]
	}
	kind := map[string]telemetry.Kind{"status": telemetry.KindStatus, "telemetry": telemetry.KindTelemetry, "event": telemetry.KindEvent, "ack": telemetry.KindAck}[rest[0]]
	if kind == telemetry.KindUnknown {
		r.fatalf("raw: unknown kind %q", rest[0])
	}
	payload := strings.TrimSpace(line[strings.Index(line, " "+rest[0]+" ")+len(rest[0])+1:])
	m, err := telemetry.Decode(telemetry.Topic{Root: telemetry.DefaultRoot, Site: site, Pile: id, Kind: kind}, []byte(payload), now)
	if err != nil && m.Invalid == nil {
		return // dropped by the live session, as the service does
	}
	m.Retained = retained
	if m.Telemetry != nil && m.Damage == nil || (m.Damage != nil && !m.Damage.NoSeq) {
		r.seq[pile] = m.Telemetry.Seq
	}
	r.add(r.engine().Observe(now, m))
	if r.auto {
		r.add(r.engine().Tick(now))
	}
}

func (r *runner) parseRules(src string) Rules {
	cfg, err := ParseRules([]byte(src))
	if err != nil {
		r.fatalf("rules: %v", err)
	}
	return cfg
}

func (r *runner) add(acts []Action) {
	for _, a := range acts {
		if c, ok := a.(SendCommand); ok {
			r.sent = append(r.sent, c)
		}
	}
	r.pending = append(r.pending, acts...)
}

// pileArg takes an optional site/pile first argument.
func (r *runner) pileArg(f []string) (string, []string) {
	if len(f) > 0 && strings.Contains(f[0], "/") {
		return f[0], f[1:]
	}
	if r.pile == "" {
		r.fatalf("no pile: declare one with `pile site/pile` or name it")
	}
	return r.pile, f
}

// kv reads "key value" pairs, allowing only the given keys.
func (r *runner) kv(f []string, keys ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i < len(f); i++ {
		if !slices.Contains(keys, f[i]) {
			r.fatalf("unexpected %q (want one of %v)", f[i], keys)
		}
		if i+1 >= len(f) {
			r.fatalf("%s needs a value", f[i])
		}
		m[f[i]] = f[i+1]
		i++
	}
	return m
}

func (r *runner) atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		r.fatalf("bad number %q", s)
	}
	return n
}

func (r *runner) atof(s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		r.fatalf("bad number %q", s)
	}
	return v
}

// observe builds a message from a step and feeds it to the engine.
func (r *runner) observe(at time.Duration, f []string) {
	now := scenarioEpoch.Add(at)
	pile, rest := r.pileArg(f[1:])
	site, id, _ := strings.Cut(pile, "/")
	kind := map[string]telemetry.Kind{"birth": telemetry.KindStatus, "death": telemetry.KindStatus, "telemetry": telemetry.KindTelemetry, "event": telemetry.KindEvent, "ack": telemetry.KindAck}[f[0]]
	if kind == telemetry.KindUnknown {
		r.fatalf("unknown step %q", f[0])
	}
	// Hostile ids reach the engine too: build the topic by hand.
	m := telemetry.Message{Topic: telemetry.Topic{Root: telemetry.DefaultRoot, Site: site, Pile: id, Kind: kind}, Received: now}
	tsOf := func(s string) int64 {
		d, err := parseAt(s, at)
		if err != nil {
			r.fatalf("bad ts %q", s)
		}
		return scenarioEpoch.Add(d).UnixMilli()
	}
	switch f[0] {
	case "birth":
		if len(rest) > 0 && rest[len(rest)-1] == "retained" {
			// The broker's retained copy, re-delivered on a new
			// subscription.
			rest, m.Retained = rest[:len(rest)-1], true
		}
		kv := r.kv(rest, "kind", "ports", "rated")
		s := &telemetry.Status{V: 1, TS: now.UnixMilli(), Online: true, Kind: telemetry.SiteKind(kv["kind"]), FW: "test"}
		if v, ok := kv["ports"]; ok {
			s.Ports = r.atoi(v)
		}
		if v, ok := kv["rated"]; ok {
			s.RatedA = r.atof(v)
		}
		m.Status = s
	case "death":
		r.kv(rest)
		m.Status = &telemetry.Status{V: 1, Online: false}
	case "event":
		if len(rest) == 0 {
			r.fatalf("event needs a kind")
		}
		kv := r.kv(rest[1:], "port", "ts", "detail")
		ev := &telemetry.Event{V: 1, TS: now.UnixMilli(), Kind: telemetry.EventKind(rest[0]), Detail: kv["detail"]}
		if v, ok := kv["port"]; ok {
			ev.Port = r.atoi(v)
		}
		if v, ok := kv["ts"]; ok {
			ev.TS = tsOf(v)
		}
		m.Event = ev
	case "ack":
		// ack [s/p] port N ok|fail [STATE] [id ID] [ts T]
		if len(rest) < 3 || rest[0] != "port" {
			r.fatalf("want: ack [site/pile] port N ok|fail [state] [id ID] [ts T]")
		}
		port := r.atoi(rest[1])
		ok := rest[2] == "ok"
		if !ok && rest[2] != "fail" {
			r.fatalf("want ok or fail, got %q", rest[2])
		}
		rest = rest[3:]
		var state telemetry.PortState
		if len(rest) > 0 && rest[0] != "id" && rest[0] != "ts" {
			state, rest = telemetry.PortState(rest[0]), rest[1:]
		}
		kv := r.kv(rest, "id", "ts")
		cmdID := kv["id"]
		if cmdID == "" {
			c := r.lastSent(pile, port)
			if c == nil {
				r.fatalf("no command was sent to %s port %d", pile, port)
			}
			cmdID = c.Cmd.ID
		}
		a := &telemetry.Ack{V: 1, ID: cmdID, TS: now.UnixMilli(), Port: port, OK: ok, State: state}
		if !ok {
			a.Err = "relay fault"
		}
		if v, ok := kv["ts"]; ok {
			a.TS = tsOf(v)
		}
		m.Ack = a
	case "telemetry":
		m.Telemetry, m.Invalid = r.telemetry(pile, rest, at, tsOf)
	}
	r.add(r.engine().Observe(now, m))
	if r.auto {
		r.add(r.engine().Tick(now))
	}
}

func (r *runner) lastSent(pile string, port int) *SendCommand {
	for i := len(r.sent) - 1; i >= 0; i-- {
		c := &r.sent[i]
		if c.Topic.Site+"/"+c.Topic.Pile == pile && c.Cmd.Port == port {
			return c
		}
	}
	return nil
}

// telemetry parses: seq N|next [ts T] [ambient X] [smoke B] [leak X]
// (port N STATE [a X] [v X] [w X] [wh X] [temp X|missing])...
func (r *runner) telemetry(pile string, f []string, at time.Duration, tsOf func(string) int64) (*telemetry.Telemetry, *telemetry.RejectError) {
	tel := &telemetry.Telemetry{V: 1, TS: scenarioEpoch.Add(at).UnixMilli()}
	var invalid *telemetry.RejectError
	i := 0
	val := func() string {
		if i+1 >= len(f) {
			r.fatalf("%s needs a value", f[i])
		}
		i++
		return f[i]
	}
	var cur *telemetry.PortSample
	haveSeq := false
	for ; i < len(f); i++ {
		key := f[i]
		if key == "port" {
			n := r.atoi(val())
			st := val()
			tel.Ports = append(tel.Ports, telemetry.PortSample{N: n, State: telemetry.PortState(st)})
			cur = &tel.Ports[len(tel.Ports)-1]
			continue
		}
		if cur == nil {
			switch key {
			case "seq":
				v := val()
				if v == "next" {
					tel.Seq = r.seq[pile] + 1
				} else {
					n, err := strconv.ParseUint(v, 10, 32)
					if err != nil {
						r.fatalf("bad seq %q", v)
					}
					tel.Seq = uint32(n)
				}
				haveSeq = true
			case "ts":
				tel.TS = tsOf(val())
			case "tsms":
				// A raw ts, for clocks in the wrong unit.
				n, err := strconv.ParseInt(val(), 10, 64)
				if err != nil {
					r.fatalf("bad tsms %q", f[i])
				}
				tel.TS = n
			case "ambient":
				tel.AmbientC = telemetry.F(r.atof(val()))
			case "smoke":
				tel.Smoke = telemetry.B(val() == "true")
			case "leak":
				tel.LeakMA = telemetry.F(r.atof(val()))
			default:
				r.fatalf("unknown telemetry field %q", key)
			}
			continue
		}
		switch key {
		case "a":
			cur.A = telemetry.F(r.atof(val()))
		case "v":
			cur.V = telemetry.F(r.atof(val()))
		case "w":
			cur.W = telemetry.F(r.atof(val()))
		case "wh":
			cur.WH = telemetry.F(r.atof(val()))
		case "temp":
			if v := val(); v != "missing" {
				cur.TempC = telemetry.F(r.atof(v))
			}
		default:
			r.fatalf("unknown port field %q", key)
		}
	}
	if !haveSeq {
		r.fatalf("telemetry needs seq")
	}
	r.seq[pile] = tel.Seq
	// What the decoder does: a charging port without temp_c or a is
	// rejected for storage but handed to the engine, marked Invalid.
	for j, p := range tel.Ports {
		if p.State == telemetry.StateCharging && invalid == nil {
			if p.TempC == nil {
				invalid = &telemetry.RejectError{Reason: telemetry.ReasonMissingField, Field: fmt.Sprintf("ports[%d].temp_c", j), Detail: "required while charging"}
			} else if p.A == nil {
				invalid = &telemetry.RejectError{Reason: telemetry.ReasonMissingField, Field: fmt.Sprintf("ports[%d].a", j), Detail: "required while charging"}
			}
		}
	}
	return tel, invalid
}

func describe(a Action) string {
	switch v := a.(type) {
	case SendCommand:
		return fmt.Sprintf("%s %s/%s port %d reason %s attempt %d id %s (topic %s)", v.Cmd.Action, v.Topic.Site, v.Topic.Pile, v.Cmd.Port, v.Cmd.Reason, v.Attempt, v.Cmd.ID, v.Topic)
	case AlertFired:
		return fmt.Sprintf("alert %s %s/%s port %d %s firing (%s)", v.Alert.Name, v.Alert.Site, v.Alert.Pile, v.Alert.Port, v.Alert.Severity, v.Alert.Summary)
	case AlertResolved:
		return fmt.Sprintf("alert %s %s/%s port %d %s resolved", v.Alert.Name, v.Alert.Site, v.Alert.Pile, v.Alert.Port, v.Alert.Severity)
	case Info:
		return fmt.Sprintf("info %s %s/%s port %d", v.Kind, v.Site, v.Pile, v.Port)
	case Audit:
		return fmt.Sprintf("audit %s %s/%s port %d by %s (%s)", v.Record.Kind, v.Record.Site, v.Record.Pile, v.Record.Port, v.Record.Actor, v.Record.Detail)
	}
	return fmt.Sprintf("%#v", a)
}

func (r *runner) describePending() string {
	var b strings.Builder
	for _, a := range r.pending {
		b.WriteString("\n\t" + describe(a))
	}
	if b.Len() == 0 {
		return " (none)"
	}
	return b.String()
}

// expect checks one expectation against the pending actions.
func (r *runner) expect(f []string, line string) {
	if len(f) == 0 {
		r.fatalf("empty expect")
	}
	switch f[0] {
	case "nothing":
		for _, a := range r.pending {
			if _, ok := a.(Audit); !ok {
				r.fatalf("expected nothing, got: %s", describe(a))
			}
		}
		return
	case "error":
		if len(f) != 2 {
			r.fatalf("want: expect error REASON")
		}
		if r.lastErr == nil {
			r.fatalf("expected error %s, got none", f[1])
		}
		if got := ErrorReason(r.lastErr); got != f[1] {
			r.fatalf("expected error %s, got %s (%v)", f[1], got, r.lastErr)
		}
		r.errSeen = true
		return
	case "port":
		r.expectPort(f[1:])
		return
	case "active":
		n := r.atoi(f[1])
		if got := len(r.engine().Alerts(true)); got != n {
			r.fatalf("expected %d active alerts, got %d: %v", n, got, r.engine().Alerts(true))
		}
		return
	case "stats":
		// expect stats duplicates N late N stale N restarts N
		kv := r.kv(f[1:], "duplicates", "late", "stale", "restarts", "bad_id", "unplaced", "partial", "clock_distrust")
		s := r.engine().Stats()
		got := map[string]uint64{"duplicates": s.Duplicates, "late": s.Late, "stale": s.Stale, "restarts": s.Restarts, "bad_id": s.BadID,
			"unplaced": s.Unplaced, "partial": s.Partial, "clock_distrust": s.ClockDistrust}
		for k, v := range kv {
			if strconv.FormatUint(got[k], 10) != v {
				r.fatalf("stats %s: got %d, want %s", k, got[k], v)
			}
		}
		return
	}
	match := r.matcher(f)
	for i, a := range r.pending {
		if match(a) {
			r.pending = append(r.pending[:i], r.pending[i+1:]...)
			return
		}
	}
	r.fatalf("no action matches %q; pending:%s", line, r.describePending())
}

// matcher compiles an action expectation.
func (r *runner) matcher(f []string) func(Action) bool {
	what := f[0]
	rest := f[1:]
	var name string
	if what == "alert" || what == "info" || what == "audit" {
		if len(rest) == 0 {
			r.fatalf("expect %s needs a name", what)
		}
		name, rest = rest[0], rest[1:]
	}
	pile, rest := r.pileArg(rest)
	site, id, _ := strings.Cut(pile, "/")
	port := -1
	var state, severity, reason, by, idMode string
	attempt := 0
	for i := 0; i < len(rest); i++ {
		next := func() string {
			if i+1 >= len(rest) {
				r.fatalf("%s needs a value", rest[i])
			}
			i++
			return rest[i]
		}
		switch w := rest[i]; w {
		case "port":
			port = r.atoi(next())
		case "reason":
			reason = next()
		case "attempt":
			attempt = r.atoi(next())
		case "id":
			idMode = next()
		case "by":
			by = next()
		case "firing", "resolved":
			state = w
		case "critical", "warning", "info":
			severity = w
		default:
			r.fatalf("unexpected %q in expectation", w)
		}
	}
	if (what == "close" || what == "open") && port < 0 {
		r.fatalf("expect %s needs a port", what)
	}
	if what == "alert" && state == "" {
		r.fatalf("expect alert needs firing or resolved")
	}
	samePile := func(s, p string) bool { return s == site && p == id }
	switch what {
	case "close", "open":
		return func(a Action) bool {
			c, ok := a.(SendCommand)
			if !ok || string(c.Cmd.Action) != what || !samePile(c.Topic.Site, c.Topic.Pile) || c.Cmd.Port != port {
				return false
			}
			if c.Topic.String() != telemetry.DefaultRoot+"/"+pile+"/cmd" || c.Cmd.V != 1 || c.Cmd.ID == "" {
				r.fatalf("malformed command: %s", describe(c))
			}
			if (reason != "" && c.Cmd.Reason != reason) || (attempt != 0 && c.Attempt != attempt) {
				return false
			}
			return r.checkID(c, idMode)
		}
	case "alert":
		return func(a Action) bool {
			var al Alert
			switch v := a.(type) {
			case AlertFired:
				al = v.Alert
				if state != "firing" || !al.EndsAt.IsZero() {
					return false
				}
			case AlertResolved:
				al = v.Alert
				if state != "resolved" || al.EndsAt.IsZero() {
					return false
				}
			default:
				return false
			}
			return al.Name.String() == name && samePile(al.Site, al.Pile) &&
				(port < 0 || al.Port == port) && (severity == "" || string(al.Severity) == severity)
		}
	case "info":
		return func(a Action) bool {
			v, ok := a.(Info)
			return ok && v.Kind == name && samePile(v.Site, v.Pile) && (port < 0 || v.Port == port)
		}
	case "audit":
		return func(a Action) bool {
			v, ok := a.(Audit)
			return ok && string(v.Record.Kind) == name && samePile(v.Record.Site, v.Record.Pile) &&
				(port < 0 || v.Record.Port == port) && (by == "" || v.Record.Actor == by) &&
				(attempt == 0 || v.Record.Attempt == attempt) && (reason == "" || v.Record.Reason == reason)
		}
	}
	r.fatalf("unknown expectation %q", what)
	return nil
}

// checkID applies "id same" (the id of the previous command to that port),
// "id new" (an id never sent before) or "id ID".
func (r *runner) checkID(c SendCommand, mode string) bool {
	if mode == "" {
		return true
	}
	var earlier []string
	for _, s := range r.sent {
		if s.Cmd.ID == c.Cmd.ID && s.Attempt == c.Attempt {
			break
		}
		if s.Topic == c.Topic && s.Cmd.Port == c.Cmd.Port {
			earlier = append(earlier, s.Cmd.ID)
		}
	}
	switch mode {
	case "same":
		return len(earlier) > 0 && earlier[len(earlier)-1] == c.Cmd.ID
	case "new":
		return !slices.Contains(earlier, c.Cmd.ID)
	}
	return c.Cmd.ID == mode
}

// expectPort checks the operator view of a port:
// expect port [s/p] N CONTROL [reason R]
func (r *runner) expectPort(f []string) {
	pile, f := r.pileArg(f)
	if len(f) < 2 {
		r.fatalf("want: expect port [site/pile] N CONTROL [reason R]")
	}
	n := r.atoi(f[0])
	control := f[1]
	kv := r.kv(f[2:], "reason")
	site, id, _ := strings.Cut(pile, "/")
	for _, v := range r.engine().Ports(PortFilter{Site: site, Pile: id}) {
		if v.Port != n {
			continue
		}
		if v.Control != control {
			r.fatalf("port %s %d: control %s, want %s (%+v)", pile, n, v.Control, control, v)
		}
		if want, ok := kv["reason"]; ok {
			all := append(append([]string{v.CloseReason}, v.LatchReasons...), v.PileLatchReasons...)
			if !slices.Contains(all, want) {
				r.fatalf("port %s %d: reasons %v, want %s", pile, n, all, want)
			}
		}
		return
	}
	r.fatalf("port %s %d unknown to the engine", pile, n)
}
