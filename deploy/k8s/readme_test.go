package k8s

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// TestReadmeOwnConfiguration builds the README's example of an overlay of
// one's own, placed two directories below a copy of the repository's
// deploy/k8s, and holds it to the secure hostNetwork configuration it
// describes (with an Issuer of the operator's, not rendered).
func TestReadmeOwnConfiguration(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## Your own configuration.*?```yaml\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no yaml block under \"Your own configuration\"")
	}
	mem := filesys.MakeFsInMemory()
	for _, dir := range []string{"base", "components"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return mem.WriteFile(filepath.Join("/repo/deploy/k8s", path), b)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := mem.WriteFile("/repo/ops/cdn/kustomization.yaml", m[1]); err != nil {
		t.Fatal(err)
	}
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, "/repo/ops/cdn")
	if err != nil {
		t.Fatalf("the README's overlay does not build: %v", err)
	}
	var docs [][]byte
	for _, res := range rm.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, y)
	}
	o, err := decode(docs)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config{network: "host", tls: "csi", issuer: "Issuer/nackcast-ca", packetKeys: "nackcast-packet-keys/keys",
		metricsProxy: true, prefix: "nackcast", backup: true, namespace: "cdn"}
	for _, p := range check(o, cfg) {
		t.Error(p)
	}
	for _, cm := range o.configMaps {
		if cm.Data["NACKCAST_INTERFACE"] != "bond0" {
			t.Errorf("ConfigMap %s: interface %q, want the example's bond0", cm.Name, cm.Data["NACKCAST_INTERFACE"])
		}
	}
	if sel := o.daemonSets[0].Spec.Template.Spec.NodeSelector; sel["node-role.example.com/edge"] != "true" {
		t.Errorf("receivers' nodeSelector %v, want the example's edge nodes", sel)
	}
}
