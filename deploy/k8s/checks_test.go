package k8s

import (
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/nackcast/nackcast/pkg/app"
	"github.com/nackcast/nackcast/pkg/flagsets"
	"github.com/nackcast/nackcast/pkg/pktauth"
	"github.com/nackcast/nackcast/pkg/tlsconf"
)

// config is what a rendered configuration must be: the properties the
// checks hold it to. It is written down for each kustomization and value
// set, never derived from the render.
type config struct {
	// network is how multicast travels: "host" (hostNetwork), "multus"
	// (a Multus attachment, net1) or "pod" (the pod network).
	network string
	// tls is where the certificates come from: "csi" (cert-manager's
	// csi-driver, one per pod), "secrets" (existing Secrets), or "" for
	// plaintext gRPC.
	tls string
	// issuer is the csi-driver's issuer, "Kind/name"; rendered says it
	// is one of the render's own Issuers.
	issuer         string
	issuerRendered bool
	// packetKeys: every service reads the keys of this Secret ("" none).
	packetKeys string
	// metricsProxy: /metrics through kube-rbac-proxy.
	metricsProxy bool
	// namespace of every namespaced object ("" for a Helm render, whose
	// objects take the release's at install).
	namespace string
	// prefix of the object names: PREFIX-primary, PREFIX-backup,
	// PREFIX-receiver.
	prefix string
	// backup: a backup sender runs.
	backup bool
	// receiverNodes: with tls "secrets", one receiver DaemonSet per node,
	// pinned to it, its id the node's name, its certificate the Secret
	// of the node.
	receiverNodes map[string]string
	// senderSecrets: with tls "secrets", the Secret of the sender and of
	// the backup.
	senderSecrets map[string]string
}

// secure reports whether the configuration must be secure: mutual TLS on
// every gRPC port and authenticated packets.
func (c config) secure() bool { return c.tls != "" && c.packetKeys != "" }

// problems collects what is wrong with a configuration.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// has reports whether some problem contains s.
func (p problems) has(s string) bool {
	return slices.ContainsFunc(p, func(q string) bool { return strings.Contains(q, s) })
}

// pod is a workload's pod template with what the checks need to know of
// it.
type pod struct {
	kind, name string
	tmpl       corev1.PodTemplateSpec
	// service is the nackcast program (sender, backup, receiver).
	service string
	// claims are the names of the workload's volumeClaimTemplates.
	claims []string
	// node is the node a per-node receiver is pinned to.
	node string
}

// Sample identities that the downward API and the csi-driver fill in.
const (
	samplePodSuffix = "x7k2p"
	sampleNode      = "edge-node-1"
)

// check holds a rendered configuration to c and to the services' real
// flags, and returns what is wrong.
func check(o *objects, c config) problems {
	var p problems
	pods := workloads(o, c, &p)
	for _, w := range pods {
		checkPod(&p, o, c, w)
	}
	checkServices(&p, o, pods)
	checkNamespaces(&p, o, c)
	if c.metricsProxy {
		checkProxyRBAC(&p, o, c, pods)
	}
	if c.tls == "csi" {
		checkCertificates(&p, o, c)
	}
	if c.network == "multus" {
		if len(o.attachments) != 1 {
			p.add("%d NetworkAttachmentDefinitions, want one", len(o.attachments))
		} else {
			a := o.attachments[0]
			var cfg struct{ Type, Master string }
			if err := json.Unmarshal([]byte(a.Spec.Config), &cfg); err != nil || cfg.Type != "macvlan" || cfg.Master == "" {
				p.add("attachment %s: config %q: %v; want a macvlan with a master", a.Name, a.Spec.Config, err)
			}
			for _, w := range pods {
				if got := w.tmpl.Annotations["k8s.v1.cni.cncf.io/networks"]; got != a.Name {
					p.add("%s: attached to %q, want %s", w.name, got, a.Name)
				}
			}
		}
	} else if len(o.attachments) > 0 {
		p.add("a NetworkAttachmentDefinition without multus")
	}
	return p
}

// workloads checks the kinds of the workloads (the senders StatefulSets of
// one, the receivers DaemonSets) and returns their pods.
func workloads(o *objects, c config, p *problems) []pod {
	var pods []pod
	if len(o.deployments) > 0 {
		p.add("%d Deployments: the senders are StatefulSets, the receivers DaemonSets", len(o.deployments))
	}
	senders := map[string]string{c.prefix + "-primary": "sender"}
	if c.backup {
		senders[c.prefix+"-backup"] = "backup"
	}
	for _, s := range o.statefulSets {
		svc, ok := senders[s.Name]
		if !ok {
			p.add("unexpected StatefulSet %s", s.Name)
			continue
		}
		delete(senders, s.Name)
		if s.Spec.Replicas == nil || *s.Spec.Replicas != 1 {
			p.add("%s: a sender runs one replica", s.Name)
		}
		if s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType || s.Spec.PodManagementPolicy == appsv1.ParallelPodManagement {
			p.add("%s: a sender must be replaced one pod at a time (never two)", s.Name)
		}
		var claims []string
		for _, t := range s.Spec.VolumeClaimTemplates {
			claims = append(claims, t.Name)
		}
		pods = append(pods, pod{kind: "StatefulSet", name: s.Name, tmpl: s.Spec.Template, service: svc, claims: claims})
	}
	for _, name := range sortedKeys(senders) {
		p.add("no StatefulSet %s", name)
	}
	wantDS := map[string]string{c.prefix + "-receiver": ""}
	if c.tls == "secrets" {
		wantDS = map[string]string{}
		for node := range c.receiverNodes {
			wantDS[c.prefix+"-receiver-"+node] = node
		}
	}
	for _, d := range o.daemonSets {
		node, ok := wantDS[d.Name]
		if !ok {
			p.add("unexpected DaemonSet %s", d.Name)
			continue
		}
		delete(wantDS, d.Name)
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			p.add("%s: its selector does not select its pods: %v", d.Name, err)
		}
		if node != "" {
			checkPinned(p, d, node)
		}
		pods = append(pods, pod{kind: "DaemonSet", name: d.Name, tmpl: d.Spec.Template, service: "receiver", node: node})
	}
	for _, name := range sortedKeys(wantDS) {
		p.add("no receiver DaemonSet %s", name)
	}
	// DaemonSets of receivers must not select each other's pods.
	for i, a := range o.daemonSets {
		for _, b := range o.daemonSets[i+1:] {
			if sa, err := metav1.LabelSelectorAsSelector(a.Spec.Selector); err == nil && sa.Matches(labels.Set(b.Spec.Template.Labels)) {
				p.add("DaemonSets %s and %s select the same pods", a.Name, b.Name)
			}
		}
	}
	return pods
}

// checkPinned checks that a per-node receiver runs on its node only.
func checkPinned(p *problems, d *appsv1.DaemonSet, node string) {
	a := d.Spec.Template.Spec.Affinity
	ok := false
	if a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		ok = len(terms) == 1 && len(terms[0].MatchFields) == 1 && terms[0].MatchFields[0].Key == "metadata.name" &&
			terms[0].MatchFields[0].Operator == corev1.NodeSelectorOpIn && slices.Equal(terms[0].MatchFields[0].Values, []string{node})
	}
	if !ok {
		p.add("%s: not pinned to node %s (required node affinity on metadata.name)", d.Name, node)
	}
}

// container returns the nackcast container of a pod and the other ones.
func nackcastContainer(p *problems, w pod) (corev1.Container, []corev1.Container, bool) {
	var main []corev1.Container
	var others []corev1.Container
	for _, c := range w.tmpl.Spec.Containers {
		if len(c.Command) == 1 && strings.HasPrefix(c.Command[0], "/nackcast/") {
			main = append(main, c)
		} else {
			others = append(others, c)
		}
	}
	if len(main) != 1 {
		p.add("%s: %d nackcast containers, want one", w.name, len(main))
		return corev1.Container{}, nil, false
	}
	return main[0], others, true
}

// env resolves a container's environment: its ConfigMaps, then its env,
// with the downward API filled in for pod podName on node sampleNode.
// Secret references resolve to "secret:NAME/KEY".
func env(p *problems, where string, o *objects, c corev1.Container, podName, namespace string) map[string]string {
	e := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			p.add("%s: envFrom other than a ConfigMap", where)
			continue
		}
		cm, ok := o.configMaps[from.ConfigMapRef.Name]
		if !ok {
			p.add("%s: ConfigMap %s missing", where, from.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			e[k] = v
		}
	}
	for _, v := range c.Env {
		switch {
		case v.ValueFrom == nil:
			e[v.Name] = v.Value
		case v.ValueFrom.FieldRef != nil:
			switch v.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				e[v.Name] = podName
			case "metadata.namespace":
				e[v.Name] = namespace
			case "spec.nodeName":
				e[v.Name] = sampleNode
			default:
				e[v.Name] = "field:" + v.ValueFrom.FieldRef.FieldPath
			}
		case v.ValueFrom.SecretKeyRef != nil:
			e[v.Name] = "secret:" + v.ValueFrom.SecretKeyRef.Name + "/" + v.ValueFrom.SecretKeyRef.Key
		default:
			p.add("%s: %s from an unexpected source", where, v.Name)
		}
	}
	return e
}

// flagSetsMu serializes flagsets.All, which tests may call in parallel;
// each pod gets flag sets of its own, so values set for one do not leak
// into the next.
var flagSetsMu sync.Mutex

// checkFlags checks that every NACKCAST_ variable is a flag of the
// service, or its packet keys, and that every value is one the flag
// accepts.
func checkFlags(p *problems, where, service string, e map[string]string) *flag.FlagSet {
	flagSetsMu.Lock()
	fs, ok := flagsets.All()[service]
	flagSetsMu.Unlock()
	if !ok {
		p.add("%s: %s is not a nackcast service", where, service)
		return nil
	}
	byEnv := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { byEnv[app.EnvName(f.Name)] = f.Name })
	for _, k := range sortedKeys(e) {
		v := e[k]
		if k == pktauth.EnvKeys {
			if !strings.HasPrefix(v, "secret:") {
				p.add("%s: %s must come from a Secret, not the manifest", where, k)
			}
			continue
		}
		name, ok := byEnv[k]
		if !ok {
			p.add("%s: %s is not a flag of %s", where, k, service)
			continue
		}
		if strings.HasPrefix(v, "field:") || strings.HasPrefix(v, "secret:") {
			p.add("%s: %s=%s: an unexpected source for a flag", where, k, v)
			continue
		}
		if err := fs.Set(name, v); err != nil {
			p.add("%s: %s=%q is not a valid -%s: %v", where, k, v, name, err)
		}
	}
	return fs
}

// portOf returns the port of a listen-style address such as ":7001".
func portOf(addr string) (string, int32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(port)
	return host, int32(n), err
}

func checkPod(p *problems, o *objects, c config, w pod) {
	where := w.name
	spec := w.tmpl.Spec
	main, others, ok := nackcastContainer(p, w)
	if !ok {
		return
	}
	if want := "/nackcast/" + w.service; main.Command[0] != want {
		p.add("%s: runs %s, want %s", where, main.Command[0], want)
	}
	if name, tag, _ := strings.Cut(path.Base(main.Image), ":"); name != "nackcast" || tag == "" {
		p.add("%s: image %q is not a tag of the nackcast image", where, main.Image)
	}
	podName := w.name + "-" + samplePodSuffix
	if w.kind == "StatefulSet" {
		podName = w.name + "-0"
	}
	e := env(p, where, o, main, podName, c.namespace)
	fs := checkFlags(p, where, w.service, e)
	if fs == nil {
		return
	}
	defaults := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { defaults[f.Name] = f.DefValue })
	value := func(flagName string) string {
		if v, ok := e[app.EnvName(flagName)]; ok {
			return v
		}
		return defaults[flagName]
	}
	_, grpcPort, err := portOf(value("listen"))
	if err != nil {
		p.add("%s: -listen %q: %v", where, value("listen"), err)
	}
	_, defaultMetrics, _ := portOf(defaults["metrics-addr"])
	metricsHost, metricsPort, err := portOf(value("metrics-addr"))
	if err != nil {
		p.add("%s: -metrics-addr %q: %v", where, value("metrics-addr"), err)
	}
	ports := map[string]int32{}
	for _, cp := range main.Ports {
		ports[cp.Name] = cp.ContainerPort
	}
	if ports["grpc"] != grpcPort {
		p.add("%s: container port grpc %d, want %d (-listen)", where, ports["grpc"], grpcPort)
	}

	// Metrics: the service's own port, or kube-rbac-proxy's in front of it
	// on 127.0.0.1.
	proxy := findContainer(others, "kube-rbac-proxy")
	if c.metricsProxy {
		if metricsHost != "127.0.0.1" || metricsPort != defaultMetrics {
			p.add("%s: -metrics-addr %q, want 127.0.0.1:%d behind the proxy", where, value("metrics-addr"), defaultMetrics)
		}
		if _, ok := ports["metrics"]; ok {
			p.add("%s: the service declares a metrics port: the proxy serves it", where)
		}
		checkProxy(p, where, proxy, metricsPort)
		if proxy != nil && !mountsToken(w.tmpl.Spec, *proxy) {
			p.add("%s: kube-rbac-proxy needs the service account's token at %s", where, tokenDir)
		}
		if _, ok := w.tmpl.Annotations["prometheus.io/scrape"]; ok {
			p.add("%s: prometheus.io annotations while /metrics needs a token", where)
		}
	} else {
		if proxy != nil {
			p.add("%s: a kube-rbac-proxy that was not asked for", where)
		}
		if ports["metrics"] != metricsPort || metricsPort != defaultMetrics {
			p.add("%s: container port metrics %d, -metrics-addr %q: want both %d", where, ports["metrics"], value("metrics-addr"), defaultMetrics)
		}
		if a := w.tmpl.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(int(metricsPort)) {
			p.add("%s: prometheus annotations %v, want scrape on %d", where, a, metricsPort)
		}
	}
	for _, oc := range others {
		if oc.Name != "kube-rbac-proxy" {
			p.add("%s: unexpected container %s", where, oc.Name)
		}
	}
	// nackcast reads the network and needs no Kubernetes token: none in
	// its container, nor in any but the proxy's.
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		p.add("%s: the service account's token is mounted in every container", where)
	}
	for _, ct := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		if ct.Name != "kube-rbac-proxy" && mountsToken(spec, ct) {
			p.add("%s: container %s mounts a service account token", where, ct.Name)
		}
	}

	// Probes: Kubernetes' gRPC probes speak plaintext; under TLS the binary
	// probes itself with its certificate.
	for what, pr := range map[string]*corev1.Probe{"readiness": main.ReadinessProbe, "liveness": main.LivenessProbe} {
		if c.tls != "" {
			if pr == nil || pr.Exec == nil || !slices.Equal(pr.Exec.Command, []string{main.Command[0], "-healthcheck"}) || pr.GRPC != nil {
				p.add("%s: %s probe must run %s -healthcheck", where, what, main.Command[0])
			} else if pr.TimeoutSeconds < 4 {
				p.add("%s: %s probe times out after %ds, before -healthcheck's 3s", where, what, pr.TimeoutSeconds)
			}
			continue
		}
		if pr == nil || pr.GRPC == nil || pr.GRPC.Port != grpcPort {
			p.add("%s: %s probe must be a gRPC probe on port %d", where, what, grpcPort)
		}
	}

	checkSecurity(p, where, w.tmpl)
	for _, ct := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		if ct.Resources.Requests.Cpu().IsZero() || ct.Resources.Limits.Memory().IsZero() {
			p.add("%s: container %s: resource requests and limits are required", where, ct.Name)
		}
	}

	// Network.
	host := spec.HostNetwork
	switch c.network {
	case "host":
		if !host || spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
			p.add("%s: not on the host network with ClusterFirstWithHostNet", where)
		}
	case "multus":
		if host {
			p.add("%s: on the host network", where)
		}
		if value("interface") != "net1" {
			p.add("%s: interface %q, want net1 (the attachment)", where, value("interface"))
		}
	case "pod":
		if host {
			p.add("%s: on the host network", where)
		}
	default:
		p.add("unknown network %q", c.network)
	}

	// Transport security.
	if c.tls == "" {
		if value("plaintext") != "true" {
			p.add("%s: -plaintext %q: a service needs TLS or an explicit plaintext", where, value("plaintext"))
		}
	} else {
		checkTLS(p, o, c, w, main, value, podName)
	}

	// Packet keys.
	if c.packetKeys != "" {
		if got := e[pktauth.EnvKeys]; got != "secret:"+c.packetKeys {
			p.add("%s: %s = %q, want the keys of Secret %s", where, pktauth.EnvKeys, got, c.packetKeys)
		}
		if value("packet-key-file") != "" {
			p.add("%s: a packet key file as well as %s", where, pktauth.EnvKeys)
		}
	} else if _, ok := e[pktauth.EnvKeys]; ok {
		p.add("%s: packet keys that were not asked for", where)
	}

	// Nothing on a node's addresses without authentication.
	if host && c.secure() {
		if !c.metricsProxy && metricsHost != "127.0.0.1" && value("metrics-addr") != "" {
			p.add("%s: /metrics on the node's addresses without authentication", where)
		}
		if value("pprof") == "true" {
			p.add("%s: pprof on the node", where)
		}
	}

	// Persistent state: the primary's pass records, the receivers'
	// content.
	switch w.service {
	case "sender":
		checkPersistent(p, where, w, value("state-dir"), true)
	case "receiver":
		checkPersistent(p, where, w, value("data"), false)
		if id := value("id"); w.node != "" && id != w.node {
			p.add("%s: receiver id %q, want the node's name %q", where, id, w.node)
		}
	}
}

// tokenDir is where Kubernetes clients look for the service account's
// token.
const tokenDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// mountsToken reports whether container c mounts a projected service
// account token (at tokenDir, for the proxy).
func mountsToken(spec corev1.PodSpec, c corev1.Container) bool {
	for _, m := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name != m.Name || v.Projected == nil {
				continue
			}
			for _, src := range v.Projected.Sources {
				if src.ServiceAccountToken != nil && m.MountPath == tokenDir {
					return true
				}
			}
		}
	}
	return false
}

func findContainer(cs []corev1.Container, name string) *corev1.Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

// checkProxy checks that kube-rbac-proxy serves HTTPS on the metrics port
// of the pod's address, in front of 127.0.0.1:port, and /metrics only.
func checkProxy(p *problems, where string, proxy *corev1.Container, port int32) {
	if proxy == nil {
		p.add("%s: no kube-rbac-proxy in front of /metrics", where)
		return
	}
	want := []string{
		fmt.Sprintf("--secure-listen-address=[$(POD_IP)]:%d", port),
		fmt.Sprintf("--upstream=http://127.0.0.1:%d/", port),
		"--allow-paths=/metrics",
	}
	if !slices.Equal(proxy.Args, want) {
		p.add("%s: kube-rbac-proxy args %q, want %q", where, proxy.Args, want)
	}
	ip := false
	for _, v := range proxy.Env {
		ip = ip || (v.Name == "POD_IP" && v.ValueFrom != nil && v.ValueFrom.FieldRef != nil && v.ValueFrom.FieldRef.FieldPath == "status.podIP")
	}
	if !ip {
		p.add("%s: kube-rbac-proxy without POD_IP from status.podIP", where)
	}
	if len(proxy.Ports) != 1 || proxy.Ports[0].Name != "metrics" || proxy.Ports[0].ContainerPort != port {
		p.add("%s: kube-rbac-proxy ports %v, want metrics %d", where, proxy.Ports, port)
	}
}

// checkSecurity checks the pod's and every container's security context:
// non-root, read-only, no privilege escalation, every capability dropped;
// the receivers' data-owner init container alone runs as root, with
// CAP_CHOWN only, to chown the data directory.
func checkSecurity(p *problems, where string, tmpl corev1.PodTemplateSpec) {
	ps := tmpl.Spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser == 0 {
		p.add("%s: the pod must run as non-root", where)
	}
	if ps != nil && (ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault) {
		p.add("%s: the pod needs the runtime's seccomp profile", where)
	}
	for _, init := range []bool{true, false} {
		cs := tmpl.Spec.Containers
		if init {
			cs = tmpl.Spec.InitContainers
		}
		for _, c := range cs {
			sc := c.SecurityContext
			cw := where + ": container " + c.Name
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || (sc.Privileged != nil && *sc.Privileged) {
				p.add("%s: needs a read-only root filesystem, no privilege escalation and every capability dropped", cw)
				continue
			}
			root := sc.RunAsUser != nil && *sc.RunAsUser == 0
			if !root && len(sc.Capabilities.Add) == 0 && (sc.RunAsNonRoot == nil || *sc.RunAsNonRoot) {
				continue
			}
			if init && c.Name == "data-owner" && slices.Equal(sc.Capabilities.Add, []corev1.Capability{"CHOWN"}) &&
				slices.Equal(c.Command, []string{"chown", "65532:65532", "/data"}) {
				continue
			}
			p.add("%s: runs as root or with capabilities (%v), which only the data-owner init container may", cw, sc.Capabilities.Add)
		}
	}
}

// checkPersistent checks that dir is a volume that outlives the pod: a
// volumeClaimTemplate, a PVC, a generic ephemeral volume (receivers only)
// or a directory of the node (receivers only).
func checkPersistent(p *problems, where string, w pod, dir string, sender bool) {
	main, _, _ := nackcastContainer(&problems{}, w)
	var mount *corev1.VolumeMount
	for i, m := range main.VolumeMounts {
		if m.MountPath == dir {
			mount = &main.VolumeMounts[i]
		}
	}
	what := "data"
	if sender {
		what = "state (-state-dir)"
	}
	if dir == "" || mount == nil {
		p.add("%s: %s %q is not a mounted volume", where, what, dir)
		return
	}
	if slices.Contains(w.claims, mount.Name) {
		return
	}
	for _, v := range w.tmpl.Spec.Volumes {
		if v.Name != mount.Name {
			continue
		}
		switch {
		case v.PersistentVolumeClaim != nil:
			return
		case !sender && v.HostPath != nil && strings.HasPrefix(v.HostPath.Path, "/"):
			return
		case !sender && v.Ephemeral != nil:
			return
		}
		p.add("%s: %s is on volume %s, which does not persist", where, what, v.Name)
		return
	}
	p.add("%s: %s: no volume %s", where, what, mount.Name)
}

// checkTLS checks a pod's certificates: the files are those of a mounted
// certificate volume, and a certificate issued as the volume asks says
// the right name and role: a receiver's name is its receiver id, a
// sender's is the name its peers dial, and every certificate verifies for
// 127.0.0.1, which -healthcheck dials.
func checkTLS(p *problems, o *objects, c config, w pod, main corev1.Container, value func(string) string, podName string) {
	where := w.name
	if value("plaintext") == "true" {
		p.add("%s: -plaintext with TLS", where)
	}
	var vol *corev1.Volume
	for _, k := range []string{"tls-ca", "tls-cert", "tls-key"} {
		f := value(k)
		m := mountOf(main, f)
		if m == nil {
			p.add("%s: -%s %q is not in a mounted volume", where, k, f)
			continue
		}
		for i, v := range w.tmpl.Spec.Volumes {
			if v.Name == m.Name {
				vol = &w.tmpl.Spec.Volumes[i]
			}
		}
	}
	if vol == nil {
		p.add("%s: no certificate volume", where)
		return
	}
	role := map[string]string{"sender": app.RoleSender, "backup": app.RoleBackup, "receiver": app.RoleReceiver}[w.service]
	switch c.tls {
	case "secrets":
		want := c.senderSecrets[w.service]
		if w.node != "" {
			want = c.receiverNodes[w.node]
		}
		if vol.Secret == nil || vol.Secret.SecretName != want {
			p.add("%s: certificates from %v, want Secret %s", where, vol.VolumeSource, want)
		}
		return
	case "csi":
		if vol.CSI == nil || vol.CSI.Driver != "csi.cert-manager.io" || vol.CSI.ReadOnly == nil || !*vol.CSI.ReadOnly {
			p.add("%s: certificates from %v, want a read-only csi.cert-manager.io volume", where, vol.VolumeSource)
			return
		}
	}
	a := vol.CSI.VolumeAttributes
	files := map[string]string{"ca-file": "ca.crt", "certificate-file": "tls.crt", "privatekey-file": "tls.key"}
	for k, def := range files {
		f := a["csi.cert-manager.io/"+k]
		if f == "" {
			f = def
		}
		files[k] = f
	}
	m := mountOf(main, value("tls-cert"))
	for k, flagName := range map[string]string{"ca-file": "tls-ca", "certificate-file": "tls-cert", "privatekey-file": "tls-key"} {
		if want := m.MountPath + "/" + files[k]; value(flagName) != want {
			p.add("%s: -%s %q, want %s (the volume's %s)", where, flagName, value(flagName), want, k)
		}
	}
	if got := a["csi.cert-manager.io/issuer-kind"] + "/" + a["csi.cert-manager.io/issuer-name"]; got != c.issuer {
		p.add("%s: certificates from issuer %s, want %s", where, got, c.issuer)
	}
	if a["csi.cert-manager.io/fs-group"] != "65532" {
		p.add("%s: the certificate files are not readable by the service's group 65532", where)
	}
	// Issue the certificate the csi-driver would for this pod.
	expand := func(s string) string {
		return os.Expand(s, func(v string) string {
			switch v {
			case "POD_NAME":
				return podName
			case "POD_NAMESPACE":
				return sampleNamespace(c)
			}
			p.add("%s: the csi-driver does not know ${%s}", where, v)
			return ""
		})
	}
	list := func(k string) []string {
		var out []string
		for _, s := range strings.Split(expand(a["csi.cert-manager.io/"+k]), ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	req := tlsconf.CertRequest{Name: expand(a["csi.cert-manager.io/common-name"]), OrganizationalUnits: list("organizationalunits"), DNSNames: list("dns-names")}
	for _, s := range list("ip-sans") {
		req.IPAddresses = append(req.IPAddresses, net.ParseIP(s))
	}
	for _, s := range list("uri-sans") {
		u, err := url.Parse(s)
		if err != nil {
			p.add("%s: uri-sans %q: %v", where, s, err)
			continue
		}
		req.URIs = append(req.URIs, u)
	}
	usages := list("key-usages")
	for _, u := range []string{"server auth", "client auth"} {
		if !slices.Contains(usages, u) {
			p.add("%s: key usages %q lack %q", where, usages, u)
		}
	}
	cert, err := issueSample(req)
	if err != nil {
		p.add("%s: issuing the certificate the csi-driver is asked for: %v", where, err)
		return
	}
	if got := tlsconf.RoleOf(cert); got != role {
		p.add("%s: certificate role %q, want %q (OU %q, URIs %q)", where, got, role, req.OrganizationalUnits, list("uri-sans"))
	}
	// The role must survive a csi-driver that cannot set an OU.
	cert.Subject.OrganizationalUnit = nil
	if got := tlsconf.RoleOf(cert); got != role {
		p.add("%s: without its OU the certificate has role %q, want %q from a urn:nackcast:role URI", where, got, role)
	}
	if w.service == "receiver" && cert.Subject.CommonName != value("id") {
		p.add("%s: receiver id %q is not its certificate's name %q: the senders would refuse its NACKs", where, value("id"), cert.Subject.CommonName)
	}
	hosts := append([]string{"127.0.0.1"}, peersOf(o, w.service)...)
	for _, h := range hosts {
		if err := verifySample(cert, h); err != nil {
			p.add("%s: its certificate does not verify for %s: %v", where, h, err)
		}
	}
}

// sampleNamespace is the namespace the csi-driver would fill in.
func sampleNamespace(c config) string {
	if c.namespace != "" {
		return c.namespace
	}
	return "edge"
}

// peersOf returns the hosts by which the other services dial service: the
// host of NACKCAST_PRIMARY or NACKCAST_BACKUP in the ConfigMaps and
// workloads' env.
func peersOf(o *objects, service string) []string {
	key := map[string]string{"sender": "NACKCAST_PRIMARY", "backup": "NACKCAST_BACKUP"}[service]
	if key == "" {
		return nil
	}
	var addrs []string
	for _, cm := range o.configMaps {
		if v, ok := cm.Data[key]; ok {
			addrs = append(addrs, v)
		}
	}
	for _, s := range o.statefulSets {
		for _, c := range s.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.Name == key {
					addrs = append(addrs, e.Value)
				}
			}
		}
	}
	var hosts []string
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err == nil && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

func mountOf(c corev1.Container, file string) *corev1.VolumeMount {
	for i, m := range c.VolumeMounts {
		if strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

var (
	sampleCAOnce sync.Once
	sampleCA     *tlsconf.DevCA
	sampleCAErr  error
)

// issueSample issues req with a development CA, as the cluster's issuer
// would.
func issueSample(req tlsconf.CertRequest) (*x509.Certificate, error) {
	sampleCAOnce.Do(func() { sampleCA, sampleCAErr = tlsconf.NewDevCA(time.Hour) })
	if sampleCAErr != nil {
		return nil, sampleCAErr
	}
	pem, err := sampleCA.IssueRequest(req, time.Hour)
	if err != nil {
		return nil, err
	}
	return pem.Certificate()
}

// verifySample verifies cert as a server certificate for host, as
// tlsconf's clients do, and as a client certificate.
func verifySample(cert *x509.Certificate, host string) error {
	roots := x509.NewCertPool()
	roots.AddCert(sampleCA.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return err
	}
	_, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err
}

// checkServices checks that every Service selects pods and targets their
// named ports, on the same port numbers.
func checkServices(p *problems, o *objects, pods []pod) {
	for _, s := range o.services {
		sel := labels.SelectorFromSet(s.Spec.Selector)
		var selected []pod
		for _, w := range pods {
			if len(s.Spec.Selector) > 0 && sel.Matches(labels.Set(w.tmpl.Labels)) {
				selected = append(selected, w)
			}
		}
		if len(selected) == 0 {
			p.add("service %s selects no pod", s.Name)
			continue
		}
		for _, sp := range s.Spec.Ports {
			if sp.TargetPort.StrVal != sp.Name {
				p.add("service %s port %s targets %q, want the named container port", s.Name, sp.Name, sp.TargetPort.String())
			}
			for _, w := range selected {
				found := false
				for _, c := range w.tmpl.Spec.Containers {
					for _, cp := range c.Ports {
						if cp.Name == sp.Name {
							found = true
							if cp.ContainerPort != sp.Port {
								p.add("service %s port %s is %d, the container's %d", s.Name, sp.Name, sp.Port, cp.ContainerPort)
							}
						}
					}
				}
				if !found {
					p.add("service %s port %s: %s has no such container port", s.Name, sp.Name, w.name)
				}
			}
		}
	}
}

func checkNamespaces(p *problems, o *objects, c config) {
	for _, m := range o.namespaced {
		if m.Namespace != c.namespace {
			p.add("%s is in namespace %q, want %q", m.Name, m.Namespace, c.namespace)
		}
	}
	for _, b := range o.clusterRoleBindings {
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && s.Namespace != c.namespace && c.namespace != "" {
				p.add("ClusterRoleBinding %s: subject %s in namespace %q, want %q", b.Name, s.Name, s.Namespace, c.namespace)
			}
			if s.Kind == "ServiceAccount" && s.Namespace == "" {
				p.add("ClusterRoleBinding %s: subject %s without a namespace", b.Name, s.Name)
			}
		}
	}
}

// checkProxyRBAC checks that the pods' service account may review tokens,
// which kube-rbac-proxy does for every scrape.
func checkProxyRBAC(p *problems, o *objects, c config, pods []pod) {
	for _, w := range pods {
		sa := w.tmpl.Spec.ServiceAccountName
		if !slices.ContainsFunc(o.serviceAccounts, func(s *corev1.ServiceAccount) bool { return s.Name == sa }) {
			p.add("%s: service account %q is not rendered", w.name, sa)
		}
		for _, need := range [][2]string{{"authentication.k8s.io", "tokenreviews"}, {"authorization.k8s.io", "subjectaccessreviews"}} {
			if !mayCreate(o, sa, need[0], need[1]) {
				p.add("%s: service account %q may not create %s", w.name, sa, need[1])
			}
		}
	}
}

func mayCreate(o *objects, sa, group, resource string) bool {
	for _, b := range o.clusterRoleBindings {
		if !slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return s.Kind == "ServiceAccount" && s.Name == sa }) {
			continue
		}
		for _, r := range o.clusterRoles {
			if b.RoleRef.Kind != "ClusterRole" || r.Name != b.RoleRef.Name {
				continue
			}
			for _, rule := range r.Rules {
				if slices.Contains(rule.APIGroups, group) && slices.Contains(rule.Resources, resource) && slices.Contains(rule.Verbs, "create") {
					return true
				}
			}
		}
	}
	return false
}

// checkCertificates checks cert-manager's objects: nackctl's admin
// certificate has role admin, and the render's own CA, if any, is a CA
// Issuer backed by a CA Certificate.
func checkCertificates(p *problems, o *objects, c config) {
	issuers := map[string]bool{}
	for _, is := range o.issuers {
		issuers["Issuer/"+is.Name] = true
		if is.Spec.CA != nil {
			ok := slices.ContainsFunc(o.certificates, func(cert *cmv1.Certificate) bool {
				return cert.Spec.IsCA && cert.Spec.SecretName == is.Spec.CA.SecretName
			})
			if !ok {
				p.add("issuer %s: no CA certificate makes Secret %s", is.Name, is.Spec.CA.SecretName)
			}
		}
	}
	if c.issuerRendered != issuers[c.issuer] {
		p.add("issuer %s rendered: %v, want %v", c.issuer, issuers[c.issuer], c.issuerRendered)
	}
	for _, cert := range o.certificates {
		ref := cert.Spec.IssuerRef.Kind + "/" + cert.Spec.IssuerRef.Name
		if !cert.Spec.IsCA && ref != c.issuer {
			p.add("certificate %s: issuer %s, want %s", cert.Name, ref, c.issuer)
		}
		if cert.Spec.IsCA {
			continue
		}
		var ous []string
		if cert.Spec.Subject != nil {
			ous = cert.Spec.Subject.OrganizationalUnits
		}
		req := tlsconf.CertRequest{Name: cert.Spec.CommonName, OrganizationalUnits: ous}
		for _, s := range cert.Spec.URIs {
			u, err := url.Parse(s)
			if err != nil {
				p.add("certificate %s: URI %q: %v", cert.Name, s, err)
				continue
			}
			req.URIs = append(req.URIs, u)
		}
		x, err := issueSample(req)
		if err != nil {
			p.add("certificate %s: %v", cert.Name, err)
			continue
		}
		if got := tlsconf.RoleOf(x); got != app.RoleAdmin {
			p.add("certificate %s: role %q, want %s (nackctl's)", cert.Name, got, app.RoleAdmin)
		}
		if !slices.Contains(cert.Spec.Usages, "client auth") {
			p.add("certificate %s: usages %v lack client auth", cert.Name, cert.Spec.Usages)
		}
	}
}
