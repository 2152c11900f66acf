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
	"golang.org/x/net/netutil"

	"github.com/chargeguard/chargeguard/actuator"
	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/alerting/api"
	"github.com/chargeguard/chargeguard/alerting/notify"
	"github.com/chargeguard/chargeguard/broker"
	"github.com/chargeguard/chargeguard/broker/auth"
	"github.com/chargeguard/chargeguard/cluster"
	"github.com/chargeguard/chargeguard/config"
	"github.com/chargeguard/chargeguard/console"
	"github.com/chargeguard/chargeguard/ingest"
	"github.com/chargeguard/chargeguard/ingest/influx"
	"github.com/chargeguard/chargeguard/ingest/spool"
	"github.com/chargeguard/chargeguard/telemetry"
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
	web    *console.Console
	ln     net.Listener
	mux    *http.ServeMux
	opts   Options

	// storageErr is why the spool could not be opened (spool and writer
	// are then nil): storage is degraded, the safety path runs.
	storageErr error
	// Cluster mode (cfg.Cluster.Enabled): nil otherwise.
	cluster *cluster.Cluster
	gate    *cluster.Gate
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
			AllowAnonymous:   cfg.MQTT.AllowAnonymous,
			MaxPreAuthConns:  cfg.MQTT.MaxPreAuthConnections,
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

	// The safety path must start whatever state the disk is in: a spool
	// that cannot open degrades storage (nothing is acked, the broker keeps
	// the readings) but never stops the engine and its live session.
	storageDegraded := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "chargeguard_storage_degraded",
		Help: "1 when the spool could not be opened: readings are not stored (the broker holds them unacked) until chargeguard is restarted with a working data directory.",
	})
	reg.MustRegister(storageDegraded)
	var store ingest.Spool
	a.spool, err = spool.Open(spool.Options{
		Dir:        filepath.Join(cfg.DataDir, "spool"),
		MaxBytes:   cfg.Spool.MaxBytes,
		Logger:     o.Logger,
		Registerer: reg,
	})
	if err != nil {
		a.spool, a.storageErr = nil, fmt.Errorf("open spool: %w", err)
		storageDegraded.Set(1)
		o.Logger.Error().Err(a.storageErr).Msg("storage degraded: the spool cannot be opened; the safety engine runs, readings are not stored until this is fixed and chargeguard restarted")
		store = noSpool{a.storageErr}
	} else {
		store = a.spool
		a.writer, err = a.newWriter(cfg, o, reg)
		if err != nil {
			return nil, err
		}
	}
	a.rec = newRecorder(store, o.Logger, reg)

	// Alertmanager (or the log): the safety engine pages through it, and
	// in cluster mode the shard registry too.
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

	// Cluster mode: every MQTT client id carries the member name (each
	// replica its own persistent storage session), storage joins a shared
	// subscription, and the gate decides which replica's engine acts.
	clientID := cfg.MQTT.ClientID
	statePath := filepath.Join(cfg.DataDir, "safety-state.json")
	if cfg.Cluster.Enabled() {
		member, err := clusterMember(cfg.Cluster)
		if err != nil {
			return nil, err
		}
		clientID += "-" + member
		if err := a.newCluster(member); err != nil {
			return nil, err
		}
		a.restoreFromCluster(statePath)
	}

	// The safety path: its own MQTT session for commands and the engine.
	pub := o.Publisher
	if pub == nil {
		a.act, err = actuator.New(actuator.Options{
			BrokerURL: brokerURL,
			ClientID:  clientID + "-cmd",
			Username:  cfg.MQTT.Username,
			Password:  string(cfg.MQTT.Password),
			// Contract v1.1: every close awaiting its ack is sent again
			// whenever the command session reconnects. a.guard is set
			// below, before Run connects the session.
			OnConnect:  func() { a.guard.Reconnected() },
			Logger:     o.Logger,
			Registerer: reg,
		})
		if err != nil {
			return nil, err
		}
		pub = a.act
	}
	var (
		notifier alerting.Notifier = a.notify
		recorder alerting.Recorder = a.rec
		onState  func([]byte)
		observer ingest.Observer
	)
	if a.gate != nil {
		pub, notifier, recorder = a.gate.Publisher(pub), a.gate.Notifier(notifier), a.gate.Recorder(recorder)
		onState = a.cluster.SaveState
	}
	a.guard, err = alerting.NewService(alerting.ServiceOptions{
		Rules:      cfg.Alerting.Rules,
		Engine:     alerting.EngineOptions{Root: cfg.MQTT.TopicRoot},
		StatePath:  statePath,
		OnState:    onState,
		Publisher:  pub,
		Notifier:   notifier,
		Recorder:   recorder,
		BoardURL:   cfg.Alerting.BoardURL,
		ConsoleURL: cfg.Console.ExternalURL,
		Logger:     o.Logger,
		Registerer: reg,
	})
	if err != nil {
		return nil, err
	}

	observer = a.guard
	shareGroup := ""
	if a.cluster != nil {
		shareGroup = cfg.Cluster.ShareGroup
		// A follower's engine mirrors the leader's commands; the leader's
		// own echo, and anything seen while no leader is confirmed, is not
		// mirrored (two replicas would take each other's ids).
		cl := a.cluster
		observer = ingest.ObserverFunc(func(m telemetry.Message) {
			if m.Command != nil && cl.Role() != cluster.RoleFollower {
				return
			}
			a.guard.Observe(m)
		})
	}
	a.ingest, err = ingest.New(ingest.Options{
		BrokerURL:    brokerURL,
		ClientID:     clientID,
		Username:     cfg.MQTT.Username,
		Password:     string(cfg.MQTT.Password),
		KeepAlive:    cfg.MQTT.KeepAlive,
		Root:         cfg.MQTT.TopicRoot,
		Workers:      cfg.Ingest.Workers,
		QueueSize:    cfg.Ingest.QueueSize,
		MaxClockSkew: cfg.Ingest.MaxClockSkew,
		LiveLagMark:  liveLagMark(cfg.Ingest.LiveLagMark),
		// The embedded broker drops what a session's write queue cannot
		// take, so its storage session must keep reading: only the
		// InfluxDB writer yields there (the spool holds the backlog).
		StorageYieldMax: workerYield(cfg.MQTT.URL == ""),
		Spool:           store,
		Observer:        observer,
		ShareGroup:      shareGroup,
		Sites:           cfg.MQTT.Sites,
		OnPileStatus:    a.pileStatusObserver(),
		// Commands reach the observer only in cluster mode (see above).
		ObserveCommands: a.cluster != nil,
		Logger:          o.Logger,
		Registerer:      reg,
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

	tokens := make([]api.Token, 0, len(cfg.API.Tokens))
	for _, t := range cfg.API.Tokens {
		tokens = append(tokens, api.Token{Name: t.Name, Token: string(t.Token), Role: api.Role(t.Role)})
	}
	// With no token, reads are open only where the configuration chose it:
	// a loopback listener, or api.anonymous_reads (config.Validate refuses
	// anything else).
	operatorAPI, err := api.New(api.Options{
		Guard:          guard{a.guard, a},
		Tokens:         tokens,
		AnonymousReads: cfg.API.AnonymousReads || config.IsLoopback(cfg.HTTP.Addr),
		Logger:         o.Logger,
		Registerer:     reg,
	})
	if err != nil {
		return nil, err
	}
	if a.cluster != nil {
		a.mux.Handle("/api/", a.clusterAPI(operatorAPI.Handler()))
	} else {
		a.mux.Handle("/api/", operatorAPI.Handler())
	}
	if cfg.HTTP.Pprof {
		// Profiles show the process' memory: behind an operator token, or
		// with no token configured on a loopback listener only (checked by
		// config.Validate).
		var gate func(http.Handler) http.Handler = operatorAPI.OperatorOnly
		if len(tokens) == 0 {
			gate = func(h http.Handler) http.Handler { return h }
		}
		a.mux.Handle("/debug/pprof/", gate(http.HandlerFunc(pprof.Index)))
		a.mux.Handle("/debug/pprof/profile", gate(http.HandlerFunc(pprof.Profile)))
		a.mux.Handle("/debug/pprof/symbol", gate(http.HandlerFunc(pprof.Symbol)))
		a.mux.Handle("/debug/pprof/trace", gate(http.HandlerFunc(pprof.Trace)))
	}
	// The web console takes every path no other handler claims.
	if a.web, err = a.newConsole(operatorAPI); err != nil {
		return nil, err
	}
	a.mux.Handle("/", a.web.Handler())
	return a, nil
}

func (a *App) newWriter(cfg config.Config, o Options, reg prometheus.Registerer) (*influx.Writer, error) {
	return influx.New(influx.Options{
		URL:                cfg.Influx.URL,
		Token:              string(cfg.Influx.Token),
		Org:                cfg.Influx.Org,
		Bucket:             cfg.Influx.Bucket,
		BatchRecords:       cfg.Influx.BatchRecords,
		Concurrency:        cfg.Influx.WriteConcurrency,
		BatchBytes:         cfg.Influx.BatchBytes,
		Timeout:            cfg.Influx.Timeout,
		DeadLetterPath:     filepath.Join(cfg.DataDir, "deadletter.lp"),
		DeadLetterMaxBytes: cfg.Influx.DeadLetterMaxBytes,
		// The cut comes first: while the engine's live session is behind,
		// a request waits, up to a second at a time, and for 10 s after it
		// was, requests go one at a time (a.ingest is set before anything
		// runs).
		Yield:      func(ctx context.Context) { a.ingest.YieldToLive(ctx, time.Second, "writer") },
		OneAtATime: func() bool { return a.ingest.LivePressed() },
		Logger:     o.Logger,
		Registerer: reg,
	}, a.spool)
}

// liveLagMark is ingest's LiveLagMark for the configured one: 0s turns
// the canary off, which ingest spells negative.
func liveLagMark(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// workerYield is ingest's StorageYieldMax: the default with an external
// broker, which keeps storage's backlog in its persistent session; none
// with the embedded one.
func workerYield(embedded bool) time.Duration {
	if embedded {
		return -1
	}
	return 0
}

// noSpool stands in for a spool that could not be opened: it refuses
// every append, so ingest acks nothing and the broker keeps the readings.
type noSpool struct{ err error }

func (n noSpool) Append([][]byte) error { return n.err }

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
	// The command session is the one that cuts: without it a hazard is
	// detected but no close can go out, so the guard is not ready.
	switch {
	case a.act == nil:
		status["commands"] = "ok (publisher given by the embedding program)"
	case a.act.Connected():
		status["commands"] = "ok"
	default:
		status["commands"] = "command session to the broker is down: close commands cannot be sent"
		code = http.StatusServiceUnavailable
	}
	// InfluxDB being down does not make chargeguard unready: it keeps
	// guarding ports and spooling readings. It is reported, not failed.
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if a.writer == nil {
		status["influxdb"] = "not written to: storage degraded"
	} else if err := a.writer.Ping(ctx); err != nil {
		status["influxdb"] = "unreachable (readings are spooled)"
	} else {
		status["influxdb"] = "ok"
	}
	// Storage trouble is reported, not failed, like InfluxDB: the guard
	// still guards; the alerts ChargeguardStorageDegraded and
	// ChargeguardSpoolQuarantine call an operator.
	switch {
	case a.storageErr != nil:
		status["storage"] = "degraded: " + a.storageErr.Error() + "; readings are not stored, the broker holds them unacked"
	case a.spool.Damage() != "":
		status["storage"] = "degraded: " + a.spool.Damage()
	default:
		status["storage"] = "ok"
	}
	if a.ingest.SpoolBlocked() {
		status["spool"] = "refusing messages (full or failing); broker holds the backlog"
	} else {
		status["spool"] = "ok"
	}
	if a.cluster != nil {
		line, ok := a.clusterReady()
		status["cluster"] = line
		if !ok {
			code = http.StatusServiceUnavailable
		}
		// Reported, never failed: an overlap or an unguarded site is a
		// configuration to fix, often another shard's, and taking this
		// replica out of service would help no one (docs/scale.md).
		if line, ok := a.shardsReady(); ok {
			status["shards"] = line
		}
	}
	writeJSON(w, code, status)
}

// HTTP limits. Reads answer from the engine's published view, so a slow
// client costs only its connection; these bound how long and how many.
const (
	httpReadHeaderTimeout = 10 * time.Second
	// httpReadTimeout bounds a whole request: bodies are at most 4 KiB.
	httpReadTimeout = 30 * time.Second
	// httpWriteTimeout bounds writing one response. It is set per request
	// (writeDeadline), not on the server, so that a streaming handler (the
	// console's server-sent events) can lift it with
	// http.ResponseController.SetWriteDeadline(time.Time{}).
	httpWriteTimeout  = time.Minute
	httpIdleTimeout   = 2 * time.Minute
	httpMaxHeaderSize = 64 << 10
)

func (a *App) httpServer() *http.Server {
	return &http.Server{
		Handler:           writeDeadline(a.mux, httpWriteTimeout),
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderSize,
	}
}

// writeDeadline gives every response d to be written; a handler that
// streams extends or clears it through http.ResponseController.
func writeDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
		h.ServeHTTP(w, r)
	})
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
	srv := a.httpServer()
	var comps []component
	if a.broker != nil {
		comps = append(comps, component{"broker", a.broker.Run})
	}
	if a.writer != nil {
		comps = append(comps, component{"influx writer", a.writer.Run})
	}
	comps = append(comps,
		component{"recorder", a.rec.Run},
		component{"notifier", a.notify.Run},
	)
	if a.cluster != nil {
		// Before the engine: leadership is known by the time it acts, and
		// the replica resigns only after the engine has stopped.
		comps = append(comps, component{"cluster", a.cluster.Run})
	}
	if a.act != nil {
		comps = append(comps, component{"actuator", a.act.Run})
	}
	comps = append(comps,
		component{"safety engine", a.guard.Run},
		component{"ingest", a.ingest.Run},
		component{"console", a.web.Run},
		component{"http", func(ctx context.Context) error {
			go func() {
				<-ctx.Done()
				sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
				defer c()
				_ = srv.Shutdown(sctx)
			}()
			if err := srv.Serve(netutil.LimitListener(a.ln, a.cfg.HTTP.MaxConns)); err != nil && !errors.Is(err, http.ErrServerClosed) {
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
	stopping := time.Now()
	for i := len(started) - 1; i >= 0; i-- {
		started[i].stop()
		<-started[i].done
	}
	a.closeAll()
	err := errors.Join(errs...)
	// The last line says the stop is complete, so an operator reading the
	// log knows the spool and the safety state were closed.
	took := time.Since(stopping).Round(time.Millisecond).String()
	if err != nil {
		a.log.Error().Err(err).Str("took", took).Msg("stopped after a failure")
	} else {
		a.log.Info().Str("took", took).Msg("stopped")
	}
	return err
}

// Reload re-reads the rules from the configuration file and applies them
// without forgetting any state (SIGHUP and the API call it).
func (a *App) Reload(ctx context.Context) error {
	if a.opts.ConfigPath == "" {
		return fmt.Errorf("reload: chargeguard was started without --config; nothing to re-read: %w", errors.ErrUnsupported)
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
	err := g.app.Reload(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errors.ErrUnsupported): // no --config: 501, not a rules problem
		return err
	default:
		return fmt.Errorf("%w: %w", api.ErrInvalidRules, err)
	}
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
	if a.cluster != nil {
		_ = a.cluster.Close()
		a.cluster = nil
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
