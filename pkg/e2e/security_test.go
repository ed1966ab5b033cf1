package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nackcast/nackcast/pkg/client"
	"github.com/nackcast/nackcast/pkg/cloud"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/pktauth"
	"github.com/nackcast/nackcast/pkg/receiver"
	"github.com/nackcast/nackcast/pkg/rpc"
	"github.com/nackcast/nackcast/pkg/sender"
	"github.com/nackcast/nackcast/pkg/tlsconf"
)

// writeKeys writes a packet key file of one fresh key, mode 0600.
func writeKeys(t *testing.T, path string) {
	t.Helper()
	k, err := pktauth.NewKey(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(pktauth.Format(k)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// dialAs connects to addr over mutual TLS with the certificate files f.
func dialAs(t *testing.T, addr string, f tlsconf.Files) *grpc.ClientConn {
	t.Helper()
	r, err := tlsconf.New(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := rpc.Dial(addr, grpc.WithTransportCredentials(r.ClientCredentials("")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// TestSecureCloud runs a cloud of real processes with mutual TLS between
// every pair and sealed (AES-GCM) multicast packets:
//   - a receiver holding the cloud's packet key completes from multicast,
//     verified, with no packet refused;
//   - a receiver holding another key accepts no multicast packet (each is
//     counted unauthenticated) and still completes, verified, by unicast
//     pulls its receiver certificate entitles it to;
//   - a receiver's certificate cannot publish or delete; a certificate
//     of another CA and a plaintext client get nothing (the latter told
//     that TLS is required); a receiver's certificate NACKs only under its
//     own name; the admin can.
func TestSecureCloud(t *testing.T) {
	skipShort(t)
	cl, dir := newCloud(t)
	if err := cl.EnableTLS(); err != nil {
		t.Fatal(err)
	}
	keys, otherKeys := filepath.Join(dir, "packet.keys"), filepath.Join(dir, "other.keys")
	writeKeys(t, keys)
	writeKeys(t, otherKeys)
	origin := filepath.Join(dir, "origin")
	if _, err := (cloud.Sample{SmallFiles: 20, MaxSmall: 64 << 10, LargeBytes: 4 << 20, Seed: 31}).Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	run, err := cl.Distribute(ctx, cloud.Distribution{
		Origin:       origin,
		Channel:      "c",
		Receivers:    1,
		SenderArgs:   []string{"-packet-key-file", keys, "-packet-mode", "seal", "-max-passes", "2", "-period", "200ms"},
		ReceiverArgs: []string{"-packet-key-file", keys, "-nack-timeout", "300ms"},
	})
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := run.AddReceiver("stranger", run.Sender.Addr, "-packet-key-file", otherKeys)
	if err != nil {
		t.Fatal(err)
	}
	run.Receivers = append(run.Receivers, stranger)
	sts, err := run.Wait(ctx, time.Minute, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Verify(); err != nil {
		t.Fatal(err)
	}
	member, other := sts[0].GetCounters(), sts[1].GetCounters()
	t.Logf("with the key: refused %d, multicast %d B, unicast %d B; with another key: refused %d, multicast %d B, unicast %d B",
		member.GetPacketsUnauthenticated(), member.GetMulticastBytes(), member.GetUnicastBytes(),
		other.GetPacketsUnauthenticated(), other.GetMulticastBytes(), other.GetUnicastBytes())
	if member.GetPacketsUnauthenticated() != 0 || member.GetMulticastBytes() == 0 {
		t.Errorf("receiver with the key: %d packets refused, %d bytes from multicast; want 0 and > 0", member.GetPacketsUnauthenticated(), member.GetMulticastBytes())
	}
	if other.GetPacketsUnauthenticated() == 0 || other.GetMulticastBytes() != 0 || other.GetUnicastBytes() == 0 {
		t.Errorf("receiver with another key: %d packets refused, %d bytes from multicast, %d by unicast; want > 0, 0, > 0",
			other.GetPacketsUnauthenticated(), other.GetMulticastBytes(), other.GetUnicastBytes())
	}

	addr := run.Sender.Addr
	recvCert, err := cl.Issue("intruder", "receiver")
	if err != nil {
		t.Fatal(err)
	}
	asReceiver := pb.NewSenderServiceClient(dialAs(t, addr, recvCert))
	if _, err := asReceiver.DeleteObject(ctx, &pb.DeleteObjectRequest{Channel: "c", Path: "large.bin"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("delete with a receiver's certificate: %v, want PermissionDenied", err)
	}
	if _, err := client.Publish(ctx, asReceiver, &pb.PublishHeader{Channel: "c", Path: "evil.bin"}, bytes.NewReader([]byte("x"))); status.Code(err) != codes.PermissionDenied {
		t.Errorf("publish with a receiver's certificate: %v, want PermissionDenied", err)
	}
	if _, err := asReceiver.GetManifest(ctx, &pb.GetManifestRequest{Channel: "c"}); err != nil {
		t.Errorf("manifest with a receiver's certificate: %v", err)
	}

	foreign, err := tlsconf.NewDevCA(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := foreign.Issue("admin", "admin", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fdir := t.TempDir()
	ff := tlsconf.Files{CA: filepath.Join(cl.CertDir(), "ca.pem"), Cert: filepath.Join(fdir, "f.pem"), Key: filepath.Join(fdir, "f.key")}
	if err := fp.WriteFiles(ff.Cert, ff.Key); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	if _, err := pb.NewSenderServiceClient(dialAs(t, addr, ff)).GetManifest(short, &pb.GetManifestRequest{Channel: "c"}); err == nil {
		t.Error("a certificate of another CA got the manifest")
	}
	plain, err := rpc.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	// A plaintext client gets nothing, and is told why (not a bare EOF):
	// the Go client, and nackctl with its hint.
	if _, err := pb.NewSenderServiceClient(plain).GetManifest(short, &pb.GetManifestRequest{Channel: "c"}); status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "requires mutual TLS") {
		t.Errorf("plaintext client: %v, want Unauthenticated saying TLS is required", err)
	}
	if code, _, stderr := nackctl(t, "-addr", addr, "channels"); code != 1 || !strings.Contains(stderr, "requires mutual TLS") || !strings.Contains(stderr, "-tls-ca") {
		t.Errorf("plaintext nackctl: exit %d, %q; want 1 and the TLS flags to use", code, stderr)
	}
	// A receiver's certificate speaks only for its own name.
	nack := &pb.NackRequest{ReceiverId: "receiver-1", Channel: "c"}
	if _, err := asReceiver.Nack(ctx, nack); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "intruder") {
		t.Errorf("NACK as another receiver: %v, want PermissionDenied naming the certificate", err)
	}
	nack.ReceiverId = "intruder"
	if _, err := asReceiver.Nack(ctx, nack); err != nil {
		t.Errorf("NACK under the certificate's own name: %v", err)
	}
	admin, err := rpc.Dial(addr, cl.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := pb.NewSenderServiceClient(admin).DeleteObject(ctx, &pb.DeleteObjectRequest{Channel: "c", Path: "small-0000.bin"}); status.Code(err) == codes.PermissionDenied || status.Code(err) == codes.Unauthenticated {
		t.Errorf("delete as admin: %v", err)
	}
}

// TestSignedManifests: on a plaintext control plane the sender signs its
// manifests (Ed25519); a receiver holding the public key installs them and
// completes, verified; a receiver holding another key rejects every
// manifest with an alert and files nothing.
func TestSignedManifests(t *testing.T) {
	c := newCluster(t)
	origin := filepath.Join(c.dir, "origin")
	if _, err := (cloud.Sample{SmallFiles: 5, MaxSmall: 16 << 10, LargeBytes: 1 << 20, Seed: 91}).Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	keys, other := filepath.Join(c.dir, "keys"), filepath.Join(c.dir, "other")
	for _, d := range []string{keys, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := manifest.WriteKeyPair(filepath.Join(d, "manifest.key"), filepath.Join(d, "manifest.pub")); err != nil {
			t.Fatal(err)
		}
	}
	_, sn := c.sender(origin, func(cfg *sender.Config) { cfg.ManifestKey = filepath.Join(keys, "manifest.key") })
	good, _ := c.receiver("good", sn.addr, func(cfg *receiver.Config) { cfg.ManifestPubKey = filepath.Join(keys, "manifest.pub") })
	bad, _ := c.receiver("bad", sn.addr, func(cfg *receiver.Config) { cfg.ManifestPubKey = filepath.Join(other, "manifest.pub") })
	waitComplete(t, 30*time.Second, good)
	verify(t, origin, filepath.Join(c.dir, "good"))
	waitFor(t, 10*time.Second, "the other receiver to reject the manifest", func() bool {
		for _, a := range bad.Status(false).GetRecentAlerts() {
			if a.GetKind() == pb.AlertKind_ALERT_KIND_MANIFEST_MISMATCH && strings.Contains(a.GetMessage(), "signature") {
				return true
			}
		}
		return false
	})
	st := bad.Status(false)
	if st.GetComplete() || st.GetCounters().GetMulticastBytes() != 0 || st.GetCounters().GetUnicastBytes() != 0 {
		t.Errorf("receiver with another key: complete %v, %d bytes multicast, %d unicast; want nothing", st.GetComplete(), st.GetCounters().GetMulticastBytes(), st.GetCounters().GetUnicastBytes())
	}
	// Its status says why, not just 0 B of 0 B.
	if p := st.GetChannels()[0].GetProblem(); p.GetKind() != pb.ChannelProblemKind_CHANNEL_PROBLEM_KIND_MANIFEST_REJECTED || !strings.Contains(p.GetMessage(), "signature") {
		t.Errorf("problem of the receiver with another key = %v, want MANIFEST_REJECTED naming the signature", p)
	}
	if p := good.Status(false).GetChannels()[0].GetProblem(); p != nil {
		t.Errorf("problem of the receiver with the key = %v, want none", p)
	}
}

// TestPacketKeyRotation rolls the cloud's packet key over with real
// processes: receivers hold both keys (old first); the sender signs with
// the old key, then restarts signing with the new one; every packet of
// both periods verifies, and content published after the rollover
// reaches the receivers by multicast, verified.
func TestPacketKeyRotation(t *testing.T) {
	skipShort(t)
	cl, dir := newCloud(t)
	k1, err := pktauth.NewKey(1)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := pktauth.NewKey(2)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, keys ...pktauth.Key) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(pktauth.Format(keys...)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oldKeys, both, newKeys := write("old.keys", k1), write("both.keys", k1, k2), write("new.keys", k2, k1)
	origin := filepath.Join(dir, "origin")
	if _, err := (cloud.Sample{SmallFiles: 10, MaxSmall: 16 << 10, LargeBytes: 2 << 20, Seed: 93}).Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	run, err := cl.Distribute(ctx, cloud.Distribution{
		Origin: origin, Channel: "c", Receivers: 2,
		SenderArgs:   []string{"-packet-key-file", oldKeys, "-rescan", "300ms"},
		ReceiverArgs: []string{"-packet-key-file", both},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run.Wait(ctx, time.Minute, 100*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	if err := run.Sender.Kill(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i, a := range run.Sender.Args {
		if a == oldKeys {
			run.Sender.Args[i] = newKeys
		}
	}
	if err := run.Restart(run.Sender); err != nil {
		t.Fatal(err)
	}
	if err := run.Sender.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := run.Statuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(origin, "c", "after-rotation.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	all, err := cloud.Digests(filepath.Join(origin, "c"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the object published after the rollover everywhere", func() bool {
		sts, err := run.Statuses(ctx)
		if err != nil {
			return false
		}
		for _, st := range sts {
			if !st.GetComplete() || int(st.GetChannels()[0].GetObjectsTotal()) != len(all) {
				return false
			}
		}
		return true
	})
	if err := run.Verify(); err != nil {
		t.Fatal(err)
	}
	after, err := run.Statuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range after {
		ct := st.GetCounters()
		got := ct.GetMulticastBytes() - before[i].GetCounters().GetMulticastBytes()
		if ct.GetPacketsUnauthenticated() != 0 || got < uint64(len(data)) {
			t.Errorf("%s: %d packets refused, %d bytes by multicast after the rollover; want 0 and at least %d", st.GetReceiverId(), ct.GetPacketsUnauthenticated(), got, len(data))
		}
	}
}
