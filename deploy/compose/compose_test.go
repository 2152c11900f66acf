package compose

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/chargeguard/chargeguard/config"
	"github.com/chargeguard/chargeguard/internal/testenv"
)

const composeFile = "deploy/compose/docker-compose.yml"

// exampleEnv reads .env.example as docker-compose would read .env.
func exampleEnv(t *testing.T, root string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "deploy/compose/.env.example"))
	require.NoError(t, err)
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "line %q", line)
		env[k] = v
	}
	require.NoError(t, sc.Err())
	return env
}

// compose runs docker-compose in the repository root with only the given
// variables (plus PATH and HOME) in its environment.
func compose(t *testing.T, root string, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	bin := testenv.Binary(t, "docker-compose", "docker-compose", "/usr/bin/docker-compose")
	cmd := exec.Command(bin, append([]string{"-f", composeFile}, args...)...)
	cmd.Dir = root
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// volume is a service's mount. docker-compose 1.x prints the short syntax,
// "source:target:mode"; a source that is an absolute path is a bind mount.
type volume struct {
	Type     string // bind or volume
	Source   string
	Target   string
	ReadOnly bool
}

func (v *volume) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return fmt.Errorf("volume %q: want source:target[:mode]", s)
	}
	v.Source, v.Target = parts[0], parts[1]
	v.ReadOnly = len(parts) == 3 && parts[2] == "ro"
	v.Type = "volume"
	if filepath.IsAbs(v.Source) {
		v.Type = "bind"
	}
	return nil
}

// port is a published port, printed as "host_ip:published:target/proto".
type port struct {
	HostIP string
	Target int
}

func (p *port) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	s, _, _ = strings.Cut(s, "/")
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return fmt.Errorf("port %q: want host_ip:published:target", s)
	}
	p.HostIP = parts[0]
	_, err := fmt.Sscan(parts[2], &p.Target)
	return err
}

type composeFileT struct {
	Services map[string]struct {
		Image       string `yaml:"image"`
		Build       *struct{ Context, Dockerfile string }
		Command     []string          `yaml:"command"`
		Entrypoint  []string          `yaml:"entrypoint"`
		Environment map[string]string `yaml:"environment"`
		Ports       []port            `yaml:"ports"`
		Volumes     []volume          `yaml:"volumes"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		User      string `yaml:"user"`
		CPUShares int    `yaml:"cpu_shares"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// TestComposeConfig: docker-compose accepts the file with the example
// .env, the resolved file holds every service, and every file it mounts
// exists in the repository.
func TestComposeConfig(t *testing.T) {
	testenv.Integration(t)
	root := testenv.RepoRoot(t)
	env := exampleEnv(t, root)

	_, stderr, err := compose(t, root, env, "config", "-q")
	require.NoError(t, err, "docker-compose -f %s config -q: %s", composeFile, stderr)

	out, stderr, err := compose(t, root, env, "config")
	require.NoError(t, err, stderr)
	assert.NotContains(t, out, "${", "an unresolved variable (nested defaults are not supported by docker-compose 1.x)")
	assert.NotContains(t, out, "$$")
	var cf composeFileT
	require.NoError(t, yaml.Unmarshal([]byte(out), &cf))

	var names []string
	for n := range cf.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	assert.Equal(t, []string{"alertmanager", "chargeguard", "grafana", "influxdb", "mosquitto", "mqtt-credentials", "prometheus"}, names)

	for name, svc := range cf.Services {
		for _, v := range svc.Volumes {
			switch v.Type {
			case "bind":
				_, err := os.Stat(v.Source)
				assert.NoError(t, err, "%s mounts %s, which does not exist", name, v.Source)
				assert.True(t, v.ReadOnly, "%s: bind mount %s should be read-only", name, v.Source)
			case "volume":
				assert.Contains(t, cf.Volumes, v.Source, "%s: volume %s not declared", name, v.Source)
			}
		}
	}

	// The cut comes first: InfluxDB yields the CPU to the broker and the
	// guard (0 is Docker's default weight, 1024).
	weight := func(n int) int { return cmp.Or(n, 1024) }
	assert.Less(t, weight(cf.Services["influxdb"].CPUShares), weight(cf.Services["chargeguard"].CPUShares))
	assert.Less(t, weight(cf.Services["influxdb"].CPUShares), weight(cf.Services["mosquitto"].CPUShares))

	cg := cf.Services["chargeguard"]
	require.NotNil(t, cg.Build, "chargeguard is built from the repository")
	assert.Equal(t, "Dockerfile", cg.Build.Dockerfile)
	assert.Equal(t, root, filepath.Clean(cg.Build.Context))
	for k, want := range map[string]string{
		"CHARGEGUARD_MQTT_URL":      "tcp://mosquitto:1884",
		"CHARGEGUARD_INFLUX_URL":    "http://influxdb:8086",
		"CHARGEGUARD_INFLUX_TOKEN":  env["INFLUXDB_TOKEN"],
		"CHARGEGUARD_INFLUX_ORG":    cf.Services["influxdb"].Environment["DOCKER_INFLUXDB_INIT_ORG"],
		"CHARGEGUARD_INFLUX_BUCKET": cf.Services["influxdb"].Environment["DOCKER_INFLUXDB_INIT_BUCKET"],
		"CHARGEGUARD_DATA_DIR":      "/data",
		"CHARGEGUARD_HTTP_ADDR":     "0.0.0.0:9466",
		"CHARGEGUARD_MQTT_USERNAME": "chargeguard",
		"CHARGEGUARD_MQTT_PASSWORD": env["CHARGEGUARD_MQTT_PASSWORD"],
	} {
		assert.Equal(t, want, cg.Environment[k], k)
	}
	assert.True(t, hasVolume(cg.Volumes, "chargeguard-data", "/data"), "chargeguard's /data is a named volume")

	// The broker's password file gets chargeguard's account, with the same
	// password chargeguard uses, before the broker starts.
	cred := cf.Services["mqtt-credentials"]
	assert.Equal(t, env["CHARGEGUARD_MQTT_PASSWORD"], cred.Environment["CHARGEGUARD_MQTT_PASSWORD"])
	assert.Equal(t, []string{"add", "-password-env", "CHARGEGUARD_MQTT_PASSWORD", "chargeguard"}, cred.Command)
	assert.Equal(t, "service_completed_successfully", cf.Services["mosquitto"].DependsOn["mqtt-credentials"].Condition)

	// Mosquitto reads its password file and ACL where the stack mounts them,
	// and publishes the piles' port but never chargeguard's.
	mq := cf.Services["mosquitto"]
	conf, err := os.ReadFile(filepath.Join(root, "deploy/mosquitto/mosquitto.conf"))
	require.NoError(t, err)
	pw := confValue(t, conf, "password_file")
	acl := confValue(t, conf, "acl_file")
	assert.True(t, mountedAt(mq.Volumes, filepath.Dir(pw)), "password_file %s is not in a mounted directory", pw)
	require.True(t, mountedAt(mq.Volumes, filepath.Dir(acl)), "acl_file %s is not in a mounted directory", acl)
	assert.FileExists(t, filepath.Join(root, "deploy/mosquitto", filepath.Base(acl)))
	assert.True(t, hasVolume(cred.Volumes, "mosquitto-auth", filepath.Dir(pw)), "mqtt-credentials writes where Mosquitto reads")
	assert.Contains(t, cred.Entrypoint, pw)
	var published []int
	for _, p := range mq.Ports {
		published = append(published, p.Target)
	}
	assert.Contains(t, published, 1883)
	assert.NotContains(t, published, 1884, "chargeguard's listener must not be published")

	// Grafana gets what the provisioned data sources read.
	ds, err := os.ReadFile(filepath.Join(root, "deploy/grafana/provisioning/datasources/chargeguard.yaml"))
	require.NoError(t, err)
	var dsLines []string
	for _, l := range strings.Split(string(ds), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			dsLines = append(dsLines, l)
		}
	}
	refs := regexp.MustCompile(`\$\{?([A-Z_][A-Z0-9_]*)\}?`).FindAllStringSubmatch(strings.Join(dsLines, "\n"), -1)
	require.NotEmpty(t, refs)
	for _, m := range refs {
		assert.NotEmpty(t, cf.Services["grafana"].Environment[m[1]], "grafana needs %s for its data sources", m[1])
	}

	// The InfluxDB init script that creates the DBRP mapping is run only
	// if it is executable.
	info, err := os.Stat(filepath.Join(root, "deploy/compose/influxdb-init/10-dbrp.sh"))
	require.NoError(t, err)
	assert.NotZero(t, info.Mode().Perm()&0o111, "10-dbrp.sh must be executable")
	out2, err := exec.Command("bash", "-n", filepath.Join(root, "deploy/compose/influxdb-init/10-dbrp.sh")).CombinedOutput()
	assert.NoError(t, err, "%s", out2)
}

func hasVolume(vols []volume, source, target string) bool {
	for _, v := range vols {
		if v.Source == source && v.Target == target {
			return true
		}
	}
	return false
}

func mountedAt(vols []volume, dir string) bool {
	for _, v := range vols {
		if v.Target == dir {
			return true
		}
	}
	return false
}

// confValue returns the value of a Mosquitto setting (its last occurrence).
func confValue(t *testing.T, conf []byte, key string) string {
	t.Helper()
	var val string
	for _, line := range strings.Split(string(conf), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == key {
			val = f[1]
		}
	}
	require.NotEmpty(t, val, "mosquitto.conf has no %s", key)
	return val
}

// TestComposeNeedsSecrets: without a .env, docker-compose refuses the file
// and says which secret is missing, rather than starting with empty ones.
func TestComposeNeedsSecrets(t *testing.T) {
	testenv.Integration(t)
	root := testenv.RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "deploy/compose/.env")); err == nil {
		t.Skip("deploy/compose/.env exists on this machine")
	}
	_, stderr, err := compose(t, root, nil, "config", "-q")
	require.Error(t, err)
	assert.Contains(t, stderr, "deploy/compose/.env")
}

// TestComposePrometheus: the compose stack's Prometheus configuration is
// valid with the shipped rules, and is the shipped
// deploy/prometheus/prometheus.yml with only the targets changed.
func TestComposePrometheus(t *testing.T) {
	testenv.Integration(t)
	root := testenv.RepoRoot(t)
	promtool := testenv.Binary(t, "promtool", "promtool", "/usr/bin/promtool")
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(root, "deploy/compose/prometheus.yml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), b, 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "rules"), 0o755))
	rules, err := filepath.Glob(filepath.Join(root, "deploy/prometheus/rules/*.rules.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, rules)
	for _, r := range rules {
		rb, err := os.ReadFile(r)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "rules", filepath.Base(r)), rb, 0o644))
	}
	out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "SUCCESS")
	assert.Regexp(t, `SUCCESS: [1-9][0-9]* rules found`, string(out))

	shipped, err := os.ReadFile(filepath.Join(root, "deploy/prometheus/prometheus.yml"))
	require.NoError(t, err)
	var a, c map[string]any
	require.NoError(t, yaml.Unmarshal(shipped, &a))
	require.NoError(t, yaml.Unmarshal(b, &c))
	assert.Equal(t, dropTargets(a), dropTargets(c), "deploy/compose/prometheus.yml drifted from deploy/prometheus/prometheus.yml")
}

// dropTargets removes every "targets" list, the one thing that differs.
func dropTargets(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if k != "targets" {
				out[k] = dropTargets(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = dropTargets(e)
		}
		return out
	}
	return v
}

// TestComposeChargeguardConfig: the mounted configuration file is one that
// chargeguard accepts, and every CHARGEGUARD_* variable that the stack or
// the image sets is one that chargeguard reads.
func TestComposeChargeguardConfig(t *testing.T) {
	testenv.Integration(t)
	root := testenv.RepoRoot(t)
	cfg, err := config.Load(filepath.Join(root, "deploy/compose/chargeguard.yaml"))
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	cfg.HTTP.Addr = "0.0.0.0:9466" // as the stack runs it (CHARGEGUARD_HTTP_ADDR)
	require.NoError(t, cfg.Validate())
	assert.Equal(t, []string{"http://alertmanager:9093"}, cfg.Alerting.Alertmanagers)

	known := chargeguardEnv(t, root)
	out, stderr, err := compose(t, root, exampleEnv(t, root), "config")
	require.NoError(t, err, stderr)
	var cf composeFileT
	require.NoError(t, yaml.Unmarshal([]byte(out), &cf))
	for k := range cf.Services["chargeguard"].Environment {
		if strings.HasPrefix(k, "CHARGEGUARD_") {
			assert.Contains(t, known, k, "docker-compose.yml sets %s, which chargeguard does not read", k)
		}
	}
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	for _, k := range regexp.MustCompile(`CHARGEGUARD_[A-Z_]+`).FindAllString(string(df), -1) {
		assert.Contains(t, known, k, "the Dockerfile sets %s, which chargeguard does not read", k)
	}
}

// chargeguardEnv lists the CHARGEGUARD_* variables chargeguard reads, from
// its own -h output.
func chargeguardEnv(t *testing.T, root string) []string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chargeguard")
	build := exec.Command("go", "build", "-o", bin, "./cmd/chargeguard")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	help, _ := exec.Command(bin, "-h").CombinedOutput()
	names := regexp.MustCompile(`CHARGEGUARD_[A-Z_]+`).FindAllString(string(help), -1)
	require.NotEmpty(t, names, "chargeguard -h lists no variables:\n%s", help)
	return names
}

// TestDockerfile checks what can be checked without building the image.
func TestDockerfile(t *testing.T) {
	root := testenv.RepoRoot(t)
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	s := string(df)
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(gomod))
	require.NotNil(t, goVersion)
	assert.Contains(t, s, "FROM golang:"+goVersion[1]+" AS build", "the builder's Go is go.mod's")
	assert.Regexp(t, `(?m)^USER 65532:65532$`, s, "runs as non-root")
	assert.Regexp(t, `(?m)^VOLUME \["/data"\]$`, s)
	assert.Regexp(t, `(?m)^EXPOSE 9466 1883$`, s)
	for _, m := range regexp.MustCompile(`\./cmd/[a-z]+`).FindAllString(s, -1) {
		assert.DirExists(t, filepath.Join(root, m))
	}
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	require.NoError(t, err)
	for _, p := range []string{".git", ".cache", "deploy/compose/.env"} {
		assert.Contains(t, strings.Split(string(ignore), "\n"), p, ".dockerignore keeps %s out of the image", p)
	}
}

// Every 'docs/deploy.md, "Section"' reference in the compose files names a
// heading that docs/deploy.md has.
func TestDeployDocReferencesExist(t *testing.T) {
	root := testenv.RepoRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "docs/deploy.md"))
	require.NoError(t, err)
	headings := map[string]bool{}
	for _, l := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(l, "#") {
			headings[strings.TrimSpace(strings.TrimLeft(l, "#"))] = true
		}
	}
	ref := regexp.MustCompile(`docs/deploy\.md, "([^"]+)"`)
	n := 0
	for _, f := range []string{composeFile, "deploy/compose/chargeguard.yaml", "deploy/compose/.env.example"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		require.NoError(t, err)
		// A reference may wrap onto the next comment line.
		text := regexp.MustCompile(`\n\s*#\s*`).ReplaceAllString(string(b), " ")
		for _, m := range ref.FindAllStringSubmatch(text, -1) {
			n++
			assert.True(t, headings[m[1]], "%s points at docs/deploy.md section %q, which does not exist", f, m[1])
		}
	}
	require.Positive(t, n, "no reference found: the pattern no longer matches the comments")
}

const clusterFile = "deploy/compose/docker-compose.cluster.yml"

// TestComposeCluster: the cluster profile (docker-compose.cluster.yml over
// the main file) runs three replicas, each with its own member name, data
// volume and host port, against a three-member etcd, in place of the one
// guard; their configuration is the single guard's plus the cluster section.
func TestComposeCluster(t *testing.T) {
	testenv.Integration(t)
	root := testenv.RepoRoot(t)
	env := exampleEnv(t, root)
	out, stderr, err := compose(t, root, env, "-f", clusterFile, "config")
	require.NoError(t, err, "docker-compose -f %s -f %s config: %s", composeFile, clusterFile, stderr)
	assert.NotContains(t, out, "${")
	var cf composeFileT
	require.NoError(t, yaml.Unmarshal([]byte(out), &cf))
	var raw struct {
		Services map[string]struct {
			Profiles []string `yaml:"profiles"`
			Ports    []string `yaml:"ports"`
		} `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(out), &raw))
	assert.Equal(t, []string{"single"}, raw.Services["chargeguard"].Profiles, "the single guard does not start beside the replicas")

	known := chargeguardEnv(t, root)
	single := cf.Services["chargeguard"]
	members := map[string]bool{}
	hostPorts := map[string]bool{}
	for i := range 3 {
		name := fmt.Sprintf("chargeguard-%d", i)
		r, ok := cf.Services[name]
		require.True(t, ok, "service %s", name)
		assert.Equal(t, name, r.Environment["CHARGEGUARD_CLUSTER_MEMBER"])
		assert.Equal(t, "http://"+name+":9466", r.Environment["CHARGEGUARD_CLUSTER_ADVERTISE_URL"])
		members[r.Environment["CHARGEGUARD_CLUSTER_MEMBER"]] = true
		for k, v := range single.Environment {
			assert.Equal(t, v, r.Environment[k], "%s: %s as the single guard has it", name, k)
		}
		for k := range r.Environment {
			if strings.HasPrefix(k, "CHARGEGUARD_") {
				assert.Contains(t, known, k, "%s sets %s, which chargeguard does not read", name, k)
			}
		}
		assert.True(t, hasVolume(r.Volumes, name+"-data", "/data"), "%s has a /data volume of its own", name)
		for _, p := range r.Ports {
			assert.Equal(t, "127.0.0.1", p.HostIP, "%s: the API stays on loopback", name)
		}
		hostPorts[fmt.Sprint(raw.Services[name].Ports)] = true
		for _, e := range []string{"etcd-0", "etcd-1", "etcd-2"} {
			assert.Contains(t, r.DependsOn, e)
		}
	}
	assert.Len(t, members, 3)
	assert.Len(t, hostPorts, 3)
	for i := range 3 {
		e := cf.Services[fmt.Sprintf("etcd-%d", i)]
		assert.Equal(t, fmt.Sprintf("etcd-%d", i), e.Environment["ETCD_NAME"])
		assert.Contains(t, e.Environment["ETCD_INITIAL_CLUSTER"], fmt.Sprintf("etcd-%d=http://etcd-%d:2380", i, i))
	}

	cfg, err := config.Load(filepath.Join(root, "deploy/compose/chargeguard-cluster.yaml"))
	require.NoError(t, err)
	cfg.MQTT.URL = cf.Services["chargeguard-0"].Environment["CHARGEGUARD_MQTT_URL"] // as the replicas get it
	require.NoError(t, cfg.Validate())
	cfg.MQTT.URL = ""
	require.True(t, cfg.Cluster.Enabled())
	assert.Equal(t, []string{"http://etcd-0:2379", "http://etcd-1:2379", "http://etcd-2:2379"}, cfg.Cluster.Endpoints)
	base, err := config.Load(filepath.Join(root, "deploy/compose/chargeguard.yaml"))
	require.NoError(t, err)
	cfg.Cluster = base.Cluster
	assert.Equal(t, base, cfg, "apart from cluster:, the replicas' configuration is the single guard's")
}
