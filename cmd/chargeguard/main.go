// Command chargeguard guards e-bike charging ports: it ingests pile
// telemetry from MQTT into InfluxDB and cuts a port before it can start a
// fire. Configuration comes from a YAML file, CHARGEGUARD_* environment
// variables and flags, in that order of precedence (lowest first).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/chargeguard/chargeguard/app"
	"github.com/chargeguard/chargeguard/config"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "check-shards" {
		os.Exit(checkShards(os.Args[2:], os.Stdout, os.Stderr))
	}
	if err := run(os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "chargeguard:", err)
		os.Exit(2)
	}
}

// setting is one value that a flag and an environment variable can set.
type setting struct {
	name  string // flag name; the variable is CHARGEGUARD_ + upper(name with - as _)
	usage string
	set   func(c *config.Config, v string) error
	field func(c *config.Config) *string // the plain string it sets; nil for a secret
}

func settings() []setting {
	str := func(name, usage string, f func(c *config.Config) *string) setting {
		return setting{name, usage, func(c *config.Config, v string) error { *f(c) = v; return nil }, f}
	}
	secret := func(name, usage string, f func(c *config.Config) *config.Secret) setting {
		return setting{name, usage, func(c *config.Config, v string) error { *f(c) = config.Secret(v); return nil }, nil}
	}
	return []setting{
		str("mqtt-url", "external MQTT broker URL (tcp://host:1883, ssl://host:8883); empty starts the embedded broker", func(c *config.Config) *string { return &c.MQTT.URL }),
		str("mqtt-listen", "embedded broker listen address", func(c *config.Config) *string { return &c.MQTT.Listen }),
		str("mqtt-username", "MQTT username", func(c *config.Config) *string { return &c.MQTT.Username }),
		secret("mqtt-password", "MQTT password (prefer the environment variable)", func(c *config.Config) *config.Secret { return &c.MQTT.Password }),
		str("influx-url", "InfluxDB URL", func(c *config.Config) *string { return &c.Influx.URL }),
		secret("influx-token", "InfluxDB token (1.8: user:password; prefer the environment variable)", func(c *config.Config) *config.Secret { return &c.Influx.Token }),
		str("influx-org", "InfluxDB organisation (ignored by 1.8)", func(c *config.Config) *string { return &c.Influx.Org }),
		str("influx-bucket", "InfluxDB bucket (1.8: database/retention-policy)", func(c *config.Config) *string { return &c.Influx.Bucket }),
		str("data-dir", "directory of the spool and the safety state", func(c *config.Config) *string { return &c.DataDir }),
		str("http-addr", "address of /metrics, /healthz, /readyz and the API", func(c *config.Config) *string { return &c.HTTP.Addr }),
		{"api-anonymous-reads", "true opens API reads to anyone who can reach http-addr when no token is configured; default false", func(c *config.Config, v string) error {
			b, err := strconv.ParseBool(v)
			c.API.AnonymousReads = b
			return err
		}, nil},
		str("log-level", "debug, info, warn or error", func(c *config.Config) *string { return &c.Log.Level }),
		str("log-format", "auto (pretty on a terminal), json or console", func(c *config.Config) *string { return &c.Log.Format }),
		str("cluster-member", "this replica's name in cluster mode (default: the host name)", func(c *config.Config) *string { return &c.Cluster.Member }),
		str("cluster-advertise-url", "this replica's HTTP base URL as the other replicas reach it (cluster mode)", func(c *config.Config) *string { return &c.Cluster.AdvertiseURL }),
	}
}

// usageOf is a flag's help: what it sets, its built-in default (the flag's
// own default is empty, so that an unset flag leaves the file and the
// environment alone) and its environment variable.
func usageOf(s setting) string {
	u := s.usage + " (env " + envName(s.name)
	if s.field != nil {
		d := config.Default()
		if v := *s.field(&d); v != "" {
			u += fmt.Sprintf("; default %q", v)
		}
	}
	return u + ")"
}

func envName(flagName string) string {
	return "CHARGEGUARD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// load builds the configuration: defaults, then the YAML file, then the
// environment, then flags.
func load(args []string, getenv func(string) string, stderr io.Writer) (cfg config.Config, path string, err error) {
	fs := flag.NewFlagSet("chargeguard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration file (env "+envName("config")+")")
	values := map[string]*string{}
	all := settings()
	for _, s := range all {
		values[s.name] = fs.String(s.name, "", usageOf(s))
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: chargeguard [flags]\n       chargeguard check-shards [--sites FILE|LIST] SHARD.yaml... (see check-shards -h)\n\nFlags override CHARGEGUARD_* environment variables, which override the --config file.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, "", err
	}
	if fs.NArg() > 0 {
		return cfg, "", fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	path = *configPath
	if path == "" {
		path = getenv(envName("config"))
	}
	cfg = config.Default()
	source := "defaults"
	if path != "" {
		if cfg, err = config.Load(path); err != nil {
			return cfg, path, err
		}
		source = "config " + path
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, s := range all {
		if v, ok := lookup(getenv, envName(s.name)); ok {
			if err := s.set(&cfg, v); err != nil {
				return cfg, path, fmt.Errorf("%s: %w", envName(s.name), err)
			}
		}
		if set[s.name] {
			if err := s.set(&cfg, *values[s.name]); err != nil {
				return cfg, path, fmt.Errorf("--%s: %w", s.name, err)
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, path, fmt.Errorf("%s (with environment and flags): %w", source, err)
	}
	return cfg, path, nil
}

func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

func run(args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, path, err := load(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(cfg, app.Options{Logger: log, ConfigPath: path})
	if err != nil {
		return err
	}
	// SIGHUP re-reads the rules; the state (latched ports, alerts) stays.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := a.Reload(ctx); err != nil {
					log.Error().Err(err).Msg("reload refused; the previous rules stay in force")
				}
			}
		}
	}()
	return a.Run(ctx)
}

func newLogger(c config.Log, w io.Writer) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(strings.ToLower(c.Level))
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	pretty := c.Format == "console"
	if c.Format == "auto" {
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			pretty = true
		}
	}
	if pretty {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}
