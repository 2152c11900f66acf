package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// gotAlert is a posted alert as the fake Alertmanager decodes it. Decoding
// startsAt and endsAt into time.Time proves they are RFC 3339.
type gotAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
}

type post struct {
	path        string
	query       string
	contentType string
	user, pass  string
	hasAuth     bool
	raw         []byte
	alerts      []gotAlert
	at          time.Time
	status      int
}

// fakeAM is an httptest Alertmanager that records every post.
type fakeAM struct {
	srv *httptest.Server

	mu    sync.Mutex
	posts []post
	// respond picks the status of the i-th post (0-based) and an optional
	// body; nil means 200.
	respond func(i int, r *http.Request) (int, string)
	// hang makes every post wait until the client gives up.
	hang bool
}

func newFakeAM(t *testing.T) *fakeAM {
	t.Helper()
	f := &fakeAM{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.handle))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAM) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	hang := f.hang
	i := len(f.posts)
	status, msg := http.StatusOK, ""
	if f.respond != nil {
		status, msg = f.respond(i, r)
	}
	p := post{path: r.URL.Path, query: r.URL.RawQuery, contentType: r.Header.Get("Content-Type"), raw: body, at: time.Now(), status: status}
	p.user, p.pass, p.hasAuth = r.BasicAuth()
	if !hang {
		if err := json.Unmarshal(body, &p.alerts); err != nil {
			status, msg = http.StatusBadRequest, err.Error()
			p.status = status
		}
		f.posts = append(f.posts, p)
	}
	f.mu.Unlock()
	if hang {
		<-r.Context().Done()
		return
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}

func (f *fakeAM) url() string { return f.srv.URL }

// all returns a copy of the posts so far.
func (f *fakeAM) all() []post {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]post(nil), f.posts...)
}

// delivered returns the alerts of the posts answered 2xx, in order.
func (f *fakeAM) delivered() []gotAlert {
	var out []gotAlert
	for _, p := range f.all() {
		if p.status/100 == 2 {
			out = append(out, p.alerts...)
		}
	}
	return out
}

// deliveredNamed returns the delivered alerts whose alertname is name.
func (f *fakeAM) deliveredNamed(name string) []gotAlert {
	var out []gotAlert
	for _, a := range f.delivered() {
		if a.Labels["alertname"] == name {
			out = append(out, a)
		}
	}
	return out
}

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the JSON log lines written so far.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), "log line %q", l)
		out = append(out, m)
	}
	return out
}

func captureLogger() (zerolog.Logger, *syncBuffer) {
	b := &syncBuffer{}
	return zerolog.New(b).Level(zerolog.DebugLevel), b
}

// run starts n.Run and stops it (waiting for it to return) when the test
// ends.
func run(t *testing.T, n *Notifier) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("Run did not return 30s after its context was cancelled")
		}
	})
}

// closedAddr returns a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func overheat(site, pile string, port int) Alert {
	return Alert{
		Labels: map[string]string{
			"alertname": "overheat", "severity": SeverityCritical, "site": site, "pile": pile,
			"port": itoa(port), "kind": "residential",
		},
		Annotations: Annotations("overheat", site, pile, port, "72.5 °C", "http://board.example/d/port?site="+site),
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
