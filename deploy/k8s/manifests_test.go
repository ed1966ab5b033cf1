package k8s

import (
	"strings"
	"testing"
)

// A kustomization and what it must be.
var kustomizations = []struct {
	dir string
	cfg config
}{
	{"base", config{network: "pod", prefix: "nackcast", backup: true}},
	{"overlays/dev", config{network: "host", prefix: "nackcast", backup: true, namespace: "nackcast-dev"}},
	{"overlays/hostnetwork", config{network: "host", tls: "csi", issuer: "Issuer/nackcast-ca", issuerRendered: true,
		packetKeys: "nackcast-packet-keys/keys", metricsProxy: true, prefix: "nackcast", backup: true, namespace: "nackcast"}},
	{"overlays/multus", config{network: "multus", tls: "csi", issuer: "Issuer/nackcast-ca", issuerRendered: true,
		packetKeys: "nackcast-packet-keys/keys", prefix: "nackcast", backup: true, namespace: "nackcast"}},
	{"overlays/tls", config{network: "pod", tls: "csi", issuer: "Issuer/nackcast-ca", issuerRendered: true,
		packetKeys: "nackcast-packet-keys/keys", prefix: "nackcast", backup: true, namespace: "nackcast"}},
}

// TestKustomizations renders every kustomization, decodes every object
// strictly, and holds it to what it must be and to the services' flags.
func TestKustomizations(t *testing.T) {
	for _, k := range kustomizations {
		t.Run(k.dir, func(t *testing.T) {
			docs, err := kustomize(k.dir)
			if err != nil {
				t.Fatalf("kustomize %s: %v", k.dir, err)
			}
			o, err := decode(docs)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range check(o, k.cfg) {
				t.Error(p)
			}
		})
	}
}

// TestSecureOverlays checks that the overlays the README calls secure are:
// TLS on every gRPC port and packet keys, and on the host network
// /metrics behind the proxy.
func TestSecureOverlays(t *testing.T) {
	secure := 0
	for _, k := range kustomizations {
		if strings.HasPrefix(k.dir, "overlays/") && k.dir != "overlays/dev" {
			if !k.cfg.secure() || (k.cfg.network == "host" && !k.cfg.metricsProxy) {
				t.Errorf("%s is not held to a secure configuration", k.dir)
			}
			secure++
		}
	}
	if secure != 3 {
		t.Errorf("%d secure overlays, want hostnetwork, multus and tls", secure)
	}
}
