package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/dripflow/dripflow/internal/config"
	"github.com/dripflow/dripflow/pkg/web"
)

// The repository root, seen from this package's directory.
const root = ".."

// binDir is where deploy/Dockerfile puts the binaries.
const binDir = "/usr/local/bin"

// settingNames returns every DRIPFLOW_* variable internal/config reads.
func settingNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	if _, err := config.FromEnv(func(name string) string { names[name] = true; return "" }); err != nil {
		t.Fatalf("config.FromEnv with no settings: %v", err)
	}
	if len(names) == 0 {
		t.Fatal("config.FromEnv read no variable")
	}
	return names
}

// binaries returns the commands under cmd/, which deploy/Dockerfile builds
// into binDir.
func binaries(t *testing.T) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	bins := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() {
			bins[e.Name()] = true
		}
	}
	for _, want := range []string{"dripflow", "worker", "scheduler", "web"} {
		if !bins[want] {
			t.Fatalf("cmd/%s is missing; found %v", want, bins)
		}
	}
	return bins
}

// checkCommand checks that a container's command runs one of the image's
// binaries.
func checkCommand(t *testing.T, where string, command []string, bins map[string]bool) {
	t.Helper()
	if len(command) == 0 {
		t.Errorf("%s: no command; the image's default only prints usage", where)
		return
	}
	if dir, bin := path.Split(command[0]); dir != binDir+"/" || !bins[bin] {
		t.Errorf("%s: command %q is not one of the image's binaries %s/{%s}", where, command[0], binDir, strings.Join(sortedKeys(bins), ","))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ---- Kubernetes ---------------------------------------------------------

type meta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
}

type podTemplate struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		RestartPolicy                 string `yaml:"restartPolicy"`
		TerminationGracePeriodSeconds *int64 `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               struct {
			RunAsNonRoot *bool  `yaml:"runAsNonRoot"`
			RunAsUser    *int64 `yaml:"runAsUser"`
		} `yaml:"securityContext"`
		Containers []container `yaml:"containers"`
	} `yaml:"spec"`
}

// workload is a Deployment or a Job.
type workload struct {
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template podTemplate `yaml:"template"`
	} `yaml:"spec"`
}

type hpa struct {
	Spec struct {
		ScaleTargetRef struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Name       string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicas int `yaml:"minReplicas"`
		MaxReplicas int `yaml:"maxReplicas"`
		Metrics     []struct {
			Type     string `yaml:"type"`
			Resource *struct {
				Name string `yaml:"name"`
			} `yaml:"resource"`
		} `yaml:"metrics"`
	} `yaml:"spec"`
}

type service struct {
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Port       int `yaml:"port"`
			TargetPort any `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

// object is one document of a manifest file.
type object struct {
	File       string
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`
	node       *yaml.Node
}

func (o object) String() string { return o.File + ": " + o.Kind + " " + o.Metadata.Name }

func (o object) decode(t *testing.T, v any) {
	t.Helper()
	if err := o.node.Decode(v); err != nil {
		t.Fatalf("%s: %v", o, err)
	}
}

// kinds lists the API versions the manifests may use.
var kinds = map[string]string{
	"ConfigMap":               "v1",
	"Secret":                  "v1",
	"Service":                 "v1",
	"Deployment":              "apps/v1",
	"Job":                     "batch/v1",
	"HorizontalPodAutoscaler": "autoscaling/v2",
	"ScaledObject":            "keda.sh/v1alpha1",
	"Kustomization":           "kustomize.config.k8s.io/v1beta1",
}

// readYAML decodes every document of a file.
func readYAML(t *testing.T, file string) []*yaml.Node {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		docs = append(docs, &n)
	}
}

// manifests parses deploy/kubernetes/*.yaml.
func manifests(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("kubernetes", "*.y*ml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes (%v)", err)
	}
	var objs []object
	for _, f := range files {
		for _, n := range readYAML(t, f) {
			o := object{File: filepath.Base(f), node: n}
			if err := n.Decode(&o); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			objs = append(objs, o)
		}
	}
	return objs
}

func byKind(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	t.Fatalf("no %s %q in deploy/kubernetes", kind, name)
	return object{}
}

// stringMap reads a ConfigMap's data or a Secret's stringData, requiring
// every value to be quoted: Kubernetes reads YAML 1.1, where a bare yes, on
// or 30 is not a string.
func stringMap(t *testing.T, o object, field string) map[string]string {
	t.Helper()
	out := map[string]string{}
	body := o.node
	if body.Kind == yaml.DocumentNode {
		body = body.Content[0]
	}
	for i := 0; i+1 < len(body.Content); i += 2 {
		if body.Content[i].Value != field {
			continue
		}
		m := body.Content[i+1]
		for j := 0; j+1 < len(m.Content); j += 2 {
			k, v := m.Content[j], m.Content[j+1]
			if v.Kind != yaml.ScalarNode || v.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
				t.Errorf("%s: %s.%s must be a quoted string, got %q", o, field, k.Value, v.Value)
			}
			out[k.Value] = v.Value
		}
	}
	return out
}

func TestManifestsAreKubernetesObjects(t *testing.T) {
	objs := manifests(t)
	seen := map[string]bool{}
	for _, o := range objs {
		want, ok := kinds[o.Kind]
		if !ok {
			t.Errorf("%s: unexpected kind %q", o.File, o.Kind)
			continue
		}
		if o.APIVersion != want {
			t.Errorf("%s: apiVersion %q, want %q", o, o.APIVersion, want)
		}
		if o.Kind == "Kustomization" {
			continue
		}
		if o.Metadata.Name == "" {
			t.Errorf("%s: %s without metadata.name", o.File, o.Kind)
		}
		if o.Metadata.Namespace != "" {
			t.Errorf("%s: has namespace %q; the manifests are namespace-less (kubectl -n)", o, o.Metadata.Namespace)
		}
		if o.Metadata.Labels["app.kubernetes.io/name"] != "dripflow" {
			t.Errorf("%s: label app.kubernetes.io/name is not dripflow", o)
		}
		if key := o.Kind + "/" + o.Metadata.Name; seen[key] {
			t.Errorf("%s: declared twice", o)
		} else {
			seen[key] = true
		}
	}
	for _, want := range []string{
		"Deployment/dripflow-worker", "Deployment/dripflow-scheduler", "Deployment/dripflow-web",
		"Service/dripflow-web", "ConfigMap/dripflow", "Secret/dripflow",
		"Job/dripflow-migrate", "HorizontalPodAutoscaler/dripflow-worker",
	} {
		if !seen[want] {
			t.Errorf("deploy/kubernetes has no %s", want)
		}
	}
}

// settings returns the environment the manifests give the processes: the
// ConfigMap's data and the Secret's stringData.
func settings(t *testing.T, objs []object) (cm, secret map[string]string) {
	t.Helper()
	return stringMap(t, find(t, objs, "ConfigMap", "dripflow"), "data"),
		stringMap(t, find(t, objs, "Secret", "dripflow"), "stringData")
}

func TestSettingsAreDripflowSettings(t *testing.T) {
	names := settingNames(t)
	objs := manifests(t)
	cm, secret := settings(t, objs)
	env := map[string]string{}
	for what, m := range map[string]map[string]string{"ConfigMap": cm, "Secret": secret} {
		for k, v := range m {
			if !names[k] {
				t.Errorf("%s sets %s, which internal/config does not read", what, k)
			}
			if _, dup := env[k]; dup {
				t.Errorf("%s is set in both the ConfigMap and the Secret", k)
			}
			env[k] = v
		}
	}
	for _, o := range objs {
		if o.Kind != "Deployment" && o.Kind != "Job" {
			continue
		}
		var w workload
		o.decode(t, &w)
		for _, c := range w.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if strings.HasPrefix(e.Name, "DRIPFLOW_") && !names[e.Name] {
					t.Errorf("%s: container %s sets %s, which internal/config does not read", o, c.Name, e.Name)
				}
			}
		}
	}
	// Credentials belong in the Secret, everything else in the ConfigMap.
	for _, k := range []string{"DRIPFLOW_REDIS_URL", "DRIPFLOW_DATABASE_URL", "DRIPFLOW_AUTH_TOKENS", "DRIPFLOW_SESSION_KEY"} {
		if _, ok := secret[k]; !ok {
			t.Errorf("the Secret does not set %s", k)
		}
	}
	c, err := config.FromEnv(func(name string) string { return env[name] })
	if err != nil {
		t.Fatalf("the ConfigMap and Secret are not a valid configuration: %v", err)
	}
	if err := c.Require(); err != nil {
		t.Errorf("the ConfigMap and Secret are not enough for worker, scheduler and web: %v", err)
	}
	// The example Secret must not be deployable unchanged: web refuses it.
	if _, err := web.ParseTokens(secret["DRIPFLOW_AUTH_TOKENS"]); err == nil {
		t.Errorf("secret.example.yaml's DRIPFLOW_AUTH_TOKENS is a usable token; keep a placeholder web rejects")
	}
}

func TestWorkloads(t *testing.T) {
	bins := binaries(t)
	objs := manifests(t)
	cm, _ := settings(t, objs)
	images := map[string]bool{}
	for _, o := range objs {
		if o.Kind != "Deployment" && o.Kind != "Job" {
			continue
		}
		var w workload
		o.decode(t, &w)
		pod := w.Spec.Template
		if o.Kind == "Deployment" {
			if len(w.Spec.Selector.MatchLabels) == 0 {
				t.Errorf("%s: no selector", o)
			}
			for k, v := range w.Spec.Selector.MatchLabels {
				if pod.Metadata.Labels[k] != v {
					t.Errorf("%s: the selector's %s=%s is not a label of the pod template", o, k, v)
				}
			}
		}
		if sc := pod.Spec.SecurityContext; sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
			t.Errorf("%s: the pod must set runAsNonRoot: true and a non-zero runAsUser", o)
		}
		if len(pod.Spec.Containers) == 0 {
			t.Errorf("%s: no containers", o)
		}
		for _, c := range pod.Spec.Containers {
			where := o.String() + " container " + c.Name
			images[c.Image] = true
			checkCommand(t, where, c.Command, bins)
			if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" {
				t.Errorf("%s: needs cpu and memory requests", where)
			}
			if c.Resources.Limits["memory"] == "" {
				t.Errorf("%s: needs a memory limit", where)
			}
			if p := c.SecurityContext.AllowPrivilegeEscalation; p == nil || *p {
				t.Errorf("%s: set allowPrivilegeEscalation: false", where)
			}
			for _, ref := range c.EnvFrom {
				if ref.ConfigMapRef != nil {
					find(t, objs, "ConfigMap", ref.ConfigMapRef.Name)
				}
				if ref.SecretRef != nil {
					find(t, objs, "Secret", ref.SecretRef.Name)
				}
			}
			if len(c.EnvFrom) == 0 {
				t.Errorf("%s: takes nothing from the ConfigMap and the Secret", where)
			}
			if o.Kind == "Deployment" && (c.ReadinessProbe == nil || c.LivenessProbe == nil) {
				t.Errorf("%s: needs a readiness and a liveness probe", where)
			}
		}
	}
	if len(images) != 1 {
		t.Errorf("the workloads run %d images %v; every process comes from the one dripflow image", len(images), sortedKeys(images))
	}

	// migrate: a one-shot `dripflow migrate`.
	var job workload
	find(t, objs, "Job", "dripflow-migrate").decode(t, &job)
	if rp := job.Spec.Template.Spec.RestartPolicy; rp != "Never" && rp != "OnFailure" {
		t.Errorf("migrate Job: restartPolicy %q, want Never or OnFailure", rp)
	}
	if c := job.Spec.Template.Spec.Containers; len(c) != 1 || !slices.Equal(c[0].Command, []string{binDir + "/dripflow", "migrate"}) {
		t.Errorf("migrate Job: want one container running %s/dripflow migrate", binDir)
	}

	// Every long-running process is probed on /readyz and /healthz, on the
	// port its listen setting names, and scraped there.
	for deployment, setting := range map[string]string{
		"dripflow-web":       "DRIPFLOW_HTTP_ADDR",
		"dripflow-worker":    "DRIPFLOW_METRICS_ADDR",
		"dripflow-scheduler": "DRIPFLOW_METRICS_ADDR",
	} {
		var dep workload
		find(t, objs, "Deployment", deployment).decode(t, &dep)
		_, port, err := splitHostPort(cm[setting])
		if err != nil {
			t.Fatalf("ConfigMap %s: %v", setting, err)
		}
		c := dep.Spec.Template.Spec.Containers[0]
		if want := strings.TrimPrefix(deployment, "dripflow-"); len(c.Command) == 0 || path.Base(c.Command[0]) != want {
			t.Errorf("%s does not run %s", deployment, want)
		}
		named := map[string]int{}
		for _, p := range c.Ports {
			named[p.Name] = p.ContainerPort
		}
		check := func(what string, p *probe, wantPath string) {
			if p == nil || p.HTTPGet == nil {
				t.Errorf("%s: no HTTP %s probe", deployment, what)
				return
			}
			if p.HTTPGet.Path != wantPath {
				t.Errorf("%s: %s probe on %q, want %q", deployment, what, p.HTTPGet.Path, wantPath)
			}
			if got := resolvePort(p.HTTPGet.Port, named); got != port {
				t.Errorf("%s: %s probe on port %v (%d), but it listens on %d (%s)", deployment, what, p.HTTPGet.Port, got, port, setting)
			}
		}
		check("readiness", c.ReadinessProbe, "/readyz")
		check("liveness", c.LivenessProbe, "/healthz")
		scrape := port
		if deployment == "dripflow-web" {
			// web's /metrics needs a token on its HTTP port; it is scraped
			// on an address of its own.
			if _, scrape, err = splitHostPort(cm["DRIPFLOW_WEB_METRICS_ADDR"]); err != nil {
				t.Fatalf("ConfigMap DRIPFLOW_WEB_METRICS_ADDR: %v", err)
			}
		}
		if a := dep.Spec.Template.Metadata.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(scrape) || a["prometheus.io/path"] != "/metrics" {
			t.Errorf("%s: prometheus.io annotations %v do not point at :%d/metrics", deployment, a, scrape)
		}
	}

	// worker: the kubelet waits longer than the worker drains.
	var worker workload
	find(t, objs, "Deployment", "dripflow-worker").decode(t, &worker)
	shutdown, err := time.ParseDuration(cm["DRIPFLOW_SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Fatalf("ConfigMap DRIPFLOW_SHUTDOWN_TIMEOUT: %v", err)
	}
	for _, c := range worker.Spec.Template.Spec.Containers {
		checkCommand(t, "worker", c.Command, bins)
		for _, e := range c.Env {
			if e.Name == "DRIPFLOW_SHUTDOWN_TIMEOUT" {
				if shutdown, err = time.ParseDuration(e.Value); err != nil {
					t.Fatalf("worker DRIPFLOW_SHUTDOWN_TIMEOUT: %v", err)
				}
			}
		}
	}
	if g := worker.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= shutdown {
		t.Errorf("worker: terminationGracePeriodSeconds must exceed DRIPFLOW_SHUTDOWN_TIMEOUT (%s)", shutdown)
	}
}

func TestWorkerAutoscaler(t *testing.T) {
	objs := manifests(t)
	var h hpa
	find(t, objs, "HorizontalPodAutoscaler", "dripflow-worker").decode(t, &h)
	ref := h.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" {
		t.Fatalf("the HPA scales %s %s, want an apps/v1 Deployment", ref.APIVersion, ref.Kind)
	}
	var target workload
	find(t, objs, "Deployment", ref.Name).decode(t, &target)
	if h.Spec.MinReplicas < 1 || h.Spec.MaxReplicas < h.Spec.MinReplicas {
		t.Errorf("the HPA's replicas %d..%d make no sense", h.Spec.MinReplicas, h.Spec.MaxReplicas)
	}
	if target.Spec.Replicas != nil {
		t.Errorf("Deployment %s sets replicas; re-applying it would undo the HPA", ref.Name)
	}
	for _, m := range h.Spec.Metrics {
		if m.Type != "Resource" || m.Resource == nil {
			continue
		}
		for _, c := range target.Spec.Template.Spec.Containers {
			if c.Resources.Requests[m.Resource.Name] == "" {
				t.Errorf("the HPA scales on %s, but container %s of %s requests none", m.Resource.Name, c.Name, ref.Name)
			}
		}
	}
}

func TestWebService(t *testing.T) {
	objs := manifests(t)
	var svc service
	find(t, objs, "Service", "dripflow-web").decode(t, &svc)
	var dep workload
	find(t, objs, "Deployment", "dripflow-web").decode(t, &dep)
	if len(svc.Spec.Selector) == 0 {
		t.Fatal("the web Service has no selector")
	}
	for k, v := range svc.Spec.Selector {
		if dep.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("the web Service selects %s=%s, which web's pods do not carry", k, v)
		}
	}
	ports := map[string]int{}
	for _, p := range dep.Spec.Template.Spec.Containers[0].Ports {
		ports[p.Name] = p.ContainerPort
	}
	for _, p := range svc.Spec.Ports {
		if resolvePort(p.TargetPort, ports) == 0 {
			t.Errorf("the web Service targets port %v, which web does not expose", p.TargetPort)
		}
	}
}

func TestKustomization(t *testing.T) {
	objs := manifests(t)
	var k struct {
		Resources []string `yaml:"resources"`
		Images    []struct {
			Name string `yaml:"name"`
		} `yaml:"images"`
	}
	kust := byKind(objs, "Kustomization")
	if len(kust) != 1 {
		t.Fatalf("want one kustomization.yaml, got %d", len(kust))
	}
	kust[0].decode(t, &k)
	// Applied on their own: the example Secret must never overwrite the
	// real one, and a Job's template cannot be changed by re-applying.
	// worker-keda.yaml replaces worker-hpa.yaml (KEDA makes its own HPA).
	separate := []string{"secret.example.yaml", "migrate-job.yaml", "kustomization.yaml", "worker-keda.yaml"}
	files := map[string]bool{}
	for _, o := range objs {
		if !slices.Contains(separate, o.File) {
			files[o.File] = true
		}
	}
	for _, r := range k.Resources {
		if slices.Contains(separate, r) {
			t.Errorf("kustomization.yaml must not list %s", r)
		}
		if _, err := os.Stat(filepath.Join("kubernetes", r)); err != nil {
			t.Errorf("kustomization.yaml: %v", err)
		}
		delete(files, r)
	}
	for f := range files {
		t.Errorf("kustomization.yaml does not list %s", f)
	}
	var w workload
	find(t, objs, "Deployment", "dripflow-web").decode(t, &w)
	image, _, _ := strings.Cut(w.Spec.Template.Spec.Containers[0].Image, ":")
	if len(k.Images) != 1 || k.Images[0].Name != image {
		t.Errorf("kustomization.yaml's images should rename %q, the workloads' image", image)
	}
}

// ---- docker-compose.yml -------------------------------------------------

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command       []string          `yaml:"command"`
	ContainerName string            `yaml:"container_name"`
	Environment   map[string]string `yaml:"environment"`
	Ports         []string          `yaml:"ports"`
	Profiles      []string          `yaml:"profiles"`
	Volumes       []string          `yaml:"volumes"`
	Healthcheck   *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	DependsOn       map[string]struct{ Condition string } `yaml:"depends_on"`
	StopGracePeriod string                                `yaml:"stop_grace_period"`
}

// composeOnly are variables docker-compose.yml substitutes itself; no
// dripflow process reads them.
var composeOnly = map[string]bool{"DRIPFLOW_IMAGE": true, "DRIPFLOW_WEB_PORT": true, "DRIPFLOW_PROMETHEUS_PORT": true}

var substitution = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}`)

// substitute resolves ${NAME} and ${NAME:-default} as Compose does with an
// empty environment.
func substitute(s string) string {
	return substitution.ReplaceAllStringFunc(s, func(m string) string {
		return substitution.FindStringSubmatch(m)[2]
	})
}

func compose(t *testing.T) map[string]composeService {
	t.Helper()
	docs := readYAML(t, filepath.Join(root, "docker-compose.yml"))
	if len(docs) != 1 {
		t.Fatalf("docker-compose.yml: %d documents", len(docs))
	}
	var f struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := docs[0].Decode(&f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return f.Services
}

func TestCompose(t *testing.T) {
	names := settingNames(t)
	bins := binaries(t)
	svcs := compose(t)
	for _, want := range []string{"redis", "postgres", "migrate", "scheduler", "worker", "web", "prometheus"} {
		if _, ok := svcs[want]; !ok {
			t.Errorf("docker-compose.yml has no service %s", want)
		}
	}
	for _, name := range []string{"redis", "postgres"} {
		if s := svcs[name]; s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
			t.Errorf("compose %s: no healthcheck", name)
		}
	}

	// One image, built from deploy/Dockerfile, runs every dripflow process.
	images := map[string]bool{}
	for _, name := range []string{"migrate", "scheduler", "worker", "web"} {
		s := svcs[name]
		images[s.Image] = true
		if s.Build == nil || s.Build.Dockerfile != "deploy/Dockerfile" || s.Build.Context != "." {
			t.Errorf("compose %s: must build context . with dockerfile deploy/Dockerfile", name)
		}
		checkCommand(t, "compose "+name, s.Command, bins)
		env := map[string]string{}
		for k, v := range s.Environment {
			if strings.HasPrefix(k, "DRIPFLOW_") && !names[k] {
				t.Errorf("compose %s: sets %s, which internal/config does not read", name, k)
			}
			env[k] = substitute(v)
		}
		c, err := config.FromEnv(func(n string) string { return env[n] })
		if err != nil {
			t.Errorf("compose %s: invalid settings: %v", name, err)
		} else if err := c.Require(); err != nil {
			t.Errorf("compose %s: %v", name, err)
		}
		if name != "migrate" {
			if d := s.DependsOn["migrate"].Condition; d != "service_completed_successfully" {
				t.Errorf("compose %s: must depend on migrate with condition service_completed_successfully, got %q", name, d)
			}
		}
	}
	if len(images) != 1 {
		t.Errorf("compose: the dripflow services name %d images %v, want one", len(images), sortedKeys(images))
	}
	for name := range images {
		for _, m := range substitution.FindAllStringSubmatch(name, -1) {
			if !composeOnly[m[1]] {
				t.Errorf("compose: image %q uses an undeclared variable %s", name, m[1])
			}
		}
	}
	if got := svcs["migrate"].Command; !slices.Equal(got, []string{binDir + "/dripflow", "migrate"}) {
		t.Errorf("compose migrate runs %q, want dripflow migrate", got)
	}

	// Workers scale with --scale worker=N.
	w := svcs["worker"]
	if w.ContainerName != "" || len(w.Ports) > 0 {
		t.Errorf("compose worker: a container_name or published port stops --scale worker=N")
	}
	shutdown, err := time.ParseDuration(w.Environment["DRIPFLOW_SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Fatalf("compose worker DRIPFLOW_SHUTDOWN_TIMEOUT: %v", err)
	}
	if grace, err := time.ParseDuration(w.StopGracePeriod); err != nil || grace <= shutdown {
		t.Errorf("compose worker: stop_grace_period %q must exceed DRIPFLOW_SHUTDOWN_TIMEOUT %s", w.StopGracePeriod, shutdown)
	}

	// web publishes the port it listens on.
	webSvc := svcs["web"]
	_, port, err := splitHostPort(webSvc.Environment["DRIPFLOW_HTTP_ADDR"])
	if err != nil {
		t.Fatalf("compose web DRIPFLOW_HTTP_ADDR: %v", err)
	}
	published := false
	for _, p := range webSvc.Ports {
		published = published || strings.HasSuffix(substitute(p), ":"+strconv.Itoa(port))
	}
	if !published {
		t.Errorf("compose web: ports %q do not publish container port %d", webSvc.Ports, port)
	}

	// Prometheus is optional.
	prom := svcs["prometheus"]
	if !slices.Equal(prom.Profiles, []string{"monitoring"}) {
		t.Errorf("compose prometheus: profiles %q, want [monitoring]", prom.Profiles)
	}
	mounted := false
	for _, v := range prom.Volumes {
		if src, _, _ := strings.Cut(v, ":"); filepath.Clean(src) == "deploy/prometheus/prometheus.yml" {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("compose prometheus does not mount deploy/prometheus/prometheus.yml")
	}
}

func TestComposeEnvExample(t *testing.T) {
	names := settingNames(t)
	for n := range composeOnly {
		if names[n] {
			t.Errorf("%s is a dripflow setting, not only a Compose variable", n)
		}
	}
	f, err := os.Open("compose.env.example")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("compose.env.example: %q is not NAME=value", line)
			continue
		}
		if strings.HasPrefix(k, "DRIPFLOW_") && !names[k] && !composeOnly[k] {
			t.Errorf("compose.env.example sets %s, which neither dripflow nor docker-compose.yml reads", k)
		}
		if k == "DRIPFLOW_AUTH_TOKENS" && v != "" {
			t.Errorf("compose.env.example must not ship a token")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// ---- Prometheus ---------------------------------------------------------

type promConfig struct {
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Type  string   `yaml:"type"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
		KubernetesSDConfigs []struct {
			Role string `yaml:"role"`
		} `yaml:"kubernetes_sd_configs"`
	} `yaml:"scrape_configs"`
}

func TestPrometheus(t *testing.T) {
	svcs := compose(t)
	var c promConfig
	if err := readYAML(t, filepath.Join("prometheus", "prometheus.yml"))[0].Decode(&c); err != nil {
		t.Fatal(err)
	}
	// Each dripflow process of the compose stack is scraped on the port it
	// serves /metrics on; scaled workers are found through DNS.
	for svc, setting := range map[string]string{"web": "DRIPFLOW_WEB_METRICS_ADDR", "scheduler": "DRIPFLOW_METRICS_ADDR", "worker": "DRIPFLOW_METRICS_ADDR"} {
		_, port, err := splitHostPort(svcs[svc].Environment[setting])
		if err != nil {
			t.Fatalf("compose %s %s: %v", svc, setting, err)
		}
		found := false
		for _, sc := range c.ScrapeConfigs {
			if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
				continue
			}
			for _, st := range sc.StaticConfigs {
				found = found || slices.Contains(st.Targets, svc+":"+strconv.Itoa(port))
			}
			for _, d := range sc.DNSSDConfigs {
				found = found || (slices.Contains(d.Names, svc) && d.Port == port && d.Type == "A")
			}
		}
		if !found {
			t.Errorf("prometheus.yml does not scrape %s on :%d/metrics (%s)", svc, port, setting)
		}
		if svc != "web" && len(svcs[svc].Ports) > 0 {
			t.Errorf("compose %s publishes ports %q; keep its metrics port inside the network", svc, svcs[svc].Ports)
		}
	}
	var k promConfig
	if err := readYAML(t, filepath.Join("prometheus", "kubernetes.yml"))[0].Decode(&k); err != nil {
		t.Fatal(err)
	}
	if len(k.ScrapeConfigs) == 0 || len(k.ScrapeConfigs[0].KubernetesSDConfigs) == 0 {
		t.Errorf("prometheus/kubernetes.yml has no kubernetes_sd_configs job")
	}
}

// ---- Dockerfile ---------------------------------------------------------

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]string // instructions (comments dropped, continuations joined) per FROM
	var cur strings.Builder
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if body, more := strings.CutSuffix(line, `\`); more {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		ins := cur.String()
		cur.Reset()
		if strings.HasPrefix(strings.ToUpper(ins), "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], ins)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("deploy/Dockerfile has %d stages, want a build stage and a runtime stage", len(stages))
	}
	all := strings.Join(slices.Concat(stages...), "\n")
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/...", "-trimpath"} {
		if !strings.Contains(all, want) {
			t.Errorf("deploy/Dockerfile: the build does not use %s", want)
		}
	}
	final := stages[len(stages)-1]
	var user string
	copied := false
	for _, ins := range final {
		if u, ok := strings.CutPrefix(ins, "USER "); ok {
			user = u
		}
		if strings.HasPrefix(ins, "COPY --from=") && strings.HasSuffix(ins, " "+binDir+"/") {
			copied = true
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("deploy/Dockerfile: the image must run as a numeric non-root USER, got %q", user)
	}
	if !copied {
		t.Errorf("deploy/Dockerfile: the runtime stage does not copy the binaries to %s/", binDir)
	}

	// The build context must keep what `go build ./cmd/...` reads.
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(ignore)) {
		switch p := strings.Trim(strings.TrimSpace(line), "/"); p {
		case "go.mod", "go.sum", "cmd", "pkg", "internal", "examples", "*.go", "**/*.go", "*":
			t.Errorf(".dockerignore leaves %q out of the build context", p)
		}
	}
}

// ---- helpers ------------------------------------------------------------

// splitHostPort splits a listen address such as ":8080".
func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(port)
	return host, n, err
}

// resolvePort turns a probe's or Service's port (a number or a port name)
// into a number; 0 when it names no port.
func resolvePort(p any, named map[string]int) int {
	switch v := p.(type) {
	case int:
		return v
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		return named[v]
	}
	return 0
}
