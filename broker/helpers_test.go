package broker

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chargeguard/chargeguard/internal/testenv"
)

var logMu sync.Mutex

type syncWriter struct{ w io.Writer }

func (s *syncWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return s.w.Write(p)
}

func logsOf(b *bytes.Buffer) []byte {
	logMu.Lock()
	defer logMu.Unlock()
	return append([]byte(nil), b.Bytes()...)
}

// counterValue returns the value of the counter name{reason=reason}.
func counterValue(t *testing.T, g prometheus.Gatherer, name, reason string) float64 {
	t.Helper()
	v, _ := testenv.Gathered(t, g, name, "reason", reason)
	return v
}
