package alerting

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// "On site" and notes are operator records in the port's audit, refused
// for an alert that is not active and for a missing operator.
func TestIncidentRecords(t *testing.T) {
	e := newTestEngine(t)
	e.Observe(t0, msg("s", "p", t0, birth(4, 5)))
	at := t0.Add(time.Second)
	e.Observe(at, msg("s", "p", at, tel(1, at, charging(1, 2, 80))))
	key := "overheat/s/p/1"

	_, err := e.MarkOnSite(at, key, " ")
	require.ErrorIs(t, err, ErrNoOperator)
	_, err = e.MarkOnSite(at, "overheat/s/p/2", "kim")
	require.ErrorIs(t, err, ErrUnknownAlert)
	_, err = e.Note(at, "nonsense", "kim", "x")
	require.ErrorIs(t, err, ErrUnknownAlert)
	_, err = e.Note(at, key, "kim", " \x07 ")
	require.ErrorIs(t, err, ErrEmptyNote)

	on := at.Add(2 * time.Minute)
	acts, err := e.MarkOnSite(on, key, "kim")
	require.NoError(t, err)
	r := acts[0].(Audit).Record
	require.Equal(t, AuditOnSite, r.Kind)
	require.Equal(t, "operator:kim", r.Actor)
	require.Equal(t, "overheat", r.Reason)
	require.Equal(t, on, r.At)

	acts, err = e.Note(on, key, "kim", "socket scorched\x00, battery moved out "+strings.Repeat("x", 600))
	require.NoError(t, err)
	r = acts[0].(Audit).Record
	require.Equal(t, AuditNote, r.Kind)
	require.True(t, strings.HasPrefix(r.Detail, "socket scorched, battery moved out"))
	require.LessOrEqual(t, len(r.Detail), MaxNoteLen+len("…"))

	var kinds []AuditKind
	for _, r := range e.Audit("s", "p", 1) {
		kinds = append(kinds, r.Kind)
	}
	require.Contains(t, kinds, AuditOnSite)
	require.Contains(t, kinds, AuditNote)
}
