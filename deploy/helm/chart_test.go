// Package helm_test renders the originagent Helm chart with a real helm
// binary and decodes every manifest strictly into the Kubernetes API types,
// so that a misspelt field fails here rather than in a cluster.
package helm_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/originagent/originagent/internal/testutil"
)

const chartDir = "originagent"

// kubeVersion is passed to helm template: a helm built with `go install`
// lacks the release build's default Kubernetes version.
const kubeVersion = "1.33.0"

// helmBinary finds helm: $HELM, the repository's bin/tools/helm (where
// deploy/helm/test.sh installs it), or PATH. Without one the test skips
// outside CI and fails in CI.
func helmBinary(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("HELM"), filepath.Join("..", "..", "bin", "tools", "helm")}
	if p, err := exec.LookPath("helm"); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
			abs, err := filepath.Abs(c)
			if err != nil {
				t.Fatal(err)
			}
			return abs
		}
	}
	if testutil.InCI() {
		t.Fatal("no helm binary: run deploy/helm/test.sh (installs it into bin/tools) or set HELM")
	}
	t.Skip("no helm binary (set HELM or run deploy/helm/test.sh); skipped outside CI")
	return ""
}

func runHelm(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(helmBinary(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// Keep helm away from the user's repositories, caches and kubeconfig.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home, "KUBECONFIG="+filepath.Join(home, "none"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// manifests is a rendered chart, decoded.
type manifests struct {
	ServiceAccounts     []*corev1.ServiceAccount
	ClusterRoles        []*rbacv1.ClusterRole
	ClusterRoleBindings []*rbacv1.ClusterRoleBinding
	DaemonSets          []*appsv1.DaemonSet
}

// render runs helm template with the given --set values and decodes the
// output strictly: unknown or duplicate fields and unexpected kinds fail.
func render(t *testing.T, set ...string) *manifests {
	t.Helper()
	args := []string{"template", "rel", chartDir, "--namespace", "obs", "--kube-version", kubeVersion}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	m, err := decode(runHelm(t, args...))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func decode(rendered []byte) (*manifests, error) {
	m := &manifests{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(rendered)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return m, nil
		}
		if err != nil {
			return nil, fmt.Errorf("split rendered manifests: %w", err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("read kind: %w\n%s", err, doc)
		}
		if tm.Kind == "" {
			continue // a document of comments only
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ServiceAccount":
			o := &corev1.ServiceAccount{}
			m.ServiceAccounts, obj = append(m.ServiceAccounts, o), o
		case "rbac.authorization.k8s.io/v1 ClusterRole":
			o := &rbacv1.ClusterRole{}
			m.ClusterRoles, obj = append(m.ClusterRoles, o), o
		case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
			o := &rbacv1.ClusterRoleBinding{}
			m.ClusterRoleBindings, obj = append(m.ClusterRoleBindings, o), o
		case "apps/v1 DaemonSet":
			o := &appsv1.DaemonSet{}
			m.DaemonSets, obj = append(m.DaemonSets, o), o
		default:
			return nil, fmt.Errorf("unexpected object %s %s in the chart", tm.APIVersion, tm.Kind)
		}
		// As the API server decodes: case-sensitive field names, no
		// unknown and no duplicate fields.
		j, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return nil, fmt.Errorf("convert %s to JSON: %w\n%s", tm.Kind, err, doc)
		}
		strict, err := kjson.UnmarshalStrict(j, obj)
		if err == nil && len(strict) > 0 {
			err = errors.Join(strict...)
		}
		if err != nil {
			return nil, fmt.Errorf("decode %s strictly: %w\n%s", tm.Kind, err, doc)
		}
	}
}

func TestLint(t *testing.T) {
	runHelm(t, "lint", "--strict", chartDir, "--kube-version", kubeVersion)
	runHelm(t, "lint", "--strict", chartDir, "--kube-version", kubeVersion,
		"--set", "privileged=true,optIn.namespaces=true,upstream=unix:///var/run/datadog/apm.socket,upstreamSocketHostDir=/var/run/datadog")
}

func TestDecodeRejectsUnknownFields(t *testing.T) {
	for _, tt := range []struct{ name, doc, want string }{
		{"wrong case", "apiVersion: apps/v1\nkind: DaemonSet\nspec:\n  template:\n    spec:\n      hostPid: true\n", "hostPid"},
		{"unknown", "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\nsecrets2: []\n", "secrets2"},
		{"duplicate", "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n  name: b\n", "name"},
		{"unexpected kind", "apiVersion: v1\nkind: Secret\n", "Secret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decode([]byte(tt.doc)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("decode = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// daemonContainer returns the chart's one DaemonSet and its container.
func daemonContainer(t *testing.T, m *manifests) (*appsv1.DaemonSet, *corev1.Container) {
	t.Helper()
	if len(m.DaemonSets) != 1 {
		t.Fatalf("%d DaemonSets, want 1", len(m.DaemonSets))
	}
	ds := m.DaemonSets[0]
	if n := len(ds.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("%d containers, want 1", n)
	}
	return ds, &ds.Spec.Template.Spec.Containers[0]
}

func env(c *corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

func capNames(c *corev1.Container) []string {
	if c.SecurityContext == nil || c.SecurityContext.Capabilities == nil {
		return nil
	}
	var s []string
	for _, c := range c.SecurityContext.Capabilities.Add {
		s = append(s, string(c))
	}
	return s
}

// The chart's capability sets (values capabilities.sysAdmin true and false);
// capabilities_test.go checks on the running kernel that each is needed.
var (
	sysAdminCaps = []string{"SYS_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH"}
	perfmonCaps  = []string{"BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH", "CHECKPOINT_RESTORE"}
)

func TestDefaults(t *testing.T) {
	m := render(t)
	ds, c := daemonContainer(t, m)
	pod := ds.Spec.Template.Spec

	if !pod.HostPID {
		t.Error("hostPID is false: the daemon cannot see other pods' processes")
	}
	if pod.HostNetwork {
		t.Error("hostNetwork is true; the intake needs only a hostPort")
	}
	// The socket intake (the default) hands over: upgrades surge.
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || ru == nil ||
		ru.MaxSurge == nil || ru.MaxSurge.IntValue() != 1 || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("update strategy %+v, want RollingUpdate with maxSurge 1, maxUnavailable 0", ds.Spec.UpdateStrategy)
	}
	if ds.Namespace != "obs" {
		t.Errorf("namespace %q", ds.Namespace)
	}

	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("no container securityContext")
	case sc.Privileged == nil || *sc.Privileged:
		t.Error("container is privileged by default")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("root filesystem is writable")
	case sc.AllowPrivilegeEscalation != nil:
		// The API server rejects allowPrivilegeEscalation=false with SYS_ADMIN.
		t.Error("allowPrivilegeEscalation set together with SYS_ADMIN")
	case sc.RunAsUser == nil || *sc.RunAsUser != 0:
		t.Error("runAsUser is not 0: added capabilities reach only uid 0's effective set")
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("seccomp %+v, want RuntimeDefault", sc.SeccompProfile)
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("capabilities drop %+v, want [ALL]", sc.Capabilities)
	}
	if got := capNames(c); !slices.Equal(got, sysAdminCaps) {
		t.Errorf("capabilities add %v, want %v", got, sysAdminCaps)
	}

	// Admin endpoint and probes.
	ports := map[string]corev1.ContainerPort{}
	for _, p := range c.Ports {
		ports[p.Name] = p
	}
	if p := ports["admin"]; p.ContainerPort != 8128 || p.HostPort != 0 {
		t.Errorf("admin port %+v, want 8128 without hostPort", p)
	}
	if p := ports["intake"]; p.ContainerPort != 8127 || p.HostPort != 0 || p.Protocol != corev1.ProtocolTCP {
		t.Errorf("intake port %+v, want 8127 in the pod only", p)
	}
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", pr.name)
			continue
		}
		if g := pr.probe.HTTPGet; g.Path != pr.path || g.Port.String() != "admin" {
			t.Errorf("%s probe GET %s on %s, want %s on admin", pr.name, g.Path, g.Port.String(), pr.path)
		}
		if pr.probe.PeriodSeconds == 0 || pr.probe.TimeoutSeconds == 0 {
			t.Errorf("%s probe without period/timeout: %+v", pr.name, pr.probe)
		}
	}

	// Resources.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("no %s request", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			t.Errorf("no %s limit", r)
		}
	}

	// Scrape annotations.
	ann := ds.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != "8128" || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("scrape annotations %v", ann)
	}

	// Flags and environment the daemon reads.
	if !slices.Contains(c.Args, "--kube") || c.Args[0] != "run" {
		t.Errorf("args %v, want run --kube ...", c.Args)
	}
	if e, ok := env(c, "NODE_NAME"); !ok || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("NODE_NAME %+v, want the downward API spec.nodeName", e)
	}
	for name, want := range map[string]string{
		"ORIGINAGENT_KUBE":            "true",
		"ORIGINAGENT_KUBE_NAMESPACES": "false",
		"ORIGINAGENT_LISTEN":          "0.0.0.0:8127",
		"ORIGINAGENT_LISTEN_UNIX":     "/var/run/originagent/apm.socket",
		"ORIGINAGENT_ADMIN_ADDR":      ":8128",
		"ORIGINAGENT_UPSTREAM":        "http://$(HOST_IP):8126",
	} {
		if e, _ := env(c, name); e.Value != want {
			t.Errorf("%s = %q, want %q", name, e.Value, want)
		}
	}
	// GOMEMLIMIT follows the container's memory limit: the Go runtime
	// collects harder near it, and the intake's buffer budget derives from it.
	if e, ok := env(c, "GOMEMLIMIT"); !ok || e.ValueFrom == nil || e.ValueFrom.ResourceFieldRef == nil ||
		e.ValueFrom.ResourceFieldRef.Resource != "limits.memory" || e.ValueFrom.ResourceFieldRef.ContainerName != c.Name {
		t.Errorf("GOMEMLIMIT %+v, want the resourceFieldRef limits.memory of container %s", e, c.Name)
	}
	// $(HOST_IP) expands only when HOST_IP comes first.
	if i, j := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "HOST_IP" }),
		slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "ORIGINAGENT_UPSTREAM" }); i < 0 || i > j {
		t.Errorf("HOST_IP (index %d) must precede ORIGINAGENT_UPSTREAM (%d)", i, j)
	}

	// Volumes: the socket directory and a scratch /tmp, nothing else of the host.
	checkVolumes(t, &pod, c, map[string]string{"/tmp": "", "/var/run/originagent": "/var/run/originagent"})

	// Scheduling values.
	if pod.NodeSelector["kubernetes.io/os"] != "linux" {
		t.Errorf("nodeSelector %v", pod.NodeSelector)
	}

	checkRBAC(t, m, ds, false)
}

// checkVolumes checks each mount against want (mount path -> host path, ""
// for a non-host volume) and that every hostPath volume is mounted.
func checkVolumes(t *testing.T, pod *corev1.PodSpec, c *corev1.Container, want map[string]string) {
	t.Helper()
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	mounted := map[string]bool{}
	got := map[string]string{}
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			t.Errorf("mount %s refers to missing volume %s", vm.MountPath, vm.Name)
			continue
		}
		mounted[vm.Name] = true
		got[vm.MountPath] = ""
		if v.HostPath != nil {
			got[vm.MountPath] = v.HostPath.Path
		} else if v.EmptyDir == nil {
			t.Errorf("volume %s is neither hostPath nor emptyDir: %+v", v.Name, v.VolumeSource)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("mounts (path -> host path) %v, want %v", got, want)
	}
	for name := range vols {
		if !mounted[name] {
			t.Errorf("volume %s is not mounted", name)
		}
	}
}

// checkRBAC checks the service account, the binding and that the role
// grants only reads of pods (and namespaces when they may opt in).
func checkRBAC(t *testing.T, m *manifests, ds *appsv1.DaemonSet, namespaces bool) {
	t.Helper()
	if len(m.ServiceAccounts) != 1 || len(m.ClusterRoles) != 1 || len(m.ClusterRoleBindings) != 1 {
		t.Fatalf("%d ServiceAccounts, %d ClusterRoles, %d ClusterRoleBindings; want one each",
			len(m.ServiceAccounts), len(m.ClusterRoles), len(m.ClusterRoleBindings))
	}
	sa, role, bind := m.ServiceAccounts[0], m.ClusterRoles[0], m.ClusterRoleBindings[0]
	if ds.Spec.Template.Spec.ServiceAccountName != sa.Name {
		t.Errorf("DaemonSet runs as %q, chart creates %q", ds.Spec.Template.Spec.ServiceAccountName, sa.Name)
	}
	if bind.RoleRef != (rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name}) {
		t.Errorf("roleRef %+v", bind.RoleRef)
	}
	if len(bind.Subjects) != 1 || bind.Subjects[0] != (rbacv1.Subject{Kind: "ServiceAccount", Name: sa.Name, Namespace: sa.Namespace}) {
		t.Errorf("subjects %+v, want the service account %s/%s", bind.Subjects, sa.Namespace, sa.Name)
	}
	want := map[string]bool{"pods": true, "namespaces": namespaces}
	seen := map[string]bool{}
	for _, r := range role.Rules {
		if !slices.Equal(r.APIGroups, []string{""}) || len(r.ResourceNames) != 0 || len(r.NonResourceURLs) != 0 {
			t.Errorf("rule %+v: want core-group resources only", r)
		}
		if !slices.Equal(r.Verbs, []string{"get", "list", "watch"}) {
			t.Errorf("rule %+v: verbs %v, want get, list, watch", r, r.Verbs)
		}
		for _, res := range r.Resources {
			if !want[res] {
				t.Errorf("role grants %s", res)
			}
			seen[res] = true
		}
	}
	for res, w := range want {
		if w && !seen[res] {
			t.Errorf("role does not grant %s", res)
		}
	}
}

func TestValues(t *testing.T) {
	tests := []struct {
		name  string
		set   []string
		check func(t *testing.T, m *manifests, ds *appsv1.DaemonSet, c *corev1.Container)
	}{
		{"privileged fallback", []string{"privileged=true"}, func(t *testing.T, m *manifests, ds *appsv1.DaemonSet, c *corev1.Container) {
			sc := c.SecurityContext
			if sc.Privileged == nil || !*sc.Privileged || sc.Capabilities != nil || sc.AllowPrivilegeEscalation != nil {
				t.Errorf("securityContext %+v, want privileged without a capability list", sc)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Error("privileged mode made the root filesystem writable")
			}
		}},
		{"kernels before the uprobe change", []string{"capabilities.sysAdmin=false"}, func(t *testing.T, m *manifests, ds *appsv1.DaemonSet, c *corev1.Container) {
			if got := capNames(c); !slices.Equal(got, perfmonCaps) {
				t.Errorf("capabilities %v, want %v", got, perfmonCaps)
			}
			if ape := c.SecurityContext.AllowPrivilegeEscalation; ape == nil || *ape {
				t.Error("allowPrivilegeEscalation is not false without SYS_ADMIN")
			}
		}},
		{"memlock kernels and extras", []string{"capabilities.sysResource=true", "capabilities.extra={NET_ADMIN,SYS_PTRACE}"}, func(t *testing.T, m *manifests, ds *appsv1.DaemonSet, c *corev1.Container) {
			want := append(slices.Clone(sysAdminCaps), "SYS_RESOURCE", "NET_ADMIN")
			if got := capNames(c); !slices.Equal(got, want) {
				t.Errorf("capabilities %v, want %v", got, want)
			}
		}},
		{"namespace opt-in", []string{"optIn.namespaces=true"}, func(t *testing.T, m *manifests, ds *appsv1.DaemonSet, c *corev1.Container) {
			if e, _ := env(c, "ORIGINAGENT_KUBE_NAMESPACES"); e.Value != "true" {
				t.Errorf("ORIGINAGENT_KUBE_NAMESPACES = %q", e.Value)
			}
			checkRBAC(t, m, ds, true)
		}},
		{"unix upstream", []string{"upstream=unix:///var/run/datadog/apm.socket", "upstreamSocketHostDir=/var/run/datadog"}, func(t *testing.T, m *manifests, ds *appsv1.DaemonSet, c *corev1.Container) {
			if e, _ := env(c, "ORIGINAGENT_UPSTREAM"); e.Value != "unix:///var/run/datadog/apm.socket" {
				t.Errorf("ORIGINAGENT_UPSTREAM = %q", e.Value)
			}
			checkVolumes(t, &ds.Spec.Template.Spec, c, map[string]string{"/tmp": "", "/var/run/originagent": "/var/run/originagent", "/var/run/datadog": "/var/run/datadog"})
			for _, vm := range c.VolumeMounts {
				if vm.MountPath == "/var/run/datadog" && !vm.ReadOnly {
					t.Error("upstream socket directory mounted read-write")
				}
			}
		}},
		{"TCP intake only", []string{"intake.socket.enabled=false", "intake.hostPort=null"}, func(t *testing.T, m *manifests, ds *appsv1.DaemonSet, c *corev1.Container) {
			if _, ok := env(c, "ORIGINAGENT_LISTEN_UNIX"); ok {
				t.Error("ORIGINAGENT_LISTEN_UNIX set with the socket disabled")
			}
			for _, p := range c.Ports {
				if p.HostPort != 0 {
					t.Errorf("port %s still on the host", p.Name)
				}
			}
			checkVolumes(t, &ds.Spec.Template.Spec, c, map[string]string{"/tmp": ""})
		}},
		{"TCP hostPort: no surge", []string{"intake.hostPort=8127"}, func(t *testing.T, m *manifests, ds *appsv1.DaemonSet, c *corev1.Container) {
			// A hostPort cannot surge: one pod per node holds it.
			if ru := ds.Spec.UpdateStrategy.RollingUpdate; ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType ||
				ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 1 || (ru.MaxSurge != nil && ru.MaxSurge.IntValue() != 0) {
				t.Errorf("update strategy %+v, want RollingUpdate maxUnavailable 1 without surge", ds.Spec.UpdateStrategy)
			}
			for _, p := range c.Ports {
				if p.Name == "intake" && p.HostPort != 8127 {
					t.Errorf("intake port %+v, want 8127 on the host", p)
				}
			}
		}},
		{"scheduling", []string{"tolerations[0].operator=Exists", "nodeSelector.pool=apps", "priorityClassName=system-node-critical"}, func(t *testing.T, m *manifests, ds *appsv1.DaemonSet, c *corev1.Container) {
			pod := ds.Spec.Template.Spec
			if len(pod.Tolerations) != 1 || pod.Tolerations[0].Operator != corev1.TolerationOpExists {
				t.Errorf("tolerations %+v", pod.Tolerations)
			}
			if pod.NodeSelector["pool"] != "apps" || pod.NodeSelector["kubernetes.io/os"] != "linux" {
				t.Errorf("nodeSelector %v", pod.NodeSelector)
			}
			if pod.PriorityClassName != "system-node-critical" {
				t.Errorf("priorityClassName %q", pod.PriorityClassName)
			}
		}},
		{"image and ports", []string{"image.repository=registry.local/oa", "image.tag=dev", "admin.port=9000", "intake.port=9001", "intake.hostPort=9001"}, func(t *testing.T, m *manifests, ds *appsv1.DaemonSet, c *corev1.Container) {
			if c.Image != "registry.local/oa:dev" {
				t.Errorf("image %q", c.Image)
			}
			if e, _ := env(c, "ORIGINAGENT_ADMIN_ADDR"); e.Value != ":9000" {
				t.Errorf("ORIGINAGENT_ADMIN_ADDR = %q", e.Value)
			}
			if e, _ := env(c, "ORIGINAGENT_LISTEN"); e.Value != "0.0.0.0:9001" {
				t.Errorf("ORIGINAGENT_LISTEN = %q", e.Value)
			}
			if ds.Spec.Template.Annotations["prometheus.io/port"] != "9000" {
				t.Errorf("scrape port %q", ds.Spec.Template.Annotations["prometheus.io/port"])
			}
		}},
		{"no RBAC objects", []string{"rbac.create=false", "serviceAccount.create=false", "serviceAccount.name=existing"}, func(t *testing.T, m *manifests, ds *appsv1.DaemonSet, c *corev1.Container) {
			if len(m.ServiceAccounts)+len(m.ClusterRoles)+len(m.ClusterRoleBindings) != 0 {
				t.Error("RBAC objects rendered with rbac.create=false and serviceAccount.create=false")
			}
			if ds.Spec.Template.Spec.ServiceAccountName != "existing" {
				t.Errorf("serviceAccountName %q", ds.Spec.Template.Spec.ServiceAccountName)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := render(t, tt.set...)
			ds, c := daemonContainer(t, m)
			if !ds.Spec.Template.Spec.HostPID {
				t.Error("hostPID false")
			}
			tt.check(t, m, ds, c)
		})
	}
}
