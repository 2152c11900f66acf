package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// shardFile writes a shard's configuration and returns its path.
func shardFile(t *testing.T, dir, name, prefix, sites string, extra ...string) string {
	t.Helper()
	conf := "mqtt:\n  url: tcp://mq:1883\n  sites: [" + sites + "]\ncluster:\n  endpoints: [http://etcd:2379]\n  prefix: " + prefix + "\n" + strings.Join(extra, "")
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o600))
	return path
}

func runCheck(args ...string) (code int, out, errOut string) {
	var o, e bytes.Buffer
	code = checkShards(args, &o, &e)
	return code, o.String(), e.String()
}

func TestCheckShardsSoundSplit(t *testing.T) {
	dir := t.TempDir()
	a := shardFile(t, dir, "a.yaml", "/cg/a", "s1, s2")
	b := shardFile(t, dir, "b.yaml", "/cg/b", "s3")
	code, out, errOut := runCheck("--sites", "s1,s2,s3", a, b)
	require.Equal(t, 0, code, out+errOut)
	require.Contains(t, out, "ok: 2 shard(s), 3 site(s)")
}

func TestCheckShardsFindings(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		files func() []string
		sites string
		want  []string // each must appear in the findings
	}{
		{"site in two shards", func() []string {
			return []string{shardFile(t, dir, "a.yaml", "/cg/a", "s1, s2"), shardFile(t, dir, "b.yaml", "/cg/b", "s3, s2")}
		}, "", []string{filepath.Join(dir, "b.yaml") + `: mqtt.sites[1]: site "s2" is also in ` + filepath.Join(dir, "a.yaml") + " mqtt.sites[1]"}},
		{"site in no shard", func() []string {
			return []string{shardFile(t, dir, "a.yaml", "/cg/a", "s1"), shardFile(t, dir, "b.yaml", "/cg/b", "s2")}
		}, "s1,s2,s9", []string{`site "s9" is in no shard's mqtt.sites`}},
		{"typo outside the district", func() []string {
			return []string{shardFile(t, dir, "a.yaml", "/cg/a", "s1, s22")}
		}, "s1,s2", []string{`a.yaml: mqtt.sites[1]: site "s22" is not a site of the district`, `site "s2" is in no shard's`}},
		{"same cluster.prefix", func() []string {
			return []string{shardFile(t, dir, "a.yaml", "/cg/a", "s1"), shardFile(t, dir, "b.yaml", "/cg/a", "s2")}
		}, "", []string{"b.yaml: cluster.prefix: /cg/a is also the prefix of " + filepath.Join(dir, "a.yaml")}},
		{"different shards_prefix", func() []string {
			return []string{shardFile(t, dir, "a.yaml", "/cg/a", "s1"), shardFile(t, dir, "b.yaml", "/cg/b", "s2", "  shards_prefix: /other/\n")}
		}, "", []string{"b.yaml: cluster.shards_prefix: /other/, but"}},
		{"a shard of every site beside others", func() []string {
			return []string{shardFile(t, dir, "a.yaml", "/cg/a", ""), shardFile(t, dir, "b.yaml", "/cg/b", "s2")}
		}, "", []string{"a.yaml: mqtt.sites: empty: this process guards every site"}},
		{"bad and repeated site ids", func() []string {
			return []string{shardFile(t, dir, "a.yaml", "/cg/a", "s1, s1, 'a/b'")}
		}, "", []string{`a.yaml: mqtt.sites[1]: "s1" is already mqtt.sites[0]`, `a.yaml: mqtt.sites[2]: "a/b" must match`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.files()
			if tc.sites != "" {
				args = append([]string{"--sites", tc.sites}, args...)
			}
			code, out, errOut := runCheck(args...)
			require.Equal(t, 1, code, out+errOut)
			for _, w := range tc.want {
				require.Contains(t, out, w)
			}
			require.NotContains(t, out, "ok:")
		})
	}
}

// Input that cannot be checked stops with status 2 and says what and where.
func TestCheckShardsBadInput(t *testing.T) {
	dir := t.TempDir()
	a := shardFile(t, dir, "a.yaml", "/cg/a", "s1")
	sitesFile := filepath.Join(dir, "sites.txt")
	require.NoError(t, os.WriteFile(sitesFile, []byte("# district north\ns1\ns2 # shed\nbad/id\ns2\n"), 0o600))
	unknownKey := filepath.Join(dir, "u.yaml")
	require.NoError(t, os.WriteFile(unknownKey, []byte("mqtt:\n  site: [s1]\n"), 0o600))
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no file", nil, []string{"name the configuration file of every shard"}},
		{"missing file", []string{filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml"}},
		{"unknown key", []string{unknownKey}, []string{"u.yaml", `unknown key "site"`}},
		{"bad sites file", []string{"--sites", sitesFile, a}, []string{sitesFile + ` line 4: "bad/id" is not a site id`, sitesFile + ` line 5: site "s2" is already on line 3`}},
		{"missing sites file", []string{"--sites", filepath.Join(dir, "none.txt"), a}, []string{"--sites", "none.txt"}},
		{"empty sites list", []string{"--sites", ",", a}, []string{"--sites: no site id in it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCheck(tc.args...)
			require.Equal(t, 2, code, out+errOut)
			for _, w := range tc.want {
				require.Contains(t, errOut, w)
			}
		})
	}
}

// A good sites file with comments is read.
func TestCheckShardsSitesFile(t *testing.T) {
	dir := t.TempDir()
	a := shardFile(t, dir, "a.yaml", "/cg/a", "s1, s2")
	sitesFile := filepath.Join(dir, "sites.txt")
	require.NoError(t, os.WriteFile(sitesFile, []byte("# district north\ns1\ns2, s3 # shed\n"), 0o600))
	code, out, _ := runCheck("--sites", sitesFile, a)
	require.Equal(t, 1, code)
	require.Contains(t, out, `site "s3" is in no shard's mqtt.sites`)
}
