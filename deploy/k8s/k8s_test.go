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
	"Namespace":   "v1",
	"ConfigMap":   "v1",
	"Secret":      "v1",
	"Service":     "v1",
	"StatefulSet": "apps/v1",
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
	assert.Equal(t, []string{"ConfigMap", "Namespace", "Secret", "Service", "StatefulSet"}, kinds)

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
	require.NoError(t, cfg.Validate())

	assert.Equal(t, "/data", cfg.DataDir)
	assert.NotEmpty(t, cfg.MQTT.URL, "an external broker, not the embedded one")
	assert.NotEmpty(t, cfg.Alerting.Alertmanagers)
	assert.Equal(t, "0.0.0.0:9466", cfg.HTTP.Addr, "reachable by the probes and Prometheus")
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
