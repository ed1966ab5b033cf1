package receiver

import (
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nackcast/nackcast/pkg/app"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// collector exports a receiver's counters and progress to Prometheus,
// read at scrape time from the counters it keeps anyway.
type collector struct{ r *Receiver }

// The receiver's metrics, in the order of the README's table.
var (
	receiverMetrics app.Metrics
	rm              = struct {
		packets, dropped, duplicate, foreign, read, bytes                        *app.Metric
		nacks, replies, ranges, pulls, feedback, parity, rebuilt                 *app.Metric
		completed, verify, lost, fetches, writeErrs, diskFull, failovers, alerts *app.Metric
		complete, activeSender, activeEpoch, lastPacket, epochs, forgotten       *app.Metric
		objects, have, total, chComplete, manifest, held, problem                *app.Metric
		distStarted, lastProgress, lastComplete, completion                      *app.Metric
	}{
		packets:      receiverMetrics.Counter("nackcast_receiver_packets_received_total", "UDP datagrams read from the multicast socket."),
		dropped:      receiverMetrics.Counter("nackcast_receiver_packets_dropped_total", "Datagrams lost or thrown away, by reason: malformed, unauthenticated (missing or bad packet authentication), overflow (dropped by the kernel, socket buffer full), paused (not filed while the disk is full), injected (test loss). Duplicates and other channels' packets are not drops.", "reason"),
		duplicate:    receiverMetrics.Counter("nackcast_receiver_packets_duplicate_total", "DATA packets of chunks already held: normal, since a repair pass for one receiver reaches all."),
		foreign:      receiverMetrics.Counter("nackcast_receiver_packets_foreign_total", "Datagrams for other channels, objects or versions than the receiver's (normal on a group shared by channels)."),
		read:         receiverMetrics.Counter("nackcast_receiver_datagram_bytes_read_total", "Bytes of the datagrams read from the multicast socket."),
		bytes:        receiverMetrics.Counter("nackcast_receiver_bytes_received_total", "New object content bytes received, by path (multicast or unicast).", "path"),
		nacks:        receiverMetrics.Counter("nackcast_receiver_nacks_sent_total", "NACK requests sent."),
		replies:      receiverMetrics.Counter("nackcast_receiver_nack_replies_total", "Per-object NACK replies received, by action (wait, unicast, not_found); primary_active counts NACKs a standing-by backup disregarded.", "action"),
		ranges:       receiverMetrics.Counter("nackcast_receiver_ranges_requested_total", "Chunk ranges asked for in NACKs."),
		pulls:        receiverMetrics.Counter("nackcast_receiver_pulls_total", "Unicast pulls made."),
		feedback:     receiverMetrics.Counter("nackcast_receiver_feedback_sent_total", "Socket reports sent to the sender between NACKs (buffer past 80% full, or datagrams dropped)."),
		parity:       receiverMetrics.Counter("nackcast_receiver_parity_packets_total", "PARITY packets, by use: kept (held to rebuild a block) or unused (block already whole, or over the memory cap).", "use"),
		rebuilt:      receiverMetrics.Counter("nackcast_receiver_chunks_rebuilt_total", "Chunks rebuilt from parity."),
		completed:    receiverMetrics.Counter("nackcast_receiver_objects_completed_total", "Objects verified and installed."),
		verify:       receiverMetrics.Counter("nackcast_receiver_verify_failures_total", "Objects whose content failed SHA-256 verification."),
		lost:         receiverMetrics.Counter("nackcast_receiver_objects_lost_total", "Complete objects found deleted or changed on disk."),
		fetches:      receiverMetrics.Counter("nackcast_receiver_manifest_fetches_total", "Manifests fetched."),
		writeErrs:    receiverMetrics.Counter("nackcast_receiver_storage_errors_total", "Failed writes to the data directory."),
		diskFull:     receiverMetrics.Gauge("nackcast_receiver_disk_full", "1 while the transfer is paused because the data directory's disk is full (it resumes by itself when space returns)."),
		failovers:    receiverMetrics.Counter("nackcast_receiver_failovers_total", "Times the receiver switched to the backup: a NACK the primary did not answer that the backup served."),
		alerts:       receiverMetrics.Counter("nackcast_receiver_alerts_total", "Alerts raised."),
		complete:     receiverMetrics.Gauge("nackcast_receiver_complete", "1 when every subscribed channel has a manifest and every object of it is complete and verified."),
		activeSender: receiverMetrics.Gauge("nackcast_receiver_active_sender_info", "Always 1; sender is the address of the sender that answered the receiver's last NACK, role whether it is the configured primary or backup. Absent before the first answer.", "sender", "role"),
		activeEpoch:  receiverMetrics.Gauge("nackcast_receiver_active_epoch", "The sender epoch of the latest DATA packet accepted (as nackcast_sender_epoch); role says whether its packets carried the backup flag. Absent before the first packet.", "role"),
		lastPacket:   receiverMetrics.Gauge("nackcast_receiver_last_packet_timestamp_seconds", "When the latest DATA packet was accepted, in seconds since 1970."),
		epochs:       receiverMetrics.Gauge("nackcast_receiver_sender_epochs", "Sender epochs whose DATA packets were accepted and are still remembered."),
		forgotten:    receiverMetrics.Counter("nackcast_receiver_sender_epochs_forgotten_total", "Sender epochs forgotten because more were remembered than the limit."),
		objects:      receiverMetrics.Gauge("nackcast_receiver_objects", "Objects of a channel by state (complete, partial, missing).", "channel", "state"),
		have:         receiverMetrics.Gauge("nackcast_receiver_bytes_have", "Bytes of a channel held: complete objects and received chunks of partial ones.", "channel"),
		total:        receiverMetrics.Gauge("nackcast_receiver_channel_bytes", "Bytes of a channel in its manifest (0 before the first manifest).", "channel"),
		chComplete:   receiverMetrics.Gauge("nackcast_receiver_channel_complete", "1 when the channel has a manifest and every object of it is complete and verified.", "channel"),
		manifest:     receiverMetrics.Gauge("nackcast_receiver_channel_manifest_info", "Always 1; version is the manifest version held (16 hex digits, as nackctl shows it), sender the identifier of the sender that served it. Absent before the first manifest.", "channel", "version", "sender"),
		held:         receiverMetrics.Gauge("nackcast_receiver_channel_manifest_held", "1 while a newer manifest is held back because it would remove more of the channel than allowed (nackctl confirm-manifest).", "channel"),
		problem:      receiverMetrics.Gauge("nackcast_receiver_channel_problem", "1 for the reason the channel makes no progress, when the receiver knows it (kind: "+strings.Join(problemKinds(), ", ")+"), 0 for the others.", "channel", "kind"),
		distStarted:  receiverMetrics.Gauge("nackcast_receiver_channel_distribution_started_timestamp_seconds", "When the latest distribution of the channel began on this receiver (it went from complete, or from no manifest, to lacking something), in seconds since 1970.", "channel"),
		lastProgress: receiverMetrics.Gauge("nackcast_receiver_channel_last_progress_timestamp_seconds", "When the channel last gained bytes or objects, in seconds since 1970.", "channel"),
		lastComplete: receiverMetrics.Gauge("nackcast_receiver_channel_last_complete_timestamp_seconds", "When the channel last became complete, in seconds since 1970.", "channel"),
		completion:   receiverMetrics.Gauge("nackcast_receiver_channel_completion_seconds", "How long the latest distribution of the channel took, from its start to complete; absent while incomplete.", "channel"),
	}
)

// problemValues are the kinds of nackcast_receiver_channel_problem, in
// the order of the ChannelProblemKind enum.
var problemValues = func() []pb.ChannelProblemKind {
	var out []pb.ChannelProblemKind
	for n := range pb.ChannelProblemKind_name {
		if n != 0 {
			out = append(out, pb.ChannelProblemKind(n))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}()

// problemKinds are the label values of problemValues.
func problemKinds() []string {
	out := make([]string, len(problemValues))
	for i, k := range problemValues {
		out[i] = problemLabel(k)
	}
	return out
}

// problemLabel is a problem kind as a label value: "sender_unreachable".
func problemLabel(k pb.ChannelProblemKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "CHANNEL_PROBLEM_KIND_"))
}

// Collector returns the receiver's Prometheus collector.
func (r *Receiver) Collector() prometheus.Collector { return collector{r} }

// Metrics lists the collector's metrics (for the README's table).
func (c collector) Metrics() []*app.Metric { return receiverMetrics.List() }

func (c collector) Describe(ch chan<- *prometheus.Desc) { receiverMetrics.Describe(ch) }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.r.Status(false)
	k := st.GetCounters()
	u := func(m *app.Metric, v uint64, labels ...string) { m.Emit(ch, float64(v), labels...) }
	d := &rm
	u(d.packets, k.GetPacketsReceived())
	u(d.dropped, k.GetPacketsMalformed(), "malformed")
	u(d.dropped, k.GetPacketsUnauthenticated(), "unauthenticated")
	u(d.dropped, k.GetPacketsOverflow(), "overflow")
	u(d.dropped, k.GetPacketsPaused(), "paused")
	u(d.dropped, k.GetPacketsDroppedInjected(), "injected")
	u(d.duplicate, k.GetPacketsDuplicate())
	u(d.foreign, k.GetPacketsForeign())
	u(d.read, c.r.stats.BytesRead.Load())
	u(d.bytes, k.GetMulticastBytes(), "multicast")
	u(d.bytes, k.GetUnicastBytes(), "unicast")
	u(d.nacks, k.GetNacksSent())
	u(d.replies, k.GetRepliesWait(), "wait")
	u(d.replies, k.GetRepliesUnicast(), "unicast")
	u(d.replies, k.GetRepliesNotFound(), "not_found")
	u(d.replies, k.GetRepliesPrimaryActive(), "primary_active")
	u(d.ranges, k.GetRangesRequested())
	u(d.pulls, k.GetPulls())
	u(d.feedback, k.GetFeedbackSent())
	u(d.parity, k.GetParityReceived(), "kept")
	u(d.parity, k.GetParityUnused(), "unused")
	u(d.rebuilt, k.GetChunksRebuilt())
	u(d.completed, k.GetObjectsCompleted())
	u(d.verify, k.GetVerifyFailures())
	u(d.lost, k.GetObjectsLost())
	u(d.fetches, k.GetManifestFetches())
	u(d.writeErrs, c.r.stats.WriteErrors.Load())
	d.diskFull.Bool(ch, st.GetDiskFull())
	u(d.failovers, st.GetFailovers())
	u(d.alerts, st.GetAlerts())
	d.complete.Bool(ch, st.GetComplete())
	if a := st.GetActiveSender(); a != "" {
		role := "primary"
		if a == c.r.cfg.Backup {
			role = "backup"
		}
		d.activeSender.Emit(ch, 1, a, role)
	}
	var latest *pb.EpochStats
	for _, e := range st.GetEpochs() {
		if latest == nil || e.GetLastSeen().AsTime().After(latest.GetLastSeen().AsTime()) {
			latest = e
		}
	}
	if latest != nil {
		role := "primary"
		if latest.GetBackup() {
			role = "backup"
		}
		u(d.activeEpoch, latest.GetEpoch(), role)
		d.lastPacket.Emit(ch, seconds(latest.GetLastSeen()))
	}
	u(d.epochs, uint64(len(st.GetEpochs())))
	u(d.forgotten, c.r.stats.EpochsForgotten.Load())
	for _, cs := range st.GetChannels() {
		name := cs.GetChannel()
		u(d.objects, uint64(cs.GetObjectsComplete()), name, "complete")
		u(d.objects, uint64(cs.GetObjectsPartial()), name, "partial")
		u(d.objects, uint64(cs.GetObjectsMissing()), name, "missing")
		u(d.have, cs.GetBytesHave(), name)
		u(d.total, cs.GetBytesTotal(), name)
		d.chComplete.Bool(ch, cs.GetComplete(), name)
		if v := cs.GetManifestVersion(); v != 0 {
			d.manifest.Emit(ch, 1, name, fmt.Sprintf("%016x", v), cs.GetManifestSender())
		}
		d.held.Bool(ch, cs.GetHeldManifest() != nil, name)
		kind := cs.GetProblem().GetKind()
		for _, p := range problemValues {
			d.problem.Bool(ch, kind == p, name, problemLabel(p))
		}
		for _, t := range []struct {
			m  *app.Metric
			ts *timestamppb.Timestamp
		}{{d.distStarted, cs.GetDistributionStarted()}, {d.lastProgress, cs.GetLastProgress()}, {d.lastComplete, cs.GetLastComplete()}} {
			if t.ts != nil {
				t.m.Emit(ch, seconds(t.ts), name)
			}
		}
		if ct := cs.GetCompletionTime(); cs.GetComplete() && ct != nil {
			d.completion.Emit(ch, ct.AsDuration().Seconds(), name)
		}
	}
}

// seconds is t in seconds since 1970.
func seconds(t *timestamppb.Timestamp) float64 {
	return float64(t.GetSeconds()) + float64(t.GetNanos())/1e9
}
