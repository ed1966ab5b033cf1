package netlab

import (
	"strings"
	"testing"
)

// TestNetnsLab: hosts get their addresses, and the loss, isolation and
// restore rulesets load. Multicast across the bridge is exercised by the
// end-to-end namespace tests.
func TestNetnsLab(t *testing.T) {
	Require(t)
	l, err := New(3, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Hosts[2].Loss(0.5); err != nil {
		t.Fatal(err)
	}
	out, err := l.Hosts[2].Command("nft", "list", "table", "inet", "nackcast_loss").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "numgen random mod 100 < 50") {
		t.Fatalf("loss rule not installed: %v\n%s", err, out)
	}
	for _, h := range l.Hosts {
		out, err := h.Command("ip", "-4", "addr", "show", "eth0").CombinedOutput()
		if err != nil || !strings.Contains(string(out), h.Addr+"/24") {
			t.Errorf("%s: eth0 not configured: %v\n%s", h.Name, err, out)
		}
	}
	if err := l.Hosts[1].Isolate(); err != nil {
		t.Fatal(err)
	}
	if err := l.Hosts[1].Restore(); err != nil {
		t.Fatal(err)
	}
}
