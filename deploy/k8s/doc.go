// Package k8s holds nackcast's Kubernetes manifests (a Kustomize base,
// components and the overlays that combine them) and the tests that
// render and check them and the Helm chart of ../helm/nackcast. It is a
// module of its own so that the Kubernetes and Helm libraries stay out of
// nackcast's.
package k8s
