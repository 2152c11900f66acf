package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/chargeguard/chargeguard/alerting/api"
)

const (
	sessionCookie = "cg_session"
	// preCookie carries the sign-in form's CSRF token before there is a
	// session (double submit), so that another site cannot sign a browser
	// in as someone else.
	preCookie = "cg_signin"
	csrfField = "csrf"
)

// session is a signed-in person. Its id is only in the cookie; the map is
// keyed by the id's hash, so a heap dump does not hand out live cookies.
type session struct {
	name    string
	role    api.Role
	csrf    string
	expires time.Time
	flash   string // a one-time message for the next page (a refused reset)
}

func (s *session) operator() bool { return s != nil && s.role == api.RoleOperator }

type sessions struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[[32]byte]*session
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, m: map[[32]byte]*session{}}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session and returns its cookie value.
func (s *sessions) create(now time.Time, name string, role api.Role) (string, *session) {
	id := randomToken()
	ss := &session{name: name, role: role, csrf: randomToken(), expires: now.Add(s.ttl)}
	s.mu.Lock()
	s.m[sha256.Sum256([]byte(id))] = ss
	s.mu.Unlock()
	return id, ss
}

// get returns a copy of the live session of id, or nil.
func (s *sessions) get(now time.Time, id string) *session {
	if id == "" {
		return nil
	}
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[k]
	if ss == nil {
		return nil
	}
	if !now.Before(ss.expires) {
		delete(s.m, k)
		return nil
	}
	cp := *ss
	return &cp
}

// takeFlash returns and clears a session's message.
func (s *sessions) takeFlash(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[sha256.Sum256([]byte(id))]
	if ss == nil {
		return ""
	}
	f := ss.flash
	ss.flash = ""
	return f
}

func (s *sessions) setFlash(id, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.m[sha256.Sum256([]byte(id))]; ss != nil {
		ss.flash = msg
	}
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	delete(s.m, sha256.Sum256([]byte(id)))
	s.mu.Unlock()
}

func (s *sessions) purge(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, ss := range s.m {
		if !now.Before(ss.expires) {
			delete(s.m, k)
		}
	}
}

// limiter counts failed sign-ins per client address in fixed windows.
type limiter struct {
	max    int
	window time.Duration
	mu     sync.Mutex
	m      map[string]*failures
}

type failures struct {
	start time.Time
	n     int
}

// maxTracked bounds the limiter's memory: past it, a flood of addresses is
// refused as one (every new address counts as already limited) until the
// window ends, rather than growing the map without limit.
const maxTracked = 10000

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, m: map[string]*failures{}}
}

// blocked reports whether addr may not try again yet, and for how long.
func (l *limiter) blocked(now time.Time, addr string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.m[addr]
	if f == nil {
		if len(l.m) >= maxTracked {
			return l.window, true
		}
		return 0, false
	}
	if now.Sub(f.start) >= l.window {
		delete(l.m, addr)
		return 0, false
	}
	if f.n >= l.max {
		return f.start.Add(l.window).Sub(now), true
	}
	return 0, false
}

func (l *limiter) fail(now time.Time, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.m[addr]
	if f == nil || now.Sub(f.start) >= l.window {
		if f == nil && len(l.m) >= maxTracked {
			return
		}
		f = &failures{start: now}
		l.m[addr] = f
	}
	f.n++
}

func (l *limiter) purge(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, f := range l.m {
		if now.Sub(f.start) >= l.window {
			delete(l.m, k)
		}
	}
}

// clientAddr is the address failures are counted by: the peer's IP. A
// forwarded-for header is not trusted: anyone could set it to dodge the
// limit.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func equalSecret(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// secure reports whether cookies must be Secure for r.
func (c *Console) secure(r *http.Request) bool { return r.TLS != nil || c.o.SecureCookies }

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/",
		MaxAge: int(maxAge / time.Second), Expires: c.o.Now().Add(maxAge),
		HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode,
	})
}

func (c *Console) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
}

// sessionOf returns the request's session, nil when it has none. With no
// Authenticator everyone is an anonymous viewer.
func (c *Console) sessionOf(r *http.Request) (id string, s *session) {
	if c.o.Auth == nil {
		return "", &session{name: "anonymous", role: api.RoleViewer}
	}
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", nil
	}
	return ck.Value, c.sessions.get(c.o.Now(), ck.Value)
}
