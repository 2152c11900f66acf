package alerting

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// The incident records of the district's "1-3-5" response target (1 minute
// to respond, 3 on site, 5 working together): an alert fires, an operator
// acknowledges it (AuditAlertAck), someone reaches the pile (AuditOnSite),
// notes are kept along the way (AuditNote), and the alert clears. They live
// in the port's audit like every other operator action, so they are stored
// in InfluxDB and read back through Audit without a new state to persist.
const (
	AuditOnSite AuditKind = "on_site" // an operator reported being at the pile
	AuditNote   AuditKind = "note"    // an operator's note on an alert
)

// MaxNoteLen bounds a note, in bytes: the audit keeps it, and the InfluxDB
// point cuts its detail at 512 bytes.
const MaxNoteLen = 500

// MarkOnSite records that an operator is at the pile of an active alert (by
// its Key). Like Ack it changes nothing about safety; every mark is kept,
// and the first after the alert fired is the one the response is timed by.
func (e *Engine) MarkOnSite(now time.Time, key, operator string) ([]Action, error) {
	return e.incidentRecord(now, key, operator, AuditOnSite, "")
}

// Note records an operator's note on an active alert. The note is cut to
// MaxNoteLen bytes; control characters (but newlines) are dropped.
func (e *Engine) Note(now time.Time, key, operator, note string) ([]Action, error) {
	note = strings.TrimSpace(strings.Map(func(r rune) rune {
		if r != '\n' && unicode.IsControl(r) {
			return -1
		}
		return r
	}, note))
	if note == "" {
		return nil, fmt.Errorf("%w: the note is empty", ErrEmptyNote)
	}
	return e.incidentRecord(now, key, operator, AuditNote, truncate(note, MaxNoteLen))
}

// ErrEmptyNote is Note's error for a note with no text.
var ErrEmptyNote = errors.New("empty note")

func (e *Engine) incidentRecord(now time.Time, key, operator string, kind AuditKind, detail string) ([]Action, error) {
	operator = strings.TrimSpace(truncate(operator, 64))
	if operator == "" {
		return nil, ErrNoOperator
	}
	name, site, pileID, port, ok := parseAlertKey(key)
	if !ok {
		return nil, fmt.Errorf("%w: %q is not alertname/site/pile/port", ErrUnknownAlert, truncate(key, 100))
	}
	p := e.pileFor(site, pileID, false)
	if p == nil || e.alerts[alertKey{p.idx, uint8(port), name}] == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownAlert, key)
	}
	if detail == "" {
		detail = "alert " + key
	}
	b := batch{now: msOf(now)}
	e.record(&b, AuditRecord{
		At: timeOf(b.now), Site: site, Pile: pileID, Port: port, Kind: kind,
		Actor: "operator:" + operator, Reason: name.String(), Detail: detail,
	})
	return b.out(), nil
}

// MarkOnSite records that an operator is at the pile of an active alert
// (thread-safe).
func (s *Service) MarkOnSite(ctx context.Context, key, operator string) error {
	var merr error
	err := s.do(ctx, func() {
		var actions []Action
		actions, merr = s.engine.MarkOnSite(s.o.Now(), key, operator)
		s.apply(actions)
	})
	if err != nil {
		return err
	}
	return merr
}

// Note records an operator's note on an active alert (thread-safe).
func (s *Service) Note(ctx context.Context, key, operator, note string) error {
	var nerr error
	err := s.do(ctx, func() {
		var actions []Action
		actions, nerr = s.engine.Note(s.o.Now(), key, operator, note)
		s.apply(actions)
	})
	if err != nil {
		return err
	}
	return nerr
}

// ConsoleLink is the address of an alert's page in the web console at
// base: its port's page, or for a whole-pile alert (port 0) the alert's own
// page. Ids are [A-Za-z0-9_-], so they need no escaping.
func ConsoleLink(base string, a Alert) string {
	base = strings.TrimRight(base, "/")
	if a.Port == 0 {
		return base + "/alerts/" + a.Key()
	}
	return fmt.Sprintf("%s/ports/%s/%s/%d", base, a.Site, a.Pile, a.Port)
}
