package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/chargeguard/chargeguard/actuator"
	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/alerting/api"
	"github.com/chargeguard/chargeguard/alerting/notify"
	"github.com/chargeguard/chargeguard/broker"
	"github.com/chargeguard/chargeguard/broker/auth"
	"github.com/chargeguard/chargeguard/config"
	"github.com/chargeguard/chargeguard/ingest"
	"github.com/chargeguard/chargeguard/ingest/influx"
	"github.com/chargeguard/chargeguard/ingest/spool"
)

// Options are what a process gives the app besides its configuration.
type Options struct {
	Logger zerolog.Logger
	// Registry collects every metric; nil makes a fresh one with the Go and
	// process collectors.
	Registry *prometheus.Registry
	// ConfigPath is the file Reload re-reads the rules from; "" keeps the
	// rules given at start.
	ConfigPath string
	// Publisher replaces the MQTT command session (tests). Optional.
	Publisher alerting.Publisher
}

// App is a configured chargeguard process.
type App struct {
	cfg    config.Config
	log    zerolog.Logger
	reg    *prometheus.Registry
	broker *broker.Broker
	spool  *spool.Spool
	writer *influx.Writer
	ingest *ingest.Ingester
	act    *actuator.Actuator
	notify *notify.Notifier
	guard  *alerting.Service
	rec    *recorder
	ln     net.Listener
	mux    *http.ServeMux
	opts   Options
}

// New validates cfg and builds the components. Listeners are bound here, so
// an address in use fails the start with a clear error.
func New(cfg config.Config, o Options) (a *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	a = &App{cfg: cfg, log: o.Logger, reg: reg, mux: http.NewServeMux(), opts: o}
	defer func() {
		if err != nil {
			a.closeAll()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir %s: %w", cfg.DataDir, err)
	}

	brokerURL := cfg.MQTT.URL
	if brokerURL == "" {
		bo := broker.Options{
			Addr:             cfg.MQTT.Listen,
			MaxWritesPending: cfg.MQTT.WriteQueue,
			// A telemetry burst waits in the piles (no PUBACK) while the
			// storage or the live session is behind, rather than in the
			// broker's memory or dropped; the command session never waits.
			// The storage session acks only after the spool's fsync, so
			// its mark is what its own queue (ingest.queue_size) takes:
			// a group commit can then take thousands of messages, where
			// half the write queue would cap it. Storage trouble must not
			// delay a cut, so a reading waits for storage at most 100 ms;
			// past that it goes on to the engine and waits in storage's
			// queues (or, if they are full, is dropped and counted). The
			// live session acks as it reads: the default mark, under its
			// write queue, and the default 2 s, since holding only paces
			// an engine that is behind anyway.
			Hold: broker.HoldOptions{
				Watch: map[string]broker.Watch{
					cfg.MQTT.ClientID:           {Mark: cfg.Ingest.QueueSize / 2, Max: 100 * time.Millisecond},
					cfg.MQTT.ClientID + "-live": {},
				},
				Exempt: []string{cfg.MQTT.ClientID + "-cmd"},
				Topics: []string{"/telemetry"},
			},
			Logger:     o.Logger,
			Registerer: reg,
		}
		if cfg.MQTT.PasswordFile != "" {
			bo.Auth = auth.Options{
				PasswordFile: cfg.MQTT.PasswordFile,
				ACL:          auth.ACL{Root: cfg.MQTT.TopicRoot, Services: []string{cfg.MQTT.Username}},
				Logger:       o.Logger,
				Registerer:   reg,
			}
		}
		a.broker, err = broker.New(bo)
		if err != nil {
			return nil, err
		}
		brokerURL = a.broker.URL()
	}

	a.spool, err = spool.Open(spool.Options{
		Dir:        filepath.Join(cfg.DataDir, "spool"),
		MaxBytes:   cfg.Spool.MaxBytes,
		Logger:     o.Logger,
		Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	a.writer, err = influx.New(influx.Options{
		URL:            cfg.Influx.URL,
		Token:          string(cfg.Influx.Token),
		Org:            cfg.Influx.Org,
		Bucket:         cfg.Influx.Bucket,
		BatchRecords:   cfg.Influx.BatchRecords,
		BatchBytes:     cfg.Influx.BatchBytes,
		Timeout:        cfg.Influx.Timeout,
		DeadLetterPath: filepath.Join(cfg.DataDir, "deadletter.lp"),
		Logger:         o.Logger,
		Registerer:     reg,
	}, a.spool)
	if err != nil {
		return nil, err
	}
	a.rec = newRecorder(a.spool, o.Logger, reg)

	// The safety path: its own MQTT session for commands, the engine, and
	// Alertmanager (or the log).
	pub := o.Publisher
	if pub == nil {
		a.act, err = actuator.New(actuator.Options{
			BrokerURL:  brokerURL,
			ClientID:   cfg.MQTT.ClientID + "-cmd",
			Username:   cfg.MQTT.Username,
			Password:   string(cfg.MQTT.Password),
			Logger:     o.Logger,
			Registerer: reg,
		})
		if err != nil {
			return nil, err
		}
		pub = a.act
	}
	a.notify, err = notify.New(notify.Options{
		URLs:           cfg.Alerting.Alertmanagers,
		ResendInterval: cfg.Alerting.ResendInterval,
		RunbookBaseURL: cfg.Alerting.RunbookURL,
		Logger:         o.Logger,
		Registerer:     reg,
	})
	if err != nil {
		return nil, fmt.Errorf("alerting.alertmanagers: %w", err)
	}
	a.guard, err = alerting.NewService(alerting.ServiceOptions{
		Rules:      cfg.Alerting.Rules,
		Engine:     alerting.EngineOptions{Root: cfg.MQTT.TopicRoot},
		StatePath:  filepath.Join(cfg.DataDir, "safety-state.json"),
		Publisher:  pub,
		Notifier:   a.notify,
		Recorder:   a.rec,
		BoardURL:   cfg.Alerting.BoardURL,
		Logger:     o.Logger,
		Registerer: reg,
	})
	if err != nil {
		return nil, err
	}

	a.ingest, err = ingest.New(ingest.Options{
		BrokerURL:    brokerURL,
		ClientID:     cfg.MQTT.ClientID,
		Username:     cfg.MQTT.Username,
		Password:     string(cfg.MQTT.Password),
		KeepAlive:    cfg.MQTT.KeepAlive,
		Root:         cfg.MQTT.TopicRoot,
		Workers:      cfg.Ingest.Workers,
		QueueSize:    cfg.Ingest.QueueSize,
		MaxClockSkew: cfg.Ingest.MaxClockSkew,
		Spool:        a.spool,
		Observer:     a.guard,
		Logger:       o.Logger,
		Registerer:   reg,
	})
	if err != nil {
		return nil, err
	}

	a.ln, err = net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return nil, fmt.Errorf("http.addr %s: %w", cfg.HTTP.Addr, err)
	}
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	a.mux.HandleFunc("GET /readyz", a.readyz)
	// Profiles for an engineer chasing CPU or memory on a live guard; they
	// read state, never change it.
	a.mux.HandleFunc("/debug/pprof/", pprof.Index)
	a.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	a.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	a.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)

	tokens := make([]api.Token, 0, len(cfg.API.Tokens))
	for _, t := range cfg.API.Tokens {
		tokens = append(tokens, api.Token{Name: t.Name, Token: string(t.Token), Role: api.Role(t.Role)})
	}
	operatorAPI, err := api.New(api.Options{
		Guard:      guard{a.guard, a},
		Tokens:     tokens,
		Logger:     o.Logger,
		Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	a.mux.Handle("/api/", operatorAPI.Handler())
	return a, nil
}

// Mux is the HTTP mux, for components that add their API.
func (a *App) Mux() *http.ServeMux { return a.mux }

// HTTPAddr is the bound address of the HTTP server.
func (a *App) HTTPAddr() string { return a.ln.Addr().String() }

// BrokerURL is the MQTT broker chargeguard uses (the embedded one's when
// no external broker is configured).
func (a *App) BrokerURL() string {
	if a.broker != nil {
		return a.broker.URL()
	}
	return a.cfg.MQTT.URL
}

// Registry is the app's metric registry.
func (a *App) Registry() *prometheus.Registry { return a.reg }

func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	status := map[string]string{}
	code := http.StatusOK
	if err := a.ingest.Ready(); err != nil {
		status["mqtt"] = err.Error()
		code = http.StatusServiceUnavailable
	} else {
		status["mqtt"] = "ok"
	}
	// InfluxDB being down does not make chargeguard unready: it keeps
	// guarding ports and spooling readings. It is reported, not failed.
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.writer.Ping(ctx); err != nil {
		status["influxdb"] = "unreachable (readings are spooled)"
	} else {
		status["influxdb"] = "ok"
	}
	if a.ingest.SpoolBlocked() {
		status["spool"] = "refusing messages (full or failing); broker holds the backlog"
	} else {
		status["spool"] = "ok"
	}
	writeJSON(w, code, status)
}

// component is one long-lived part of the process.
type component struct {
	name string
	run  func(context.Context) error
}

// Run starts everything and blocks until ctx is done (or a component fails)
// and every component has stopped. Components start sinks first and
// sources last, and stop in the reverse order, so shutdown drains in order:
// ingest stops taking messages before the engine, the recorder and the
// InfluxDB writer stop, and the broker goes last.
func (a *App) Run(ctx context.Context) error {
	srv := &http.Server{Handler: a.mux, ReadHeaderTimeout: 10 * time.Second}
	var comps []component
	if a.broker != nil {
		comps = append(comps, component{"broker", a.broker.Run})
	}
	comps = append(comps,
		component{"influx writer", a.writer.Run},
		component{"recorder", a.rec.Run},
		component{"notifier", a.notify.Run},
	)
	if a.act != nil {
		comps = append(comps, component{"actuator", a.act.Run})
	}
	comps = append(comps,
		component{"safety engine", a.guard.Run},
		component{"ingest", a.ingest.Run},
		component{"http", func(ctx context.Context) error {
			go func() {
				<-ctx.Done()
				sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
				defer c()
				_ = srv.Shutdown(sctx)
			}()
			if err := srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		}},
	)

	failed := make(chan struct{})
	var (
		once sync.Once
		mu   sync.Mutex
		errs []error
	)
	type running struct {
		name string
		stop context.CancelFunc
		done chan struct{}
	}
	var started []running
	for _, c := range comps {
		cctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := c.run(cctx); err != nil && !errors.Is(err, context.Canceled) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
				mu.Unlock()
				a.log.Error().Err(err).Str("component", c.name).Msg("component failed; stopping chargeguard")
				// One component failing stops the process: a supervisor
				// restarts a whole guard, never a half-running one.
				once.Do(func() { close(failed) })
			}
		}()
		started = append(started, running{c.name, stop, done})
	}
	a.log.Info().Str("http", a.HTTPAddr()).Str("mqtt", a.BrokerURL()).Msg("chargeguard running")

	select {
	case <-ctx.Done():
	case <-failed:
	}
	a.log.Info().Msg("stopping")
	for i := len(started) - 1; i >= 0; i-- {
		started[i].stop()
		<-started[i].done
	}
	a.closeAll()
	return errors.Join(errs...)
}

// Reload re-reads the rules from the configuration file and applies them
// without forgetting any state (SIGHUP and the API call it).
func (a *App) Reload(ctx context.Context) error {
	if a.opts.ConfigPath == "" {
		return errors.New("reload: chargeguard was started without --config; nothing to re-read")
	}
	cfg, err := config.Load(a.opts.ConfigPath)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if err := cfg.Alerting.Rules.Validate(); err != nil {
		return fmt.Errorf("reload: config %s: alerting.rules: %w", a.opts.ConfigPath, err)
	}
	return a.guard.Reload(ctx, cfg.Alerting.Rules)
}

// guard adapts the safety service to the operator API: its Reload re-reads
// the configuration file.
type guard struct {
	*alerting.Service
	app *App
}

func (g guard) Reload(ctx context.Context) error {
	if err := g.app.Reload(ctx); err != nil {
		return fmt.Errorf("%w: %w", api.ErrInvalidRules, err)
	}
	return nil
}

// Guard is the safety service, for the operator API and tests.
func (a *App) Guard() *alerting.Service { return a.guard }

func (a *App) closeAll() {
	if a.broker != nil {
		_ = a.broker.Close() // no-op once Run closed it
	}
	if a.spool != nil {
		if err := a.spool.Close(); err != nil {
			a.log.Error().Err(err).Msg("close spool")
		}
		a.spool = nil
	}
	if a.ln != nil {
		a.ln.Close()
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
