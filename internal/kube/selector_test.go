package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/originagent/originagent/internal/probes/discover"
)

// These tests run the selector's real client-go informers against
// client-go's fake clientset (an in-memory object tracker behind the typed
// client), a test double because a real kube-apiserver cannot be had here:
// Debian ships none (only etcd), `go install` refuses k8s.io/kubernetes
// because its go.mod replaces the staging modules, and envtest downloads
// prebuilt binaries, which this environment forbids. The fake applies no
// field selectors, so the node filter is checked on the requests the
// informers send (TestSelectorWatchesOnlyItsNode).

const node = "node-a"

func newPod(ns, name, uid string, lbl map[string]string, containers ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), Labels: lbl,
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
	}
	for i := 0; i+1 < len(containers); i += 2 {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses,
			corev1.ContainerStatus{Name: containers[i], ContainerID: containers[i+1], Image: "app:1"})
	}
	return p
}

func newNamespace(name string, lbl map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbl}}
}

// proc is a process in the given cgroup path, as discovery hands it over.
func proc(pid int, cgroupLines ...string) *discover.Process {
	return &discover.Process{
		PID: pid, Exe: "/app",
		Environ:     func() ([]string, error) { return nil, nil },
		CgroupPaths: func() ([]string, error) { return cgroupLines, nil },
	}
}

func systemdContainerd(uid, cid string) string {
	return "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
		strings.ReplaceAll(uid, "-", "_") + ".slice/cri-containerd-" + cid + ".scope"
}

func hexID(b byte) string { return strings.Repeat(string("0123456789abcdef"[b%16]), 64) }

func startSelector(t *testing.T, opts Options) *Selector {
	t.Helper()
	s, err := NewSelector(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s.Start(ctx)
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	if err := s.WaitForSync(sctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSelectorDecisions(t *testing.T) {
	const (
		uidOptIn    = "11111111-1111-4111-8111-111111111111"
		uidOptOut   = "22222222-2222-4222-8222-222222222222"
		uidNSOptIn  = "33333333-3333-4333-8333-333333333333"
		uidPlain    = "44444444-4444-4444-8444-444444444444"
		uidMirror   = "55555555-5555-4555-8555-555555555555"
		uidUnknown  = "66666666-6666-4666-8666-666666666666"
		uidBadValue = "77777777-7777-4777-8777-777777777777"
		staticHash  = "0123456789abcdef0123456789abcdef"
	)
	on := map[string]string{EnabledLabel: "true"}
	off := map[string]string{EnabledLabel: "false"}
	mirror := newPod("kube-system", "etcd-node-a", uidMirror, on, "etcd", "containerd://"+hexID(5))
	mirror.Annotations = map[string]string{mirrorAnnotation: staticHash}
	objs := []runtime.Object{
		newNamespace("shop", nil),
		newNamespace("optin", on),
		newPod("shop", "api-0", uidOptIn, on, "api", "containerd://"+hexID(1), "sidecar", "containerd://"+hexID(9)),
		newPod("optin", "out-0", uidOptOut, off, "app", "cri-o://"+hexID(2)),
		newPod("optin", "web-0", uidNSOptIn, map[string]string{"app": "web"}, "web", "docker://"+hexID(3)),
		newPod("shop", "db-0", uidPlain, nil, "db", "containerd://"+hexID(4)),
		newPod("optin", "odd-0", uidBadValue, map[string]string{EnabledLabel: "yes"}, "odd", "containerd://"+hexID(6)),
		mirror,
	}
	tests := []struct {
		name       string
		p          *discover.Process
		selected   bool // with Namespaces=true
		selectedNo bool // with Namespaces=false
		reason     string
		labels     map[string]string
	}{
		{"pod label true", proc(10, systemdContainerd(uidOptIn, hexID(1))), true, true, "pod label",
			map[string]string{"pod": "api-0", "namespace": "shop", "container": "api", "pod_uid": uidOptIn, "container_id": hexID(1)}},
		{"second container", proc(11, "0::/kubepods/burstable/pod"+uidOptIn+"/"+hexID(9)), true, true, "pod label",
			map[string]string{"pod": "api-0", "namespace": "shop", "container": "sidecar", "pod_uid": uidOptIn, "container_id": hexID(9)}},
		{"pod label false beats namespace", proc(12, "0::/kubepods.slice/kubepods-pod"+strings.ReplaceAll(uidOptOut, "-", "_")+".slice/crio-"+hexID(2)+".scope"), false, false, "=false",
			map[string]string{"pod": "out-0", "namespace": "optin", "container": "app", "pod_uid": uidOptOut, "container_id": hexID(2)}},
		{"namespace label", proc(13, "6:memory:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"+strings.ReplaceAll(uidNSOptIn, "-", "_")+".slice/docker-"+hexID(3)+".scope"), true, false, "",
			map[string]string{"pod": "web-0", "namespace": "optin", "container": "web", "pod_uid": uidNSOptIn, "container_id": hexID(3)}},
		{"not opted in", proc(14, systemdContainerd(uidPlain, hexID(4))), false, false, "not opted in",
			map[string]string{"pod": "db-0", "namespace": "shop", "container": "db", "pod_uid": uidPlain, "container_id": hexID(4)}},
		{"unrecognised label value", proc(15, systemdContainerd(uidBadValue, hexID(6))), true, false, "",
			map[string]string{"pod": "odd-0", "namespace": "optin", "container": "odd", "pod_uid": uidBadValue, "container_id": hexID(6)}},
		{"static pod through its mirror", proc(16, "0::/kubepods/pod"+staticHash+"/"+hexID(5)), true, true, "pod label",
			map[string]string{"pod": "etcd-node-a", "namespace": "kube-system", "container": "etcd", "pod_uid": staticHash, "container_id": hexID(5)}},
		{"container not in status yet", proc(17, systemdContainerd(uidOptIn, hexID(7))), true, true, "pod label",
			map[string]string{"pod": "api-0", "namespace": "shop", "pod_uid": uidOptIn, "container_id": hexID(7)}},
		{"unknown pod", proc(18, systemdContainerd(uidUnknown, hexID(8))), false, false, "not in this node's pod cache",
			map[string]string{"pod_uid": uidUnknown, "container_id": hexID(8)}},
		{"host process", proc(19, "0::/system.slice/sshd.service"), false, false, "not in a Kubernetes pod", nil},
		{"vanished process", &discover.Process{PID: 20, CgroupPaths: func() ([]string, error) {
			return nil, errors.New("open /proc/20/cgroup: no such file or directory")
		}}, false, false, "read /proc/20/cgroup", nil},
		{"garbage cgroup", proc(21, "garbage"), false, false, "parse /proc/21/cgroup", nil},
	}
	for _, namespaces := range []bool{true, false} {
		t.Run(fmt.Sprintf("namespaces=%v", namespaces), func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			s := startSelector(t, Options{Client: fake.NewClientset(objs...), NodeName: node, Namespaces: namespaces, Registerer: reg})
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					d := s.Select(tt.p)
					want := tt.selected
					if !namespaces {
						want = tt.selectedNo
					}
					if d.Selected != want {
						t.Errorf("Selected = %v (%s), want %v", d.Selected, d.Reason, want)
					}
					if !strings.Contains(d.Reason, tt.reason) {
						t.Errorf("Reason = %q, want it to contain %q", d.Reason, tt.reason)
					}
					if fmt.Sprint(d.Labels) != fmt.Sprint(tt.labels) {
						t.Errorf("Labels = %v, want %v", d.Labels, tt.labels)
					}
				})
			}
			if n, err := promtest.GatherAndCount(reg, "originagent_kube_select_decisions_total"); err != nil || n == 0 {
				t.Errorf("decision metrics: %d series, %v", n, err)
			}
			if n, err := promtest.GatherAndCount(reg, "originagent_kube_pods_cached"); err != nil || n != 1 {
				t.Errorf("pods_cached: %d series, %v", n, err)
			}
			if got := promtest.ToFloat64(s.decisions.WithLabelValues("pod_unknown")); got != 1 {
				t.Errorf("pod_unknown decisions = %v, want 1", got)
			}
		})
	}
}

// TestSelectorWatchesOnlyItsNode checks the requests the informers send:
// pods of this node only, and only opted-in namespaces.
func TestSelectorWatchesOnlyItsNode(t *testing.T) {
	client := fake.NewClientset()
	s := startSelector(t, Options{Client: client, NodeName: node, Namespaces: true})
	if !s.HasSynced() {
		t.Fatal("HasSynced false after Start")
	}
	seen := map[string]bool{}
	for _, a := range client.Actions() {
		if a.GetVerb() != "list" && a.GetVerb() != "watch" {
			t.Errorf("unexpected %s %s", a.GetVerb(), a.GetResource().Resource)
			continue
		}
		la, ok := a.(interface{ GetListOptions() metav1.ListOptions })
		if !ok {
			t.Errorf("%T has no list options", a)
			continue
		}
		r := la.GetListOptions()
		switch res := a.GetResource().Resource; res {
		case "pods":
			if got := r.FieldSelector; got != "spec.nodeName="+node {
				t.Errorf("%s pods with field selector %q, want spec.nodeName=%s", a.GetVerb(), got, node)
			}
			if a.GetNamespace() != "" {
				t.Errorf("%s pods in namespace %q, want all namespaces", a.GetVerb(), a.GetNamespace())
			}
		case "namespaces":
			if got := r.LabelSelector; got != EnabledLabel+"=true" {
				t.Errorf("%s namespaces with label selector %q", a.GetVerb(), got)
			}
		default:
			t.Errorf("%s on %s: the selector needs pods and namespaces only", a.GetVerb(), res)
		}
		seen[a.GetVerb()+" "+a.GetResource().Resource] = true
	}
	for _, want := range []string{"list pods", "watch pods", "list namespaces", "watch namespaces"} {
		if !seen[want] {
			t.Errorf("no %q request; saw %v", want, seen)
		}
	}
}

// TestSelectorChanges follows a pod from "unknown" to selected, opted out
// and deleted, and a namespace opting in, through Changes and OnChange.
func TestSelectorChanges(t *testing.T) {
	const uid = "88888888-8888-4888-8888-888888888888"
	ctx := context.Background()
	client := fake.NewClientset(newNamespace("shop", nil))
	s := startSelector(t, Options{Client: client, NodeName: node, Namespaces: true})
	calls := make(chan struct{}, 100)
	s.OnChange(func() {
		select {
		case calls <- struct{}{}:
		default:
		}
	})
	p := proc(30, systemdContainerd(uid, hexID(1)))
	// The fake's watch replays nothing: events before the informers' watch
	// starts would be lost, which a real API server's resourceVersion
	// prevents.
	waitWatching(t, client, "pods", "namespaces")

	// waitSelected drains change notices until Select gives want; the
	// deadline only bounds a broken informer.
	waitSelected := func(step string, want bool) discover.Decision {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case <-s.Changes():
				if d := s.Select(p); d.Selected == want {
					return d
				}
			case <-deadline:
				t.Fatalf("%s: no change notice gave Selected=%v; last %+v", step, want, s.Select(p))
			}
		}
	}

	if d := s.Select(p); d.Selected || !strings.Contains(d.Reason, "not in this node's pod cache") {
		t.Fatalf("before the pod exists: %+v", d)
	}
	pod := newPod("shop", "api-0", uid, map[string]string{EnabledLabel: "true"}, "api", "containerd://"+hexID(1))
	if _, err := client.CoreV1().Pods("shop").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := waitSelected("pod created", true); d.Labels[LabelContainer] != "api" {
		t.Errorf("labels after create: %v", d.Labels)
	}

	pod.Labels[EnabledLabel] = "false"
	if _, err := client.CoreV1().Pods("shop").Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSelected("label set to false", false)

	delete(pod.Labels, EnabledLabel)
	if _, err := client.CoreV1().Pods("shop").Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace("shop", map[string]string{EnabledLabel: "true"})
	if _, err := client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := waitSelected("namespace opted in", true); !strings.Contains(d.Reason, "namespace") {
		t.Errorf("reason %q, want the namespace label", d.Reason)
	}

	ns.Labels = nil
	if _, err := client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitSelected("namespace opted out", false)

	if err := client.CoreV1().Pods("shop").Delete(ctx, "api-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for !strings.Contains(s.Select(p).Reason, "not in this node's pod cache") {
		select {
		case <-s.Changes():
		case <-deadline:
			t.Fatalf("pod deleted but still cached: %+v", s.Select(p))
		}
	}
	if len(calls) == 0 {
		t.Error("OnChange callback never ran")
	}
}

// TestSelectorTrimsCache checks that the cache keeps only what decisions use.
func TestSelectorTrimsCache(t *testing.T) {
	const uid = "99999999-9999-4999-8999-999999999999"
	pod := newPod("shop", "api-0", uid, map[string]string{EnabledLabel: "true"}, "api", "containerd://"+hexID(1))
	pod.Annotations = map[string]string{"big": strings.Repeat("x", 4096)}
	s := startSelector(t, Options{Client: fake.NewClientset(pod), NodeName: node})
	objs, err := s.pods.GetIndexer().ByIndex(podUIDIndex, uid)
	if err != nil || len(objs) != 1 {
		t.Fatalf("ByIndex: %v, %d objects", err, len(objs))
	}
	got := objs[0].(*corev1.Pod)
	if got.ManagedFields != nil || got.Annotations != nil || got.Spec.Containers != nil || got.Status.ContainerStatuses[0].Image != "" {
		t.Errorf("cached pod not trimmed: %+v", got)
	}
	if got.Name != "api-0" || got.Labels[EnabledLabel] != "true" || got.Status.ContainerStatuses[0].ContainerID == "" {
		t.Errorf("trim lost what decisions need: %+v", got)
	}
}

func TestNewSelectorErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts Options
		want string
	}{
		{"no client", Options{NodeName: node}, "no Kubernetes client"},
		{"no node", Options{Client: fake.NewClientset()}, "NODE_NAME"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSelector(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewSelector: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	reg := prometheus.NewRegistry()
	if _, err := NewSelector(Options{Client: fake.NewClientset(), NodeName: node, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSelector(Options{Client: fake.NewClientset(), NodeName: node, Registerer: reg}); err == nil {
		t.Error("second selector on one registry: want a duplicate-registration error")
	}
}

// TestAnyOfKeepsPodLabels checks the composition the daemon uses: the pod
// selector first, then the environment opt-in, so that a process opted in by
// its environment still carries its pod's labels.
func TestAnyOfKeepsPodLabels(t *testing.T) {
	const uid = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	s := startSelector(t, Options{Client: fake.NewClientset(newPod("shop", "api-0", uid, nil, "api", "containerd://"+hexID(1))), NodeName: node})
	env := discover.SelectorFunc(func(p *discover.Process) discover.Decision {
		return discover.Decision{Selected: true, Reason: "env DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true"}
	})
	d := discover.AnyOf(s, env).Select(proc(40, systemdContainerd(uid, hexID(1))))
	if !d.Selected || d.Labels[LabelPod] != "api-0" || d.Labels[LabelContainer] != "api" {
		t.Errorf("AnyOf(pod, env) = %+v", d)
	}
}

// waitWatching waits until the informers opened their watches on the fake.
func waitWatching(t *testing.T, client *fake.Clientset, resources ...string) {
	t.Helper()
	for i := 0; i < 3000; i++ {
		watching := map[string]bool{}
		for _, a := range client.Actions() {
			if a.GetVerb() == "watch" {
				watching[a.GetResource().Resource] = true
			}
		}
		all := true
		for _, r := range resources {
			all = all && watching[r]
		}
		if all {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("informers never watched %v", resources)
}

// TestWaitForSyncAPIDown checks that an unreachable or refusing API server
// gives a clear error when the caller's deadline passes, not a hang.
func TestWaitForSyncAPIDown(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("pods is forbidden: User \"system:serviceaccount:x:y\" cannot list resource \"pods\"")
	})
	s, err := NewSelector(Options{Client: client, NodeName: node})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.Start(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer wcancel()
	err = s.WaitForSync(wctx)
	if err == nil || !strings.Contains(err.Error(), "sync pods of node "+node) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitForSync = %v, want a deadline error naming the node", err)
	}
	if s.HasSynced() {
		t.Error("HasSynced true without a successful list")
	}
}

// TestOnChangeAfterStart checks that a listener registered after the cache
// filled still hears of it once, so processes seen before are re-evaluated.
func TestOnChangeAfterStart(t *testing.T) {
	const uid = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
	s := startSelector(t, Options{Client: fake.NewClientset(newPod("shop", "api-0", uid, map[string]string{EnabledLabel: "true"})), NodeName: node})
	// The pod's add event is delivered after the sync, asynchronously.
	select {
	case <-s.Changes():
	case <-time.After(30 * time.Second):
		t.Fatal("no change notice for the initial pod")
	}
	var calls atomic.Int32
	s.OnChange(func() { calls.Add(1) })
	if n := calls.Load(); n != 1 {
		t.Errorf("late listener called %d times, want 1", n)
	}
	quiet := startSelector(t, Options{Client: fake.NewClientset(), NodeName: node})
	quiet.OnChange(func() { t.Error("listener called with no event") })
}
