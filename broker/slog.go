package broker

import (
	"context"
	"log/slog"

	"github.com/rs/zerolog"
)

// newSlog adapts zerolog to the log/slog logger that mochi-mqtt takes, so
// the broker's lines land in chargeguard's one log stream. mochi logs client
// connects at info; they are demoted to debug because a fleet of piles
// reconnecting would drown everything else.
func newSlog(l zerolog.Logger) *slog.Logger {
	return slog.New(&slogHandler{l: l})
}

type slogHandler struct {
	l     zerolog.Logger
	attrs []slog.Attr
	group string
}

func (h *slogHandler) Enabled(_ context.Context, lvl slog.Level) bool {
	return h.l.GetLevel() <= zerologLevel(lvl)
}

func zerologLevel(lvl slog.Level) zerolog.Level {
	switch {
	case lvl >= slog.LevelError:
		return zerolog.ErrorLevel
	case lvl >= slog.LevelWarn:
		return zerolog.WarnLevel
	default:
		return zerolog.DebugLevel
	}
}

func (h *slogHandler) Handle(_ context.Context, r slog.Record) error {
	ev := h.l.WithLevel(zerologLevel(r.Level))
	add := func(a slog.Attr) bool {
		k := a.Key
		if h.group != "" {
			k = h.group + "." + k
		}
		ev = ev.Interface(k, a.Value.Any())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	ev.Msg(r.Message)
	return nil
}

func (h *slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &n
}

func (h *slogHandler) WithGroup(name string) slog.Handler {
	n := *h
	if n.group != "" {
		name = n.group + "." + name
	}
	n.group = name
	return &n
}
