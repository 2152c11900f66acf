package alerting

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// panicker fails by panicking, so that a test can see the runner fail.
type panicker struct{}

type failure string

func (panicker) Helper() {}
func (panicker) Fatalf(format string, args ...any) {
	panic(failure(fmt.Sprintf(format, args...)))
}

func runScript(src string) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(failure)
			if !ok {
				panic(r)
			}
			msg = string(f)
		}
	}()
	newRunner(panicker{}, "inline.test").run(src)
	return ""
}

// The scenario runner must fail on every kind of wrong or missing
// expectation; otherwise the scenario files could not fail.
func TestScenarioRunnerFails(t *testing.T) {
	const trip = "pile s/p kind residential ports 4 rated 5\nat 1s telemetry seq 1 port 1 charging a 2 temp 71\n"
	for _, c := range []struct{ name, script, want string }{
		{"unexpected close", trip, "unexpected action"},
		{"expect nothing", trip + "expect nothing\n", "expected nothing"},
		{"wrong reason", trip + "expect close port 1 reason overcurrent\n", "no action matches"},
		{"wrong port", trip + "expect close port 2\n", "no action matches"},
		{"wrong severity", trip + "expect close port 1\nexpect alert overheat port 1 warning firing\n", "no action matches"},
		{"wrong state", trip + "expect close port 1\nexpect alert overheat port 1 resolved\n", "no action matches"},
		{"wrong attempt", trip + "expect close port 1 attempt 2\n", "no action matches"},
		{"id same on first", trip + "expect close port 1 id same\n", "no action matches"},
		{"missing audit", trip + "expect close port 1\nexpect alert overheat port 1 firing\nexpect audit reset port 1\n", "no action matches"},
		{"unchecked error", trip + "expect close port 1\nexpect alert overheat port 1 firing\nreset port 3 by x\n", "unexpected error"},
		{"wrong error", trip + "expect close port 1\nexpect alert overheat port 1 firing\nreset port 1 by x\nexpect error not_latched\n", "expected error not_latched"},
		{"wrong port view", trip + "expect close port 1\nexpect alert overheat port 1 firing\nexpect port 1 open\n", "control latched, want open"},
		{"time backwards", trip + "expect close port 1\nexpect alert overheat port 1 firing\nat 0s tick\n", "time goes backwards"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := runScript(c.script)
			if !strings.Contains(got, c.want) {
				t.Fatalf("runner said %q, want it to fail with %q", got, c.want)
			}
		})
	}
	ok := trip + "expect close port 1 reason overheat attempt 1 id new\nexpect alert overheat port 1 critical firing\nexpect audit command port 1 by rule:overheat\n"
	if got := runScript(ok); got != "" {
		t.Fatalf("a correct script failed: %s", got)
	}
}

// docs/safety.md names the scenario file behind each fault it describes:
// every name must be a file here, and every robustness scenario of contract
// v1.1 must be named there.
func TestSafetyDocNamesScenarios(t *testing.T) {
	doc, err := os.ReadFile("../docs/safety.md")
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`([a-z0-9_]+)\\.test`").FindAllStringSubmatch(string(doc), -1) {
		named[m[1]] = true
		if _, err := os.Stat(filepath.Join("testdata", m[1]+".test")); err != nil {
			t.Errorf("docs/safety.md names %s.test, which does not exist", m[1])
		}
	}
	for _, f := range []string{"close_never_abandoned", "cancel_open", "clock", "restarted_counter", "partial", "rated_cap", "offline_restart", "reset_evidence"} {
		if !named[f] {
			t.Errorf("docs/safety.md does not name %s.test", f)
		}
	}
}
