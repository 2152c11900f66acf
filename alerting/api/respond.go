package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/chargeguard/chargeguard/alerting"
)

// ErrUnavailable is what a Guard returns (wrapped) when the engine cannot
// take a request now, e.g. while the service is starting or stopping. The
// API answers 503 with reason "unavailable".
var ErrUnavailable = errors.New("the safety engine is not available")

// ErrInvalidRules is what Guard.Reload returns (wrapped, with the field
// errors of the configuration) when the new rules do not load or do not
// validate; the old rules stay. The API answers 422 with reason
// "invalid_rules" and the error text as detail, so the error must name
// files and fields, never hold a secret.
var ErrInvalidRules = errors.New("the new rules are invalid; the old rules stay")

// apiError is an error response: its status and its JSON body.
type apiError struct {
	status int
	Error  string `json:"error"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

func badRequest(reason, format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, Error: "bad_request", Reason: reason, Detail: fmt.Sprintf(format, a...)}
}

// guardError maps an error of the Guard to a response by the sentinel it
// wraps. internal is true for errors no sentinel explains: they are logged,
// and their text is not shown to the caller.
func guardError(err error) (e *apiError, internal bool) {
	reason := alerting.ErrorReason(err)
	switch {
	case errors.Is(err, alerting.ErrUnknownPile), errors.Is(err, alerting.ErrUnknownAlert):
		return &apiError{status: http.StatusNotFound, Error: "not_found", Reason: reason, Detail: err.Error()}, false
	case errors.Is(err, alerting.ErrNotLatched), errors.Is(err, alerting.ErrConditionActive),
		errors.Is(err, alerting.ErrCommandPending), errors.Is(err, alerting.ErrPileOffline),
		errors.Is(err, alerting.ErrPileLatched):
		return &apiError{status: http.StatusConflict, Error: "conflict", Reason: reason, Detail: err.Error()}, false
	case errors.Is(err, alerting.ErrBadPort):
		return &apiError{status: http.StatusBadRequest, Error: "bad_request", Reason: reason, Detail: err.Error()}, false
	case errors.Is(err, alerting.ErrNoOperator):
		return &apiError{status: http.StatusForbidden, Error: "forbidden", Reason: reason, Detail: err.Error()}, false
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: http.StatusServiceUnavailable, Error: "unavailable", Reason: "timeout",
			Detail: "the safety engine did not answer in time; try again"}, false
	case errors.Is(err, context.Canceled):
		return &apiError{status: http.StatusServiceUnavailable, Error: "unavailable", Reason: "canceled",
			Detail: "the request was canceled before the safety engine answered"}, false
	case errors.Is(err, ErrUnavailable):
		return &apiError{status: http.StatusServiceUnavailable, Error: "unavailable", Reason: "unavailable", Detail: err.Error()}, false
	case errors.Is(err, ErrInvalidRules):
		return &apiError{status: http.StatusUnprocessableEntity, Error: "unprocessable", Reason: "invalid_rules", Detail: err.Error()}, false
	case errors.Is(err, errors.ErrUnsupported):
		return &apiError{status: http.StatusNotImplemented, Error: "not_implemented", Reason: "unsupported",
			Detail: "this chargeguard does not support this operation (" + err.Error() + ")"}, false
	}
	return &apiError{status: http.StatusInternalServerError, Error: "internal", Reason: "internal",
		Detail: "an internal error occurred; it has been logged"}, true
}

// writeJSON writes v with status code. Responses are never cached: they
// show the live state of safety equipment.
func writeJSON(w http.ResponseWriter, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// encodeJSON encodes v as writeJSON would, into a buffer.
func encodeJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return b.Bytes()
}

// writeBody writes a JSON body encoded by encodeJSON.
func writeBody(w http.ResponseWriter, code int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="chargeguard"`)
	}
	writeJSON(w, e.status, e)
}

// changeBody is the optional body of a POST: a note for the log.
type changeBody struct {
	Note string `json:"note"`
}

// maxNoteLen bounds the note that goes to the log.
const maxNoteLen = 1024

// readBody reads the optional JSON body of a POST, at most limit bytes. An
// empty body is no note.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) (changeBody, *apiError) {
	var b changeBody
	if r.Body == nil {
		return b, nil
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return b, &apiError{status: http.StatusRequestEntityTooLarge, Error: "request_too_large", Reason: "body_too_large",
				Detail: fmt.Sprintf("the body must be at most %d bytes", limit)}
		}
		return b, badRequest("bad_body", "could not read the body")
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return b, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return b, badRequest("bad_body", `the body must be empty or a JSON object {"note": "..."}: %s`, jsonProblem(err))
	}
	if dec.InputOffset() != int64(len(raw)) {
		return b, badRequest("bad_body", "the body holds more than one JSON value")
	}
	if len(b.Note) > maxNoteLen {
		return b, badRequest("bad_body", "note is longer than %d bytes", maxNoteLen)
	}
	return b, nil
}

// jsonProblem says what is wrong with a body without quoting it.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %s must be a %s", te.Field, te.Type)
		}
		return "want a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	// DisallowUnknownFields: `json: unknown field "x"`. The field name is
	// the caller's own text, cut short.
	return truncate(err.Error(), 80)
}
