package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/originagent/originagent/internal/probes/discover"
)

// EnabledLabel is the pod (or namespace) label that opts workloads in.
// The value "true" opts in; on a pod, "false" opts out even when the
// namespace opted in.
const EnabledLabel = "originagent.io/enabled"

// Label keys of a Decision, shared with the records and logs.
const (
	LabelPod         = "pod"
	LabelNamespace   = "namespace"
	LabelContainer   = "container"
	LabelPodUID      = "pod_uid"
	LabelContainerID = "container_id"
)

// mirrorAnnotation holds, on a static pod's mirror, the UID the kubelet
// uses for the static pod and its cgroups.
const mirrorAnnotation = "kubernetes.io/config.mirror"

const podUIDIndex = "podUID"

// Options configure a Selector.
type Options struct {
	// Client talks to the API server; see NewClient.
	Client kubernetes.Interface
	// NodeName is this node's name (the downward API's spec.nodeName).
	// Only pods bound to it are watched.
	NodeName string
	// Namespaces, when true, also watches namespaces labelled
	// EnabledLabel=true so that such a label opts in all their pods. It
	// needs get/list/watch on namespaces.
	Namespaces bool
	// Resync is the informers' resync period; 0 disables resyncs.
	Resync time.Duration
	// Logger receives informer events worth a line; nil discards them.
	Logger *slog.Logger
	// Registerer, when set, receives the selector's metrics.
	Registerer prometheus.Registerer
}

// Selector is a discover.Selector that selects processes whose pod opted in.
// It maps a process to its pod through /proc/PID/cgroup and looks the pod
// up in an informer cache of this node's pods. It is safe for concurrent use.
//
// A pod labelled EnabledLabel "true" is selected; "false" is not, even in an
// opted-in namespace; otherwise, with Options.Namespaces, the namespace's
// label "true" selects it. The environment opt-in is another selector's
// job: compose them as discover.AnyOf(kubeSelector, envSelector), this one
// first, so that a process selected by its environment keeps its pod labels.
type Selector struct {
	opts    Options
	log     *slog.Logger
	factory informers.SharedInformerFactory
	pods    cache.SharedIndexInformer
	nsf     informers.SharedInformerFactory
	ns      cache.SharedIndexInformer // nil unless Options.Namespaces

	changes chan struct{}

	mu        sync.Mutex
	listeners []func()
	notified  bool // an event happened; late listeners get one call

	decisions *prometheus.CounterVec
}

// NewSelector returns a Selector for opts. Call Start, then WaitForSync,
// before Select gives answers from the API server.
func NewSelector(opts Options) (*Selector, error) {
	if opts.Client == nil {
		return nil, errors.New("kube selector: no Kubernetes client")
	}
	if opts.NodeName == "" {
		return nil, errors.New("kube selector: no node name (set NODE_NAME from the downward API spec.nodeName)")
	}
	s := &Selector{
		opts:    opts,
		log:     opts.Logger,
		changes: make(chan struct{}, 1),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "originagent",
			Subsystem: "kube",
			Name:      "select_decisions_total",
			Help:      "Pod-label selection decisions by result.",
		}, []string{"result"}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	node := fields.OneTermEqualSelector("spec.nodeName", opts.NodeName).String()
	s.factory = informers.NewSharedInformerFactoryWithOptions(opts.Client, opts.Resync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = node }))
	s.pods = s.factory.Core().V1().Pods().Informer()
	if err := s.pods.AddIndexers(cache.Indexers{podUIDIndex: indexPodUID}); err != nil {
		return nil, fmt.Errorf("kube selector: add pod UID index: %w", err)
	}
	if err := s.pods.SetTransform(trimPod); err != nil {
		return nil, fmt.Errorf("kube selector: set pod transform: %w", err)
	}
	if _, err := s.pods.AddEventHandler(s.handler("pod")); err != nil {
		return nil, fmt.Errorf("kube selector: add pod handler: %w", err)
	}
	if opts.Namespaces {
		// Only opted-in namespaces: a namespace that loses the label
		// leaves the cache as a delete.
		enabled := labels.SelectorFromSet(labels.Set{EnabledLabel: "true"}).String()
		s.nsf = informers.NewSharedInformerFactoryWithOptions(opts.Client, opts.Resync,
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = enabled }))
		s.ns = s.nsf.Core().V1().Namespaces().Informer()
		if err := s.ns.SetTransform(trimNamespace); err != nil {
			return nil, fmt.Errorf("kube selector: set namespace transform: %w", err)
		}
		if _, err := s.ns.AddEventHandler(s.handler("namespace")); err != nil {
			return nil, fmt.Errorf("kube selector: add namespace handler: %w", err)
		}
	}
	if opts.Registerer != nil {
		cached := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "originagent",
			Subsystem: "kube",
			Name:      "pods_cached",
			Help:      "Pods of this node in the selector's cache.",
		}, func() float64 { return float64(len(s.pods.GetStore().ListKeys())) })
		for _, c := range []prometheus.Collector{s.decisions, cached} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("kube selector: register metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Start starts the informers; they run until ctx is done. Select answers
// "not in this node's pod cache yet" until WaitForSync returns.
func (s *Selector) Start(ctx context.Context) {
	s.factory.Start(ctx.Done())
	if s.nsf != nil {
		s.nsf.Start(ctx.Done())
	}
}

// WaitForSync waits until the caches hold this node's pods (and the opted-in
// namespaces), or ctx is done.
func (s *Selector) WaitForSync(ctx context.Context) error {
	synced := []cache.InformerSynced{s.pods.HasSynced}
	if s.ns != nil {
		synced = append(synced, s.ns.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("kube selector: sync pods of node %s: %w", s.opts.NodeName, context.Cause(ctx))
	}
	s.log.Info("kube pod cache synced", "node", s.opts.NodeName, "pods", len(s.pods.GetStore().ListKeys()), "namespaces", s.opts.Namespaces)
	return nil
}

// HasSynced reports whether the caches are filled; /readyz can use it.
func (s *Selector) HasSynced() bool {
	return s.pods.HasSynced() && (s.ns == nil || s.ns.HasSynced())
}

// Changes returns a channel that receives a value after any pod or
// namespace event that may change a decision: a pod appearing in the cache,
// its labels or container statuses changing, a namespace opting in or out.
// Sends never block and coalesce, so the discovery engine should re-run
// Select on the processes it holds (selected or not) when it receives.
func (s *Selector) Changes() <-chan struct{} { return s.changes }

// OnChange registers f to run after each such event, on the informer's
// goroutine; f must be quick. Changes is the non-blocking alternative. When
// events already happened (f registered after Start), f also runs once now,
// so that no pod arrival is missed.
func (s *Selector) OnChange(f func()) {
	s.mu.Lock()
	s.listeners = append(s.listeners, f)
	late := s.notified
	s.mu.Unlock()
	if late {
		f()
	}
}

func (s *Selector) notify() {
	s.mu.Lock()
	s.notified = true
	ls := s.listeners
	s.mu.Unlock()
	select {
	case s.changes <- struct{}{}:
	default:
	}
	for _, f := range ls {
		f()
	}
}

func (s *Selector) handler(kind string) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			s.logEvent("add", kind, obj)
			s.notify()
		},
		UpdateFunc: func(old, cur any) {
			if !decisionInputsChanged(old, cur) {
				return
			}
			s.logEvent("update", kind, cur)
			s.notify()
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			s.logEvent("delete", kind, obj)
			s.notify()
		},
	}
}

func (s *Selector) logEvent(event, kind string, obj any) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	s.log.Debug("kube "+kind+" "+event, "namespace", m.GetNamespace(), "name", m.GetName(), "uid", string(m.GetUID()), EnabledLabel, m.GetLabels()[EnabledLabel])
}

// decisionInputsChanged ignores the updates (status heartbeats, resyncs)
// that cannot change a decision or its labels.
func decisionInputsChanged(old, cur any) bool {
	o, ok1 := old.(*corev1.Pod)
	c, ok2 := cur.(*corev1.Pod)
	if !ok1 || !ok2 {
		om, ok1 := old.(metav1.Object)
		cm, ok2 := cur.(metav1.Object)
		return !ok1 || !ok2 || om.GetLabels()[EnabledLabel] != cm.GetLabels()[EnabledLabel]
	}
	if o.Labels[EnabledLabel] != c.Labels[EnabledLabel] {
		return true
	}
	oc, cc := containerIDs(o), containerIDs(c)
	if len(oc) != len(cc) {
		return true
	}
	for id, name := range cc {
		if oc[id] != name {
			return true
		}
	}
	return false
}

// Select implements discover.Selector. A process whose pod is not in the
// cache yet is not selected; Changes fires when the pod arrives.
func (s *Selector) Select(p *discover.Process) discover.Decision {
	d, result := s.decide(p)
	s.decisions.WithLabelValues(result).Inc()
	return d
}

func (s *Selector) decide(p *discover.Process) (discover.Decision, string) {
	if p.CgroupPaths == nil {
		return discover.Decision{Reason: "no cgroup reader"}, "cgroup_error"
	}
	lines, err := p.CgroupPaths()
	if err != nil {
		return discover.Decision{Reason: fmt.Sprintf("read /proc/%d/cgroup: %v", p.PID, err)}, "cgroup_error"
	}
	c, err := ParseCgroup(lines)
	if errors.Is(err, ErrNotInPod) {
		return discover.Decision{Reason: "not in a Kubernetes pod"}, "not_in_pod"
	}
	if err != nil {
		return discover.Decision{Reason: fmt.Sprintf("parse /proc/%d/cgroup: %v", p.PID, err)}, "cgroup_error"
	}
	lbl := map[string]string{LabelPodUID: c.PodUID}
	if c.ID != "" {
		lbl[LabelContainerID] = c.ID
	}
	objs, err := s.pods.GetIndexer().ByIndex(podUIDIndex, c.PodUID)
	if err != nil || len(objs) == 0 {
		return discover.Decision{Reason: "pod " + c.PodUID + " not in this node's pod cache yet", Labels: lbl}, "pod_unknown"
	}
	pod := objs[0].(*corev1.Pod)
	lbl[LabelPod] = pod.Name
	lbl[LabelNamespace] = pod.Namespace
	if name, ok := containerIDs(pod)[c.ID]; ok && c.ID != "" {
		lbl[LabelContainer] = name
	}
	switch v := pod.Labels[EnabledLabel]; v {
	case "true":
		return discover.Decision{Selected: true, Reason: "pod label " + EnabledLabel + "=true", Labels: lbl}, "pod_label"
	case "false":
		return discover.Decision{Reason: "pod label " + EnabledLabel + "=false", Labels: lbl}, "opted_out"
	}
	if s.ns != nil {
		// The watch's label selector keeps only opted-in namespaces; the
		// value is checked again for watch sources that do not filter.
		if obj, ok, _ := s.ns.GetStore().GetByKey(pod.Namespace); ok && obj.(*corev1.Namespace).Labels[EnabledLabel] == "true" {
			return discover.Decision{Selected: true, Reason: "namespace label " + EnabledLabel + "=true", Labels: lbl}, "namespace_label"
		}
	}
	return discover.Decision{Reason: "pod not opted in", Labels: lbl}, "not_opted_in"
}

// containerIDs maps the runtime container IDs of a pod's containers
// ("containerd://<id>", "cri-o://<id>", "docker://<id>") to their names.
func containerIDs(pod *corev1.Pod) map[string]string {
	m := map[string]string{}
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for _, cs := range list {
			if _, id, ok := strings.Cut(cs.ContainerID, "://"); ok && id != "" {
				m[id] = cs.Name
			}
		}
	}
	return m
}

// indexPodUID indexes a pod by the UID its cgroups carry: its own, and for
// a static pod's mirror the static pod's UID.
func indexPodUID(obj any) ([]string, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, fmt.Errorf("pod UID index: unexpected %T", obj)
	}
	keys := []string{string(pod.UID)}
	if m := pod.Annotations[mirrorAnnotation]; m != "" && m != string(pod.UID) {
		keys = append(keys, m)
	}
	return keys, nil
}

// trimPod keeps what decisions need, so that a node's pod cache stays small.
func trimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // cache.DeletedFinalStateUnknown and the like
	}
	out := &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:            pod.Name,
			Namespace:       pod.Namespace,
			UID:             pod.UID,
			ResourceVersion: pod.ResourceVersion,
			Labels:          pod.Labels,
		},
		Spec: corev1.PodSpec{NodeName: pod.Spec.NodeName},
	}
	if m, ok := pod.Annotations[mirrorAnnotation]; ok {
		out.Annotations = map[string]string{mirrorAnnotation: m}
	}
	trim := func(in []corev1.ContainerStatus) []corev1.ContainerStatus {
		var o []corev1.ContainerStatus
		for _, cs := range in {
			o = append(o, corev1.ContainerStatus{Name: cs.Name, ContainerID: cs.ContainerID})
		}
		return o
	}
	out.Status.ContainerStatuses = trim(pod.Status.ContainerStatuses)
	out.Status.InitContainerStatuses = trim(pod.Status.InitContainerStatuses)
	out.Status.EphemeralContainerStatuses = trim(pod.Status.EphemeralContainerStatuses)
	return out, nil
}

func trimNamespace(obj any) (any, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil
	}
	return &corev1.Namespace{TypeMeta: ns.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: ns.Name, UID: ns.UID, ResourceVersion: ns.ResourceVersion, Labels: ns.Labels,
	}}, nil
}

var _ discover.Selector = (*Selector)(nil)
