package k8s

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/chargeguard/chargeguard/config"
	"github.com/chargeguard/chargeguard/internal/testenv"
)

const namespace = "chargeguard"

type object struct {
	file string
	raw  map[string]any
}

func (o object) kind() string { return str(o.raw["kind"]) }
func (o object) name() string { return str(get(o.raw, "metadata", "name")) }

// load decodes every document of every manifest in deploy/k8s.
func load(t *testing.T) (objs []object, kustomization map[string]any) {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), "deploy/k8s")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for i := 0; ; i++ {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, "%s document %d", f, i)
			if doc == nil {
				continue
			}
			if filepath.Base(f) == "kustomization.yaml" {
				kustomization = doc
				continue
			}
			objs = append(objs, object{file: filepath.Base(f), raw: doc})
		}
	}
	return objs, kustomization
}

func get(m any, path ...string) any {
	for _, p := range path {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[p]
	}
	return m
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func find(objs []object, kind, name string) (object, bool) {
	for _, o := range objs {
		if o.kind() == kind && o.name() == name {
			return o, true
		}
	}
	return object{}, false
}

var apiVersions = map[string]string{
	"Namespace":     "v1",
	"ConfigMap":     "v1",
	"Secret":        "v1",
	"Service":       "v1",
	"StatefulSet":   "apps/v1",
	"NetworkPolicy": "networking.k8s.io/v1",
}

func TestManifestsDecode(t *testing.T) {
	objs, kust := load(t)
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.kind())
		want, known := apiVersions[o.kind()]
		require.True(t, known, "%s: unexpected kind %q", o.file, o.kind())
		assert.Equal(t, want, o.raw["apiVersion"], "%s: apiVersion of %s", o.file, o.kind())
		assert.Regexp(t, `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, o.name(), "%s: metadata.name", o.file)
		if o.kind() != "Namespace" {
			assert.Equal(t, namespace, get(o.raw, "metadata", "namespace"), "%s: namespace", o.file)
		}
	}
	slices.Sort(kinds)
	assert.Equal(t, []string{"ConfigMap", "Namespace", "NetworkPolicy", "Secret", "Secret", "Service", "StatefulSet"}, kinds)

	// kubectl apply -k applies exactly these files.
	require.NotNil(t, kust, "kustomization.yaml")
	assert.Equal(t, "kustomize.config.k8s.io/v1beta1", kust["apiVersion"])
	assert.Equal(t, "Kustomization", kust["kind"])
	var res []string
	for _, r := range list(kust["resources"]) {
		res = append(res, str(r))
	}
	var files []string
	for _, o := range objs {
		if !slices.Contains(files, o.file) {
			files = append(files, o.file)
		}
	}
	slices.Sort(res)
	slices.Sort(files)
	assert.Equal(t, files, res, "kustomization.yaml resources")
}

var quantity = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti)?$`)

func TestStatefulSet(t *testing.T) {
	objs, _ := load(t)
	ss, ok := find(objs, "StatefulSet", "chargeguard")
	require.True(t, ok)
	spec := get(ss.raw, "spec")
	assert.Equal(t, 1, get(spec, "replicas"), "one guard, one state")

	svcName := str(get(spec, "serviceName"))
	svc, ok := find(objs, "Service", svcName)
	require.True(t, ok, "serviceName %q has no Service", svcName)
	assert.Equal(t, "None", get(svc.raw, "spec", "clusterIP"), "the governing Service is headless")

	// The selector selects the pod template, and the Service selects it too.
	podLabels := get(spec, "template", "metadata", "labels").(map[string]any)
	for k, v := range get(spec, "selector", "matchLabels").(map[string]any) {
		assert.Equal(t, v, podLabels[k], "selector %s", k)
	}
	for k, v := range get(svc.raw, "spec", "selector").(map[string]any) {
		assert.Equal(t, v, podLabels[k], "service selector %s", k)
	}

	pod := get(spec, "template", "spec")
	assert.Equal(t, false, get(pod, "enableServiceLinks"))
	assert.Equal(t, true, get(pod, "securityContext", "runAsNonRoot"))
	containers := list(get(pod, "containers"))
	require.Len(t, containers, 1)
	c := containers[0]

	ports := map[string]int{}
	for _, p := range list(get(c, "ports")) {
		ports[str(get(p, "name"))] = get(p, "containerPort").(int)
	}
	assert.Equal(t, 9466, ports["http"])
	for _, p := range list(get(svc.raw, "spec", "ports")) {
		assert.Contains(t, ports, str(get(p, "targetPort")), "service targetPort")
	}

	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
		assert.Equal(t, path, get(c, probe, "httpGet", "path"), probe)
		assert.Equal(t, "http", get(c, probe, "httpGet", "port"), probe)
	}
	for _, k := range []string{"requests/cpu", "requests/memory", "limits/memory"} {
		v := str(get(c, append([]string{"resources"}, strings.Split(k, "/")...)...))
		assert.Regexp(t, quantity, v, "resources.%s", k)
	}
	assert.Equal(t, "500m", get(c, "resources", "requests", "cpu"))
	assert.Equal(t, "256Mi", get(c, "resources", "requests", "memory"))
	// The Go runtime's soft limit sits below the pod's hard one, so the
	// collector works harder before the kernel kills the guard
	// (docs/benchmarks.md, "Memory under load").
	var soft string
	for _, e := range list(get(c, "env")) {
		if str(get(e, "name")) == "GOMEMLIMIT" {
			soft = str(get(e, "value"))
		}
	}
	softMiB, ok := strings.CutSuffix(soft, "MiB")
	require.True(t, ok, "GOMEMLIMIT %q: want NNNMiB", soft)
	hardMiB, ok := strings.CutSuffix(str(get(c, "resources", "limits", "memory")), "Mi")
	require.True(t, ok, "limits.memory: want NNNMi")
	softN, err := strconv.Atoi(softMiB)
	require.NoError(t, err)
	hardN, err := strconv.Atoi(hardMiB)
	require.NoError(t, err)
	assert.LessOrEqual(t, softN*10, hardN*8, "GOMEMLIMIT %s is not under 80 %% of limits.memory %s", soft, get(c, "resources", "limits", "memory"))

	// /data is the PersistentVolumeClaim, the config the ConfigMap.
	mounts := map[string]string{}
	for _, m := range list(get(c, "volumeMounts")) {
		mounts[str(get(m, "mountPath"))] = str(get(m, "name"))
	}
	var claims []string
	for _, vct := range list(get(spec, "volumeClaimTemplates")) {
		claims = append(claims, str(get(vct, "metadata", "name")))
		assert.Regexp(t, quantity, get(vct, "spec", "resources", "requests", "storage"))
	}
	assert.Contains(t, claims, mounts["/data"], "/data is on a volumeClaimTemplate")
	volumes := map[string]any{}
	for _, v := range list(get(pod, "volumes")) {
		volumes[str(get(v, "name"))] = v
	}
	for path, name := range mounts {
		if !slices.Contains(claims, name) {
			assert.Contains(t, volumes, name, "volumeMount %s", path)
		}
	}
	cmName := str(get(volumes[mounts["/etc/chargeguard"]], "configMap", "name"))
	cm, ok := find(objs, "ConfigMap", cmName)
	require.True(t, ok, "ConfigMap %q", cmName)
	args := list(get(c, "args"))
	require.Len(t, args, 2)
	assert.Equal(t, "--config", args[0])
	key := strings.TrimPrefix(str(args[1]), "/etc/chargeguard/")
	assert.NotEmpty(t, get(cm.raw, "data", key), "the ConfigMap holds %s", key)

	for _, ef := range list(get(c, "envFrom")) {
		name := str(get(ef, "secretRef", "name"))
		_, ok := find(objs, "Secret", name)
		assert.True(t, ok, "envFrom secret %q", name)
	}
}

// TestConfigMapIsAValidConfig: the ConfigMap's file, with the variables the
// pod sets, is a configuration chargeguard accepts, and every CHARGEGUARD_*
// variable is one chargeguard reads.
func TestConfigMapIsAValidConfig(t *testing.T) {
	testenv.Integration(t)
	objs, _ := load(t)
	cm, ok := find(objs, "ConfigMap", "chargeguard-config")
	require.True(t, ok)
	cfg := config.Default()
	require.NoError(t, config.Parse([]byte(str(get(cm.raw, "data", "chargeguard.yaml"))), &cfg))

	env := map[string]string{}
	ss, _ := find(objs, "StatefulSet", "chargeguard")
	c := list(get(ss.raw, "spec", "template", "spec", "containers"))[0]
	for _, e := range list(get(c, "env")) {
		env[str(get(e, "name"))] = str(get(e, "value"))
	}
	sec, _ := find(objs, "Secret", "chargeguard-secrets")
	for k, v := range get(sec.raw, "stringData").(map[string]any) {
		env[k] = str(v)
	}
	known := chargeguardEnv(t)
	for k := range env {
		if strings.HasPrefix(k, "CHARGEGUARD_") {
			assert.Contains(t, known, k, "the pod sets %s, which chargeguard does not read", k)
		}
	}
	// Apply them as cmd/chargeguard does.
	cfg.DataDir = env["CHARGEGUARD_DATA_DIR"]
	cfg.HTTP.Addr = env["CHARGEGUARD_HTTP_ADDR"]
	cfg.Influx.Token = config.Secret(env["CHARGEGUARD_INFLUX_TOKEN"])
	cfg.MQTT.Password = config.Secret(env["CHARGEGUARD_MQTT_PASSWORD"])
	// Read every token_file as chargeguard would, from the Secret the pod
	// mounts at that path: a token file that no mounted Secret provides
	// would stop the start.
	require.NotEmpty(t, cfg.API.Tokens, "the API needs tokens: the pod listens beyond loopback")
	secretMounts := map[string]string{} // mount path -> Secret name
	volumes := map[string]string{}
	for _, v := range list(get(ss.raw, "spec", "template", "spec", "volumes")) {
		volumes[str(get(v, "name"))] = str(get(v, "secret", "secretName"))
	}
	for _, m := range list(get(c, "volumeMounts")) {
		if name := volumes[str(get(m, "name"))]; name != "" {
			secretMounts[str(get(m, "mountPath"))] = name
		}
	}
	for i, tok := range cfg.API.Tokens {
		require.NotEmpty(t, tok.TokenFile, "api.tokens[%d]: a token_file, not a token in the ConfigMap", i)
		dir, key := filepath.Split(tok.TokenFile)
		secretName, ok := secretMounts[strings.TrimSuffix(dir, "/")]
		require.True(t, ok, "api.tokens[%d].token_file %s is under no mounted Secret", i, tok.TokenFile)
		sec, ok := find(objs, "Secret", secretName)
		require.True(t, ok, "Secret %s", secretName)
		value := str(get(sec.raw, "stringData", key))
		require.NotEmpty(t, value, "Secret %s has no key %s", secretName, key)
		cfg.API.Tokens[i].Token, cfg.API.Tokens[i].TokenFile = config.Secret(value), ""
	}
	require.NoError(t, cfg.Validate())
	assert.False(t, cfg.API.AnonymousReads, "reads need a token")
	assert.False(t, cfg.HTTP.Pprof, "profiles are off unless needed")

	assert.Equal(t, "/data", cfg.DataDir)
	assert.NotEmpty(t, cfg.MQTT.URL, "an external broker, not the embedded one")
	assert.NotEmpty(t, cfg.Alerting.Alertmanagers)
	assert.Equal(t, "0.0.0.0:9466", cfg.HTTP.Addr, "reachable by the probes and Prometheus")
}

// TestNetworkPolicy: the HTTP port of chargeguard's pod admits only the
// peers named (Prometheus, the ingress controller, the console), never
// "everyone", and chargeguard's own egress is not restricted (a policy
// mistake must never stop a close command).
func TestNetworkPolicy(t *testing.T) {
	objs, _ := load(t)
	np, ok := find(objs, "NetworkPolicy", "chargeguard-http")
	require.True(t, ok)
	ss, _ := find(objs, "StatefulSet", "chargeguard")
	podLabels := get(ss.raw, "spec", "template", "metadata", "labels").(map[string]any)
	sel := get(np.raw, "spec", "podSelector", "matchLabels").(map[string]any)
	require.NotEmpty(t, sel)
	for k, v := range sel {
		assert.Equal(t, v, podLabels[k], "podSelector %s selects chargeguard's pod", k)
	}
	var types []string
	for _, pt := range list(get(np.raw, "spec", "policyTypes")) {
		types = append(types, str(pt))
	}
	assert.Equal(t, []string{"Ingress"}, types, "ingress only: egress carries the close commands")

	rules := list(get(np.raw, "spec", "ingress"))
	require.NotEmpty(t, rules)
	var peers []string
	for i, r := range rules {
		from := list(get(r, "from"))
		require.NotEmpty(t, from, "ingress[%d] has no from: it would admit everyone", i)
		for j, f := range from {
			require.True(t, get(f, "podSelector", "matchLabels") != nil || get(f, "namespaceSelector", "matchLabels") != nil,
				"ingress[%d].from[%d] selects by labels", i, j)
			assert.Nil(t, get(f, "ipBlock"), "ingress[%d].from[%d]: no address ranges", i, j)
			peers = append(peers, str(get(f, "podSelector", "matchLabels", "app.kubernetes.io/name")))
		}
		ports := list(get(r, "ports"))
		require.Len(t, ports, 1, "ingress[%d] opens the HTTP port only", i)
		assert.Equal(t, "http", get(ports[0], "port"))
		assert.Equal(t, "TCP", get(ports[0], "protocol"))
	}
	assert.ElementsMatch(t, []string{"prometheus", "ingress-nginx", "chargeguard-console"}, peers)
}

// chargeguardEnv lists the CHARGEGUARD_* variables chargeguard reads, from
// its own -h output.
func chargeguardEnv(t *testing.T) []string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chargeguard")
	build := exec.Command("go", "build", "-o", bin, "./cmd/chargeguard")
	build.Dir = testenv.RepoRoot(t)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	help, _ := exec.Command(bin, "-h").CombinedOutput()
	names := regexp.MustCompile(`CHARGEGUARD_[A-Z_]+`).FindAllString(string(help), -1)
	require.NotEmpty(t, names, "chargeguard -h lists no variables:\n%s", help)
	return names
}

// loadOverlay decodes the manifests of deploy/k8s/cluster by file name.
func loadOverlay(t *testing.T) map[string]map[string]any {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), "deploy/k8s/cluster")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	out := map[string]map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var doc map[string]any
		require.NoError(t, yaml.Unmarshal(b, &doc), f)
		out[filepath.Base(f)] = doc
	}
	return out
}

// TestClusterOverlay: deploy/k8s/cluster runs the base as three replicas in
// cluster mode, with a PodDisruptionBudget that keeps two, a NetworkPolicy
// that lets them reach etcd and each other, and a configuration that is
// the base's plus the cluster section.
func TestClusterOverlay(t *testing.T) {
	testenv.Integration(t)
	docs := loadOverlay(t)
	kust := docs["kustomization.yaml"]
	require.NotNil(t, kust)
	var res []string
	for _, r := range list(kust["resources"]) {
		res = append(res, str(r))
	}
	assert.Equal(t, []string{"../", "pdb.yaml", "networkpolicy.yaml"}, res)
	var patches []string
	for _, p := range list(kust["patches"]) {
		patches = append(patches, str(get(p, "path")))
	}
	for f := range docs {
		if f != "kustomization.yaml" {
			assert.True(t, slices.Contains(res, f) || slices.Contains(patches, f), "%s is neither a resource nor a patch", f)
		}
	}

	base, _ := load(t)
	ss, _ := find(base, "StatefulSet", "chargeguard")
	podLabels := get(ss.raw, "spec", "template", "metadata", "labels").(map[string]any)

	patch := docs["statefulset-patch.yaml"]
	assert.Equal(t, "chargeguard", get(patch, "metadata", "name"))
	replicas := get(patch, "spec", "replicas").(int)
	assert.Equal(t, 3, replicas)
	c := list(get(patch, "spec", "template", "spec", "containers"))[0]
	assert.Equal(t, "chargeguard", get(c, "name"), "the patch merges into the base container")
	env := map[string]string{}
	for _, e := range list(get(c, "env")) {
		env[str(get(e, "name"))] = str(get(e, "value"))
	}
	known := chargeguardEnv(t)
	for k := range env {
		if strings.HasPrefix(k, "CHARGEGUARD_") {
			assert.Contains(t, known, k, "the overlay sets %s, which chargeguard does not read", k)
		}
	}
	assert.Equal(t, "$(POD_NAME)", env["CHARGEGUARD_CLUSTER_MEMBER"], "each replica's name (and MQTT client ids) is its stable pod name")
	assert.Contains(t, env["CHARGEGUARD_CLUSTER_ADVERTISE_URL"], "$(POD_NAME).chargeguard.", "reached through the headless Service")

	pdb := docs["pdb.yaml"]
	assert.Equal(t, "policy/v1", pdb["apiVersion"])
	assert.Equal(t, "PodDisruptionBudget", pdb["kind"])
	minAvail := get(pdb, "spec", "minAvailable").(int)
	assert.Equal(t, replicas-1, minAvail, "a drain takes one replica at a time")
	for k, v := range get(pdb, "spec", "selector", "matchLabels").(map[string]any) {
		assert.Equal(t, v, podLabels[k], "PDB selector %s", k)
	}

	np := docs["networkpolicy.yaml"]
	assert.Equal(t, "networking.k8s.io/v1", np["apiVersion"])
	for k, v := range get(np, "spec", "podSelector", "matchLabels").(map[string]any) {
		assert.Equal(t, v, podLabels[k], "NetworkPolicy selector %s", k)
	}
	portsOf := func(rules any) []int {
		var out []int
		for _, r := range list(rules) {
			for _, p := range list(get(r, "ports")) {
				out = append(out, get(p, "port").(int))
			}
		}
		return out
	}
	assert.Contains(t, portsOf(get(np, "spec", "ingress")), 9466, "probes, metrics, the API and forwarded changes")
	egress := portsOf(get(np, "spec", "egress"))
	for _, p := range []int{1884, 8086, 9093, 9466, 2379, 53} {
		assert.Contains(t, egress, p, "egress to port %d", p)
	}

	// The configuration is the base's plus the cluster section.
	cmPatch := docs["configmap-patch.yaml"]
	assert.Equal(t, "chargeguard-config", get(cmPatch, "metadata", "name"))
	cfg := config.Default()
	require.NoError(t, config.Parse([]byte(str(get(cmPatch, "data", "chargeguard.yaml"))), &cfg))
	cfg.Cluster.Member = "chargeguard-0"
	cfg.Cluster.AdvertiseURL = "http://chargeguard-0.chargeguard.chargeguard.svc.cluster.local:9466"
	// The tokens come from the base's Secret (checked with the base); for
	// validation, stand in for what chargeguard reads from the files.
	valid := cfg
	valid.API.Tokens = append([]config.APIToken(nil), cfg.API.Tokens...)
	for i := range valid.API.Tokens {
		require.NotEmpty(t, valid.API.Tokens[i].TokenFile, "api.tokens[%d]: a token_file, as in the base", i)
		valid.API.Tokens[i].Token, valid.API.Tokens[i].TokenFile = config.Secret("token-read-from-the-secret"), ""
	}
	require.NoError(t, valid.Validate())
	require.True(t, cfg.Cluster.Enabled())
	assert.Len(t, cfg.Cluster.Endpoints, 3, "a 3-member etcd")
	baseCM, _ := find(base, "ConfigMap", "chargeguard-config")
	baseCfg := config.Default()
	require.NoError(t, config.Parse([]byte(str(get(baseCM.raw, "data", "chargeguard.yaml"))), &baseCfg))
	cfg.Cluster = baseCfg.Cluster
	assert.Equal(t, baseCfg, cfg, "apart from cluster:, the overlay's configuration is the base's")
}
