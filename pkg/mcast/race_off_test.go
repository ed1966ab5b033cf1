//go:build !race

package mcast

// raceEnabled is set when the tests run under the race detector, whose
// instrumentation allocates where the plain build does not.
const raceEnabled = false
