package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/telemetry"
)

// fuzzAPI is an API over a fake Guard for the fuzz targets; the logger
// writes JSON to a discarded buffer, so that logging runs too.
func fuzzAPI(f *testing.F) (*API, *fakeGuard) {
	g := &fakeGuard{}
	a, err := New(Options{Guard: g, Tokens: testTokens(), Logger: zerolog.New(&bytes.Buffer{})})
	if err != nil {
		f.Fatal(err)
	}
	return a, g
}

// serveFuzz sends a request with the operator token and checks what every
// response must be: JSON with an error and a reason on failure.
func serveFuzz(t *testing.T, h http.Handler, method, path string, body []byte) (code int, ok bool) {
	req, err := http.NewRequest(method, "http://chargeguard.test"+path, bytes.NewReader(body))
	if err != nil {
		return 0, false // not a URL a client could send
	}
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	rec := newRecorder()
	h.ServeHTTP(rec, req)
	var res apiError
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		t.Fatalf("%s %q: response is not JSON: %q", method, path, rec.Body.String())
	}
	if rec.Code >= 400 && (res.Error == "" || res.Reason == "") {
		t.Fatalf("%s %q: error without error or reason: %q", method, path, rec.Body.String())
	}
	return rec.Code, true
}

// canonicalPort is the oracle for a port segment: plain decimal 0..64.
func canonicalPort(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0 && n <= telemetry.MaxPort && strconv.Itoa(n) == s
}

// FuzzResetPath sends resets with random site, pile and port segments and
// random bodies. It must never panic, never call the Guard with an invalid
// id or port or another operator than the token's, call it exactly when
// the request is valid, and answer JSON.
func FuzzResetPath(f *testing.F) {
	seeds := []struct{ site, pile, port, body string }{
		{"s1", "p1", "3", ""},
		{"s1", "p1", "0", `{"note":"checked"}`},
		{"s1", "p1", "64", " \n\t"},
		{"s1", "p1", "65", ""},
		{"s1", "p1", "-1", ""},
		{"s1", "p1", "07", ""},
		{"s1", "p1", "+7", ""},
		{"s1", "p1", "1e1", ""},
		{"s%2F1", "p1", "1", ""},
		{"s1", "..", "1", ""},
		{"", "p1", "1", ""},
		{"s1", "p1/x", "1", ""},
		{"s1", "p%00", "1", ""},
		{"s%C3%A9", "p1", "1", ""},
		{"%zz", "p1", "1", ""},
		{strings.Repeat("s", 64), strings.Repeat("p", 65), "1", ""},
		{"s1", "p1", "1", `{"note":`},
		{"s1", "p1", "1", `{"operator":"mallory"}`},
		{"s1", "p1", "1", `{"note":"a"}{"note":"b"}`},
		{"s1", "p1", "1", `{"note":"\u0000\ud800"}`},
		{"s1", "p1", "1", strings.Repeat("[", 5000)},
		{"s1", "p1", "1?x=1", ""},
		{"s1", "p1", "1#frag", ""},
		{"s 1", "p1", "1", ""},
	}
	for _, s := range seeds {
		f.Add(s.site, s.pile, s.port, []byte(s.body))
	}
	a, g := fuzzAPI(f)
	h := a.Handler()
	f.Fuzz(func(t *testing.T, site, pile, port string, body []byte) {
		g.mu.Lock()
		g.calls = g.calls[:0]
		g.mu.Unlock()
		path := "/api/v1/ports/" + site + "/" + pile + "/" + port + "/reset"
		code, sent := serveFuzz(t, h, http.MethodPost, path, body)
		if !sent {
			return
		}
		calls := g.Calls()
		if len(calls) > 1 {
			t.Fatalf("%q: %d calls to the Guard", path, len(calls))
		}
		if len(calls) == 1 {
			c := calls[0]
			if c.Method != "Reset" || !telemetry.ValidID(c.Site) || !telemetry.ValidID(c.Pile) ||
				c.Port < 0 || c.Port > telemetry.MaxPort || c.Operator != "alice" {
				t.Fatalf("%q: invalid call %+v", path, c)
			}
			if code != http.StatusAccepted {
				t.Fatalf("%q: Guard called but status %d", path, code)
			}
			// The call is what the path said, segment by segment.
			u, _ := url.Parse("http://chargeguard.test" + path)
			segs := strings.Split(u.EscapedPath(), "/")
			if len(segs) != 8 {
				t.Fatalf("%q: reset accepted on %d segments", path, len(segs))
			}
			s, _ := url.PathUnescape(segs[4])
			p, _ := url.PathUnescape(segs[5])
			n, _ := url.PathUnescape(segs[6])
			if s != c.Site || p != c.Pile || n != strconv.Itoa(c.Port) || u.RawQuery != "" {
				t.Fatalf("%q: Guard called with %+v", path, c)
			}
		} else if code == http.StatusAccepted {
			t.Fatalf("%q: 202 without a call to the Guard", path)
		}
		// A valid request without a body must reach the Guard.
		if _, ok := canonicalPort(port); ok && telemetry.ValidID(site) && telemetry.ValidID(pile) &&
			len(bytes.TrimSpace(body)) == 0 && len(calls) != 1 {
			t.Fatalf("%q: a valid reset did not reach the Guard (status %d)", path, code)
		}
	})
}

// FuzzAckPath does the same for the acknowledgement routes, with the key
// percent-encoded as one segment or spelled out.
func FuzzAckPath(f *testing.F) {
	for _, s := range []string{
		"overheat/s1/p1/3", "smoke/s1/p1/0", "overheat%2Fs1%2Fp1%2F3", "full/s1/p1/1", "overheat/s1/p1",
		"overheat/s1/p1/3/4", "overheat%2Fs1/p1/3", "x/s1/p1/3", "overheat/s.1/p1/3", "overheat/s1/p1/65", "%2F%2F%2F",
	} {
		f.Add(s, []byte(""))
	}
	a, g := fuzzAPI(f)
	h := a.Handler()
	f.Fuzz(func(t *testing.T, key string, body []byte) {
		g.mu.Lock()
		g.calls = g.calls[:0]
		g.mu.Unlock()
		path := "/api/v1/alerts/" + key + "/ack"
		code, sent := serveFuzz(t, h, http.MethodPost, path, body)
		if !sent {
			return
		}
		calls := g.Calls()
		if len(calls) > 1 {
			t.Fatalf("%q: %d calls to the Guard", path, len(calls))
		}
		if len(calls) == 0 {
			if code == http.StatusOK {
				t.Fatalf("%q: 200 without a call to the Guard", path)
			}
			return
		}
		c := calls[0]
		parts := strings.Split(c.Key, "/")
		if c.Method != "AckAlert" || c.Operator != "alice" || len(parts) != 4 || code != http.StatusOK {
			t.Fatalf("%q: call %+v, status %d", path, c, code)
		}
		_, okName := alerting.ParseAlertName(parts[0])
		_, okPort := canonicalPort(parts[3])
		if !okName || !telemetry.ValidID(parts[1]) || !telemetry.ValidID(parts[2]) || !okPort {
			t.Fatalf("%q: Guard called with invalid key %q", path, c.Key)
		}
	})
}
