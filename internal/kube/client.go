package kube

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// NewClient returns a clientset for the API server: from the kubeconfig
// file when kubeconfig is set, else from the pod's service account
// (in-cluster), which is how the DaemonSet runs.
func NewClient(kubeconfig, userAgent string) (kubernetes.Interface, error) {
	var (
		cfg *rest.Config
		err error
	)
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
		}
	} else {
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster Kubernetes config (or pass --kubeconfig): %w", err)
		}
	}
	cfg.UserAgent = userAgent
	// One watch per node; a burst only at start-up.
	cfg.QPS, cfg.Burst = 5, 10
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	return cs, nil
}
