package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestPrecedenceFileEnvFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
influx:
  url: http://from-file:8086
  bucket: file/autogen
  org: file-org
data_dir: /from/file
`), 0o600))
	var out bytes.Buffer
	cfg, _, err := load(
		[]string{"--config", path, "--influx-url", "http://from-flag:8086"},
		env(map[string]string{
			"CHARGEGUARD_INFLUX_URL":    "http://from-env:8086",
			"CHARGEGUARD_INFLUX_BUCKET": "env/autogen",
		}), &out)
	require.NoError(t, err)
	require.Equal(t, "http://from-flag:8086", cfg.Influx.URL, "flag beats env and file")
	require.Equal(t, "env/autogen", cfg.Influx.Bucket, "env beats file")
	require.Equal(t, "file-org", cfg.Influx.Org, "file beats default")
	require.Equal(t, "/from/file", cfg.DataDir)
	require.Equal(t, "127.0.0.1:9466", cfg.HTTP.Addr, "default when nobody sets it")
}

func TestConfigPathFromEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("http:\n  addr: 127.0.0.1:9999\n"), 0o600))
	cfg, _, err := load(nil, env(map[string]string{"CHARGEGUARD_CONFIG": path}), &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9999", cfg.HTTP.Addr)
}

func TestBadConfigNamesFileAndField(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("ingest:\n  workers: 0\n"), 0o600))
	_, _, err := load([]string{"--config", path}, env(nil), &bytes.Buffer{})
	require.ErrorContains(t, err, path)
	require.ErrorContains(t, err, "ingest.workers")
}

func TestBadFlagValueNamesField(t *testing.T) {
	_, _, err := load([]string{"--http-addr", "nonsense"}, env(nil), &bytes.Buffer{})
	require.ErrorContains(t, err, "http.addr")
}

func TestHelpListsFlagsAndEnv(t *testing.T) {
	var out bytes.Buffer
	_, _, err := load([]string{"--help"}, env(nil), &out)
	require.Error(t, err)
	for _, f := range []string{"--config", "-mqtt-url", "-mqtt-listen", "-influx-url", "-influx-token", "-influx-org",
		"-influx-bucket", "-data-dir", "-http-addr", "CHARGEGUARD_INFLUX_URL"} {
		require.Contains(t, out.String(), f[1:])
	}
}

func TestTokenNeverInErrors(t *testing.T) {
	_, _, err := load([]string{"--influx-token", "s3cr3t", "--influx-url", "bogus"}, env(nil), &bytes.Buffer{})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cr3t")
}

// --help shows what an unset flag falls back to, and never a secret.
func TestHelpShowsDefaults(t *testing.T) {
	var out bytes.Buffer
	_, _, err := load([]string{"--help"}, env(map[string]string{"CHARGEGUARD_INFLUX_TOKEN": "s3cr3t"}), &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	for _, want := range []string{`default "./data"`, `default "127.0.0.1:9466"`, `default "http://127.0.0.1:8086"`,
		`default "chargeguard/autogen"`, `default "127.0.0.1:1883"`, `default "info"`, `default "auto"`} {
		require.Contains(t, out.String(), want)
	}
	require.NotContains(t, out.String(), "s3cr3t")
}
