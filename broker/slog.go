package broker

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/rs/zerolog"
)

// newSlog adapts zerolog to the log/slog logger that mochi-mqtt takes, so
// the broker's lines land in chargeguard's one log stream. mochi logs client
// connects at info; they are demoted to debug because a fleet of piles
// reconnecting would drown everything else.
//
// mochi passes whole packets as attributes (a second CONNECT is logged with
// its username and password) and errors that zerolog would encode as empty
// structs. So only plain values are logged as they are: an error becomes its
// text, a packet becomes its type and size, and any other value only its
// type name. Nothing a client sent reaches the log but its client id.
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
	lvl, msg := zerologLevel(r.Level), r.Message
	if msg == "" {
		// mochi's listener logs every connection that ends in an error
		// (a refused login, a timeout) at warn with no message: a flood
		// would flood the log. The guard counts and samples refusals.
		lvl, msg = zerolog.DebugLevel, "client connection ended with an error"
	}
	if h.l.GetLevel() > lvl {
		return nil
	}
	ev := h.l.WithLevel(lvl)
	add := func(a slog.Attr) bool {
		k := a.Key
		if h.group != "" {
			k = h.group + "." + k
		}
		addValue(ev, k, a.Value.Resolve())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	ev.Msg(msg)
	return nil
}

// addValue adds one attribute to ev without ever serialising a struct.
func addValue(ev *zerolog.Event, k string, v slog.Value) {
	switch v.Kind() {
	case slog.KindString:
		ev.Str(k, v.String())
	case slog.KindInt64:
		ev.Int64(k, v.Int64())
	case slog.KindUint64:
		ev.Uint64(k, v.Uint64())
	case slog.KindFloat64:
		ev.Float64(k, v.Float64())
	case slog.KindBool:
		ev.Bool(k, v.Bool())
	case slog.KindDuration:
		ev.Dur(k, v.Duration())
	case slog.KindTime:
		ev.Time(k, v.Time())
	default:
		switch x := v.Any().(type) {
		case nil:
		case error:
			ev.Str(k, x.Error())
		case packets.Packet:
			ev.Str(k, packetSummary(&x))
		case *packets.Packet:
			ev.Str(k, packetSummary(x))
		default:
			ev.Str(k, fmt.Sprintf("<%T>", x))
		}
	}
}

// packetSummary describes a packet without its contents.
func packetSummary(pk *packets.Packet) string {
	name, ok := packets.PacketNames[pk.FixedHeader.Type]
	if !ok {
		name = "unknown"
	}
	return fmt.Sprintf("%s of %d bytes", name, pk.FixedHeader.Remaining)
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
