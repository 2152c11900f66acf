package app

import (
	"net/url"

	"github.com/chargeguard/chargeguard/alerting/api"
	"github.com/chargeguard/chargeguard/console"
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
	return console.New(o)
}
