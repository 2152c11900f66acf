package influx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultReadTimeout bounds one query of a Reader: it serves a page that a
// person is waiting for.
const DefaultReadTimeout = 2 * time.Second

// ReaderOptions configures a Reader; URL, Token and Bucket are the
// writer's (config influx.*).
type ReaderOptions struct {
	URL    string
	Token  string
	Bucket string
	// Timeout bounds one query; default DefaultReadTimeout.
	Timeout time.Duration
}

// Reader reads back what the writer stored, for the console's chart of
// the time before a restart. It speaks InfluxQL over /query (InfluxDB 1.8
// and the v1 compatibility API of 2.x and 3.x), with the writer's token in
// the "Token" scheme, which InfluxDB 1.8 reads as "user:pass". It never
// retries: a reader of the past can always show less. Its errors never hold
// the token.
type Reader struct {
	o      ReaderOptions
	base   string
	db, rp string
	hc     *http.Client
	secret []string
}

// NewReader checks o and returns a Reader. A configuration error names the
// field at fault.
func NewReader(o ReaderOptions) (*Reader, error) {
	base, token, err := splitURL(o.URL, o.Token)
	if err != nil {
		return nil, err
	}
	o.Token = token
	db, rp, _ := strings.Cut(o.Bucket, "/")
	if db == "" {
		return nil, errors.New(`influx: ReaderOptions.Bucket is required (InfluxDB 1.8: "db/rp", e.g. "chargeguard/autogen")`)
	}
	if o.Timeout < 0 {
		return nil, errors.New("influx: ReaderOptions.Timeout is negative")
	}
	o.Timeout = cmpOr(o.Timeout, DefaultReadTimeout)
	r := &Reader{o: o, base: base, db: db, rp: rp}
	if token != "" {
		r.secret = append(r.secret, token)
		if _, pass, ok := strings.Cut(token, ":"); ok && pass != "" {
			r.secret = append(r.secret, pass)
		}
	}
	// Reads are rare (one per port page after a start), so no connection
	// is kept open between them: a Reader needs no Close.
	r.hc = &http.Client{
		Timeout: o.Timeout,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: o.Timeout}).DialContext,
			TLSHandshakeTimeout: o.Timeout,
			DisableKeepAlives:   true,
		},
	}
	return r, nil
}

// PortReading is one step of a port's stored readings: the highest
// temperature and current of the step (NaN when none was stored).
type PortReading struct {
	At    time.Time // start of the step
	TempC float64
	A     float64
}

// portQuery is the one query of the `port` measurement (docs/schema.md).
// It names the fields it reads, temp_c and a, and nothing else of the
// point, so that the measurement's other fields (seq, state) may change
// without touching it. Per step it keeps the highest reading, as the
// console's own history does: a spike must show on the chart.
const portQuery = `SELECT max("temp_c") AS "temp_c", max("a") AS "a" FROM %s WHERE "site" = %s AND "pile" = %s AND "port" = %s AND time >= %dms AND time < %dms GROUP BY time(%dms) fill(none)`

// PortReadings returns the stored readings of a port in [from, to), one per
// step (at least a second), oldest first.
func (r *Reader) PortReadings(ctx context.Context, site, pile string, port int, from, to time.Time, step time.Duration) ([]PortReading, error) {
	step = max(step.Truncate(time.Second), time.Second)
	measurement := quoteIdent("port")
	if r.rp != "" {
		measurement = quoteIdent(r.rp) + "." + measurement
	}
	q := fmt.Sprintf(portQuery, measurement, quoteString(site), quoteString(pile), quoteString(strconv.Itoa(port)),
		from.UnixMilli(), to.UnixMilli(), step.Milliseconds())
	rows, err := r.query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("influx: read port %s/%s/%d: %w", site, pile, port, err)
	}
	out := make([]PortReading, 0, len(rows))
	for _, row := range rows {
		if len(row) != 3 {
			return nil, fmt.Errorf("influx: read port %s/%s/%d: a row of %d columns, want 3", site, pile, port, len(row))
		}
		ms, err := row[0].Int64()
		if err != nil {
			return nil, fmt.Errorf("influx: read port %s/%s/%d: time %q: %w", site, pile, port, row[0], err)
		}
		out = append(out, PortReading{At: time.UnixMilli(ms), TempC: number(row[1]), A: number(row[2])})
	}
	return out, nil
}

// number is a field value, NaN when null or not a number.
func number(n json.Number) float64 {
	f, err := n.Float64()
	if err != nil {
		return math.NaN()
	}
	return f
}

// query runs one InfluxQL statement and returns the rows of its series
// (null values as empty numbers).
func (r *Reader) query(ctx context.Context, q string) ([][]json.Number, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	form := url.Values{"db": {r.db}, "q": {q}, "epoch": {"ms"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, r.safe(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r.o.Token != "" {
		req.Header.Set("Authorization", "Token "+r.o.Token)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, r.safe(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, r.safe(err)
	}
	var answer struct {
		Results []struct {
			Series []struct {
				Values [][]*json.Number `json:"values"`
			} `json:"series"`
			Error string `json:"error"`
		} `json:"results"`
		Error string `json:"error"`
	}
	jerr := json.Unmarshal(body, &answer)
	switch {
	case resp.StatusCode != http.StatusOK:
		msg := answer.Error
		if jerr != nil || msg == "" {
			msg = clip(body, 200)
		}
		return nil, &safeError{msg: fmt.Sprintf("query: %s: %s", resp.Status, r.redact(msg))}
	case jerr != nil:
		return nil, &safeError{msg: "query: answer is not JSON: " + r.redact(jerr.Error()), cause: jerr}
	case answer.Error != "":
		return nil, &safeError{msg: "query: " + r.redact(answer.Error)}
	}
	var rows [][]json.Number
	for _, res := range answer.Results {
		if res.Error != "" {
			return nil, &safeError{msg: "query: " + r.redact(res.Error)}
		}
		for _, s := range res.Series {
			for _, v := range s.Values {
				row := make([]json.Number, len(v))
				for i, n := range v {
					if n != nil {
						row[i] = *n
					}
				}
				rows = append(rows, row)
			}
		}
	}
	return rows, nil
}

// safe wraps a transport error with the token removed from its text.
func (r *Reader) safe(err error) error {
	return &safeError{msg: "query: " + r.redact(err.Error()), cause: err}
}

func (r *Reader) redact(s string) string {
	for _, secret := range r.secret {
		s = strings.ReplaceAll(s, secret, "<redacted>")
	}
	return s
}

// quoteIdent quotes an InfluxQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// quoteString quotes an InfluxQL string literal. Site and pile ids are
// validated ([A-Za-z0-9_-]) before they get here; the quoting is for the
// reader's own sake.
func quoteString(s string) string {
	return `'` + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + `'`
}
