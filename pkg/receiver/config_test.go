package receiver

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Channels = []string{"news"}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults with a channel: %v", err)
	}
	bad := Config{Channels: []string{"a", "a", "../x"}, Backup: "", LossRate: 1, Pullers: 0}
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"id", "data", "share channel id", "channels", "primary", "nack-timeout", "checkpoint", "max-open-partials", "pullers", "test-loss", "scan-interval", "interface"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	same := DefaultConfig()
	same.Channels = []string{"c"}
	same.Backup = same.Primary
	if err := same.Validate(); err == nil || !strings.Contains(err.Error(), "backup") {
		t.Errorf("backup equal to primary: %v", err)
	}
}
