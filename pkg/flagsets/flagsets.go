// Package flagsets builds the command-line flag set of every nackcast
// service exactly as its main does, for tools that document or check
// configuration (the README's tables, the deployment manifests' tests).
package flagsets

import (
	"flag"

	"github.com/nackcast/nackcast/pkg/app"
	"github.com/nackcast/nackcast/pkg/receiver"
	"github.com/nackcast/nackcast/pkg/sender"
)

// All returns the flag sets of the sender, backup and receiver services,
// by service name, with their default values.
func All() map[string]*flag.FlagSet {
	scfg, bcfg, rcfg := sender.DefaultConfig(), sender.DefaultBackupConfig(), receiver.DefaultConfig()
	var sc, bc, rc app.Common
	return map[string]*flag.FlagSet{
		"sender":   sender.NewFlagSet("sender", &scfg, &sc),
		"backup":   sender.NewFlagSet("backup", &bcfg, &bc),
		"receiver": receiver.NewFlagSet("receiver", &rcfg, &rc),
	}
}
