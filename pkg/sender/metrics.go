package sender

import (
	"github.com/prometheus/client_golang/prometheus"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// collector exports a sender's counters and state to Prometheus, read at
// scrape time from the counters the sender keeps anyway: nothing is
// counted twice and the data path pays nothing.
type collector struct{ s *Sender }

var senderDescs = struct {
	packets, bytes, dataBytes, passes, nacks, replies, pulls, pullBytes, aborted *prometheus.Desc
	jobs, interval, rate, takeovers, alerts, state, objects, channelBytes        *prometheus.Desc
	pace, paceDecreases, parity                                                  *prometheus.Desc
}{
	parity:        prometheus.NewDesc("nackcast_sender_parity_packets_sent_total", "PARITY packets multicast (Reed-Solomon forward error correction).", nil, nil),
	pace:          prometheus.NewDesc("nackcast_sender_rate_bytes", "Multicast pacing rate now, bytes per second (0: unpaced).", nil, nil),
	paceDecreases: prometheus.NewDesc("nackcast_sender_rate_decreases_total", "Times the rate was lowered because receivers were overrun.", nil, nil),
	packets:       prometheus.NewDesc("nackcast_sender_packets_sent_total", "UDP datagrams multicast.", nil, nil),
	bytes:         prometheus.NewDesc("nackcast_sender_bytes_sent_total", "UDP payload bytes multicast, headers included.", nil, nil),
	dataBytes:     prometheus.NewDesc("nackcast_sender_data_bytes_sent_total", "Object content bytes multicast in DATA packets.", nil, nil),
	passes:        prometheus.NewDesc("nackcast_sender_passes_total", "Multicast passes completed, by kind (first or repair).", []string{"kind"}, nil),
	nacks:         prometheus.NewDesc("nackcast_sender_nacks_total", "NACK requests answered.", nil, nil),
	replies:       prometheus.NewDesc("nackcast_sender_nack_replies_total", "Per-object NACK replies, by action.", []string{"action"}, nil),
	pulls:         prometheus.NewDesc("nackcast_sender_pulls_total", "Unicast pulls served.", nil, nil),
	pullBytes:     prometheus.NewDesc("nackcast_sender_pull_bytes_total", "Bytes sent by unicast pulls.", nil, nil),
	aborted:       prometheus.NewDesc("nackcast_sender_jobs_aborted_total", "Multicast jobs abandoned (origin file changed or vanished).", nil, nil),
	jobs:          prometheus.NewDesc("nackcast_sender_jobs", "Objects in the being-multicast list (in_flight) and the to-be-multicast pool (pooled).", []string{"list"}, nil),
	interval:      prometheus.NewDesc("nackcast_sender_nack_interval_seconds", "NACK interval handed to receivers (next_nack_after).", nil, nil),
	rate:          prometheus.NewDesc("nackcast_sender_nack_rate", "NACK requests per second, smoothed.", nil, nil),
	takeovers:     prometheus.NewDesc("nackcast_sender_takeovers_total", "Times this backup took over from the primary.", nil, nil),
	alerts:        prometheus.NewDesc("nackcast_sender_alerts_total", "Alerts raised.", nil, nil),
	state:         prometheus.NewDesc("nackcast_sender_state", "1 for the sender's current state.", []string{"role", "state"}, nil),
	objects:       prometheus.NewDesc("nackcast_sender_channel_objects", "Objects in a channel's manifest.", []string{"channel"}, nil),
	channelBytes:  prometheus.NewDesc("nackcast_sender_channel_bytes", "Bytes in a channel's manifest.", []string{"channel"}, nil),
}

// Collector returns the sender's Prometheus collector.
func (s *Sender) Collector() prometheus.Collector { return collector{s} }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	st := s.Status(false)
	k := st.GetCounters()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	d := &senderDescs
	counter(d.packets, k.GetPacketsSent())
	counter(d.bytes, k.GetBytesSent())
	counter(d.dataBytes, k.GetDataBytesSent())
	counter(d.parity, k.GetParityPacketsSent())
	counter(d.passes, k.GetPasses()-k.GetRepairPasses(), "first")
	counter(d.passes, k.GetRepairPasses(), "repair")
	counter(d.nacks, k.GetNacks())
	counter(d.replies, k.GetRepliesWait(), "wait")
	counter(d.replies, k.GetRepliesUnicast(), "unicast")
	counter(d.replies, k.GetRepliesNotFound(), "not_found")
	counter(d.pulls, k.GetPulls())
	counter(d.pullBytes, k.GetPullBytes())
	counter(d.aborted, s.stats.JobsAborted.Load())
	counter(d.takeovers, st.GetTakeovers())
	counter(d.alerts, st.GetAlerts())
	gauge(d.jobs, float64(st.GetJobsInFlight()), "in_flight")
	gauge(d.jobs, float64(st.GetJobsPooled()), "pooled")
	gauge(d.interval, st.GetNackInterval().AsDuration().Seconds())
	gauge(d.rate, st.GetNackRate())
	gauge(d.pace, st.GetRate())
	counter(d.paceDecreases, st.GetRateDecreases())
	role := s.cfg.Role.String()
	for _, state := range []pb.SenderState{pb.SenderState_SENDER_STATE_STARTING, pb.SenderState_SENDER_STATE_ACTIVE, pb.SenderState_SENDER_STATE_STANDBY, pb.SenderState_SENDER_STATE_HANDING_BACK} {
		v := 0.0
		if st.GetState() == state {
			v = 1
		}
		gauge(d.state, v, role, stateLabel(state))
	}
	for _, cs := range st.GetChannels() {
		gauge(d.objects, float64(cs.GetObjectCount()), cs.GetChannel())
		gauge(d.channelBytes, float64(cs.GetTotalBytes()), cs.GetChannel())
	}
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
