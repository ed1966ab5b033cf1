//go:build race

package e2e

// raceEnabled: this test binary runs under the race detector, so TestMain
// builds the service binaries with -race too.
const raceEnabled = true
