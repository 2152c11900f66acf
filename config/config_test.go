package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chargeguard/chargeguard/alerting"
	"github.com/chargeguard/chargeguard/telemetry"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	require.NoError(t, c.Validate())
}

func TestLoadOverridesDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
mqtt:
  url: tcp://broker:1883
influx:
  bucket: fleet/autogen
  timeout: 3s
spool:
  max_bytes: 2097152
`), 0o600))
	c, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, "tcp://broker:1883", c.MQTT.URL)
	require.Equal(t, "fleet/autogen", c.Influx.Bucket)
	require.Equal(t, 3*time.Second, c.Influx.Timeout)
	require.EqualValues(t, 2<<20, c.Spool.MaxBytes)
	require.Equal(t, "chargeguard", c.MQTT.ClientID, "unset fields keep their default")
	require.NoError(t, c.Validate())
}

func TestLoadRejectsUnknownFieldNamingIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("influx:\n  bukket: x\n"), 0o600))
	_, err := Load(path)
	require.ErrorContains(t, err, path)
	require.ErrorContains(t, err, "bukket")
}

func TestLoadEmptyFileIsDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	c, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, Default(), c)
}

func TestValidateNamesEveryBadField(t *testing.T) {
	for _, tc := range []struct {
		field string
		mut   func(*Config)
	}{
		{"mqtt.url", func(c *Config) { c.MQTT.URL = "http://x" }},
		{"mqtt.url", func(c *Config) { c.MQTT.URL = "tcp://user:pw@x:1883" }},
		{"mqtt.listen", func(c *Config) { c.MQTT.Listen = "nope" }},
		{"mqtt.password_file", func(c *Config) { c.MQTT.Listen = "0.0.0.0:1883" }},
		{"mqtt.max_preauth_connections", func(c *Config) { c.MQTT.MaxPreAuthConnections = 0 }},
		{"mqtt.client_id", func(c *Config) { c.MQTT.ClientID = "" }},
		{"mqtt.topic_root", func(c *Config) { c.MQTT.TopicRoot = "a/b" }},
		{"mqtt.topic_root", func(c *Config) { c.MQTT.TopicRoot = "chargeguard" }},
		{"mqtt.sites[1]", func(c *Config) { c.MQTT.Sites = []string{"north", "a/b"} }},
		{"mqtt.sites[2]", func(c *Config) { c.MQTT.Sites = []string{"north", "south", "north"} }},
		{"mqtt.sites[0]", func(c *Config) { c.MQTT.Sites = []string{"+"} }},
		{"mqtt.keepalive", func(c *Config) { c.MQTT.KeepAlive = 0 }},
		{"mqtt.write_queue", func(c *Config) { c.MQTT.WriteQueue = 1 << 20 }},
		{"influx.url", func(c *Config) { c.Influx.URL = "localhost:8086" }},
		{"influx.bucket", func(c *Config) { c.Influx.Bucket = "" }},
		{"influx.batch_records", func(c *Config) { c.Influx.BatchRecords = 0 }},
		{"influx.batch_bytes", func(c *Config) { c.Influx.BatchBytes = 10 }},
		{"influx.write_concurrency", func(c *Config) { c.Influx.WriteConcurrency = 0 }},
		{"influx.write_concurrency", func(c *Config) { c.Influx.WriteConcurrency = 17 }},
		{"influx.timeout", func(c *Config) { c.Influx.Timeout = time.Millisecond }},
		{"influx.dead_letter_max_bytes", func(c *Config) { c.Influx.DeadLetterMaxBytes = 100 }},
		{"spool.max_bytes", func(c *Config) { c.Spool.MaxBytes = 1 }},
		{"ingest.workers", func(c *Config) { c.Ingest.Workers = 0 }},
		{"ingest.max_clock_skew", func(c *Config) { c.Ingest.MaxClockSkew = 0 }},
		{"ingest.queue_size", func(c *Config) { c.Ingest.QueueSize = 1 }},
		{"ingest.live_lag_mark", func(c *Config) { c.Ingest.LiveLagMark = time.Millisecond }},
		{"ingest.live_lag_mark", func(c *Config) { c.Ingest.LiveLagMark = time.Minute }},
		{"log.level", func(c *Config) { c.Log.Level = "loud" }},
		{"log.format", func(c *Config) { c.Log.Format = "xml" }},
		{"data_dir", func(c *Config) { c.DataDir = "" }},
		{"http.addr", func(c *Config) { c.HTTP.Addr = "9466" }},
		{"cluster.endpoints", func(c *Config) { c.Cluster.Endpoints = []string{"http://etcd:2379"} }},
		{"cluster.endpoints[0]", func(c *Config) { c.MQTT.URL = "tcp://mq:1883"; c.Cluster.Endpoints = []string{"etcd:2379"} }},
		{"cluster.endpoints[0]", func(c *Config) { c.MQTT.URL = "tcp://mq:1883"; c.Cluster.Endpoints = []string{"http://u:p@etcd:2379"} }},
		{"cluster.member", func(c *Config) { c.Cluster.Endpoints = []string{"http://etcd:2379"}; c.Cluster.Member = "a/b" }},
		{"cluster.advertise_url", func(c *Config) { c.Cluster.Endpoints = []string{"http://etcd:2379"}; c.Cluster.AdvertiseURL = "x:1" }},
		{"cluster.prefix", func(c *Config) { c.Cluster.Endpoints = []string{"http://etcd:2379"}; c.Cluster.Prefix = "cg" }},
		{"cluster.lease_ttl", func(c *Config) {
			c.Cluster.Endpoints = []string{"http://etcd:2379"}
			c.Cluster.LeaseTTL = 1500 * time.Millisecond
		}},
		{"cluster.prefix", func(c *Config) {
			c.MQTT.URL = "tcp://mq:1883"
			c.Cluster.Endpoints = []string{"http://etcd:2379"}
			c.MQTT.Sites = []string{"north"}
		}},
		{"cluster.shards_prefix", func(c *Config) { c.Cluster.Endpoints = []string{"http://etcd:2379"}; c.Cluster.ShardsPrefix = "shards" }},
		{"cluster.shards_prefix", func(c *Config) {
			c.Cluster.Endpoints = []string{"http://etcd:2379"}
			c.Cluster.ShardsPrefix = "/shards"
		}},
		{"cluster.shards_prefix", func(c *Config) {
			c.Cluster.Endpoints = []string{"http://etcd:2379"}
			c.Cluster.ShardsPrefix = "/chargeguard/"
		}},
		{"cluster.shards_prefix", func(c *Config) {
			c.Cluster.Endpoints = []string{"http://etcd:2379"}
			c.Cluster.Prefix = "/cg/shard-1"
			c.Cluster.ShardsPrefix = "/cg/"
		}},
		{"cluster.dial_timeout", func(c *Config) { c.Cluster.Endpoints = []string{"http://etcd:2379"}; c.Cluster.DialTimeout = 0 }},
		{"cluster.share_group", func(c *Config) { c.Cluster.Endpoints = []string{"http://etcd:2379"}; c.Cluster.ShareGroup = "a+b" }},
		{"cluster.username", func(c *Config) { c.Cluster.Endpoints = []string{"http://etcd:2379"}; c.Cluster.Username = "cg" }},
		{"cluster.tls.cert_file", func(c *Config) { c.Cluster.Endpoints = []string{"http://etcd:2379"}; c.Cluster.TLS.KeyFile = "/k" }},
		{"cluster.tls.ca_file", func(c *Config) {
			c.Cluster.Endpoints = []string{"http://etcd:2379"}
			c.Cluster.TLS.CAFile = "/no/such/ca.pem"
		}},
		{"console.external_url", func(c *Config) { c.Console.ExternalURL = "guard.example" }},
		{"console.external_url", func(c *Config) { c.Console.ExternalURL = "https://u:pw@guard.example/" }},
		{"console.external_url", func(c *Config) { c.Console.ExternalURL = "https://guard.example/?x=1" }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			c := Default()
			tc.mut(&c)
			err := c.Validate()
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), tc.field+": "), "error %q should start with the field %s", err, tc.field)
		})
	}
}

// An anonymous embedded broker beyond loopback is allowed only when the
// configuration says so in as many words.
func TestAnonymousBrokerNeedsExplicitSwitch(t *testing.T) {
	c := Default()
	c.MQTT.Listen = "0.0.0.0:1883"
	c.MQTT.AllowAnonymous = true
	require.NoError(t, c.Validate())
	c.MQTT.URL = "tcp://mosquitto:1883" // an external broker has its own auth
	c.MQTT.AllowAnonymous = false
	require.NoError(t, c.Validate())
}

func TestClusterOffByDefault(t *testing.T) {
	c := Default()
	require.False(t, c.Cluster.Enabled(), "a single instance must not need etcd")
	require.NoError(t, c.Validate())
	c.Cluster.Endpoints = []string{"http://127.0.0.1:2379"}
	c.MQTT.URL = "tcp://127.0.0.1:1883"
	require.True(t, c.Cluster.Enabled())
	require.NoError(t, c.Validate(), "the cluster defaults are valid")
	require.Equal(t, 3*time.Second, c.Cluster.LeaseTTL)
}

func TestSecretsNeverPrint(t *testing.T) {
	c := Default()
	c.Influx.Token = "s3cr3t-token"
	c.MQTT.Password = "hunter2"
	for _, s := range []string{c.Influx.Token.String(), c.MQTT.Password.String()} {
		require.NotContains(t, s, "s3cr3t")
		require.NotContains(t, s, "hunter2")
	}
	// An invalid URL's error must not echo a credential either.
	c.Influx.URL = "http://admin:s3cr3t-token@host:8086"
	err := c.Validate()
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cr3t")
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("mqtt:\n  url: tcp://x:1883\n"))
	f.Add([]byte("influx:\n  timeout: 5s\nspool:\n  max_bytes: 100\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := Default()
		if err := Parse(b, &c); err != nil {
			return
		}
		_ = c.Validate() // must not panic, whatever the values
	})
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "alice.token")
	require.NoError(t, os.WriteFile(tok, []byte("s3cr3t-operator-token-1234\n"), 0o600))
	path := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("api:\n  tokens:\n    - {name: alice, role: operator, token_file: "+tok+"}\n"), 0o600))
	c, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, Secret("s3cr3t-operator-token-1234"), c.API.Tokens[0].Token)
	require.NoError(t, c.Validate())

	require.NoError(t, os.WriteFile(path, []byte("api:\n  tokens:\n    - {name: alice, role: operator, token_file: "+dir+"/missing}\n"), 0o600))
	_, err = Load(path)
	require.ErrorContains(t, err, "api.tokens[0].token_file")

	require.NoError(t, os.WriteFile(path, []byte("api:\n  tokens:\n    - {name: alice, role: operator, token: abcdefghijklmnopq, token_file: "+tok+"}\n"), 0o600))
	_, err = Load(path)
	require.ErrorContains(t, err, "not both")
	require.NotContains(t, err.Error(), "abcdefghijklmnopq")
}

// TestAPIExposure: an API reachable from other hosts is an explicit
// choice (tokens, or anonymous reads said out loud), and profiles are
// never open beyond loopback.
func TestAPIExposure(t *testing.T) {
	op := []APIToken{{Name: "ops", Token: "0123456789abcdef0", Role: "operator"}}
	viewer := []APIToken{{Name: "board", Token: "0123456789abcdef1", Role: "viewer"}}
	for _, tc := range []struct {
		name   string
		edit   func(c *Config)
		field  string // "" : valid
		detail string
	}{
		{"loopback without tokens", func(c *Config) {}, "", ""},
		{"localhost without tokens", func(c *Config) { c.HTTP.Addr = "localhost:9466" }, "", ""},
		{"ipv6 loopback", func(c *Config) { c.HTTP.Addr = "[::1]:9466" }, "", ""},
		{"any address without tokens", func(c *Config) { c.HTTP.Addr = "0.0.0.0:9466" }, "api.tokens", "anonymous_reads"},
		{"empty host without tokens", func(c *Config) { c.HTTP.Addr = ":9466" }, "api.tokens", "reachable from other hosts"},
		{"any address, anonymous reads chosen", func(c *Config) { c.HTTP.Addr = "0.0.0.0:9466"; c.API.AnonymousReads = true }, "", ""},
		{"any address with a viewer token", func(c *Config) { c.HTTP.Addr = "0.0.0.0:9466"; c.API.Tokens = viewer }, "", ""},
		{"anonymous reads beside tokens", func(c *Config) { c.API.Tokens = viewer; c.API.AnonymousReads = true }, "api.anonymous_reads", "must be false"},
		{"pprof on loopback", func(c *Config) { c.HTTP.Pprof = true }, "", ""},
		{"pprof open to the network", func(c *Config) {
			c.HTTP.Addr, c.API.AnonymousReads, c.HTTP.Pprof = "0.0.0.0:9466", true, true
		}, "http.pprof", "operator"},
		{"pprof with only a viewer", func(c *Config) { c.HTTP.Addr, c.API.Tokens, c.HTTP.Pprof = "0.0.0.0:9466", viewer, true }, "http.pprof", "operator"},
		{"pprof behind an operator", func(c *Config) { c.HTTP.Addr, c.API.Tokens, c.HTTP.Pprof = "0.0.0.0:9466", op, true }, "", ""},
		{"too few connections", func(c *Config) { c.HTTP.MaxConns = 2 }, "http.max_conns", "at least 8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.edit(&c)
			err := c.Validate()
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tc.field, fe.Field)
			require.ErrorContains(t, err, tc.detail)
		})
	}
}

// A mistyped key is refused with the keys its section does take.
func TestUnknownKeyListsTheSectionsKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("alerting:\n  rules:\n    defaults:\n      overheat_cc: 65\nhttp:\n  adress: 127.0.0.1:1\n"), 0o600))
	_, err := Load(path)
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, path)
	require.Contains(t, msg, `line 4: unknown key "overheat_cc"; this section takes: `)
	require.Contains(t, msg, "overheat_c, ")
	require.Contains(t, msg, "warn_c")
	require.Contains(t, msg, `line 6: unknown key "adress"; this section takes: addr`)
}

// The shipped example loads, shows every default rule with its real value,
// and its kind and site overrides apply.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("../deploy/chargeguard.example.yaml")
	require.NoError(t, err)
	cfg := Default()
	require.NoError(t, Parse(b, &cfg))
	require.Equal(t, alerting.DefaultRules().Defaults, cfg.Alerting.Rules.Defaults,
		"the example's alerting.rules.defaults are the built-in defaults")
	require.NoError(t, cfg.Alerting.Rules.Validate())
	openAir := cfg.Alerting.Rules.Resolve("any", telemetry.SiteOpenAir)
	require.Equal(t, 75.0, openAir.OverheatC)
	shed := cfg.Alerting.Rules.Resolve("chunbo-nanyuan", telemetry.SiteResidential)
	require.Equal(t, 65.0, shed.OverheatC)
	require.Equal(t, 8.0, shed.RiseCPerMin)
	require.Equal(t, 55.0, shed.WarnC)
	require.Len(t, cfg.API.Tokens, 2)
}

// A shard of sites: mqtt.sites from the file, and in cluster mode with a
// prefix of its own, is a valid configuration.
func TestShardOfSitesLoads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`mqtt:
  url: tcp://mq:1883
  sites: [north-01, north-02]
cluster:
  endpoints: [http://etcd:2379]
  prefix: /chargeguard/shard-1
`), 0o600))
	c, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, []string{"north-01", "north-02"}, c.MQTT.Sites)
}
