package k8s

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// networkAttachment is Multus's NetworkAttachmentDefinition (a CRD whose Go
// types are not worth a module).
type networkAttachment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Config string `json:"config"`
	} `json:"spec"`
}

// objects is one rendered configuration (a kustomization or the chart with
// a set of values), every object decoded strictly into its Go type: the
// k8s.io/api types, cert-manager's and the Prometheus Operator's.
type objects struct {
	statefulSets        []*appsv1.StatefulSet
	daemonSets          []*appsv1.DaemonSet
	deployments         []*appsv1.Deployment
	services            []*corev1.Service
	configMaps          map[string]*corev1.ConfigMap
	secrets             []*corev1.Secret
	pvcs                []*corev1.PersistentVolumeClaim
	namespaces          []*corev1.Namespace
	serviceAccounts     []*corev1.ServiceAccount
	clusterRoles        []*rbacv1.ClusterRole
	clusterRoleBindings []*rbacv1.ClusterRoleBinding
	attachments         []*networkAttachment
	certificates        []*cmv1.Certificate
	issuers             []*cmv1.Issuer
	serviceMonitors     []*monv1.ServiceMonitor
	podMonitors         []*monv1.PodMonitor
	prometheusRules     []*monv1.PrometheusRule
	// namespaced are the metadata of every namespaced object.
	namespaced []*metav1.ObjectMeta
}

// strict decodes JSON into v, failing on fields v does not have.
func strict(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// decode decodes the YAML documents of a rendered configuration strictly,
// by kind. It fails on a kind nackcast does not ship, on an apiVersion
// other than the one of the kind, on a field the kind does not have, and on
// two objects of the same kind and name.
func decode(docs [][]byte) (*objects, error) {
	o := &objects{configMaps: map[string]*corev1.ConfigMap{}}
	seen := map[string]bool{}
	var errs []string
	for _, doc := range docs {
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(j)) == 0 || string(bytes.TrimSpace(j)) == "null" {
			continue
		}
		var tm metav1.TypeMeta
		if err := json.Unmarshal(j, &tm); err != nil {
			return nil, err
		}
		var obj any
		var meta *metav1.ObjectMeta
		want := ""
		namespaced := true
		switch tm.Kind {
		case "StatefulSet":
			v := &appsv1.StatefulSet{}
			obj, meta, want, o.statefulSets = v, &v.ObjectMeta, "apps/v1", append(o.statefulSets, v)
		case "DaemonSet":
			v := &appsv1.DaemonSet{}
			obj, meta, want, o.daemonSets = v, &v.ObjectMeta, "apps/v1", append(o.daemonSets, v)
		case "Deployment":
			v := &appsv1.Deployment{}
			obj, meta, want, o.deployments = v, &v.ObjectMeta, "apps/v1", append(o.deployments, v)
		case "Service":
			v := &corev1.Service{}
			obj, meta, want, o.services = v, &v.ObjectMeta, "v1", append(o.services, v)
		case "ConfigMap":
			v := &corev1.ConfigMap{}
			obj, meta, want = v, &v.ObjectMeta, "v1"
			defer func() { o.configMaps[v.Name] = v }()
		case "Secret":
			v := &corev1.Secret{}
			obj, meta, want, o.secrets = v, &v.ObjectMeta, "v1", append(o.secrets, v)
		case "PersistentVolumeClaim":
			v := &corev1.PersistentVolumeClaim{}
			obj, meta, want, o.pvcs = v, &v.ObjectMeta, "v1", append(o.pvcs, v)
		case "Namespace":
			v := &corev1.Namespace{}
			obj, meta, want, namespaced, o.namespaces = v, &v.ObjectMeta, "v1", false, append(o.namespaces, v)
		case "ServiceAccount":
			v := &corev1.ServiceAccount{}
			obj, meta, want, o.serviceAccounts = v, &v.ObjectMeta, "v1", append(o.serviceAccounts, v)
		case "ClusterRole":
			v := &rbacv1.ClusterRole{}
			obj, meta, want, namespaced, o.clusterRoles = v, &v.ObjectMeta, "rbac.authorization.k8s.io/v1", false, append(o.clusterRoles, v)
		case "ClusterRoleBinding":
			v := &rbacv1.ClusterRoleBinding{}
			obj, meta, want, namespaced, o.clusterRoleBindings = v, &v.ObjectMeta, "rbac.authorization.k8s.io/v1", false, append(o.clusterRoleBindings, v)
		case "NetworkAttachmentDefinition":
			v := &networkAttachment{}
			obj, meta, want, o.attachments = v, &v.ObjectMeta, "k8s.cni.cncf.io/v1", append(o.attachments, v)
		case "Certificate":
			v := &cmv1.Certificate{}
			obj, meta, want, o.certificates = v, &v.ObjectMeta, "cert-manager.io/v1", append(o.certificates, v)
		case "Issuer":
			v := &cmv1.Issuer{}
			obj, meta, want, o.issuers = v, &v.ObjectMeta, "cert-manager.io/v1", append(o.issuers, v)
		case "ServiceMonitor":
			v := &monv1.ServiceMonitor{}
			obj, meta, want, o.serviceMonitors = v, &v.ObjectMeta, "monitoring.coreos.com/v1", append(o.serviceMonitors, v)
		case "PodMonitor":
			v := &monv1.PodMonitor{}
			obj, meta, want, o.podMonitors = v, &v.ObjectMeta, "monitoring.coreos.com/v1", append(o.podMonitors, v)
		case "PrometheusRule":
			v := &monv1.PrometheusRule{}
			obj, meta, want, o.prometheusRules = v, &v.ObjectMeta, "monitoring.coreos.com/v1", append(o.prometheusRules, v)
		default:
			errs = append(errs, fmt.Sprintf("unexpected kind %q (%s)", tm.Kind, tm.APIVersion))
			continue
		}
		if err := strict(j, obj); err != nil {
			errs = append(errs, fmt.Sprintf("%s does not decode strictly: %v", tm.Kind, err))
			continue
		}
		if tm.APIVersion != want {
			errs = append(errs, fmt.Sprintf("%s %s: apiVersion %q, want %q", tm.Kind, meta.Name, tm.APIVersion, want))
		}
		if meta.Name == "" {
			errs = append(errs, fmt.Sprintf("a %s without a name", tm.Kind))
		}
		if k := tm.Kind + "/" + meta.Name; seen[k] {
			errs = append(errs, "two objects "+k)
		} else {
			seen[k] = true
		}
		if namespaced {
			o.namespaced = append(o.namespaced, meta)
		} else if meta.Namespace != "" {
			errs = append(errs, fmt.Sprintf("%s %s is cluster-scoped but has namespace %q", tm.Kind, meta.Name, meta.Namespace))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return o, nil
}

// kustomize renders the kustomization in dir into its YAML documents.
func kustomize(dir string) ([][]byte, error) {
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	var docs [][]byte
	for _, res := range rm.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			return nil, err
		}
		docs = append(docs, y)
	}
	return docs, nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
