package influx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/chargeguard/chargeguard/ingest/spool"
)

// Defaults of Options.
const (
	DefaultBatchBytes   = 1 << 20
	DefaultBatchRecords = 5000
	DefaultConcurrency  = 2
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 30 * time.Second
	DefaultTimeout      = 10 * time.Second
	// DefaultDeadLetterMaxBytes bounds the dead-letter file, which shares
	// the data directory with the spool and the safety state.
	DefaultDeadLetterMaxBytes = 64 << 20
)

// failLogEvery rate-limits the log line of a failure that keeps repeating.
const failLogEvery = 30 * time.Second

// Options configures a Writer. URL and Bucket are required.
type Options struct {
	// URL is InfluxDB's base URL, e.g. http://127.0.0.1:8086. Credentials in
	// it ("http://user:pass@host") are used as the token when Token is empty.
	URL string
	// Token is the API token; for InfluxDB 1.8 "user:pass", or empty when
	// authentication is off.
	Token string
	// Org is ignored by InfluxDB 1.8 and may be empty there.
	Org string
	// Bucket is the bucket; for InfluxDB 1.8 "db/rp", e.g.
	// "chargeguard/autogen".
	Bucket string
	// BatchBytes bounds the line protocol of one request (a single larger
	// record is still sent alone); default 1 MiB.
	BatchBytes int
	// BatchRecords bounds the spool records of one request; default 5000.
	BatchRecords int
	// Concurrency is how many requests may be in flight at once; default
	// DefaultConcurrency. InfluxDB serves one request on one core, so a
	// single writer leaves the rest of the machine idle while chargeguard
	// waits (docs/benchmarks.md, "What InfluxDB spends per stored port
	// sample"). The spool is trimmed only past records whose request and
	// every earlier one succeeded, so a crash still loses nothing.
	Concurrency int
	// MinBackoff and MaxBackoff bound the wait between retries of a failed
	// request; defaults 100 ms and 30 s. The wait doubles per failure, with
	// jitter.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one request; default 10 s.
	Timeout time.Duration
	// DeadLetterPath is the file to which lines InfluxDB refuses for good
	// are appended, each after a comment line with the time and the error,
	// so the file is line protocol an operator can fix and replay. Empty:
	// such lines are only logged and counted.
	DeadLetterPath string
	// DeadLetterMaxBytes bounds the dead-letter file; default
	// DefaultDeadLetterMaxBytes. Once it is reached, refused lines are
	// logged and counted (chargeguard_influx_dead_letter_dropped_total) but
	// not written, so the first ones, which show the cause, are kept.
	// Writing resumes when the file is moved away or emptied.
	DeadLetterMaxBytes int64
	// Yield, when set, is called before each request and may wait: the
	// ingester's YieldToLive, so that on a machine that cannot do both,
	// storing waits while the safety engine's live session is behind.
	Yield func(ctx context.Context)
	// OneAtATime, when set and true, holds a request until none is in
	// flight. InfluxDB serves a request on one core: on a machine it
	// shares with the broker and the engine, Concurrency requests can take
	// every core at once (docs/benchmarks.md, "Detection to command at
	// 10,000 msgs/s"). The ingester's LivePressed.
	OneAtATime func() bool

	Logger     zerolog.Logger
	Registerer prometheus.Registerer
	// Now is the clock of the ingest lag metric; default time.Now.
	Now func() time.Time
}

// Writer drains a spool into InfluxDB. Run must be called at most once.
type Writer struct {
	o       Options
	sp      *spool.Spool
	hc      *http.Client
	client  influxdb2.Client
	write   api.WriteAPIBlocking
	log     zerolog.Logger
	m       *metrics
	secrets []string // redacted from every message that leaves the writer

	bodies sync.Pool // *bytes.Buffer for request bodies

	// Used by Run's requests, under mu.
	mu         sync.Mutex
	dl         *os.File
	dlInfo     os.FileInfo // of dl when opened, to notice it was moved
	dlSize     int64
	dlFullLog  time.Time
	failLabel  string
	failLogged time.Time
	suppressed int
	failing    int
}

// New checks o and returns a writer of sp's records. A configuration error
// names the field at fault.
func New(o Options, sp *spool.Spool) (*Writer, error) {
	if sp == nil {
		return nil, errors.New("influx: no spool")
	}
	base, token, err := splitURL(o.URL, o.Token)
	if err != nil {
		return nil, err
	}
	o.Token = token
	if o.Bucket == "" || strings.HasPrefix(o.Bucket, "/") {
		// InfluxDB 1.8 answers 400 to "/rp" (no database): it would look like
		// bad data and send every line to the dead-letter file.
		return nil, errors.New(`influx: Options.Bucket is required (InfluxDB 1.8: "db/rp", e.g. "chargeguard/autogen")`)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"BatchBytes", int64(o.BatchBytes)}, {"BatchRecords", int64(o.BatchRecords)}, {"Concurrency", int64(o.Concurrency)},
		{"MinBackoff", int64(o.MinBackoff)}, {"MaxBackoff", int64(o.MaxBackoff)},
		{"Timeout", int64(o.Timeout)}, {"DeadLetterMaxBytes", o.DeadLetterMaxBytes},
	} {
		if f.v < 0 {
			return nil, fmt.Errorf("influx: Options.%s is negative", f.name)
		}
	}
	o.BatchBytes = cmpOr(o.BatchBytes, DefaultBatchBytes)
	o.BatchRecords = cmpOr(o.BatchRecords, DefaultBatchRecords)
	o.Concurrency = cmpOr(o.Concurrency, DefaultConcurrency)
	o.MinBackoff = cmpOr(o.MinBackoff, DefaultMinBackoff)
	o.MaxBackoff = cmpOr(o.MaxBackoff, DefaultMaxBackoff)
	o.Timeout = cmpOr(o.Timeout, DefaultTimeout)
	o.DeadLetterMaxBytes = cmpOr(o.DeadLetterMaxBytes, DefaultDeadLetterMaxBytes)
	if o.MinBackoff > o.MaxBackoff {
		return nil, fmt.Errorf("influx: Options.MinBackoff %v exceeds Options.MaxBackoff %v", o.MinBackoff, o.MaxBackoff)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	w := &Writer{
		o:  o,
		sp: sp,
		m:  newMetrics(),
		log: o.Logger.With().Str("component", "influx").Str("url", base).
			Str("bucket", o.Bucket).Logger(),
	}
	if token != "" {
		w.secrets = append(w.secrets, token)
		if _, pass, ok := strings.Cut(token, ":"); ok && pass != "" {
			w.secrets = append(w.secrets, pass)
		}
	}
	w.hc = &http.Client{
		Timeout: o.Timeout,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout: 5 * time.Second,
			MaxIdleConns:        4,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	copts := influxdb2.DefaultOptions().
		SetHTTPClient(w.hc).
		SetPrecision(time.Nanosecond).
		SetApplicationName("chargeguard")
	w.client = influxdb2.NewClientWithOptions(base, token, copts)
	w.write = w.client.WriteAPIBlocking(o.Org, o.Bucket)
	if err := w.m.register(o.Registerer); err != nil {
		return nil, fmt.Errorf("influx: register metrics: %w", err)
	}
	w.m.deadLetterMax.Set(float64(o.DeadLetterMaxBytes))
	if fi, err := os.Stat(o.DeadLetterPath); o.DeadLetterPath != "" && err == nil {
		w.m.deadLetterBytes.Set(float64(fi.Size()))
	}
	return w, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// splitURL validates raw and returns it without credentials, query or
// fragment, and the token to use. Its errors never quote raw: it may hold a
// password.
func splitURL(raw, token string) (base, tok string, err error) {
	if raw == "" {
		return "", "", errors.New("influx: Options.URL is required")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", errors.New("influx: Options.URL is not an http(s)://host[:port] URL")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", "", errors.New("influx: Options.URL must not have a query or fragment")
	}
	if u.User != nil {
		if token != "" {
			return "", "", errors.New("influx: Options.URL holds credentials and Options.Token is set; use one")
		}
		pass, _ := u.User.Password()
		token = u.User.Username() + ":" + pass
		u.User = nil
	}
	return u.String(), token, nil
}

// redact removes the token and password from s.
func (w *Writer) redact(s string) string {
	for _, secret := range w.secrets {
		s = strings.ReplaceAll(s, secret, "<redacted>")
	}
	return s
}

// safeError is an error whose text had secrets removed. It still unwraps to
// the cause, for errors.Is and errors.As.
type safeError struct {
	msg   string
	cause error
}

func (e *safeError) Error() string { return e.msg }
func (e *safeError) Unwrap() error { return e.cause }

// Ping checks that InfluxDB answers (GET /ping), for readiness probes. It
// does not check the token.
func (w *Writer) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, w.o.Timeout)
	defer cancel()
	if _, err := w.client.Ping(ctx); err != nil {
		return &safeError{msg: "influx ping: " + w.redact(err.Error()), cause: err}
	}
	return nil
}

// Run writes the spool's records to InfluxDB until ctx is done, then returns
// nil; records not yet accepted stay in the spool for the next run. It
// returns an error only if the spool fails.
//
// Up to Concurrency batches are in flight at once, read from the spool in
// order; they may finish in any order, but the spool is trimmed in order,
// only past a batch once it and every batch before it are stored.
func (w *Writer) Run(ctx context.Context) error {
	defer w.hc.CloseIdleConnections()
	defer func() {
		if w.dl != nil {
			_ = w.dl.Close()
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type batch struct {
		end  uint64 // index after its last record
		done chan error
	}
	slots := make(chan struct{}, w.o.Concurrency)
	inflight := make(chan batch, w.o.Concurrency)
	var readErr error
	go func() {
		defer close(inflight)
		from := w.sp.FirstIndex()
		for {
			first, recs, err := w.sp.Next(ctx, from, w.o.BatchRecords, w.o.BatchBytes)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				readErr = fmt.Errorf("influx writer: read spool: %w", err)
				cancel()
				return
			}
			if w.o.Yield != nil {
				w.o.Yield(ctx)
			}
			if !w.aloneInFlight(ctx, slots) {
				return
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			b := batch{end: first + uint64(len(recs)), done: make(chan error, 1)}
			go func() { b.done <- w.store(ctx, recs) }()
			inflight <- b // never blocks: a slot is held
			from = b.end
		}
	}()
	var err error
	for b := range inflight {
		serr := <-b.done
		<-slots
		if err != nil || ctx.Err() != nil {
			continue // stopping: wait for the rest, trim nothing more
		}
		if serr != nil {
			cancel() // store fails only when ctx is done
			continue
		}
		if terr := w.sp.Trim(b.end); terr != nil {
			err = fmt.Errorf("influx writer: trim spool: %w", terr)
			cancel()
		}
	}
	// inflight is closed: the reader is gone, readErr is set.
	if err == nil {
		err = readErr
	}
	return err
}

// aloneInFlight waits, while OneAtATime says so, until no request holds a
// slot. It returns false if ctx ended first.
func (w *Writer) aloneInFlight(ctx context.Context, slots chan struct{}) bool {
	if w.o.OneAtATime == nil {
		return true
	}
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for len(slots) > 0 && w.o.OneAtATime() {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// piece is a unit of bisection: a record's lines, or one line of it.
type piece struct {
	lines []byte // '\n'-separated, no trailing newline
	n     int    // non-empty lines
}

// store writes recs to InfluxDB, bisecting around refused lines, and returns
// once every line is accepted or dead-lettered; its error is ctx's.
func (w *Writer) store(ctx context.Context, recs [][]byte) error {
	pieces := make([]piece, 0, len(recs))
	received := make([]time.Time, 0, len(recs))
	for _, rec := range recs {
		at, lines, err := spool.DecodeRecord(rec)
		if err != nil {
			w.log.Error().Err(err).Msg("malformed spool record; dead-lettered")
			if err := w.deadLetter(ctx, nil, 0, fmt.Sprintf("malformed spool record %q", rec)); err != nil {
				return err
			}
			continue
		}
		lines = bytes.TrimRight(lines, "\n")
		n := countLines(lines)
		if n == 0 {
			continue
		}
		pieces = append(pieces, piece{lines: lines, n: n})
		received = append(received, at)
	}
	if err := w.storePieces(ctx, pieces); err != nil {
		return err
	}
	now := w.o.Now()
	for _, at := range received {
		w.m.lag.Observe(now.Sub(at).Seconds())
	}
	w.m.batches.Inc()
	return nil
}

func countLines(b []byte) int {
	n := 0
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte{'\n'})
		if len(bytes.TrimSpace(line)) > 0 {
			n++
		}
		b = rest
	}
	return n
}

// splitLines returns the non-empty lines of p as pieces.
func splitLines(p piece) []piece {
	out := make([]piece, 0, p.n)
	for b := p.lines; len(b) > 0; {
		line, rest, _ := bytes.Cut(b, []byte{'\n'})
		if len(bytes.TrimSpace(line)) > 0 {
			out = append(out, piece{lines: line, n: 1})
		}
		b = rest
	}
	return out
}

// storePieces writes ps in one request; if InfluxDB refuses it as bad data,
// it stores each half on its own, down to single lines, which are
// dead-lettered if refused alone.
func (w *Writer) storePieces(ctx context.Context, ps []piece) error {
	if len(ps) == 0 {
		return nil
	}
	err := w.send(ctx, ps)
	var rej *rejectedError
	if !errors.As(err, &rej) {
		return err // nil, or ctx's
	}
	if len(ps) > 1 {
		mid := len(ps) / 2
		if err := w.storePieces(ctx, ps[:mid]); err != nil {
			return err
		}
		return w.storePieces(ctx, ps[mid:])
	}
	if ps[0].n > 1 {
		return w.storePieces(ctx, splitLines(ps[0]))
	}
	w.log.Error().Int("code", rej.code).Str("error", rej.msg).Str("line", clip(ps[0].lines, 512)).
		Msg("InfluxDB refuses a point for good; dead-lettered")
	return w.deadLetter(ctx, ps[0].lines, rej.code, rej.msg)
}

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// rejectedError is InfluxDB refusing a request's data (400, 413, 422):
// resending it unchanged would fail again.
type rejectedError struct {
	code int
	msg  string // redacted
}

func (e *rejectedError) Error() string {
	return "influx refused the data: " + strconv.Itoa(e.code) + ": " + e.msg
}

// send writes ps in one request, retrying failures other than a refusal of
// the data until it succeeds or ctx is done. It returns nil, a
// *rejectedError, or ctx's error.
func (w *Writer) send(ctx context.Context, ps []piece) error {
	buf, _ := w.bodies.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	points := 0
	for i, p := range ps {
		if i > 0 {
			buf.WriteByte('\n')
		}
		buf.Write(p.lines)
		points += p.n
	}
	body := buf.String()
	w.bodies.Put(buf)
	backoff := w.o.MinBackoff
	for {
		rctx, cancel := context.WithTimeout(ctx, w.o.Timeout)
		start := time.Now()
		err := w.write.WriteRecord(rctx, body)
		cancel()
		w.m.writeDur.Observe(time.Since(start).Seconds())
		if err == nil {
			w.m.up.Set(1)
			w.m.written.Add(float64(points))
			w.mu.Lock()
			if w.failing > 0 {
				w.log.Info().Int("failed_attempts", w.failing).Msg("InfluxDB accepts writes again")
				w.failing, w.failLabel = 0, ""
			}
			w.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		code, retryAfter, msg := w.describe(err)
		label := "network"
		if code != 0 {
			label = strconv.Itoa(code)
		}
		w.m.failures.WithLabelValues(label).Inc()
		switch code {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			return &rejectedError{code: code, msg: msg}
		}
		w.m.up.Set(0)
		wait := backoff/2 + rand.N(backoff/2+1)
		if retryAfter > 0 {
			wait = max(wait, min(retryAfter, w.o.MaxBackoff))
		}
		w.mu.Lock()
		w.failing++
		w.logFailure(code, label, msg, wait)
		w.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, w.o.MaxBackoff)
	}
}

// describe returns the HTTP status of a failed write (0 for a network
// error), the server's Retry-After, and a redacted message. InfluxDB 1.8
// answers errors as {"error": "..."}, which the client cannot decode, so
// the message is taken from its X-Influxdb-Error header first.
func (w *Writer) describe(err error) (code int, retryAfter time.Duration, msg string) {
	msg = err.Error()
	var he *ihttp.Error
	if errors.As(err, &he) {
		code = he.StatusCode
		retryAfter = time.Duration(he.RetryAfter) * time.Second
		switch {
		case he.Header.Get("X-Influxdb-Error") != "":
			msg = he.Header.Get("X-Influxdb-Error")
		case he.Message != "":
			msg = he.Message
		}
	}
	return code, retryAfter, w.redact(msg)
}

// logFailure logs a failed request: at once when the kind of failure
// changes, then at most every failLogEvery. The caller holds w.mu. Bad credentials and a missing
// database need an operator, so they are errors; the rest are warnings.
func (w *Writer) logFailure(code int, label, msg string, wait time.Duration) {
	now := time.Now()
	if label == w.failLabel && now.Sub(w.failLogged) < failLogEvery {
		w.suppressed++
		return
	}
	ev := w.log.Warn()
	hint := "InfluxDB write failed; retrying, the spool holds the backlog"
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden:
		ev, hint = w.log.Error(), "InfluxDB refuses the credentials; fix the token (1.8: user:pass); retrying, the spool holds the backlog"
	case http.StatusNotFound:
		ev, hint = w.log.Error(), "InfluxDB has no such bucket (1.8: database/retention policy); create it; retrying, the spool holds the backlog"
	}
	ev.Str("code", label).Str("error", msg).Str("retry_in", wait.Round(time.Millisecond).String()).Int("failed_attempts", w.failing).
		Int("suppressed", w.suppressed).Msg(hint)
	w.failLabel, w.failLogged, w.suppressed = label, now, 0
}

// deadLetter appends line, after a comment with the time and the error, to
// the dead-letter file and fsyncs it, retrying while the file cannot be
// written (the batch is not trimmed before the line is safe). A nil line
// writes only the comment. Its error is ctx's.
func (w *Writer) deadLetter(ctx context.Context, line []byte, code int, msg string) error {
	if w.o.DeadLetterPath != "" {
		var b bytes.Buffer
		fmt.Fprintf(&b, "# %s code=%d error=%q\n", w.o.Now().UTC().Format(time.RFC3339Nano), code, msg)
		if line != nil {
			b.Write(line)
			b.WriteByte('\n')
		}
		backoff := w.o.MinBackoff
		for {
			w.mu.Lock()
			kept, err := w.appendDeadLetter(b.Bytes())
			if err == nil && !kept {
				w.m.deadLetterDropped.Inc()
				if now := time.Now(); now.Sub(w.dlFullLog) >= failLogEvery {
					w.dlFullLog = now
					w.log.Error().Str("path", w.o.DeadLetterPath).Int64("max_bytes", w.o.DeadLetterMaxBytes).
						Msg("dead-letter file is full; refused points are logged and counted, not kept: move the file away")
				}
				w.mu.Unlock()
				return nil
			}
			w.mu.Unlock()
			if err == nil {
				break
			}
			w.log.Error().Err(err).Str("path", w.o.DeadLetterPath).Msg("cannot write the dead-letter file; retrying")
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, w.o.MaxBackoff)
		}
	}
	w.m.deadLettered.Inc()
	return nil
}

// appendDeadLetter appends b to the dead-letter file and fsyncs it, unless
// that would take the file past DeadLetterMaxBytes: then it returns false.
// The caller holds w.mu.
func (w *Writer) appendDeadLetter(b []byte) (kept bool, err error) {
	if w.dl != nil && w.dlSize+int64(len(b)) > w.o.DeadLetterMaxBytes {
		// Full, unless an operator moved or emptied the file: look again.
		if fi, err := os.Stat(w.o.DeadLetterPath); err != nil || !os.SameFile(fi, w.dlInfo) || fi.Size() < w.dlSize {
			_ = w.dl.Close()
			w.dl = nil
		}
	}
	if w.dl == nil {
		f, err := os.OpenFile(w.o.DeadLetterPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return false, fmt.Errorf("open dead-letter file: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			_ = f.Close()
			return false, fmt.Errorf("open dead-letter file: %w", err)
		}
		w.dl, w.dlInfo, w.dlSize = f, fi, fi.Size()
		w.m.deadLetterBytes.Set(float64(w.dlSize))
	}
	if w.dlSize+int64(len(b)) > w.o.DeadLetterMaxBytes {
		return false, nil
	}
	n, err := w.dl.Write(b)
	w.dlSize += int64(n)
	w.m.deadLetterBytes.Set(float64(w.dlSize))
	if err != nil {
		_ = w.dl.Close()
		w.dl = nil
		return false, fmt.Errorf("append to dead-letter file: %w", err)
	}
	if err := w.dl.Sync(); err != nil {
		return false, fmt.Errorf("sync dead-letter file: %w", err)
	}
	return true, nil
}
