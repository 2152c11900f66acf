package simulators

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/chargeguard/chargeguard/telemetry"
)

// Scenario is a scenario file: a fleet or part of one, a start in the
// year and the day, a speed, faults at times, and what the piles must have
// received by the end.
//
// Times in Faults are simulated. "within" in a close expectation is on the
// wall clock: it is how long the backend may take after the pile sent the
// message that completed the evidence (see Met), so it stays meaningful
// whatever the speed.
type Scenario struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`
	// Policy names the safety policy row the scenario covers, or
	// "healthy".
	Policy string `yaml:"policy,omitempty"`
	// Fleet is a fleet file, relative to the scenario file; Filter picks
	// part of it. Sites, instead, lists the sites inline.
	Fleet  string      `yaml:"fleet,omitempty"`
	Filter FleetFilter `yaml:"filter,omitempty"`
	Sites  []Site      `yaml:"sites,omitempty"`
	Root   string      `yaml:"root,omitempty"`
	Seed   uint64      `yaml:"seed,omitempty"`
	Start  time.Time   `yaml:"start"`
	Speed  float64     `yaml:"speed,omitempty"`
	// SpeedNote says why the scenario may (or may not) run faster than
	// real time.
	SpeedNote string        `yaml:"speed_note,omitempty"`
	Duration  Duration      `yaml:"duration"`
	Interval  Duration      `yaml:"interval,omitempty"`
	Weather   Weather       `yaml:"weather,omitempty"`
	Faults    []Fault       `yaml:"faults,omitempty"`
	Expect    []Expectation `yaml:"expect"`

	fleet *Fleet
	path  string
}

// FleetFilter picks part of a fleet file; see Fleet.Filter.
type FleetFilter struct {
	Sites    []string `yaml:"sites,omitempty"`
	Piles    []string `yaml:"piles,omitempty"`
	MaxPiles int      `yaml:"max_piles,omitempty"`
}

// Expectation is one check at the end of a scenario; exactly one field is
// set.
type Expectation struct {
	// Close: the target port (0: the whole pile) gets a close command
	// within Within (wall clock) of the message that completed the
	// evidence for Reason, with that reason.
	Close *CloseExpectation `yaml:"close,omitempty"`
	// NoClose: no close command for Target (empty: anywhere) in the run.
	NoClose *TargetExpectation `yaml:"no_close,omitempty"`
	// NoOtherClose: no close command other than those a Close expectation
	// of the scenario matches.
	NoOtherClose *Empty `yaml:"no_other_close,omitempty"`
	// NoOpen: never an open command.
	NoOpen *Empty `yaml:"no_open,omitempty"`
	// PortClosedAtEnd: the target port's relay is open (by order) at the
	// end; port 0 means every port.
	PortClosedAtEnd *TargetExpectation `yaml:"port_closed_at_end,omitempty"`
	// OfflineSeen: a subscriber saw the target pile's death (its last
	// will) while the run was going on.
	OfflineSeen *TargetExpectation `yaml:"offline_seen,omitempty"`
}

// Empty is the value of an expectation that takes no argument ("{}").
type Empty struct{}

// CloseExpectation is the argument of a close expectation.
type CloseExpectation struct {
	Target string   `yaml:"target"`
	Reason string   `yaml:"reason,omitempty"`
	Within Duration `yaml:"within,omitempty"` // default 2 s
	// MinDeliveries, when > 0, requires the command's id to have been
	// delivered at least this often (the first send and its resends).
	MinDeliveries int `yaml:"min_deliveries,omitempty"`
}

// TargetExpectation is the argument of a target-only expectation.
type TargetExpectation struct {
	Target string `yaml:"target,omitempty"`
}

// LoadScenario reads, validates and resolves a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return ParseScenario(data, path)
}

// ParseScenario parses a scenario; path locates its fleet file and names
// it in errors.
func ParseScenario(data []byte, path string) (*Scenario, error) {
	var sc Scenario
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	sc.path = path
	if err := sc.resolve(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	return &sc, nil
}

func (sc *Scenario) resolve() error {
	if sc.Name == "" {
		return errors.New("name: missing")
	}
	switch {
	case sc.Fleet != "" && len(sc.Sites) > 0:
		return errors.New("fleet and sites: set one, not both")
	case sc.Fleet != "":
		p := sc.Fleet
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(sc.path), p)
		}
		f, err := LoadFleet(p)
		if err != nil {
			return fmt.Errorf("fleet: %w", err)
		}
		sc.fleet = f.Filter(sc.Filter.Sites, sc.Filter.Piles, sc.Filter.MaxPiles)
		if len(sc.fleet.Sites) == 0 {
			return errors.New("filter: matches no pile")
		}
	case len(sc.Sites) > 0:
		sc.fleet = &Fleet{Name: sc.Name, Sites: sc.Sites}
	default:
		return errors.New("fleet or sites: missing")
	}
	if err := sc.fleet.Validate(); err != nil {
		return fmt.Errorf("sites: %w", err)
	}
	if sc.Start.IsZero() {
		return errors.New("start: missing (the model time: season and time of day)")
	}
	if sc.Duration <= 0 {
		return errors.New("duration: missing")
	}
	if sc.Speed < 0 {
		return errors.New("speed: negative")
	}
	keys := map[string]int{}
	for _, p := range sc.fleet.Piles() {
		keys[p.Key()] = p.Ports
	}
	target := func(field, s string, portOK bool) error {
		t, err := ParseTarget(s)
		if err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		ports, ok := keys[t.Key()]
		if !ok {
			return fmt.Errorf("%s: no pile %s in the scenario's fleet", field, t.Key())
		}
		if t.Port > ports || (!portOK && t.Port != 0) {
			return fmt.Errorf("%s: bad port %d", field, t.Port)
		}
		return nil
	}
	for i := range sc.Faults {
		if err := sc.Faults[i].Validate(); err != nil {
			return fmt.Errorf("faults[%d]: %w", i, err)
		}
		if err := target(fmt.Sprintf("faults[%d].target", i), sc.Faults[i].Target, true); err != nil {
			return err
		}
	}
	if len(sc.Expect) == 0 {
		return errors.New("expect: no expectation")
	}
	for i, e := range sc.Expect {
		field := fmt.Sprintf("expect[%d]", i)
		n := 0
		for _, set := range []bool{e.Close != nil, e.NoClose != nil, e.NoOtherClose != nil, e.NoOpen != nil, e.PortClosedAtEnd != nil, e.OfflineSeen != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%s: set exactly one of close, no_close, no_other_close, no_open, port_closed_at_end, offline_seen", field)
		}
		switch {
		case e.Close != nil:
			if err := target(field+".close.target", e.Close.Target, true); err != nil {
				return err
			}
		case e.NoClose != nil && e.NoClose.Target != "":
			if err := target(field+".no_close.target", e.NoClose.Target, true); err != nil {
				return err
			}
		case e.PortClosedAtEnd != nil:
			if err := target(field+".port_closed_at_end.target", e.PortClosedAtEnd.Target, true); err != nil {
				return err
			}
		case e.OfflineSeen != nil:
			if err := target(field+".offline_seen.target", e.OfflineSeen.Target, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// FleetOf returns the scenario's (filtered) fleet.
func (sc *Scenario) FleetOf() *Fleet { return sc.fleet }

// Options returns the runner options of the scenario against broker.
func (sc *Scenario) Options(broker string, logger zerolog.Logger) Options {
	return Options{
		Broker: broker, Root: sc.Root, Fleet: sc.fleet, Seed: sc.Seed, Speed: sc.Speed,
		Start: sc.Start, Interval: time.Duration(sc.Interval), Faults: sc.Faults, Weather: sc.Weather,
		Duration: time.Duration(sc.Duration), Logger: logger,
		ClientPrefix: "pilesim-" + sc.Name + "-" + uuid.NewString()[:8],
	}
}

// Result is the outcome of a scenario run.
type Result struct {
	Name     string
	Failures []string // one line per failed expectation
	Commands []CommandRecord
	Mets     []Met
	Stats    Stats
	Wall     time.Duration
	// Ended is the wall time the simulation stopped, before the piles
	// published their deaths on the clean stop: anything a backend did
	// before it was caused by the scenario, not by the end of the run.
	Ended time.Time
}

// Passed reports whether every expectation held.
func (r Result) Passed() bool { return len(r.Failures) == 0 }

func (r Result) String() string {
	if r.Passed() {
		return fmt.Sprintf("PASS %s (%v, %d commands)", r.Name, r.Wall.Round(time.Millisecond), len(r.Commands))
	}
	return fmt.Sprintf("FAIL %s (%v):\n  %s", r.Name, r.Wall.Round(time.Millisecond), strings.Join(r.Failures, "\n  "))
}

// RunScenario runs sc against the broker at brokerURL and checks its
// expectations. The error is for a run that could not happen (bad options,
// no broker); failed expectations are in Result.Failures.
func RunScenario(ctx context.Context, sc *Scenario, brokerURL string, logger zerolog.Logger) (Result, error) {
	return runScenario(ctx, sc, brokerURL, logger, nil)
}

// HoldScenario is RunScenario for a demonstration: once the scenario's
// duration has passed it checks the expectations and hands the result to
// report, then keeps its piles online (reporting, obeying commands) as
// real piles would, until ctx is done. Their deaths come only then, so the
// end of the scenario does not look like piles going offline.
func HoldScenario(ctx context.Context, sc *Scenario, brokerURL string, logger zerolog.Logger, report func(Result)) error {
	var reported atomic.Bool
	_, err := runScenario(ctx, sc, brokerURL, logger, func(res Result) {
		reported.Store(true)
		report(res)
	})
	if err == nil && !reported.Load() {
		err = fmt.Errorf("scenario %s: stopped before its end: %w", sc.Name, context.Cause(ctx))
	}
	return err
}

func runScenario(ctx context.Context, sc *Scenario, brokerURL string, logger zerolog.Logger, report func(Result)) (Result, error) {
	res := Result{Name: sc.Name}
	o := sc.Options(brokerURL, logger)
	var r *Runner
	var obs *statusObserver
	start := time.Now()
	result := func() Result {
		res.Wall = time.Since(start)
		res.Ended = r.loopEnd()
		res.Commands = r.Commands()
		res.Mets = r.Mets()
		res.Stats = r.Stats()
		if res.Stats.PublishErrors > 0 {
			res.Failures = append(res.Failures, fmt.Sprintf("the piles had %d publish errors", res.Stats.PublishErrors))
		}
		res.Failures = append(res.Failures, sc.check(r, res.Commands, res.Mets, obs)...)
		return res
	}
	if report != nil {
		o.AtEnd = func() { report(result()) }
	}
	r, err := New(o)
	if err != nil {
		return res, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	root := r.o.Root

	// A subscriber that watches the status topics, for offline_seen.
	for _, e := range sc.Expect {
		if e.OfflineSeen != nil && obs == nil {
			obs, err = observeStatus(ctx, brokerURL, root, o.ClientPrefix+"-observer")
			if err != nil {
				return res, fmt.Errorf("scenario %s: %w", sc.Name, err)
			}
			defer obs.close()
		}
	}

	start = time.Now()
	if err := r.Run(ctx); err != nil {
		return res, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	if report != nil {
		return res, nil // held until ctx was done: that is the normal end
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("scenario %s: %w", sc.Name, ctx.Err())
	}
	return result(), nil
}

// check evaluates the expectations on what the piles received.
func (sc *Scenario) check(r *Runner, cmds []CommandRecord, mets []Met, obs *statusObserver) []string {
	var fails []string
	var first []CommandRecord // first deliveries of close commands
	for _, c := range cmds {
		if c.Delivery == 1 && c.Action == telemetry.ActionClose {
			first = append(first, c)
		}
	}
	describe := func(c CommandRecord) string {
		return fmt.Sprintf("close %s port %d reason %q at %s", c.Pile, c.Port, c.Reason, c.Model.In(Hangzhou).Format("15:04:05.000"))
	}
	matches := func(ce *CloseExpectation, c CommandRecord) bool {
		t, _ := ParseTarget(ce.Target)
		return c.Pile == t.Key() && c.Port == t.Port && (ce.Reason == "" || c.Reason == ce.Reason)
	}
	for _, e := range sc.Expect {
		switch {
		case e.Close != nil:
			ce := e.Close
			t, _ := ParseTarget(ce.Target)
			within := time.Duration(ce.Within)
			if within <= 0 {
				within = 2 * time.Second
			}
			name := fmt.Sprintf("close %s", ce.Target)
			if ce.Reason != "" {
				name += fmt.Sprintf(" (%s)", ce.Reason)
			}
			var ref *Met
			if ce.Reason != "" {
				for i := range mets {
					m := &mets[i]
					if m.Pile == t.Key() && string(m.Cond) == ce.Reason && (t.Port == 0 || m.Port == t.Port) {
						ref = m
						break
					}
				}
				if ref == nil && isCondition(ce.Reason) {
					fails = append(fails, fmt.Sprintf("%s: the piles never sent the evidence for %s (the fault did not take effect?)", name, ce.Reason))
					continue
				}
			}
			var got *CommandRecord
			for i := range first {
				if matches(ce, first[i]) {
					got = &first[i]
					break
				}
			}
			if got == nil {
				var seen []string
				for _, c := range first {
					seen = append(seen, describe(c))
				}
				if len(seen) == 0 {
					seen = []string{"none"}
				}
				fails = append(fails, fmt.Sprintf("%s: no such close command was received; close commands seen: %s", name, strings.Join(seen, "; ")))
				continue
			}
			if ref != nil {
				if d := got.Wall.Sub(ref.Wall); d > within {
					fails = append(fails, fmt.Sprintf("%s: closed %v after the evidence was complete (at %s); want within %v",
						name, d.Round(time.Millisecond), ref.Model.In(Hangzhou).Format("15:04:05"), within))
				}
			}
			if ce.MinDeliveries > 0 {
				n := 0
				for _, c := range cmds {
					if c.ID == got.ID && c.Pile == got.Pile {
						n = max(n, c.Delivery)
					}
				}
				if n < ce.MinDeliveries {
					fails = append(fails, fmt.Sprintf("%s: command %s delivered %d times; want at least %d (resends with the same id)", name, got.ID, n, ce.MinDeliveries))
				}
			}
		case e.NoClose != nil:
			for _, c := range first {
				if e.NoClose.Target == "" || targetCovers(e.NoClose.Target, c.Pile, c.Port) {
					fails = append(fails, fmt.Sprintf("no_close %s: got %s", orAnywhere(e.NoClose.Target), describe(c)))
				}
			}
		case e.NoOtherClose != nil:
			for _, c := range first {
				ok := false
				for _, o := range sc.Expect {
					if o.Close != nil && matches(o.Close, c) {
						ok = true
					}
				}
				if !ok {
					fails = append(fails, fmt.Sprintf("no_other_close: unexpected %s", describe(c)))
				}
			}
		case e.NoOpen != nil:
			for _, c := range cmds {
				if c.Action == telemetry.ActionOpen {
					fails = append(fails, fmt.Sprintf("no_open: got open %s port %d (id %s)", c.Pile, c.Port, c.ID))
				}
			}
		case e.PortClosedAtEnd != nil:
			t, _ := ParseTarget(e.PortClosedAtEnd.Target)
			ports := []int{t.Port}
			if t.Port == 0 {
				ports = nil
				for _, p := range sc.fleet.Piles() {
					if p.Key() == t.Key() {
						for n := 1; n <= p.Ports; n++ {
							ports = append(ports, n)
						}
					}
				}
			}
			for _, n := range ports {
				if st := r.PortState(t.Key(), n); st != telemetry.StateClosed {
					fails = append(fails, fmt.Sprintf("port_closed_at_end %s: port %d is %s", e.PortClosedAtEnd.Target, n, st))
				}
			}
		case e.OfflineSeen != nil:
			if obs == nil || !obs.sawDeath(e.OfflineSeen.Target, r.loopEnd()) {
				fails = append(fails, fmt.Sprintf("offline_seen %s: no death (last will) seen while the run was going on", e.OfflineSeen.Target))
			}
		}
	}
	return fails
}

func isCondition(s string) bool {
	for _, c := range Conditions {
		if string(c) == s {
			return true
		}
	}
	return false
}

func orAnywhere(s string) string {
	if s == "" {
		return "anywhere"
	}
	return s
}

// targetCovers reports whether target ("site/pile" or "site/pile/port")
// covers a command to pile's port.
func targetCovers(target, pile string, port int) bool {
	t, err := ParseTarget(target)
	if err != nil || t.Key() != pile {
		return false
	}
	return t.Port == 0 || t.Port == port || port == 0
}

// statusObserver records the deaths seen on status topics, with when.
type statusObserver struct {
	c      mqtt.Client
	mu     sync.Mutex
	deaths map[string][]time.Time
}

func observeStatus(ctx context.Context, broker, root, id string) (*statusObserver, error) {
	o := &statusObserver{deaths: map[string][]time.Time{}}
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).SetAutoReconnect(false)
	o.c = mqtt.NewClient(opts)
	if err := waitToken(ctx, o.c.Connect(), 15*time.Second); err != nil {
		return nil, fmt.Errorf("observer: connect: %w", err)
	}
	tok := o.c.Subscribe(root+"/+/+/status", 1, func(_ mqtt.Client, m mqtt.Message) {
		msg, err := telemetry.DecodeTopic(root, m.Topic(), m.Payload(), time.Now())
		if err != nil || msg.Status == nil || msg.Status.Online || m.Retained() {
			return // retained deaths are from earlier runs
		}
		o.mu.Lock()
		k := msg.Topic.Site + "/" + msg.Topic.Pile
		o.deaths[k] = append(o.deaths[k], time.Now())
		o.mu.Unlock()
	})
	if err := waitToken(ctx, tok, 15*time.Second); err != nil {
		o.c.Disconnect(0)
		return nil, fmt.Errorf("observer: subscribe: %w", err)
	}
	return o, nil
}

func (o *statusObserver) sawDeath(target string, before time.Time) bool {
	t, _ := ParseTarget(target)
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, at := range o.deaths[t.Key()] {
		if at.Before(before) {
			return true
		}
	}
	return false
}

func (o *statusObserver) close() { o.c.Disconnect(100) }
