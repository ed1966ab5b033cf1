package k8s

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	monv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// chartDir is the Helm chart, rendered and linted with the Helm SDK.
const chartDir = "../helm/nackcast"

// releaseNamespace is the namespace of the test releases.
const releaseNamespace = "edge"

// kubeVersion is the Kubernetes version the chart is rendered for: the
// oldest its Chart.yaml accepts.
const kubeVersion = "v1.27.0"

// monitoring is which of the Prometheus Operator's and Grafana's objects
// a value set asks for, with the labels they must carry.
type monitoring struct {
	serviceMonitor, podMonitor, rule, dashboard bool
	labels                                      map[string]string
}

// A chart value set and what its render must be.
var chartCases = []struct {
	name    string
	release string
	// files are value files of the chart's ci/ directory, values more
	// values on top.
	files  []string
	values string
	cfg    config
	mon    monitoring
}{
	{name: "defaults", release: "nackcast", cfg: config{network: "host", tls: "csi", issuer: "Issuer/nackcast-ca", issuerRendered: true,
		packetKeys: "nackcast-packet-keys/keys", metricsProxy: true, prefix: "nackcast", backup: true}},
	{name: "hostnetwork-monitoring", release: "nackcast", files: []string{"hostnetwork-monitoring-values.yaml"},
		cfg: config{network: "host", tls: "csi", issuer: "Issuer/nackcast-ca", issuerRendered: true,
			packetKeys: "nackcast-packet-keys/keys", metricsProxy: true, prefix: "nackcast", backup: true},
		mon: monitoring{serviceMonitor: true, rule: true, dashboard: true, labels: map[string]string{"release": "kube-prometheus-stack"}}},
	{name: "multus", release: "cdn", files: []string{"multus-values.yaml"},
		cfg: config{network: "multus", tls: "csi", issuer: "Issuer/cdn-nackcast-ca", issuerRendered: true,
			packetKeys: "cdn-nackcast-packet-keys/keys", prefix: "cdn-nackcast", backup: true},
		mon: monitoring{podMonitor: true, rule: true}},
	{name: "podnetwork-clusterissuer", release: "nackcast", files: []string{"podnetwork-clusterissuer-values.yaml"},
		cfg: config{network: "pod", tls: "csi", issuer: "ClusterIssuer/corp-intermediate",
			packetKeys: "nackcast-packet-keys/keys", prefix: "nackcast"}},
	{name: "secrets", release: "nackcast", files: []string{"secrets-values.yaml"},
		cfg: config{network: "host", tls: "secrets", packetKeys: "cloud-packet-keys/keys", metricsProxy: true, prefix: "nackcast", backup: true,
			senderSecrets: map[string]string{"sender": "nackcast-primary-tls", "backup": "nackcast-backup-tls"},
			receiverNodes: map[string]string{"edge-1": "edge-1-tls", "edge-2.example.com": "edge-2-tls"}}},
	{name: "secrets with a ServiceMonitor", release: "nackcast", files: []string{"secrets-values.yaml"},
		values: "monitoring: {serviceMonitor: {enabled: true}}",
		cfg: config{network: "host", tls: "secrets", packetKeys: "cloud-packet-keys/keys", metricsProxy: true, prefix: "nackcast", backup: true,
			senderSecrets: map[string]string{"sender": "nackcast-primary-tls", "backup": "nackcast-backup-tls"},
			receiverNodes: map[string]string{"edge-1": "edge-1-tls", "edge-2.example.com": "edge-2-tls"}},
		mon: monitoring{serviceMonitor: true}},
	{name: "pod network with the proxy and a PodMonitor", release: "nackcast", files: []string{"podnetwork-clusterissuer-values.yaml"},
		values: "metrics: {authProxy: {enabled: true}}\nmonitoring: {podMonitor: {enabled: true, labels: {team: cdn}}}",
		cfg: config{network: "pod", tls: "csi", issuer: "ClusterIssuer/corp-intermediate",
			packetKeys: "nackcast-packet-keys/keys", metricsProxy: true, prefix: "nackcast"},
		mon: monitoring{podMonitor: true, labels: map[string]string{"team": "cdn"}}},
	{name: "plaintext", release: "nackcast", files: []string{"plaintext-values.yaml"},
		cfg: config{network: "pod", prefix: "nackcast", backup: true}},
}

// renderChart lints the chart with the values and renders it for a
// release in releaseNamespace. It returns the NOTES and the manifests.
func renderChart(release string, files []string, extra string) (notes string, docs [][]byte, lintMsgs []support.Message, err error) {
	vals := map[string]any{}
	for _, f := range files {
		v, err := chartutil.ReadValuesFile(filepath.Join(chartDir, "ci", f))
		if err != nil {
			return "", nil, nil, err
		}
		vals = chartutil.CoalesceTables(v.AsMap(), vals)
	}
	if extra != "" {
		v, err := chartutil.ReadValues([]byte(extra))
		if err != nil {
			return "", nil, nil, err
		}
		vals = chartutil.CoalesceTables(v.AsMap(), vals)
	}
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		return "", nil, nil, err
	}
	// Helm's lint logs its template failures; the error says it too.
	defer log.SetOutput(log.Writer())
	log.SetOutput(io.Discard)
	l := lint.AllWithKubeVersion(chartDir, vals, releaseNamespace, kv)
	for _, m := range l.Messages {
		if m.Severity >= support.WarningSev {
			lintMsgs = append(lintMsgs, m)
		}
	}
	ch, err := loader.Load(chartDir)
	if err != nil {
		return "", nil, lintMsgs, err
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kv
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: release, Namespace: releaseNamespace, IsInstall: true}, caps)
	if err != nil {
		return "", nil, lintMsgs, err
	}
	out, err := engine.Engine{Strict: true}.Render(ch, rv)
	if err != nil {
		return "", nil, lintMsgs, err
	}
	for _, name := range sortedKeys(out) {
		if strings.HasSuffix(name, "NOTES.txt") {
			notes = out[name]
			continue
		}
		m := releaseutil.SplitManifests(out[name])
		for _, k := range sortedKeys(m) {
			docs = append(docs, []byte(m[k]))
		}
	}
	return notes, docs, lintMsgs, nil
}

// TestChart lints the chart and renders it with every value set: every
// object decodes strictly and is what the value set asks for, held to the
// same checks as the kustomizations, plus the monitoring objects and the
// NOTES.
func TestChart(t *testing.T) {
	for _, cc := range chartCases {
		t.Run(cc.name, func(t *testing.T) {
			cfg := cc.cfg
			cfg.namespace = "" // Helm gives the objects the release's
			notes, docs, lintMsgs, err := renderChart(cc.release, cc.files, cc.values)
			for _, m := range lintMsgs {
				t.Errorf("helm lint: %s", m)
			}
			if err != nil {
				t.Fatal(err)
			}
			o, err := decode(docs)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range check(o, cfg) {
				t.Error(p)
			}
			for _, p := range checkMonitoring(o, cfg, cc.mon) {
				t.Error(p)
			}
			for _, p := range checkNotes(notes, cfg) {
				t.Error(p)
			}
		})
	}
}

// TestChartRefuses renders values that must not be deployed and expects
// the render to say why.
func TestChartRefuses(t *testing.T) {
	tests := []struct {
		name, values, want string
	}{
		{"plaintext without saying so", "tls: {enabled: false}", "tls.allowPlaintext"},
		{"unknown network", "network: {mode: vxlan}", "/network/mode"},
		{"misspelt value", "tls: {enabeld: true}", "enabeld"},
		{"secrets without receivers", "tls: {source: secrets, secrets: {primary: p, backup: b}}", "tls.secrets.receivers"},
		{"secrets without the primary's", "tls: {source: secrets, secrets: {receivers: {n: s}}}", "tls.secrets.primary"},
		{"both monitors", "monitoring: {serviceMonitor: {enabled: true}, podMonitor: {enabled: true}}", "not both"},
		{"own CA and another issuer", "tls: {certManager: {issuerRef: {name: corp}}}", "createCA"},
		{"a variable that is not a flag's", "primary: {env: {nackcast_rate: 1M}}", "'nackcast_rate' does not match"},
		{"bad packet mode", "packetKeys: {mode: encrypt}", "/packetKeys/mode"},
		{"long node name", "tls: {source: secrets, secrets: {primary: p, backup: b, receivers: {" + strings.Repeat("n", 64) + ": s}}}", "longer than 63"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := renderChart("nackcast", nil, tt.values)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("render: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// TestChartInsecureChoices renders values an operator may choose that
// make the configuration less than secure, and expects the checks to
// report them: they are not the secure configuration.
func TestChartInsecureChoices(t *testing.T) {
	tests := []struct {
		name, values, want string
	}{
		{"sender state on an emptyDir", "primary: {persistence: {enabled: false}}", "state (-state-dir) is on volume state, which does not persist"},
		{"metrics on the nodes without the proxy", "metrics: {authProxy: {enabled: false}}", "no kube-rbac-proxy in front of /metrics"},
		{"no packet keys", "packetKeys: {enabled: false}", "want the keys of Secret"},
		{"plaintext", "tls: {enabled: false, allowPlaintext: true}", "-plaintext with TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, docs, _, err := renderChart("nackcast", nil, tt.values)
			if err != nil {
				t.Fatal(err)
			}
			o, err := decode(docs)
			if err != nil {
				t.Fatal(err)
			}
			cfg := chartCases[0].cfg
			if p := check(o, cfg); !p.has(tt.want) {
				t.Errorf("problems %q, want one saying %q", p, tt.want)
			}
		})
	}
}

// checkMonitoring checks the ServiceMonitor, PodMonitor, PrometheusRule and
// dashboard ConfigMap: there when asked for and only then, selecting
// every nackcast target, scraping through the proxy with a token allowed
// to read /metrics, and carrying the files of the chart.
func checkMonitoring(o *objects, c config, want monitoring) problems {
	var p problems
	count := func(what string, n int, on bool) bool {
		if on && n != 1 || !on && n != 0 {
			p.add("%d %s, want %v", n, what, on)
			return false
		}
		return on
	}
	hasLabels := func(what string, m metav1.ObjectMeta) {
		for k, v := range want.labels {
			if m.Labels[k] != v {
				p.add("%s: label %s=%q, want %q", what, k, m.Labels[k], v)
			}
		}
	}
	scrape := func(what string, port string, scheme *monv1.Scheme, honor bool, auth *monv1.SafeAuthorization, skip *bool) {
		if port != "metrics" || !honor {
			p.add("%s: port %q, honorLabels %v; want metrics, true (the services' own service label)", what, port, honor)
		}
		if !c.metricsProxy {
			if scheme != nil && strings.ToLower(string(*scheme)) != "http" {
				p.add("%s: scheme %v without the proxy", what, *scheme)
			}
			return
		}
		if scheme == nil || strings.ToLower(string(*scheme)) != "https" {
			p.add("%s: the proxy serves HTTPS", what)
		}
		if skip == nil || !*skip {
			p.add("%s: the proxy's certificate is its own self-signed one: skip its verification", what)
		}
		if auth == nil || auth.Credentials == nil {
			p.add("%s: no token for the proxy", what)
			return
		}
		checkScraperToken(&p, o, what, auth.Credentials)
	}
	if count("ServiceMonitors", len(o.serviceMonitors), want.serviceMonitor) {
		sm := o.serviceMonitors[0]
		hasLabels("ServiceMonitor", sm.ObjectMeta)
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil {
			p.add("ServiceMonitor selector: %v", err)
		}
		for _, s := range o.services {
			if err == nil && !sel.Matches(labels.Set(s.Labels)) {
				p.add("ServiceMonitor does not select service %s", s.Name)
			}
		}
		if len(sm.Spec.Endpoints) != 1 {
			p.add("ServiceMonitor: %d endpoints, want 1", len(sm.Spec.Endpoints))
		} else {
			e := sm.Spec.Endpoints[0]
			var skip *bool
			if e.TLSConfig != nil {
				skip = e.TLSConfig.InsecureSkipVerify
			}
			scrape("ServiceMonitor", e.Port, e.Scheme, e.HonorLabels, e.Authorization, skip)
		}
	}
	if count("PodMonitors", len(o.podMonitors), want.podMonitor) {
		pm := o.podMonitors[0]
		hasLabels("PodMonitor", pm.ObjectMeta)
		sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
		if err != nil {
			p.add("PodMonitor selector: %v", err)
		}
		for _, w := range podTemplates(o) {
			if err == nil && !sel.Matches(labels.Set(w.Labels)) {
				p.add("PodMonitor does not select %s's pods", w.Name)
			}
		}
		if len(pm.Spec.PodMetricsEndpoints) != 1 {
			p.add("PodMonitor: %d endpoints, want 1", len(pm.Spec.PodMetricsEndpoints))
		} else {
			e := pm.Spec.PodMetricsEndpoints[0]
			var skip *bool
			if e.TLSConfig != nil {
				skip = e.TLSConfig.InsecureSkipVerify
			}
			port := ""
			if e.Port != nil {
				port = *e.Port
			}
			scrape("PodMonitor", port, e.Scheme, e.HonorLabels, e.Authorization, skip)
		}
	}
	if count("PrometheusRules", len(o.prometheusRules), want.rule) {
		r := o.prometheusRules[0]
		hasLabels("PrometheusRule", r.ObjectMeta)
		var file struct {
			Groups []monv1.RuleGroup `json:"groups"`
		}
		data, err := os.ReadFile(filepath.Join(chartDir, "files", "alerts.yaml"))
		if err == nil {
			err = yaml.UnmarshalStrict(data, &file)
		}
		switch {
		case err != nil:
			p.add("files/alerts.yaml: %v", err)
		case len(file.Groups) == 0:
			p.add("files/alerts.yaml has no groups")
		case !reflect.DeepEqual(file.Groups, r.Spec.Groups):
			p.add("the PrometheusRule's groups differ from files/alerts.yaml's")
		}
		for _, g := range r.Spec.Groups {
			for _, rule := range g.Rules {
				if rule.Alert == "" && rule.Record == "" || rule.Expr.String() == "" {
					p.add("PrometheusRule group %s: a rule without a name or an expression", g.Name)
				}
			}
		}
	}
	var dashboards []*corev1.ConfigMap
	for _, cm := range o.configMaps {
		if _, ok := cm.Labels["grafana_dashboard"]; ok {
			dashboards = append(dashboards, cm)
		}
	}
	if count("dashboard ConfigMaps", len(dashboards), want.dashboard) {
		d := dashboards[0]
		if d.Labels["grafana_dashboard"] != "1" {
			p.add("dashboard: grafana_dashboard=%q, want \"1\"", d.Labels["grafana_dashboard"])
		}
		data, err := os.ReadFile(filepath.Join(chartDir, "files", "dashboard.json"))
		if err != nil {
			p.add("files/dashboard.json: %v", err)
		}
		got := d.Data["nackcast.json"]
		if strings.TrimSpace(got) != strings.TrimSpace(string(data)) {
			p.add("dashboard ConfigMap: nackcast.json is not files/dashboard.json")
		}
		if !json.Valid([]byte(got)) {
			p.add("dashboard ConfigMap: nackcast.json is not JSON")
		}
	}
	return p
}

// checkScraperToken checks that the Secret a monitor names holds the token
// of a service account allowed to get /metrics.
func checkScraperToken(p *problems, o *objects, what string, sel *corev1.SecretKeySelector) {
	var secret *corev1.Secret
	for _, s := range o.secrets {
		if s.Name == sel.Name {
			secret = s
		}
	}
	if secret == nil || secret.Type != corev1.SecretTypeServiceAccountToken || sel.Key != corev1.ServiceAccountTokenKey {
		p.add("%s: token Secret %s/%s is not a rendered service account token", what, sel.Name, sel.Key)
		return
	}
	sa := secret.Annotations[corev1.ServiceAccountNameKey]
	for _, b := range o.clusterRoleBindings {
		if !slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return s.Kind == "ServiceAccount" && s.Name == sa }) {
			continue
		}
		for _, r := range o.clusterRoles {
			if r.Name != b.RoleRef.Name {
				continue
			}
			for _, rule := range r.Rules {
				if slices.Contains(rule.NonResourceURLs, "/metrics") && slices.Contains(rule.Verbs, "get") {
					return
				}
			}
		}
	}
	p.add("%s: service account %q of the token may not get /metrics", what, sa)
}

// podTemplates returns the pod templates of the workloads, named after
// them.
func podTemplates(o *objects) []metav1.ObjectMeta {
	var ms []metav1.ObjectMeta
	for _, s := range o.statefulSets {
		m := s.Spec.Template.ObjectMeta
		m.Name = s.Name
		ms = append(ms, m)
	}
	for _, d := range o.daemonSets {
		m := d.Spec.Template.ObjectMeta
		m.Name = d.Name
		ms = append(ms, m)
	}
	return ms
}

// checkNotes checks that the NOTES tell the operator what the release
// still needs and warn about what is not secure.
func checkNotes(notes string, c config) problems {
	var p problems
	if strings.TrimSpace(notes) == "" {
		p.add("no NOTES")
		return p
	}
	if c.packetKeys != "" {
		secret, key, _ := strings.Cut(c.packetKeys, "/")
		if want := fmt.Sprintf("create secret generic %s", secret); !strings.Contains(notes, want) || !strings.Contains(notes, "--from-literal="+key+"=") {
			p.add("NOTES do not say how to create the packet keys' Secret %s", c.packetKeys)
		}
	} else if !strings.Contains(notes, "packets are not authenticated") {
		p.add("NOTES do not warn that packets are not authenticated")
	}
	if c.tls == "" && !strings.Contains(notes, "PLAINTEXT") {
		p.add("NOTES do not warn about plaintext gRPC")
	}
	if c.tls != "" && strings.Contains(notes, "PLAINTEXT") {
		p.add("NOTES warn about plaintext under TLS")
	}
	if regexp.MustCompile(`<no value>|%!`).MatchString(notes) {
		p.add("NOTES have an unrendered value: %q", notes)
	}
	return p
}

// TestChartReadme checks that the chart's README documents every value of
// values.yaml, by its dotted path.
func TestChartReadme(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var vals map[string]any
	if err := yaml.Unmarshal(data, &vals); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		m, ok := v.(map[string]any)
		if !ok || len(m) == 0 || slices.Contains([]string{"resources", "nodeSelector", "updateStrategy"}, prefix[strings.LastIndex(prefix, ".")+1:]) {
			paths = append(paths, prefix)
			return
		}
		for k, sub := range m {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			walk(p, sub)
		}
	}
	walk("", vals)
	sort.Strings(paths)
	for _, path := range paths {
		if !strings.Contains(string(readme), "| `"+path+"` |") {
			t.Errorf("README.md does not document %s (a row | `%s` | ...)", path, path)
		}
	}
}
