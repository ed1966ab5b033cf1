package k8s

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/nackcast/nackcast/pkg/app"
	"github.com/nackcast/nackcast/pkg/flagsets"
)

// networkAttachment is Multus's NetworkAttachmentDefinition (a CRD, not in
// k8s.io/api).
type networkAttachment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Config string `json:"config"`
	} `json:"spec"`
}

// objects is one rendered kustomization, strictly decoded.
type objects struct {
	deployments  []*appsv1.Deployment
	statefulSets []*appsv1.StatefulSet
	services     []*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	pvcs         []*corev1.PersistentVolumeClaim
	namespaces   []*corev1.Namespace
	attachments  []*networkAttachment
}

// strict decodes JSON into v, failing on fields v does not have.
func strict(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

func render(t *testing.T, dir string) *objects {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	out := &objects{configMaps: map[string]*corev1.ConfigMap{}}
	for _, res := range rm.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		j, err := yaml.YAMLToJSON(y)
		if err != nil {
			t.Fatal(err)
		}
		kind := res.GetKind()
		var obj any
		switch kind {
		case "Deployment":
			d := &appsv1.Deployment{}
			obj, out.deployments = d, append(out.deployments, d)
		case "StatefulSet":
			s := &appsv1.StatefulSet{}
			obj, out.statefulSets = s, append(out.statefulSets, s)
		case "Service":
			s := &corev1.Service{}
			obj, out.services = s, append(out.services, s)
		case "ConfigMap":
			c := &corev1.ConfigMap{}
			obj = c
			defer func() { out.configMaps[c.Name] = c }()
		case "PersistentVolumeClaim":
			p := &corev1.PersistentVolumeClaim{}
			obj, out.pvcs = p, append(out.pvcs, p)
		case "Namespace":
			n := &corev1.Namespace{}
			obj, out.namespaces = n, append(out.namespaces, n)
		case "NetworkAttachmentDefinition":
			n := &networkAttachment{}
			obj, out.attachments = n, append(out.attachments, n)
		default:
			t.Fatalf("%s: unexpected kind %s", dir, kind)
		}
		if err := strict(j, obj); err != nil {
			t.Errorf("%s: %s %s does not decode strictly: %v", dir, kind, res.GetName(), err)
		}
	}
	return out
}

var overlays = []string{"base", "overlays/dev", "overlays/hostnetwork", "overlays/multus", "overlays/tls"}

// portOf returns the port of a listen-style default such as ":7001".
func portOf(t *testing.T, fs *flag.FlagSet, name string) int32 {
	t.Helper()
	_, port, err := net.SplitHostPort(fs.Lookup(name).DefValue)
	if err != nil {
		t.Fatalf("flag -%s: %v", name, err)
	}
	p, _ := strconv.Atoi(port)
	return int32(p)
}

func TestManifestsDecodeStrictly(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			o := render(t, dir)
			if len(o.deployments) != 2 || len(o.statefulSets) != 1 || len(o.services) != 3 {
				t.Errorf("%d deployments, %d statefulsets, %d services; want 2, 1, 3", len(o.deployments), len(o.statefulSets), len(o.services))
			}
		})
	}
}

// TestManifestsAgreeWithServices checks images, ports, probes, security
// and configuration keys against the services' real flags.
func TestManifestsAgreeWithServices(t *testing.T) {
	flags := flagsets.All()
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			o := render(t, dir)
			type workload struct {
				name string
				tmpl corev1.PodTemplateSpec
			}
			var ws []workload
			for _, d := range o.deployments {
				ws = append(ws, workload{d.Name, d.Spec.Template})
				if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
					t.Errorf("%s: a sender runs one replica, replaced with Recreate", d.Name)
				}
			}
			for _, s := range o.statefulSets {
				ws = append(ws, workload{s.Name, s.Spec.Template})
				if len(s.Spec.VolumeClaimTemplates) == 0 {
					t.Errorf("%s: receivers need persistent data", s.Name)
				}
			}
			for _, w := range ws {
				checkPod(t, dir, w.name, w.tmpl, o, flags)
			}
			for _, s := range o.services {
				for _, p := range s.Spec.Ports {
					if p.TargetPort.StrVal != p.Name {
						t.Errorf("service %s port %s targets %q, want the named container port", s.Name, p.Name, p.TargetPort.String())
					}
				}
			}
			switch dir {
			case "overlays/hostnetwork", "overlays/dev":
				for _, w := range ws {
					if !w.tmpl.Spec.HostNetwork || w.tmpl.Spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
						t.Errorf("%s: %s is not on the host network", dir, w.name)
					}
				}
			case "overlays/multus":
				if len(o.attachments) != 1 {
					t.Fatalf("want one NetworkAttachmentDefinition")
				}
				var cfg struct{ Type, Master string }
				if err := json.Unmarshal([]byte(o.attachments[0].Spec.Config), &cfg); err != nil || cfg.Type != "macvlan" || cfg.Master == "" {
					t.Errorf("attachment config %q: %v", o.attachments[0].Spec.Config, err)
				}
				for _, w := range ws {
					if w.tmpl.Annotations["k8s.v1.cni.cncf.io/networks"] != o.attachments[0].Name {
						t.Errorf("%s is not attached to %s", w.name, o.attachments[0].Name)
					}
				}
				for _, cm := range o.configMaps {
					if cm.Data["NACKCAST_INTERFACE"] != "net1" {
						t.Errorf("configmap %s: interface %q, want net1 (the attachment)", cm.Name, cm.Data["NACKCAST_INTERFACE"])
					}
				}
			}
		})
	}
}

func checkPod(t *testing.T, dir, name string, tmpl corev1.PodTemplateSpec, o *objects, flags map[string]*flag.FlagSet) {
	t.Helper()
	where := dir + ": " + name
	ps := tmpl.Spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
		t.Errorf("%s: pod must run as non-root", where)
	}
	if len(tmpl.Spec.Containers) != 1 {
		t.Fatalf("%s: want one container", where)
	}
	c := tmpl.Spec.Containers[0]
	if !strings.HasPrefix(c.Image, "nackcast:") {
		t.Errorf("%s: image %q is not the nackcast image", where, c.Image)
	}
	if len(c.Command) != 1 || !strings.HasPrefix(c.Command[0], "/nackcast/") {
		t.Fatalf("%s: command %v", where, c.Command)
	}
	service := strings.TrimPrefix(c.Command[0], "/nackcast/")
	fs, ok := flags[service]
	if !ok {
		t.Fatalf("%s: %s is not a nackcast service", where, c.Command[0])
	}
	grpc, metrics := portOf(t, fs, "listen"), portOf(t, fs, "metrics-addr")
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["grpc"] != grpc || ports["metrics"] != metrics {
		t.Errorf("%s: ports %v, want grpc %d and metrics %d (the %s defaults)", where, ports, grpc, metrics, service)
	}
	for what, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if dir == "overlays/tls" {
			// Kubernetes' gRPC probes speak plaintext: under TLS the
			// binary probes itself.
			if p == nil || p.Exec == nil || len(p.Exec.Command) != 2 || p.Exec.Command[0] != c.Command[0] || p.Exec.Command[1] != "-healthcheck" {
				t.Errorf("%s: %s probe must run %s -healthcheck", where, what, c.Command[0])
			}
			continue
		}
		if p == nil || p.GRPC == nil || p.GRPC.Port != grpc {
			t.Errorf("%s: %s probe must be a gRPC probe on port %d", where, what, grpc)
		}
	}
	if tmpl.Annotations["prometheus.io/port"] != fmt.Sprint(metrics) || tmpl.Annotations["prometheus.io/scrape"] != "true" {
		t.Errorf("%s: prometheus annotations %v", where, tmpl.Annotations)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: container needs a read-only root filesystem and no privilege escalation", where)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: resource requests and limits are required", where)
	}
	// Every configuration key is a flag of the service and its value is
	// one the flag accepts.
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		cm, ok := o.configMaps[from.ConfigMapRef.Name]
		if !ok {
			t.Errorf("%s: configmap %s missing", where, from.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			env[k] = v
		}
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.ValueFrom != nil {
			env[e.Name] = "from-field"
		}
	}
	if dir == "overlays/tls" {
		mounted := false
		for _, m := range c.VolumeMounts {
			mounted = mounted || m.MountPath == "/certs"
		}
		if env["NACKCAST_PLAINTEXT"] != "false" || !mounted {
			t.Errorf("%s: plaintext %q, /certs mounted %v: want TLS", where, env["NACKCAST_PLAINTEXT"], mounted)
		}
		for _, k := range []string{"NACKCAST_TLS_CA", "NACKCAST_TLS_CERT", "NACKCAST_TLS_KEY"} {
			if !strings.HasPrefix(env[k], "/certs/") {
				t.Errorf("%s: %s = %q, want a file under /certs", where, k, env[k])
			}
		}
	} else if env["NACKCAST_PLAINTEXT"] != "true" {
		t.Errorf("%s: NACKCAST_PLAINTEXT %q: a service needs TLS or an explicit plaintext", where, env["NACKCAST_PLAINTEXT"])
	}
	byEnv := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { byEnv[app.EnvName(f.Name)] = f.Name })
	for k, v := range env {
		name, ok := byEnv[k]
		if !ok {
			t.Errorf("%s: %s is not a flag of %s", where, k, service)
			continue
		}
		if v == "from-field" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			t.Errorf("%s: %s=%q is not a valid -%s: %v", where, k, v, name, err)
		}
	}
	fs.VisitAll(func(f *flag.Flag) { fs.Set(f.Name, f.DefValue) })
}
