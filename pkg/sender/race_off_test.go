//go:build !race

package sender

// raceEnabled is set when the tests run under the race detector, whose
// instrumentation allocates where the plain build does not (sync.Pool
// drops items at random, for one): allocation counts are not checked.
const raceEnabled = false
