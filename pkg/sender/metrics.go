package sender

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nackcast/nackcast/pkg/app"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// collector exports a sender's counters and state to Prometheus, read at
// scrape time from the counters the sender keeps anyway: nothing is
// counted twice and the data path pays nothing.
type collector struct{ s *Sender }

// The sender's metrics (a primary's and a backup's alike; the primary_*
// and channel_diverged ones only on a backup), in the order of the
// README's table.
var (
	senderMetrics app.Metrics
	sm            = struct {
		packets, bytes, dataBytes, parity, passes, nacks, replies, pulls, pullBytes, aborted, sendErrors *app.Metric
		jobs, interval, nackRate, pace, paceDecreases, firstPassWait                                     *app.Metric
		state, stateSince, epoch, takeovers, alerts                                                      *app.Metric
		objects, channelBytes, manifest, manifestTime, diverged                                          *app.Metric
		chNacks, chReplies, chPasses, chBytes, chData, chPulls, chPullBytes                              *app.Metric
		primaryUp, primaryChecked, primarySeen, primaryEpoch, primaryState                               *app.Metric
	}{
		packets:        senderMetrics.Counter("nackcast_sender_packets_sent_total", "UDP datagrams multicast."),
		bytes:          senderMetrics.Counter("nackcast_sender_bytes_sent_total", "UDP payload bytes multicast, headers included."),
		dataBytes:      senderMetrics.Counter("nackcast_sender_data_bytes_sent_total", "Object content bytes multicast in DATA packets."),
		parity:         senderMetrics.Counter("nackcast_sender_parity_packets_sent_total", "PARITY packets multicast (Reed-Solomon forward error correction)."),
		passes:         senderMetrics.Counter("nackcast_sender_passes_total", "Multicast passes completed, by kind (first or repair).", "kind"),
		nacks:          senderMetrics.Counter("nackcast_sender_nacks_total", "NACK requests answered."),
		replies:        senderMetrics.Counter("nackcast_sender_nack_replies_total", "Per-object NACK replies, by action (wait, unicast, not_found).", "action"),
		pulls:          senderMetrics.Counter("nackcast_sender_pulls_total", "Unicast pulls served."),
		pullBytes:      senderMetrics.Counter("nackcast_sender_pull_bytes_total", "Bytes sent by unicast pulls."),
		aborted:        senderMetrics.Counter("nackcast_sender_jobs_aborted_total", "Multicast jobs abandoned (origin file changed or vanished)."),
		sendErrors:     senderMetrics.Counter("nackcast_sender_send_errors_total", "Multicast sends that failed transiently (network down, firewall): their packets were lost."),
		jobs:           senderMetrics.Gauge("nackcast_sender_jobs", "Objects in the being-multicast list (in_flight) and the to-be-multicast pool (pooled).", "list"),
		interval:       senderMetrics.Gauge("nackcast_sender_nack_interval_seconds", "NACK interval handed to receivers (next_nack_after)."),
		nackRate:       senderMetrics.Gauge("nackcast_sender_nack_rate_per_second", "NACK requests per second, smoothed (the load the NACK interval adapts to)."),
		pace:           senderMetrics.Gauge("nackcast_sender_rate_bytes_per_second", "Multicast pacing rate now, bytes per second: the configured -rate, lowered while receivers are overrun (0: unpaced)."),
		paceDecreases:  senderMetrics.Counter("nackcast_sender_rate_decreases_total", "Times the rate was lowered because receivers were overrun or their socket buffers nearly full."),
		firstPassWait:  senderMetrics.Gauge("nackcast_sender_last_first_pass_wait_seconds", "How long the latest first pass waited between its object entering the manifest and its first packet."),
		state:          senderMetrics.Gauge("nackcast_sender_state", "1 for the sender's current state (starting, active, standby, handing_back), 0 for the others.", "role", "state"),
		stateSince:     senderMetrics.Gauge("nackcast_sender_state_since_timestamp_seconds", "When the sender entered its current state, in seconds since 1970."),
		epoch:          senderMetrics.Gauge("nackcast_sender_epoch", "The sender's current epoch (incarnation), carried in its packets: the Unix time in nanoseconds when it began (a float keeps it to within 256 ns, enough to compare epochs). A backup's changes when it takes over."),
		takeovers:      senderMetrics.Counter("nackcast_sender_takeovers_total", "Times this backup took over from the primary."),
		alerts:         senderMetrics.Counter("nackcast_sender_alerts_total", "Alerts raised."),
		objects:        senderMetrics.Gauge("nackcast_sender_channel_objects", "Objects in a channel's manifest.", "channel"),
		channelBytes:   senderMetrics.Gauge("nackcast_sender_channel_bytes", "Bytes in a channel's manifest.", "channel"),
		manifest:       senderMetrics.Gauge("nackcast_sender_channel_manifest_info", "Always 1; version is the channel's current manifest version (16 hex digits, as nackctl shows it).", "channel", "version"),
		manifestTime:   senderMetrics.Gauge("nackcast_sender_channel_manifest_generated_timestamp_seconds", "When the channel's current manifest was generated, in seconds since 1970.", "channel"),
		diverged:       senderMetrics.Gauge("nackcast_sender_channel_diverged", "Backup only: 1 while the channel's manifest has differed from the primary's for longer than a rescan explains (a take-over would distribute the backup's content).", "channel"),
		chNacks:        senderMetrics.Counter("nackcast_sender_channel_nacks_total", "NACK requests answered, per channel.", "channel"),
		chReplies:      senderMetrics.Counter("nackcast_sender_channel_nack_replies_total", "Per-object NACK replies, per channel and action (wait, unicast, not_found).", "channel", "action"),
		chPasses:       senderMetrics.Counter("nackcast_sender_channel_passes_total", "Multicast passes completed, per channel and kind (first or repair).", "channel", "kind"),
		chBytes:        senderMetrics.Counter("nackcast_sender_channel_bytes_sent_total", "UDP payload bytes of DATA and PARITY packets multicast, per channel (added every MiB of a job and when it ends; control packets are no channel's).", "channel"),
		chData:         senderMetrics.Counter("nackcast_sender_channel_data_bytes_sent_total", "Object content bytes multicast, per channel (added every MiB of a job and when it ends).", "channel"),
		chPulls:        senderMetrics.Counter("nackcast_sender_channel_pulls_total", "Unicast pulls served, per channel.", "channel"),
		chPullBytes:    senderMetrics.Counter("nackcast_sender_channel_pull_bytes_total", "Bytes sent by unicast pulls, per channel.", "channel"),
		primaryUp:      senderMetrics.Gauge("nackcast_sender_primary_up", "Backup only: 1 when the backup's last check found the primary serving, 0 when it did not answer."),
		primaryChecked: senderMetrics.Gauge("nackcast_sender_primary_checked_timestamp_seconds", "Backup only: when the backup last checked the primary, in seconds since 1970."),
		primarySeen:    senderMetrics.Gauge("nackcast_sender_primary_last_seen_timestamp_seconds", "Backup only: when the primary last answered a check, in seconds since 1970."),
		primaryEpoch:   senderMetrics.Gauge("nackcast_sender_primary_epoch", "Backup only: the epoch the primary reported when it last answered (as nackcast_sender_epoch)."),
		primaryState:   senderMetrics.Gauge("nackcast_sender_primary_state", "Backup only: 1 for the state the primary reported when it last answered, 0 for the others.", "state"),
	}
)

// Collector returns the sender's Prometheus collector.
func (s *Sender) Collector() prometheus.Collector { return collector{s} }

// Metrics lists the collector's metrics (for the README's table).
func (c collector) Metrics() []*app.Metric { return senderMetrics.List() }

func (c collector) Describe(ch chan<- *prometheus.Desc) { senderMetrics.Describe(ch) }

var senderStates = []pb.SenderState{pb.SenderState_SENDER_STATE_STARTING, pb.SenderState_SENDER_STATE_ACTIVE, pb.SenderState_SENDER_STATE_STANDBY, pb.SenderState_SENDER_STATE_HANDING_BACK}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	st := s.Status(false)
	k := st.GetCounters()
	u := func(m *app.Metric, v uint64, labels ...string) { m.Emit(ch, float64(v), labels...) }
	d := &sm
	u(d.packets, k.GetPacketsSent())
	u(d.bytes, k.GetBytesSent())
	u(d.dataBytes, k.GetDataBytesSent())
	u(d.parity, k.GetParityPacketsSent())
	u(d.passes, k.GetPasses()-k.GetRepairPasses(), "first")
	u(d.passes, k.GetRepairPasses(), "repair")
	u(d.nacks, k.GetNacks())
	u(d.replies, k.GetRepliesWait(), "wait")
	u(d.replies, k.GetRepliesUnicast(), "unicast")
	u(d.replies, k.GetRepliesNotFound(), "not_found")
	u(d.pulls, k.GetPulls())
	u(d.pullBytes, k.GetPullBytes())
	u(d.aborted, s.stats.JobsAborted.Load())
	u(d.sendErrors, s.stats.SendErrors.Load())
	u(d.jobs, uint64(st.GetJobsInFlight()), "in_flight")
	u(d.jobs, uint64(st.GetJobsPooled()), "pooled")
	d.interval.Emit(ch, st.GetNackInterval().AsDuration().Seconds())
	d.nackRate.Emit(ch, st.GetNackRate())
	d.pace.Emit(ch, st.GetRate())
	u(d.paceDecreases, st.GetRateDecreases())
	d.firstPassWait.Emit(ch, st.GetLastFirstPassWait().AsDuration().Seconds())
	role := s.cfg.Role.String()
	for _, state := range senderStates {
		d.state.Bool(ch, st.GetState() == state, role, stateLabel(state))
	}
	if t := st.GetStateSince(); t != nil {
		d.stateSince.Emit(ch, seconds(t))
	}
	u(d.epoch, st.GetEpoch())
	u(d.takeovers, st.GetTakeovers())
	u(d.alerts, st.GetAlerts())

	backup := s.cfg.Role == Backup
	diverged := map[string]bool{}
	for _, n := range st.GetDivergedChannels() {
		diverged[n] = true
	}
	for _, cc := range s.channelCounterList() {
		n := cc.name
		u(d.objects, cc.objects, n)
		u(d.channelBytes, cc.totalBytes, n)
		d.manifest.Emit(ch, 1, n, fmt.Sprintf("%016x", cc.manifestVersion))
		if cc.manifestGenerated > 0 {
			d.manifestTime.Emit(ch, cc.manifestGenerated, n)
		}
		if backup {
			d.diverged.Bool(ch, diverged[n], n)
		}
		u(d.chNacks, cc.nacks, n)
		u(d.chReplies, cc.wait, n, "wait")
		u(d.chReplies, cc.unicast, n, "unicast")
		u(d.chReplies, cc.notFound, n, "not_found")
		u(d.chPasses, cc.passes-cc.repairPasses, n, "first")
		u(d.chPasses, cc.repairPasses, n, "repair")
		u(d.chBytes, cc.bytes, n)
		u(d.chData, cc.data, n)
		u(d.chPulls, cc.pulls, n)
		u(d.chPullBytes, cc.pullBytes, n)
	}

	if backup {
		d.primaryUp.Bool(ch, st.GetPrimaryAlive())
		if t := st.GetPrimaryCheckedAt(); t != nil {
			d.primaryChecked.Emit(ch, seconds(t))
		}
		if t := st.GetPrimarySeenAt(); t != nil {
			d.primarySeen.Emit(ch, seconds(t))
			u(d.primaryEpoch, st.GetPrimaryEpoch())
			for _, state := range senderStates {
				d.primaryState.Bool(ch, st.GetPrimaryState() == state, stateLabel(state))
			}
		}
	}
}

// seconds is t in seconds since 1970.
func seconds(t *timestamppb.Timestamp) float64 {
	return float64(t.GetSeconds()) + float64(t.GetNanos())/1e9
}

func stateLabel(s pb.SenderState) string {
	switch s {
	case pb.SenderState_SENDER_STATE_STARTING:
		return "starting"
	case pb.SenderState_SENDER_STATE_ACTIVE:
		return "active"
	case pb.SenderState_SENDER_STATE_STANDBY:
		return "standby"
	case pb.SenderState_SENDER_STATE_HANDING_BACK:
		return "handing_back"
	}
	return "unknown"
}
