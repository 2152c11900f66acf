package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
		{"mqtt.client_id", func(c *Config) { c.MQTT.ClientID = "" }},
		{"mqtt.topic_root", func(c *Config) { c.MQTT.TopicRoot = "a/b" }},
		{"mqtt.keepalive", func(c *Config) { c.MQTT.KeepAlive = 0 }},
		{"mqtt.write_queue", func(c *Config) { c.MQTT.WriteQueue = 1 << 20 }},
		{"influx.url", func(c *Config) { c.Influx.URL = "localhost:8086" }},
		{"influx.bucket", func(c *Config) { c.Influx.Bucket = "" }},
		{"influx.batch_records", func(c *Config) { c.Influx.BatchRecords = 0 }},
		{"influx.batch_bytes", func(c *Config) { c.Influx.BatchBytes = 10 }},
		{"influx.timeout", func(c *Config) { c.Influx.Timeout = time.Millisecond }},
		{"spool.max_bytes", func(c *Config) { c.Spool.MaxBytes = 1 }},
		{"ingest.workers", func(c *Config) { c.Ingest.Workers = 0 }},
		{"ingest.max_clock_skew", func(c *Config) { c.Ingest.MaxClockSkew = 0 }},
		{"ingest.queue_size", func(c *Config) { c.Ingest.QueueSize = 1 }},
		{"log.level", func(c *Config) { c.Log.Level = "loud" }},
		{"log.format", func(c *Config) { c.Log.Format = "xml" }},
		{"data_dir", func(c *Config) { c.DataDir = "" }},
		{"http.addr", func(c *Config) { c.HTTP.Addr = "9466" }},
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
