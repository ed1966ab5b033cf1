package receiver

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exports a receiver's counters and progress to Prometheus,
// read at scrape time from the counters it keeps anyway.
type collector struct{ r *Receiver }

var receiverDescs = struct {
	packets, dropped, bytes, nacks, replies, ranges, pulls, completed, verify, lost, fetches, failovers, alerts, writeErrs *prometheus.Desc
	objects, have, total, complete, epochs, parity, rebuilt, feedback                                                      *prometheus.Desc
}{
	feedback:  prometheus.NewDesc("nackcast_receiver_feedback_sent_total", "Socket reports sent to the sender between NACKs (buffer past 80% full, or datagrams dropped).", nil, nil),
	parity:    prometheus.NewDesc("nackcast_receiver_parity_packets_total", "PARITY packets, by use: kept (held to rebuild a block) or unused (block already whole, or over the memory cap).", []string{"use"}, nil),
	rebuilt:   prometheus.NewDesc("nackcast_receiver_chunks_rebuilt_total", "Chunks rebuilt from parity.", nil, nil),
	packets:   prometheus.NewDesc("nackcast_receiver_packets_received_total", "UDP datagrams read from the multicast socket.", nil, nil),
	dropped:   prometheus.NewDesc("nackcast_receiver_packets_dropped_total", "Datagrams not used, by reason: malformed, foreign (other channel, object, version or length), duplicate, injected (test loss), unauthenticated (missing or bad packet authentication), overflow (dropped by the kernel, socket buffer full).", []string{"reason"}, nil),
	bytes:     prometheus.NewDesc("nackcast_receiver_bytes_received_total", "Object content bytes received, by path (multicast or unicast).", []string{"path"}, nil),
	nacks:     prometheus.NewDesc("nackcast_receiver_nacks_sent_total", "NACK requests sent.", nil, nil),
	replies:   prometheus.NewDesc("nackcast_receiver_nack_replies_total", "Per-object NACK replies received, by action; primary_active counts NACKs a standing-by backup disregarded.", []string{"action"}, nil),
	ranges:    prometheus.NewDesc("nackcast_receiver_ranges_requested_total", "Chunk ranges asked for in NACKs.", nil, nil),
	pulls:     prometheus.NewDesc("nackcast_receiver_pulls_total", "Unicast pulls made.", nil, nil),
	completed: prometheus.NewDesc("nackcast_receiver_objects_completed_total", "Objects verified and installed.", nil, nil),
	verify:    prometheus.NewDesc("nackcast_receiver_verify_failures_total", "Objects whose content failed SHA-256 verification.", nil, nil),
	lost:      prometheus.NewDesc("nackcast_receiver_objects_lost_total", "Complete objects found deleted or changed on disk.", nil, nil),
	fetches:   prometheus.NewDesc("nackcast_receiver_manifest_fetches_total", "Manifests fetched.", nil, nil),
	failovers: prometheus.NewDesc("nackcast_receiver_failovers_total", "NACKs sent to the backup because the primary did not answer.", nil, nil),
	alerts:    prometheus.NewDesc("nackcast_receiver_alerts_total", "Alerts raised.", nil, nil),
	writeErrs: prometheus.NewDesc("nackcast_receiver_storage_errors_total", "Failed writes to the data directory.", nil, nil),
	objects:   prometheus.NewDesc("nackcast_receiver_objects", "Objects of a channel by state (complete, partial, missing).", []string{"channel", "state"}, nil),
	have:      prometheus.NewDesc("nackcast_receiver_bytes_have", "Bytes of a channel held.", []string{"channel"}, nil),
	total:     prometheus.NewDesc("nackcast_receiver_bytes_total", "Bytes of a channel in its manifest.", []string{"channel"}, nil),
	complete:  prometheus.NewDesc("nackcast_receiver_channel_complete", "1 when every object of the channel is complete and verified.", []string{"channel"}, nil),
	epochs:    prometheus.NewDesc("nackcast_receiver_sender_epochs", "Sender epochs whose DATA packets were accepted.", nil, nil),
}

// Collector returns the receiver's Prometheus collector.
func (r *Receiver) Collector() prometheus.Collector { return collector{r} }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.r.Status(false)
	k := st.GetCounters()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	d := &receiverDescs
	counter(d.packets, k.GetPacketsReceived())
	counter(d.dropped, k.GetPacketsMalformed(), "malformed")
	counter(d.dropped, k.GetPacketsForeign(), "foreign")
	counter(d.dropped, k.GetPacketsDuplicate(), "duplicate")
	counter(d.dropped, k.GetPacketsDroppedInjected(), "injected")
	counter(d.dropped, k.GetPacketsOverflow(), "overflow")
	counter(d.bytes, k.GetMulticastBytes(), "multicast")
	counter(d.bytes, k.GetUnicastBytes(), "unicast")
	counter(d.nacks, k.GetNacksSent())
	counter(d.replies, k.GetRepliesWait(), "wait")
	counter(d.replies, k.GetRepliesUnicast(), "unicast")
	counter(d.replies, k.GetRepliesNotFound(), "not_found")
	counter(d.replies, k.GetRepliesPrimaryActive(), "primary_active")
	counter(d.ranges, k.GetRangesRequested())
	counter(d.pulls, k.GetPulls())
	counter(d.completed, k.GetObjectsCompleted())
	counter(d.verify, k.GetVerifyFailures())
	counter(d.lost, k.GetObjectsLost())
	counter(d.fetches, k.GetManifestFetches())
	counter(d.dropped, k.GetPacketsUnauthenticated(), "unauthenticated")
	counter(d.dropped, k.GetPacketsPaused(), "paused")
	counter(d.parity, k.GetParityReceived(), "kept")
	counter(d.parity, k.GetParityUnused(), "unused")
	counter(d.rebuilt, k.GetChunksRebuilt())
	counter(d.feedback, k.GetFeedbackSent())
	counter(d.failovers, st.GetFailovers())
	counter(d.alerts, st.GetAlerts())
	counter(d.writeErrs, c.r.stats.WriteErrors.Load())
	gauge(d.epochs, float64(len(st.GetEpochs())))
	for _, cs := range st.GetChannels() {
		name := cs.GetChannel()
		gauge(d.objects, float64(cs.GetObjectsComplete()), name, "complete")
		gauge(d.objects, float64(cs.GetObjectsPartial()), name, "partial")
		gauge(d.objects, float64(cs.GetObjectsMissing()), name, "missing")
		gauge(d.have, float64(cs.GetBytesHave()), name)
		gauge(d.total, float64(cs.GetBytesTotal()), name)
		v := 0.0
		if cs.GetComplete() {
			v = 1
		}
		gauge(d.complete, v, name)
	}
}
