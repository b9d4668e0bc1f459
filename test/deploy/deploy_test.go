// Package deploy_test checks the packaging under deploy/ and the Dockerfile:
// every Kubernetes manifest decodes strictly into the real API types (an
// unknown or misspelt field is an error, as kubectl's server-side
// validation would say), the pieces refer to each other correctly, the
// configuration they carry loads, and every command line they run is one
// the regmirror CLI accepts. No cluster and no schema download needed.
package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/regmirror/regmirror/internal/cli"
	"github.com/regmirror/regmirror/internal/config"
)

const dir = "../../deploy/kubernetes"

type manifests struct {
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	services        []*corev1.Service
	deployments     []*appsv1.Deployment
	statefulSets    []*appsv1.StatefulSet
	cronJobs        []*batchv1.CronJob
	serviceMonitors []*monitoringv1.ServiceMonitor
	files           []string
}

// load decodes every document of every YAML file in dir strictly.
func load(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	for _, p := range paths {
		base := filepath.Base(p)
		m.files = append(m.files, base)
		if base == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocs(data) {
			where := fmt.Sprintf("%s document %d", base, i+1)
			var tm struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var obj any
			switch tm.APIVersion + "/" + tm.Kind {
			case "v1/ConfigMap":
				obj = &corev1.ConfigMap{}
			case "v1/Secret":
				obj = &corev1.Secret{}
			case "v1/Service":
				obj = &corev1.Service{}
			case "apps/v1/Deployment":
				obj = &appsv1.Deployment{}
			case "apps/v1/StatefulSet":
				obj = &appsv1.StatefulSet{}
			case "batch/v1/CronJob":
				obj = &batchv1.CronJob{}
			case "monitoring.coreos.com/v1/ServiceMonitor":
				obj = &monitoringv1.ServiceMonitor{}
			default:
				t.Fatalf("%s: no schema for %s %s: add its API type to this test", where, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s (%s): %v", where, tm.Kind, err)
			}
			switch o := obj.(type) {
			case *corev1.ConfigMap:
				m.configMaps[o.Name] = o
			case *corev1.Secret:
				m.secrets[o.Name] = o
			case *corev1.Service:
				m.services = append(m.services, o)
			case *appsv1.Deployment:
				m.deployments = append(m.deployments, o)
			case *appsv1.StatefulSet:
				m.statefulSets = append(m.statefulSets, o)
			case *batchv1.CronJob:
				m.cronJobs = append(m.cronJobs, o)
			case *monitoringv1.ServiceMonitor:
				m.serviceMonitors = append(m.serviceMonitors, o)
			}
		}
	}
	return m
}

func splitDocs(data []byte) [][]byte {
	var out [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			out = append(out, []byte(d))
		}
	}
	return out
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// TestStrictDecodeRejectsTypos proves the check can fail: a misspelt field
// in a Deployment is an error.
func TestStrictDecodeRejectsTypos(t *testing.T) {
	doc := []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 1\n")
	if err := yaml.UnmarshalStrict(doc, &appsv1.Deployment{}); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("UnmarshalStrict accepted spec.replica: %v", err)
	}
}

func TestManifests(t *testing.T) {
	m := load(t)
	if len(m.deployments) != 1 || len(m.cronJobs) != 1 || len(m.statefulSets) != 1 || len(m.services) != 2 || len(m.serviceMonitors) != 1 {
		t.Fatalf("want one Deployment, CronJob, StatefulSet and ServiceMonitor and two Services; got %d, %d, %d, %d, %d",
			len(m.deployments), len(m.cronJobs), len(m.statefulSets), len(m.serviceMonitors), len(m.services))
	}
	services := map[string]*corev1.Service{}
	for _, s := range m.services {
		services[s.Name] = s
	}

	d := m.deployments[0]
	pod := d.Spec.Template
	c := servePod(t, "Deployment", d.Spec.Selector.MatchLabels, pod)
	args := c.Args
	listen := flagValue(args, "--listen")
	port := namedPort(c, "metrics")
	if port == nil {
		t.Fatal("Deployment container has no port named metrics")
	}
	if listen != fmt.Sprintf(":%d", port.ContainerPort) {
		t.Errorf("serve --listen %q, but the metrics port is %d (in a container listen on all addresses: \":PORT\")", listen, port.ContainerPort)
	}
	for probe, path := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path || probe.HTTPGet.Port.String() != "metrics" {
			t.Errorf("probe %+v, want GET %s on port metrics", probe, path)
		}
	}
	checkPod(t, m, "Deployment", pod.Spec, args)

	svc := services["regmirror"]
	if svc == nil {
		t.Fatal("no Service named regmirror for the Deployment")
	}
	for k, v := range svc.Spec.Selector {
		if pod.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not select the Deployment's pods", k, v)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "metrics" || svc.Spec.Ports[0].Name != "metrics" {
		t.Errorf("Service ports %+v, want one named metrics targeting metrics", svc.Spec.Ports)
	}
	sm := m.serviceMonitors[0]
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selector %s=%s does not select the Service (labels %v)", k, v, svc.Labels)
		}
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "metrics" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v, want port metrics path /metrics", sm.Spec.Endpoints)
	}

	// The sharded CronJob: an Indexed Job whose COUNT matches its pods.
	cj := m.cronJobs[0]
	job := cj.Spec.JobTemplate.Spec
	jc := container(t, "CronJob", job.Template.Spec)
	shard := flagValue(jc.Args, "--shard")
	idx, count, ok := strings.Cut(shard, "/")
	if !ok || idx != "$(JOB_COMPLETION_INDEX)" {
		t.Fatalf("CronJob --shard %q, want $(JOB_COMPLETION_INDEX)/COUNT", shard)
	}
	if job.CompletionMode == nil || *job.CompletionMode != batchv1.IndexedCompletion {
		t.Error("CronJob's job is not Indexed: JOB_COMPLETION_INDEX would be unset")
	}
	if job.Completions == nil || job.Parallelism == nil || fmt.Sprint(*job.Completions) != count || fmt.Sprint(*job.Parallelism) != count {
		t.Errorf("--shard .../%s but completions %v, parallelism %v: some shard would never run", count, job.Completions, job.Parallelism)
	}
	if job.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("CronJob restartPolicy %q, want Never (per-index backoff decides retries)", job.Template.Spec.RestartPolicy)
	}
	checkPod(t, m, "CronJob", job.Template.Spec, substitute(jc.Args, "$(JOB_COMPLETION_INDEX)", "0"))

	// The sharded daemons: a StatefulSet whose --shard COUNT is its
	// replicas and whose INDEX is each pod's own index.
	ss := m.statefulSets[0]
	spod := ss.Spec.Template
	sc := servePod(t, "StatefulSet", ss.Spec.Selector.MatchLabels, spod)
	idx, count, ok = strings.Cut(flagValue(sc.Args, "--shard"), "/")
	if !ok || ss.Spec.Replicas == nil || fmt.Sprint(*ss.Spec.Replicas) != count {
		t.Errorf("StatefulSet --shard .../%s but replicas %v: some shard would never run, or two would overlap", count, ptrString(ss.Spec.Replicas))
	}
	envName, found := strings.CutPrefix(idx, "$(")
	envName, _ = strings.CutSuffix(envName, ")")
	var fromIndex bool
	for _, e := range sc.Env {
		if e.Name == envName && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.labels['apps.kubernetes.io/pod-index']" {
			fromIndex = true
		}
	}
	if !found || !fromIndex {
		t.Errorf("StatefulSet --shard %s/%s: INDEX must be an env var from the apps.kubernetes.io/pod-index label", idx, count)
	}
	gov := services[ss.Spec.ServiceName]
	if gov == nil || gov.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("StatefulSet serviceName %q: want a headless Service of that name", ss.Spec.ServiceName)
	} else {
		for k, v := range gov.Spec.Selector {
			if spod.Labels[k] != v {
				t.Errorf("Service %s selector %s=%s does not select the StatefulSet's pods", gov.Name, k, v)
			}
		}
	}
	if p := namedPort(sc, "metrics"); p == nil || flagValue(sc.Args, "--listen") != fmt.Sprintf(":%d", p.ContainerPort) {
		t.Errorf("StatefulSet: serve --listen %q does not match a port named metrics", flagValue(sc.Args, "--listen"))
	}
	checkPod(t, m, "StatefulSet", spod.Spec, substitute(sc.Args, idx, "0"))
}

// servePod checks that a workload's selector selects its pods and that
// they run serve, and returns the regmirror container.
func servePod(t *testing.T, what string, selector map[string]string, pod corev1.PodTemplateSpec) corev1.Container {
	t.Helper()
	for k, v := range selector {
		if pod.Labels[k] != v {
			t.Errorf("%s selector %s=%s does not match the pod labels %v", what, k, v, pod.Labels)
		}
	}
	c := container(t, what, pod.Spec)
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("%s runs %v, want serve", what, c.Args)
	}
	return c
}

func container(t *testing.T, what string, spec corev1.PodSpec) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == "regmirror" {
			return c
		}
	}
	t.Fatalf("%s has no container named regmirror", what)
	return corev1.Container{}
}

func namedPort(c corev1.Container, name string) *corev1.ContainerPort {
	for i := range c.Ports {
		if c.Ports[i].Name == name {
			return &c.Ports[i]
		}
	}
	return nil
}

func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

func substitute(args []string, old, repl string) []string {
	out := slices.Clone(args)
	for i := range out {
		out[i] = strings.ReplaceAll(out[i], old, repl)
	}
	return out
}

// checkPod checks what every regmirror pod needs: non-root, the ConfigMap
// and Secret it names exist, the config file it is given is in the
// ConfigMap and loads, and its command line is accepted by the CLI.
func checkPod(t *testing.T, m *manifests, what string, spec corev1.PodSpec, args []string) {
	t.Helper()
	sc := spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("%s: pod must run as a non-root user id", what)
	}
	c := container(t, what, spec)
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.SecretRef == nil {
			continue
		}
		s, ok := m.secrets[ef.SecretRef.Name]
		if !ok {
			t.Errorf("%s: envFrom Secret %q is not in %s", what, ef.SecretRef.Name, dir)
			continue
		}
		for k, v := range s.StringData {
			env[k] = v
		}
	}
	cfgPath := flagValue(args, "--config")
	var cm *corev1.ConfigMap
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	for _, vm := range c.VolumeMounts {
		v, ok := volumes[vm.Name]
		if !ok {
			t.Errorf("%s: volumeMount %q has no volume", what, vm.Name)
			continue
		}
		if v.ConfigMap == nil {
			continue
		}
		if cm, ok = m.configMaps[v.ConfigMap.Name]; !ok {
			t.Errorf("%s: ConfigMap %q is not in %s", what, v.ConfigMap.Name, dir)
			continue
		}
		if vm.SubPath != "" {
			t.Errorf("%s: the ConfigMap is mounted with subPath, so updates never reach the pod", what)
		}
		key, found := strings.CutPrefix(cfgPath, vm.MountPath+"/")
		if !found {
			t.Errorf("%s: --config %s is not under the ConfigMap mount %s", what, cfgPath, vm.MountPath)
			continue
		}
		doc, ok := cm.Data[key]
		if !ok {
			t.Errorf("%s: ConfigMap %s has no key %q for --config %s", what, cm.Name, key, cfgPath)
			continue
		}
		for k, v := range env {
			t.Setenv(k, v)
		}
		if _, err := config.Load(strings.NewReader(doc), cm.Name+"/"+key); err != nil {
			t.Errorf("%s: the configuration in ConfigMap %s does not load: %v", what, cm.Name, err)
		}
	}
	if cm == nil {
		t.Errorf("%s: no ConfigMap mounted for --config %s", what, cfgPath)
	}
	checkArgs(t, what, args)
}

// checkArgs asks the CLI itself whether it accepts args: with --help,
// cobra parses every flag (an unknown flag or command is an error) and
// runs nothing.
func checkArgs(t *testing.T, what string, args []string) {
	t.Helper()
	var out bytes.Buffer
	err := cli.Execute(context.Background(), append(slices.Clone(args), "--help"), strings.NewReader(""), &out, io.Discard)
	if err != nil {
		t.Errorf("%s: regmirror %s: %v", what, strings.Join(args, " "), err)
		return
	}
	if !strings.Contains(out.String(), "regmirror "+args[0]) {
		t.Errorf("%s: regmirror %s --help printed help for another command:\n%s", what, strings.Join(args, " "), out.String())
	}
}

func TestKustomization(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Labels     []struct {
			Pairs map[string]string `json:"pairs"`
		} `json:"labels"`
		Resources []string `json:"resources"`
	}
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.Kind != "Kustomization" || len(k.Resources) == 0 {
		t.Fatalf("kustomization.yaml: %+v", k)
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(dir, r)); err != nil {
			t.Errorf("kustomization.yaml: resource %s: %v", r, err)
		}
		if strings.Contains(r, "sharded") {
			t.Errorf("kustomization.yaml applies %s too: daemon and shards would copy every image twice", r)
		}
	}
}

// TestDockerfile checks the image's contract: a static build, a non-root
// user, /config.yaml as the default config, and a default command the CLI
// accepts.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var stages, user, cmd, entry string
	static := false
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "FROM "):
			stages += l + "\n"
			user = ""
		case strings.HasPrefix(l, "USER "):
			user = strings.TrimPrefix(l, "USER ")
		case strings.HasPrefix(l, "CMD "):
			cmd = strings.TrimPrefix(l, "CMD ")
		case strings.HasPrefix(l, "ENTRYPOINT "):
			entry = strings.TrimPrefix(l, "ENTRYPOINT ")
		case strings.Contains(l, "CGO_ENABLED=0"):
			static = true
		}
	}
	if strings.Count(stages, "FROM ") < 2 {
		t.Errorf("want a multi-stage build, got:\n%s", stages)
	}
	if !static {
		t.Error("the build does not set CGO_ENABLED=0")
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("final stage USER %q, want a non-root numeric user", user)
	}
	var entryArgs, cmdArgs []string
	if err := json.Unmarshal([]byte(entry), &entryArgs); err != nil || len(entryArgs) != 1 {
		t.Fatalf("ENTRYPOINT %s: want the exec form [\"/path/regmirror\"]: %v", entry, err)
	}
	if err := json.Unmarshal([]byte(cmd), &cmdArgs); err != nil {
		t.Fatalf("CMD %s: want the exec form: %v", cmd, err)
	}
	if flagValue(cmdArgs, "--config") != "/config.yaml" {
		t.Errorf("CMD %v: want --config /config.yaml (docker run -v FILE:/config.yaml)", cmdArgs)
	}
	checkArgs(t, "Dockerfile CMD", cmdArgs)
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}
