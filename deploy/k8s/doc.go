// Package k8s holds nackcast's Kubernetes manifests (a Kustomize base and
// overlays) and the test that renders and checks them. It is a module of
// its own so that the Kubernetes libraries stay out of nackcast's.
package k8s
