package k8s

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestChecksCatch breaks a secure configuration in the ways the checks are
// there for, one at a time, and expects each to be reported.
func TestChecksCatch(t *testing.T) {
	const dir = "overlays/hostnetwork"
	var cfg config
	for _, k := range kustomizations {
		if k.dir == dir {
			cfg = k.cfg
		}
	}
	receiver := func(o *objects) *corev1.PodSpec { return &o.daemonSets[0].Spec.Template.Spec }
	primary := func(o *objects) *corev1.PodSpec {
		for _, s := range o.statefulSets {
			if s.Name == "nackcast-primary" {
				return &s.Spec.Template.Spec
			}
		}
		t.Fatal("no primary")
		return nil
	}
	setEnv := func(c *corev1.Container, name, value string) {
		for i := range c.Env {
			if c.Env[i].Name == name {
				c.Env[i] = corev1.EnvVar{Name: name, Value: value}
				return
			}
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
	}
	csiAttrs := func(s *corev1.PodSpec) map[string]string {
		for _, v := range s.Volumes {
			if v.CSI != nil {
				return v.CSI.VolumeAttributes
			}
		}
		t.Fatal("no csi volume")
		return nil
	}
	tests := []struct {
		name   string
		break_ func(o *objects)
		want   string
	}{
		{"receiver id from the node", func(o *objects) {
			c := &receiver(o).Containers[0]
			for i := range c.Env {
				if c.Env[i].Name == "NACKCAST_ID" {
					c.Env[i].ValueFrom.FieldRef.FieldPath = "spec.nodeName"
				}
			}
		}, "is not its certificate's name"},
		{"one certificate name for every receiver", func(o *objects) {
			csiAttrs(receiver(o))["csi.cert-manager.io/common-name"] = "nackcast-receiver"
		}, "is not its certificate's name"},
		{"role only in an OU", func(o *objects) {
			delete(csiAttrs(receiver(o)), "csi.cert-manager.io/uri-sans")
		}, "without its OU"},
		{"wrong role", func(o *objects) {
			csiAttrs(receiver(o))["csi.cert-manager.io/uri-sans"] = "urn:nackcast:role:admin"
		}, `certificate role ""`},
		{"no 127.0.0.1 for -healthcheck", func(o *objects) {
			delete(csiAttrs(primary(o)), "csi.cert-manager.io/ip-sans")
		}, "does not verify for 127.0.0.1"},
		{"primary's certificate without its service name", func(o *objects) {
			csiAttrs(primary(o))["csi.cert-manager.io/dns-names"] = "primary.example"
		}, "does not verify for nackcast-primary"},
		{"an unknown csi variable", func(o *objects) {
			csiAttrs(receiver(o))["csi.cert-manager.io/common-name"] = "${NODE_NAME}"
		}, "does not know ${NODE_NAME}"},
		{"plaintext", func(o *objects) {
			o.configMaps["nackcast-receiver"].Data["NACKCAST_PLAINTEXT"] = "true"
		}, "-plaintext with TLS"},
		{"gRPC probe under TLS", func(o *objects) {
			receiver(o).Containers[0].ReadinessProbe.Exec = nil
		}, "readiness probe must run"},
		{"metrics on the node", func(o *objects) {
			setEnv(&receiver(o).Containers[0], "NACKCAST_METRICS_ADDR", ":9103")
		}, "want 127.0.0.1:9103 behind the proxy"},
		{"no proxy", func(o *objects) {
			s := receiver(o)
			s.Containers = s.Containers[:1]
		}, "no kube-rbac-proxy"},
		{"pprof on the node", func(o *objects) {
			setEnv(&receiver(o).Containers[0], "NACKCAST_PPROF", "true")
		}, "pprof on the node"},
		{"no packet keys", func(o *objects) {
			c := &receiver(o).Containers[0]
			for i := range c.Env {
				if c.Env[i].Name == "NACKCAST_PACKET_KEYS" {
					c.Env = append(c.Env[:i], c.Env[i+1:]...)
					break
				}
			}
		}, "want the keys of Secret"},
		{"packet keys in the manifest", func(o *objects) {
			setEnv(&receiver(o).Containers[0], "NACKCAST_PACKET_KEYS", "1 00")
		}, "must come from a Secret"},
		{"pod network", func(o *objects) { receiver(o).HostNetwork = false }, "not on the host network"},
		{"a misspelt variable", func(o *objects) {
			o.configMaps["nackcast-sender"].Data["NACKCAST_RAET"] = "1M"
		}, "NACKCAST_RAET is not a flag of sender"},
		{"a bad value", func(o *objects) {
			o.configMaps["nackcast-sender"].Data["NACKCAST_TTL"] = "many"
		}, "is not a valid -ttl"},
		{"a receiver flag in the sender's ConfigMap", func(o *objects) {
			o.configMaps["nackcast-sender"].Data["NACKCAST_DATA"] = "/data"
		}, "NACKCAST_DATA is not a flag of sender"},
		{"state on an emptyDir", func(o *objects) {
			for _, s := range o.statefulSets {
				if s.Name == "nackcast-primary" {
					s.Spec.VolumeClaimTemplates = nil
					s.Spec.Template.Spec.Volumes = append(s.Spec.Template.Spec.Volumes, corev1.Volume{Name: "state", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
				}
			}
		}, "does not persist"},
		{"receivers in a StatefulSet", func(o *objects) { o.daemonSets = nil }, "no receiver DaemonSet"},
		{"root", func(o *objects) {
			zero := int64(0)
			receiver(o).Containers[0].SecurityContext.RunAsUser = &zero
		}, "runs as root"},
		{"a writable root filesystem", func(o *objects) {
			f := false
			primary(o).Containers[0].SecurityContext.ReadOnlyRootFilesystem = &f
		}, "read-only root filesystem"},
		{"service port off the container's", func(o *objects) { o.services[0].Spec.Ports[0].Port++ }, "the container's"},
		{"proxy cannot review tokens", func(o *objects) { o.clusterRoleBindings = nil }, "may not create tokenreviews"},
		{"a token for nackcast", func(o *objects) {
			s := receiver(o)
			s.Containers[0].VolumeMounts = append(s.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "kube-api-access", MountPath: tokenDir})
		}, "container receiver mounts a service account token"},
		{"a token in every container", func(o *objects) {
			t := true
			receiver(o).AutomountServiceAccountToken = &t
		}, "token is mounted in every container"},
		{"no token for the proxy", func(o *objects) {
			receiver(o).Containers[1].VolumeMounts = nil
		}, "kube-rbac-proxy needs the service account's token"},
		{"admin certificate of another role", func(o *objects) {
			for _, c := range o.certificates {
				if !c.Spec.IsCA {
					c.Spec.URIs = []string{"urn:nackcast:role:receiver"}
				}
			}
		}, "want admin"},
		{"another namespace", func(o *objects) { o.namespaced[0].Namespace = "default" }, `want "nackcast"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := kustomize(dir)
			if err != nil {
				t.Fatal(err)
			}
			o, err := decode(docs)
			if err != nil {
				t.Fatal(err)
			}
			if p := check(o, cfg); len(p) > 0 {
				t.Fatalf("the unbroken configuration has problems: %q", p)
			}
			tt.break_(o)
			if p := check(o, cfg); !p.has(tt.want) {
				t.Errorf("problems %q, want one saying %q", p, tt.want)
			}
		})
	}
}

// TestDecodeStrict checks that decode refuses what a cluster would
// refuse or silently drop.
func TestDecodeStrict(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"unknown field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {}\nextra: 1\n", "unknown field"},
		{"field of another kind", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: a}\nspec: {replicas: 2}\n", "unknown field"},
		{"crd field", "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: a}\nspec: {secretName: s, issuerRef: {name: i}, ou: [x]}\n", "unknown field"},
		{"servicemonitor field", "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: a}\nspec: {selector: {}, endpoints: [{port: metrics, bearerToken: x}]}\n", "unknown field"},
		{"apiVersion", "apiVersion: apps/v1beta2\nkind: DaemonSet\nmetadata: {name: a}\n", "apiVersion"},
		{"kind", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n", "unexpected kind"},
		{"no name", "apiVersion: v1\nkind: Service\nmetadata: {}\n", "without a name"},
		{"cluster-scoped in a namespace", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: a, namespace: b}\n", "cluster-scoped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode([][]byte{[]byte(tt.doc)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decode: %v, want %q", err, tt.want)
			}
		})
	}
	twice := []byte("apiVersion: v1\nkind: Service\nmetadata: {name: a}\n")
	if _, err := decode([][]byte{twice, twice}); err == nil || !strings.Contains(err.Error(), "two objects") {
		t.Errorf("decode of a duplicate: %v", err)
	}
}
