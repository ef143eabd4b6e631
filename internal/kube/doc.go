// Package kube maps host processes to the Kubernetes pods they run in and
// selects those that opted in to code origin capture with the pod label
// originagent.io/enabled: "true" (or, when enabled, the same label on their
// namespace).
//
// A process's pod comes from its /proc/PID/cgroup paths (ParseCgroup); the
// pod's metadata comes from an informer that watches only the pods scheduled
// on this node (field selector spec.nodeName), never the whole cluster.
package kube
