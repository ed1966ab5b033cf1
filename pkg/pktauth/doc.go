// Package pktauth authenticates, and optionally encrypts, nackcast's
// multicast datagrams under a per-cloud key.
//
// A [Sealer] turns a complete datagram (header and payload, see package
// wire) into an authenticated one by setting flag bits in its header and
// appending a trailer after the payload; an [Opener] checks the trailer and
// strips it, so that wire.Parse sees the datagram as it was sealed (with
// the flag bits still set, telling that it was authenticated). The payload
// length field of the header counts the payload only, never the trailer:
// the trailer is found from the end of the datagram, and the header's
// flags tell its length.
//
//	+--------------------+-------------------------+-----------------------+
//	| header (40 bytes)  | payload (length bytes)  | trailer (17/25 bytes) |
//	+--------------------+-------------------------+-----------------------+
//
// # Modes
//
// [ModeAuth] sets wire.FlagAuth and appends a 17-byte trailer: the key id
// and the first 16 bytes of HMAC-SHA-256 over everything before the tag,
// that is the header (with FlagAuth already set), the payload and the key
// id.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|    key id     |                                               |  0
//	+-+-+-+-+-+-+-+-+                                               +
//	|                                                               |  4
//	+                                                               +
//	|          tag: first 16 bytes of HMAC-SHA-256 (128 bits)       |  8
//	+                                                               +
//	|                                                               | 12
//	+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               |                                                 16
//	+-+-+-+-+-+-+-+-+
//
// [ModeSeal] sets wire.FlagAuth and wire.FlagSealed, encrypts the payload
// in place with AES-256-GCM, the 40-byte header (flags already set) being
// the additional authenticated data, and appends a 25-byte trailer: the key
// id, the 64-bit big-endian counter that makes the nonce, and the GCM tag.
// The ciphertext has the length of the payload, so the payload length field
// is unchanged.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|    key id     |                                               |  0
//	+-+-+-+-+-+-+-+-+                                               +
//	|                       counter (64 bits)                       |  4
//	+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               |                                               |  8
//	+-+-+-+-+-+-+-+-+                                               +
//	|                                                               | 12
//	+                    GCM tag (128 bits)                         +
//	|                                                               | 16
//	+                                                               +
//	|                                                               | 20
//	+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               |                                                 24
//	+-+-+-+-+-+-+-+-+
//
// The 96-bit GCM nonce is the low 32 bits of the header's sender epoch
// (header bytes 12 to 15) followed by the counter:
//
//	nonce = epoch & 0xFFFFFFFF (32 bits) || counter (64 bits)
//
// Everything in the datagram is authenticated: the header as additional
// data, the payload as ciphertext, the key id because it selects the key
// (another key fails the tag) and the counter because it is in the nonce.
//
// # Why a nonce never repeats
//
// GCM must never see one nonce twice under one key. A [Sealer] is created
// for one sender epoch ([NewSealer] takes it) and refuses a datagram whose
// epoch field differs ([ErrEpoch]); its counter starts at 1, grows by one
// per sealed datagram and is never reused: Seal refuses to go on once
// 2^64-1 datagrams have been sealed ([ErrExhausted]). So within one epoch
// the counter alone keeps the nonces distinct, provided the epoch has one
// counter: a sender must create one Sealer per epoch and, for more
// goroutines, derive the others from it with [Sealer.Clone], which shares
// the counter. Creating two Sealers for one epoch and key repeats nonces.
//
// Across epochs the nonces differ by the low 32 bits of the epoch. nackcast
// senders take their epoch from the wall clock in nanoseconds when they
// start or take over, so two epochs agree on those bits by chance only, with
// a probability of 2^-32 for each pair of epochs that use one key: rotate
// the key long before some 10^4 sender epochs have used it, and never give
// a new Sealer an epoch that an earlier Sealer of the same key used.
//
// # Keys
//
// A [Keyring] holds one or two keys. The first (current) key seals, and an
// [Opener] accepts either, which makes a rollover possible without losing
// packets: give every receiver the ring [old, new] (old still seals), then
// every sender [new, old], and finally everybody [new]. A key's secret is
// at least 32 bytes; it is never used directly: HKDF-SHA-256 derives from
// it one 32-byte key for HMAC and another for AES-256-GCM, with distinct
// info strings.
//
// The key file format ([LoadFile], [FromEnv], [Parse], [Format]) has one
// key per line, its id (0 to 255, decimal) and its secret in hex (at least
// 64 digits), separated by white space. '#' starts a comment that runs to
// the next newline, blank lines are ignored, and ';' (outside a comment)
// also ends a line, so that a key ring fits in one environment variable.
// The first key listed seals.
//
//	# nackcast cloud key ring: the first key seals
//	2 4f1c…(64 or more hex digits)
//	1 9a07…
//
// A key file must not be accessible to group or others (mode 0600 or
// stricter); [LoadFile] refuses it otherwise.
//
// # Limits
//
// Replayed datagrams open successfully: the protocol tolerates duplicates,
// and detecting replays is left to the caller (the counter of a sealed
// datagram is not checked for freshness).
//
// Sealers and Openers are not safe for concurrent use: use one per
// goroutine ([Sealer.Clone] for Sealers of one epoch). A Keyring is
// immutable and can be shared. Seal and Open do not allocate once a Sealer
// or Opener exists, provided the datagram has the capacity for the trailer,
// nor does a rejected datagram cost an allocation.
package pktauth
