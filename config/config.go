package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/broker"
	"github.com/chargeguard/chargeguard/telemetry"
)

// Config is the whole configuration of a chargeguard process.
type Config struct {
	MQTT     MQTT     `yaml:"mqtt"`
	Influx   Influx   `yaml:"influx"`
	Spool    Spool    `yaml:"spool"`
	Ingest   Ingest   `yaml:"ingest"`
	Log      Log      `yaml:"log"`
	DataDir  string   `yaml:"data_dir"`
	HTTP     HTTP     `yaml:"http"`
	Alerting Alerting `yaml:"alerting"`
	API      API      `yaml:"api"`
	Cluster  Cluster  `yaml:"cluster"`
	Console  Console  `yaml:"console"`
}

// Cluster turns on cluster mode (docs/scale.md): replicas elect a leader in
// etcd, only the leader publishes commands and posts alerts, and storage is
// shared out over an MQTT shared subscription. With no endpoints it is off,
// and a single instance works as before, with no etcd at all.
type Cluster struct {
	// Endpoints of the etcd cluster (http(s)://host:2379). Empty: cluster
	// mode is off.
	Endpoints []string `yaml:"endpoints"`
	// Member names this replica: its MQTT client ids derive from it, so it
	// must be unique and stable across restarts (a StatefulSet pod name).
	// Empty: the host name.
	Member string `yaml:"member"`
	// AdvertiseURL is this replica's HTTP base URL as the other replicas
	// reach it (http://chargeguard-0.chargeguard:9466): an operator's
	// request to a follower is forwarded to the leader's.
	AdvertiseURL string `yaml:"advertise_url"`
	// Prefix of every etcd key chargeguard writes.
	Prefix string `yaml:"prefix"`
	// ShardsPrefix is the etcd key space that every shard of a city shares
	// (the same value in every replica set's configuration): each replica
	// claims its sites under <shards_prefix>sites/, so that a site claimed
	// by two shards, or seen on the broker and claimed by none, is found
	// (docs/scale.md, "Sharding sites").
	ShardsPrefix string `yaml:"shards_prefix"`
	// LeaseTTL is how long a leader stays leader without renewing its
	// lease, and how long without a confirmed leader before every replica
	// sends its closes itself. Whole seconds (etcd leases are).
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// DialTimeout bounds one connection attempt to etcd.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ShareGroup is the MQTT shared-subscription group the replicas'
	// storage sessions join ($share/<group>/<root>/#).
	ShareGroup string `yaml:"share_group"`
	Username   string `yaml:"username"`
	Password   Secret `yaml:"password"`
	TLS        TLS    `yaml:"tls"`
}

// Enabled reports whether cluster mode is on.
func (c Cluster) Enabled() bool { return len(c.Endpoints) > 0 }

// TLS names PEM files for a TLS client: the CA to trust, and a client
// certificate and key (both or neither).
type TLS struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Console configures the web console served on http.addr.
type Console struct {
	// ExternalURL is the address people open the console at
	// (https://guard.example.org/). Alerts sent to Alertmanager then carry
	// a console_url annotation to their port's page, and an https address
	// marks the session cookie Secure behind a TLS-terminating proxy.
	// Empty: no links.
	ExternalURL string `yaml:"external_url"`
}

// Alerting configures the safety engine and who it tells.
type Alerting struct {
	// Rules are the thresholds of the safety policy: defaults, then
	// overrides per site kind and per site. A reload (SIGHUP or the API)
	// re-reads them from the file without forgetting any state.
	Rules alerting.Rules `yaml:"rules"`
	// Alertmanagers are base URLs (http://host:9093). Empty: alerts go to
	// the log.
	Alertmanagers []string `yaml:"alertmanagers"`
	// ResendInterval re-posts active alerts so Alertmanager never times
	// them out.
	ResendInterval time.Duration `yaml:"resend_interval"`
	// BoardURL is the Grafana base URL that alerts link to.
	BoardURL string `yaml:"board_url"`
	// RunbookURL is where docs/runbooks is published.
	RunbookURL string `yaml:"runbook_url"`
}

// API holds the operator API's tokens. With tokens, every request needs
// one (viewer reads, operator also changes). With none, every change is
// refused, and reads are open only on a loopback http.addr or when
// AnonymousReads says so explicitly.
type API struct {
	Tokens []APIToken `yaml:"tokens"`
	// AnonymousReads opens reads (ports, alerts, audit) to anyone who can
	// reach http.addr when no token is configured. Off, a non-loopback
	// http.addr without tokens stops the start.
	AnonymousReads bool `yaml:"anonymous_reads"`
}

// APIToken is one bearer token: viewer reads, operator also resets ports
// and acknowledges alerts.
type APIToken struct {
	Name  string `yaml:"name"`
	Token Secret `yaml:"token"`
	// TokenFile names a file holding the token (a mounted Kubernetes or
	// Docker secret), so the config file itself holds no secret. Set Token
	// or TokenFile, not both.
	TokenFile string `yaml:"token_file"`
	Role      string `yaml:"role"`
}

// MQTT says where piles' messages come from.
type MQTT struct {
	// URL of an external broker (tcp://host:1883, ssl://host:8883). Empty
	// means: start the embedded broker on Listen and connect to it.
	URL string `yaml:"url"`
	// Listen is the embedded broker's TCP address; unused with an external broker.
	Listen string `yaml:"listen"`
	// PasswordFile turns on authentication and the per-pile topic ACL in
	// the embedded broker: a Mosquitto password file (cgpasswd or
	// mosquitto_passwd writes it), usernames site/pile for piles and
	// mqtt.username for chargeguard. Empty: anonymous (a demo).
	PasswordFile string `yaml:"password_file"`
	// AllowAnonymous lets the embedded broker listen on a non-loopback
	// address without password_file. Off, such a configuration is refused:
	// anyone who reaches the port could publish telemetry and commands.
	AllowAnonymous bool `yaml:"allow_anonymous"`
	// MaxPreAuthConnections bounds the embedded broker's connections that
	// have not logged in yet (separately for loopback and other clients);
	// a flood of half-open connections then costs a bounded amount of
	// memory in the safety process.
	MaxPreAuthConnections int    `yaml:"max_preauth_connections"`
	ClientID              string `yaml:"client_id"`
	Username              string `yaml:"username"`
	Password              Secret `yaml:"password"`
	// TopicRoot is the first topic level of every pile topic.
	TopicRoot string `yaml:"topic_root"`
	// Sites, when set, makes this process (in cluster mode: its replica
	// set) guard and store only these sites: its MQTT sessions subscribe
	// to <topic_root>/<site>/# for each instead of <topic_root>/#. One
	// process or replica set per shard of sites (docs/scale.md). Empty:
	// every site.
	Sites     []string      `yaml:"sites"`
	KeepAlive time.Duration `yaml:"keepalive"`
	// WriteQueue bounds the packets the embedded broker queues for one
	// client's socket; when a client's queue is full the broker drops the
	// delivery and counts it (chargeguard_broker_messages_dropped_total).
	// The broker allocates the queue for every connection, pile or not (8
	// bytes a slot), and chargeguard's own sessions can fill theirs (about
	// 1.3 KiB a telemetry message), so this is the main memory knob of a
	// large fleet: 65536 cost 512 KiB per pile. Chargeguard's storage
	// session has its own queue after it (ingest.queue_size).
	WriteQueue int `yaml:"write_queue"`
}

// Influx says where readings are stored. For InfluxDB 1.8 the bucket is
// "database/retention-policy" and the token "user:password" or empty.
type Influx struct {
	URL          string `yaml:"url"`
	Token        Secret `yaml:"token"`
	Org          string `yaml:"org"`
	Bucket       string `yaml:"bucket"`
	BatchRecords int    `yaml:"batch_records"`
	BatchBytes   int    `yaml:"batch_bytes"`
	// WriteConcurrency is how many write requests may be in flight at once
	// (docs/benchmarks.md measures 1, 2 and 4); the spool is still trimmed
	// in order.
	WriteConcurrency int           `yaml:"write_concurrency"`
	Timeout          time.Duration `yaml:"timeout"`
	// DeadLetterMaxBytes bounds data_dir/deadletter.lp, where points that
	// InfluxDB refuses for good are kept; past it they are counted, not
	// kept (the file shares the disk with the spool and the safety state).
	DeadLetterMaxBytes int64 `yaml:"dead_letter_max_bytes"`
}

// Spool bounds the write-ahead log between MQTT and InfluxDB.
type Spool struct {
	// MaxBytes is the disk quota of readings not yet in InfluxDB. When it is
	// reached chargeguard stops acking and the broker holds the backlog.
	MaxBytes int64 `yaml:"max_bytes"`
}

// Ingest tunes the pipeline from MQTT to the spool.
type Ingest struct {
	// Workers decode in parallel; messages of one pile always go to the same
	// worker so the safety engine sees them in arrival order.
	Workers int `yaml:"workers"`
	// MaxClockSkew: telemetry whose ts is further than this from chargeguard's
	// clock is stored at receive time instead, and counted.
	MaxClockSkew time.Duration `yaml:"max_clock_skew"`
	// QueueSize bounds the messages between MQTT and the spool. It should be
	// above the broker's in-flight window for this client.
	QueueSize int `yaml:"queue_size"`
	// LiveLagMark: while the safety engine's live session is further than
	// this behind the broker (measured with a canary it sends itself),
	// storage waits, so that a machine that cannot do both cuts first
	// (docs/safety.md, "Overload"). 0s turns the canary off; storage then
	// yields only to the live session's own backlog.
	LiveLagMark time.Duration `yaml:"live_lag_mark"`
}

// Log sets the logger.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // auto (pretty on a terminal), json, console
}

// HTTP is the address of /metrics, /healthz, /readyz and the API.
type HTTP struct {
	Addr string `yaml:"addr"`
	// Pprof serves /debug/pprof/ (off by default): behind an operator
	// token when api.tokens are configured, else only on a loopback addr.
	Pprof bool `yaml:"pprof"`
	// MaxConns caps the open HTTP connections; default 256.
	MaxConns int `yaml:"max_conns"`
}

// IsLoopback reports whether a host:port listens on loopback only.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Secret is a string that never prints itself.
type Secret string

// String hides the secret from fmt and loggers.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<secret>"
}

// MarshalYAML hides the secret when a config is dumped.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// Default returns the configuration used when a field is not set.
func Default() Config {
	return Config{
		MQTT: MQTT{
			Listen:                "127.0.0.1:1883",
			MaxPreAuthConnections: broker.DefaultMaxPreAuthConns,
			ClientID:              "chargeguard",
			TopicRoot:             telemetry.DefaultRoot,
			KeepAlive:             30 * time.Second,
			WriteQueue:            1024,
		},
		Influx: Influx{
			URL:              "http://127.0.0.1:8086",
			Org:              "chargeguard",
			Bucket:           "chargeguard/autogen",
			BatchRecords:     5000,
			BatchBytes:       4 << 20,
			WriteConcurrency: 2,
			Timeout:          10 * time.Second,
			// 64 MiB: a day of a few refused points a second, 1/16 of the
			// default spool quota.
			DeadLetterMaxBytes: 64 << 20,
		},
		Spool:   Spool{MaxBytes: 1 << 30},
		Ingest:  Ingest{Workers: 2, MaxClockSkew: 5 * time.Minute, QueueSize: 8192, LiveLagMark: 20 * time.Millisecond},
		Log:     Log{Level: "info", Format: "auto"},
		DataDir: "./data",
		HTTP:    HTTP{Addr: "127.0.0.1:9466", MaxConns: 256},
		Cluster: Cluster{
			Prefix:       "/chargeguard",
			ShardsPrefix: "/chargeguard-shards/",
			LeaseTTL:     3 * time.Second,
			DialTimeout:  2 * time.Second,
			ShareGroup:   "chargeguard",
		},
		Alerting: Alerting{
			Rules:          alerting.DefaultRules(),
			ResendInterval: time.Minute,
			RunbookURL:     "https://github.com/chargeguard/chargeguard/blob/main",
		},
	}
}

// Load reads a YAML file over the defaults. Unknown fields are errors, so a
// typo never silently leaves a safety setting at its default.
func Load(path string) (Config, error) {
	cfg := Default()
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if err := Parse(b, &cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if err := cfg.readTokenFiles(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// readTokenFiles reads every api.tokens[i].token_file into its token.
func (c *Config) readTokenFiles() error {
	for i := range c.API.Tokens {
		t := &c.API.Tokens[i]
		if t.TokenFile == "" {
			continue
		}
		field := fmt.Sprintf("api.tokens[%d]", i)
		if t.Token != "" {
			return &FieldError{Field: field, Err: errors.New("set token or token_file, not both")}
		}
		b, err := os.ReadFile(t.TokenFile)
		if err != nil {
			// The path is not secret; the error from the OS names it.
			return &FieldError{Field: field + ".token_file", Err: err}
		}
		t.Token = Secret(strings.TrimSpace(string(b)))
	}
	return nil
}

// Parse decodes YAML into cfg, keeping the values of fields it does not set.
func Parse(b []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return explainUnknownKeys(err)
	}
	return nil
}

// FieldError is a configuration error about one field, named by its YAML path.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Validate checks every field and returns all problems at once, each naming
// its field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf(format, a...)})
	}
	if c.MQTT.URL != "" {
		u, err := url.Parse(c.MQTT.URL)
		switch {
		case err != nil:
			bad("mqtt.url", "not a URL")
		case u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "tls" && u.Scheme != "mqtt" && u.Scheme != "mqtts" && u.Scheme != "ws" && u.Scheme != "wss":
			bad("mqtt.url", "scheme %q is not one of tcp, ssl, tls, mqtt, mqtts, ws, wss", u.Scheme)
		case u.Host == "":
			bad("mqtt.url", "no host")
		case u.User != nil:
			bad("mqtt.url", "must not hold credentials; use mqtt.username and mqtt.password")
		}
	} else if _, _, err := net.SplitHostPort(c.MQTT.Listen); err != nil {
		bad("mqtt.listen", "want host:port for the embedded broker: %v", err)
	} else if c.MQTT.PasswordFile == "" && !c.MQTT.AllowAnonymous && !broker.IsLoopbackAddr(c.MQTT.Listen) {
		bad("mqtt.password_file", "must be set when the embedded broker listens on %s, which is not a loopback address: "+
			"without it anyone who reaches the port can publish telemetry and commands (set mqtt.allow_anonymous: true to accept that)", c.MQTT.Listen)
	}
	if c.MQTT.MaxPreAuthConnections < 1 {
		bad("mqtt.max_preauth_connections", "must be at least 1")
	}
	if c.MQTT.PasswordFile != "" {
		if c.MQTT.URL != "" {
			bad("mqtt.password_file", "applies to the embedded broker only; configure the external broker's own password_file")
		} else if _, err := os.Stat(c.MQTT.PasswordFile); err != nil {
			bad("mqtt.password_file", "%v", err)
		} else if c.MQTT.Username == "" {
			bad("mqtt.username", "must be set with mqtt.password_file: chargeguard logs in to its own broker")
		}
	}
	if c.MQTT.ClientID == "" || len(c.MQTT.ClientID) > 23*4 {
		bad("mqtt.client_id", "must be 1 to 92 characters")
	}
	if !telemetry.ValidID(c.MQTT.TopicRoot) {
		bad("mqtt.topic_root", "must match [A-Za-z0-9_-]{1,64}")
	} else if strings.HasPrefix(telemetry.CanaryPrefix, c.MQTT.TopicRoot+"/") {
		bad("mqtt.topic_root", "%q is where chargeguard's live session sends its canaries (%s#); choose another", c.MQTT.TopicRoot, telemetry.CanaryPrefix)
	}
	seen := map[string]int{}
	for i, site := range c.MQTT.Sites {
		field := fmt.Sprintf("mqtt.sites[%d]", i)
		if !telemetry.ValidID(site) {
			bad(field, "%q must match [A-Za-z0-9_-]{1,64} (a site id, the second topic level)", site)
		} else if j, dup := seen[site]; dup {
			bad(field, "%q is already mqtt.sites[%d]", site, j)
		} else {
			seen[site] = i
		}
	}
	if c.MQTT.KeepAlive < time.Second {
		bad("mqtt.keepalive", "must be at least 1s")
	}
	if c.MQTT.WriteQueue < 16 || c.MQTT.WriteQueue > 65536 {
		bad("mqtt.write_queue", "must be 16 to 65536 packets")
	}
	if u, err := url.Parse(c.Influx.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("influx.url", "want http(s)://host:port")
	} else if u.User != nil {
		bad("influx.url", "must not hold credentials; use influx.token")
	}
	if c.Influx.Bucket == "" {
		bad("influx.bucket", "must be set (InfluxDB 1.8: database/retention-policy)")
	}
	if c.Influx.BatchRecords < 1 {
		bad("influx.batch_records", "must be at least 1")
	}
	if c.Influx.WriteConcurrency < 1 || c.Influx.WriteConcurrency > 16 {
		bad("influx.write_concurrency", "must be 1..16")
	}
	if c.Influx.BatchBytes < 1024 {
		bad("influx.batch_bytes", "must be at least 1024")
	}
	if c.Influx.Timeout < 100*time.Millisecond {
		bad("influx.timeout", "must be at least 100ms")
	}
	if c.Influx.DeadLetterMaxBytes < 64<<10 {
		bad("influx.dead_letter_max_bytes", "must be at least 64 KiB")
	}
	if c.Spool.MaxBytes < 1<<20 {
		bad("spool.max_bytes", "must be at least 1 MiB")
	}
	if c.Ingest.Workers < 1 || c.Ingest.Workers > 256 {
		bad("ingest.workers", "must be 1 to 256")
	}
	if c.Ingest.MaxClockSkew < time.Second {
		bad("ingest.max_clock_skew", "must be at least 1s")
	}
	if c.Ingest.QueueSize < 16 {
		bad("ingest.queue_size", "must be at least 16")
	}
	if l := c.Ingest.LiveLagMark; l != 0 && (l < 5*time.Millisecond || l > 10*time.Second) {
		bad("ingest.live_lag_mark", "must be 0s (off) or 5ms to 10s")
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "auto", "json", "console":
	default:
		bad("log.format", "%q is not one of auto, json, console", c.Log.Format)
	}
	if c.DataDir == "" {
		bad("data_dir", "must be set: the spool and the latched ports live there")
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		bad("http.addr", "want host:port: %v", err)
	}
	if c.HTTP.MaxConns < 8 {
		bad("http.max_conns", "must be at least 8 (probes, Prometheus and operators share them)")
	}
	operator := false
	for _, t := range c.API.Tokens {
		operator = operator || t.Role == "operator"
	}
	switch {
	case len(c.API.Tokens) > 0 && c.API.AnonymousReads:
		bad("api.anonymous_reads", "must be false when api.tokens are configured: every request then needs a token (give readers a viewer token)")
	case len(c.API.Tokens) == 0 && !c.API.AnonymousReads && !IsLoopback(c.HTTP.Addr):
		bad("api.tokens", "http.addr %s is reachable from other hosts and no token is configured: add api.tokens (a viewer token for readers), or set api.anonymous_reads: true to open reads to anyone who can reach it", c.HTTP.Addr)
	}
	if c.HTTP.Pprof && !operator && !IsLoopback(c.HTTP.Addr) {
		bad("http.pprof", "needs an operator token in api.tokens, or a loopback http.addr: profiles show the process' memory")
	}
	if err := c.Alerting.Rules.Validate(); err != nil {
		errs = append(errs, &FieldError{Field: "alerting.rules", Err: err})
	}
	for i, u := range c.Alerting.Alertmanagers {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad(fmt.Sprintf("alerting.alertmanagers[%d]", i), "want http(s)://host:port")
		}
	}
	if c.Alerting.ResendInterval < time.Second {
		bad("alerting.resend_interval", "must be at least 1s")
	}
	if c.Alerting.BoardURL != "" {
		if p, err := url.Parse(c.Alerting.BoardURL); err != nil || p.Host == "" {
			bad("alerting.board_url", "want http(s)://host[:port][/path]")
		}
	}
	if u := c.Console.ExternalURL; u != "" {
		p, err := url.Parse(u)
		switch {
		case err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "":
			bad("console.external_url", "want http(s)://host[:port][/path]")
		case p.User != nil:
			bad("console.external_url", "must not hold credentials")
		case p.RawQuery != "" || p.Fragment != "":
			bad("console.external_url", "must not have a query or fragment")
		}
	}
	for i, t := range c.API.Tokens {
		field := fmt.Sprintf("api.tokens[%d]", i)
		if t.Name == "" {
			bad(field+".name", "must be set: it names the operator in the audit")
		}
		if len(t.Token) < 16 {
			bad(field+".token", "must be at least 16 characters")
		}
		if t.Role != "viewer" && t.Role != "operator" {
			bad(field+".role", "%q is not viewer or operator", t.Role)
		}
	}
	errs = append(errs, c.Cluster.validate()...)
	if c.Cluster.Enabled() && len(c.MQTT.Sites) > 0 && c.Cluster.Prefix == Default().Cluster.Prefix {
		// Replica sets of different shards under one prefix would elect one
		// leader among all of them: the other shards' replicas would all
		// follow and never send a close for their own sites.
		bad("cluster.prefix", "set a prefix of this shard's own (e.g. /chargeguard/shard-1) with mqtt.sites: replica sets sharing %s elect one leader for all shards", c.Cluster.Prefix)
	}
	if c.Cluster.Enabled() && c.MQTT.URL == "" {
		bad("cluster.endpoints", "cluster mode needs an external broker (mqtt.url) that every replica shares, not the embedded one")
	}
	return errors.Join(errs...)
}

func (c *Cluster) validate() []error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: "cluster." + field, Err: fmt.Errorf(format, a...)})
	}
	for i, e := range c.Endpoints {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(fmt.Sprintf("endpoints[%d]", i), "want http(s)://host:port")
		} else if u.User != nil {
			bad(fmt.Sprintf("endpoints[%d]", i), "must not hold credentials; use cluster.username and cluster.password")
		}
	}
	if c.Member != "" && !telemetry.ValidID(c.Member) {
		bad("member", "must match [A-Za-z0-9_-]{1,64}")
	}
	if c.AdvertiseURL != "" {
		if u, err := url.Parse(c.AdvertiseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("advertise_url", "want http(s)://host:port")
		}
	}
	if !strings.HasPrefix(c.Prefix, "/") || len(c.Prefix) < 2 || strings.HasSuffix(c.Prefix, "/") {
		bad("prefix", "want /name (no trailing slash)")
	}
	switch sp := c.ShardsPrefix; {
	case !strings.HasPrefix(sp, "/") || !strings.HasSuffix(sp, "/") || len(sp) < 3:
		bad("shards_prefix", "want /name/ (leading and trailing slash), the same in every shard's configuration")
	case strings.HasPrefix(sp, c.Prefix+"/") || strings.HasPrefix(c.Prefix+"/", sp):
		// One key space inside the other: a shard's election or state
		// keys would be read as site claims, or the other way round.
		bad("shards_prefix", "%s and cluster.prefix %s must not contain one another: the shards' common key space lies outside every shard's own", sp, c.Prefix)
	}
	if c.LeaseTTL < time.Second || c.LeaseTTL > time.Minute || c.LeaseTTL%time.Second != 0 {
		bad("lease_ttl", "must be whole seconds from 1s to 60s (etcd leases are in seconds)")
	}
	if c.DialTimeout < 100*time.Millisecond {
		bad("dial_timeout", "must be at least 100ms")
	}
	if !telemetry.ValidID(c.ShareGroup) {
		bad("share_group", "must match [A-Za-z0-9_-]{1,64}")
	}
	if (c.Username == "") != (c.Password == "") {
		bad("username", "set cluster.username and cluster.password together")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls.cert_file", "set cluster.tls.cert_file and cluster.tls.key_file together")
	}
	for field, f := range map[string]string{"tls.ca_file": c.TLS.CAFile, "tls.cert_file": c.TLS.CertFile, "tls.key_file": c.TLS.KeyFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			bad(field, "%v", err)
		}
	}
	return errs
}
