package pktauth

import (
	"flag"
	"fmt"
	"os"
)

// EnvKeys is the environment variable a service reads its packet keys from
// when it is given no key file.
const EnvKeys = "NACKCAST_PACKET_KEYS"

// Config is a service's packet authentication setting: keys from KeyFile,
// else from the environment variable EnvKeys, else none (packets are
// neither authenticated nor checked).
type Config struct {
	KeyFile string
	// Mode is what a sender does to its packets; receivers open both.
	Mode Mode
}

// DefaultConfig authenticates without encrypting, once keys are given.
func DefaultConfig() Config { return Config{Mode: ModeAuth} }

// RegisterFlags binds the setting to flags on fs; withMode adds the
// sender's -packet-mode.
func (c *Config) RegisterFlags(fs *flag.FlagSet, withMode bool) {
	fs.StringVar(&c.KeyFile, "packet-key-file", c.KeyFile, "file of the cloud's packet keys (lines \"ID HEX\", current key first, mode 0600); empty: $"+EnvKeys+", else packets are not authenticated")
	if withMode {
		fs.Var((*modeFlag)(&c.Mode), "packet-mode", "with packet keys: auth (HMAC-SHA-256 tag) or seal (AES-256-GCM: encrypted and authenticated)")
	}
}

// Keyring loads the configured keys: nil (and no error) when none are
// configured.
func (c Config) Keyring() (*Keyring, error) {
	if c.KeyFile != "" {
		return LoadFile(c.KeyFile)
	}
	if _, ok := os.LookupEnv(EnvKeys); ok {
		return FromEnv(EnvKeys)
	}
	return nil, nil
}

// Validate checks the mode and that configured keys load.
func (c Config) Validate() error {
	if c.Mode.Overhead() == 0 {
		return fmt.Errorf("packet-mode %v: want auth or seal", c.Mode)
	}
	_, err := c.Keyring()
	return err
}

type modeFlag Mode

func (m *modeFlag) String() string { return Mode(*m).String() }

func (m *modeFlag) Set(s string) error {
	v, err := ParseMode(s)
	if err != nil {
		return err
	}
	*m = modeFlag(v)
	return nil
}
