package app

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/chargeguard/chargeguard/alerting/api"
	"github.com/chargeguard/chargeguard/console"
	"github.com/chargeguard/chargeguard/ingest/influx"
)

// newConsole builds the web console on the same service and credentials as
// the operator API. With no token configured it is open read-only, as the
// API then is.
func (a *App) newConsole(operatorAPI *api.API) (*console.Console, error) {
	o := console.Options{
		Guard:      a.guard,
		Logger:     a.log,
		Registerer: a.reg,
	}
	if u, err := url.Parse(a.cfg.Console.ExternalURL); err == nil && u.Scheme == "https" {
		o.SecureCookies = true
	}
	if len(a.cfg.API.Tokens) > 0 {
		o.Auth = operatorAPI
	}
	if a.cfg.Influx.URL != "" {
		// The port charts read the hour before a restart from where the
		// ingest stores readings, with the ingest's settings.
		r, err := influx.NewReader(influx.ReaderOptions{
			URL: a.cfg.Influx.URL, Token: string(a.cfg.Influx.Token), Bucket: a.cfg.Influx.Bucket,
			Timeout: min(a.cfg.Influx.Timeout, influx.DefaultReadTimeout),
		})
		if err != nil {
			return nil, fmt.Errorf("console: influx: %w", err)
		}
		o.History = portHistory(r)
		o.HistoryTimeout = influx.DefaultReadTimeout
	}
	return console.New(o)
}

// portHistory adapts the InfluxDB reader to the console's HistoryFunc.
func portHistory(r *influx.Reader) console.HistoryFunc {
	return func(ctx context.Context, site, pile string, port int, from, to time.Time, step time.Duration) ([]console.HistorySample, error) {
		rs, err := r.PortReadings(ctx, site, pile, port, from, to, step)
		out := make([]console.HistorySample, len(rs))
		for i, x := range rs {
			out[i] = console.HistorySample{At: x.At, TempC: x.TempC, A: x.A}
		}
		return out, err
	}
}
