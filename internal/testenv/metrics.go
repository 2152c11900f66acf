package testenv

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric reads one sample, name{labels} exactly as the exposition writes
// it, from the Prometheus text page at url (a chargeguard's /metrics). It
// fails the test if the page cannot be read or has no such sample.
func Metric(tb testing.TB, url, series string) float64 {
	tb.Helper()
	v, err := MetricErr(url, series)
	if err != nil {
		tb.Fatalf("%s: %v", url, err)
	}
	return v
}

// MetricErr is Metric for a caller that is not the test's goroutine (a
// poller): the error is returned.
func MetricErr(url, series string) (float64, error) {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, &missingError{series}
}

type missingError struct{ series string }

func (e *missingError) Error() string { return "no " + e.series + " in the page" }

// Gathered is the value of the counter or gauge name{label=value} in g, and
// whether there is such a series.
func Gathered(tb testing.TB, g prometheus.Gatherer, name, label, value string) (float64, bool) {
	tb.Helper()
	mfs, err := g.Gather()
	if err != nil {
		tb.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if c := m.GetCounter(); c != nil {
						return c.GetValue(), true
					}
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}
