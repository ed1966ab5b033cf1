// Package wire is the binary format of nackcast's multicast packets.
//
// Every UDP datagram on the data plane is one packet: a fixed 40-byte header
// followed by a payload. All integers are big-endian (network byte order).
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        magic 0x4E43 "NC"      |    version    |     type      |  0
//	+-------------------------------+---------------+---------------+
//	|             flags             |        payload length         |  4
//	+-------------------------------+-------------------------------+
//	|                                                               |  8
//	+                   sender epoch (64 bits)                      +
//	|                                                               |
//	+---------------------------------------------------------------+
//	|                          channel id                           | 16
//	+---------------------------------------------------------------+
//	|                          chunk index                          | 20
//	+---------------------------------------------------------------+
//	|                                                               | 24
//	+                     object id (64 bits)                       +
//	|                                                               |
//	+---------------------------------------------------------------+
//	|                                                               | 32
//	+                  object version (64 bits)                     +
//	|                                                               |
//	+---------------------------------------------------------------+
//	|                     payload (length bytes)                    | 40
//	+---------------------------------------------------------------+
//
// Fields:
//
//   - magic: 0x4E43; anything else is not a nackcast packet.
//   - version: protocol version, currently 2 (version 1 had object versions
//     that were a digest prefix). Receivers drop other versions.
//   - type: [TypeData], [TypeEnd], [TypeAnnounce], [TypeParity].
//   - flags: [FlagBackup] (sent by a backup sender), [FlagRepair] (part of a
//     pass after the first), [FlagAuth] (an authentication trailer follows
//     the payload, checked and stripped before parsing), [FlagSealed] (the
//     payload is encrypted). Undefined bits must be zero.
//   - payload length: the number of payload bytes. It must equal the datagram
//     length minus the header: a datagram that is longer or shorter is dropped.
//   - sender epoch: the incarnation of the sender that sent the packet. A
//     backup that takes over starts a new epoch; receivers count packets per
//     epoch.
//   - channel id: first four bytes of SHA-256("nackcast/channel/" + name).
//   - chunk index: index of the chunk in a DATA packet, of the block in a
//     PARITY packet; zero otherwise.
//   - object id: first eight bytes of SHA-256("nackcast/object/" + channel +
//     "/" + path); zero in ANNOUNCE packets.
//   - object version: first eight bytes of SHA-256("nackcast/version/" +
//     the object's SHA-256 + its chunk size, 32 bits big-endian), so that
//     the same content cut in other chunks is another version; zero in
//     ANNOUNCE packets.
//
// Payloads:
//
//   - DATA: chunk bytes, 1 to [MaxPayload] bytes. Chunks are content
//     addressed by (object id, object version, chunk index), so the same
//     chunk from the primary and from the backup is identical.
//   - END: a multicast job for an object finished. 24 bytes: chunk count
//     (32 bits), pass number (32 bits, 1 = first pass), object size (64 bits),
//     job sequence number (64 bits, from 1, counting the jobs this sender
//     epoch finished). Receivers that still lack chunks of the object NACK
//     promptly.
//   - ANNOUNCE: the channel's current manifest. 22 bytes plus the name:
//     manifest version (64 bits), object count (32 bits), sequence number of
//     the last job finished (64 bits, 0 before the first), name length
//     (16 bits), channel name. Receivers holding another manifest version
//     refetch the manifest over gRPC.
//   - PARITY: one Reed-Solomon parity shard of a block of chunks (package
//     fec), the block's index in the chunk index field: the sender's block
//     size K in chunks (8 bits), the parity shard count R of the code
//     (8 bits), this shard's index below R (8 bits), a zero byte, then the
//     shard (the object's chunk size in bytes). Block b covers the n =
//     min(K, chunks − b×K) chunks from b×K; the object's last chunk is
//     zero-padded to the chunk size for coding. Any n shards of a block,
//     data or parity, rebuild it.
//
// The job sequence number gives a receiver its horizon: the last job whose
// packets it has processed, since packets of one sender arrive in order on
// a link. A NACK carries the horizon, so the sender can tell that a
// receiver which "lacks" an object whose pass ended after its horizon has
// simply not read that pass from its socket buffer yet, and answer WAIT
// instead of multicasting the object again.
//
// The decoder never allocates and never trusts a length it has not checked;
// the encoder appends to a caller-owned buffer.
package wire
