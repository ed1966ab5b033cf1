package app

import (
	"errors"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestPolicies(t *testing.T) {
	const s, r = "/nackcast.v1.SenderService/", "/nackcast.v1.ReceiverService/"
	tests := []struct {
		method, role string
		sender, recv bool // allowed by SenderPolicy, ReceiverPolicy
	}{
		{s + "Nack", RoleReceiver, true, false},
		{s + "Pull", RoleReceiver, true, false},
		{s + "GetManifest", RoleReceiver, true, false},
		{s + "PublishObject", RoleReceiver, false, false},
		{s + "DeleteObject", RoleReceiver, false, false},
		{s + "DeleteObject", RoleBackup, false, false},
		{s + "PublishObject", RoleAdmin, true, false},
		{s + "DeleteObject", RoleAdmin, true, false},
		{s + "Reclaim", RoleSender, true, false},
		{s + "Reclaim", RoleReceiver, false, false},
		{s + "GetStatus", RoleReceiver, false, false},
		{s + "SomethingNew", RoleAdmin, false, false},
		{r + "GetStatus", RoleAdmin, false, true},
		{r + "VerifyChannel", RoleReceiver, false, false},
		{r + "VerifyChannel", RoleAdmin, false, true},
		{"/grpc.health.v1.Health/Check", RoleReceiver, true, true},
	}
	sp, rp := SenderPolicy(), ReceiverPolicy()
	if err := errors.Join(sp.Validate(), rp.Validate()); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		if got := sp.Allowed(tt.method, tt.role); got != tt.sender {
			t.Errorf("SenderPolicy %s as %s = %v, want %v", tt.method, tt.role, got, tt.sender)
		}
		if got := rp.Allowed(tt.method, tt.role); got != tt.recv {
			t.Errorf("ReceiverPolicy %s as %s = %v, want %v", tt.method, tt.role, got, tt.recv)
		}
	}
}

func TestTransportChoice(t *testing.T) {
	var none Transport
	if err := none.Setup(hclog.NewNullLogger()); !errors.Is(err, ErrNoTransport) {
		t.Errorf("neither TLS nor plaintext: %v, want ErrNoTransport", err)
	}
	both := Transport{Plaintext: true}
	both.TLS.CA = "ca.pem"
	if err := both.Setup(hclog.NewNullLogger()); err == nil {
		t.Error("TLS and plaintext together accepted")
	}
	plain := Transport{Plaintext: true}
	if err := plain.Setup(hclog.NewNullLogger()); err != nil || plain.Secure() || plain.ServerOptions(SenderPolicy()) != nil || plain.DialOptions() != nil {
		t.Errorf("explicit plaintext: %v", err)
	}
}
