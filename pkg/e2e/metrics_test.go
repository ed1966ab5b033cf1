package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nackcast/nackcast/pkg/cloud"
	"github.com/nackcast/nackcast/pkg/receiver"
	"github.com/nackcast/nackcast/pkg/sender"
)

// gather collects c through a pedantic registry, which fails on a sample
// that its collector did not describe or that breaks the exposition
// rules, and returns the families by name.
func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]*dto.MetricFamily, len(fams))
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// sum adds the values of every series of family name whose labels include
// the given name=value pairs (0 when the family is absent).
func sum(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	total := 0.0
next:
	for _, m := range fams[name].GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
			}
			if !found {
				continue next
			}
		}
		total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return total
}

// label returns the value of label key of the only series of family name
// whose labels include the given pairs.
func label(t *testing.T, fams map[string]*dto.MetricFamily, name, key string, labels ...string) string {
	t.Helper()
	var vals []string
next:
	for _, m := range fams[name].GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if got[labels[i]] != labels[i+1] {
				continue next
			}
		}
		vals = append(vals, got[key])
	}
	if len(vals) != 1 {
		t.Fatalf("%s%v: %d series (%q), want one", name, labels, len(vals), vals)
	}
	return vals[0]
}

// TestMetricsForDashboards distributes two channels with loss to two
// receivers and checks the metrics a dashboard and the alert rules are
// built on: the sender's per-channel counters add up to its totals, the
// receivers' progress, timestamps, manifest versions, epoch and active
// sender agree with the sender's, and duplicates are counted apart from
// drops.
func TestMetricsForDashboards(t *testing.T) {
	c := newCluster(t)
	origin := filepath.Join(c.dir, "origin")
	objects := map[string]float64{}
	for i, ch := range []string{"c", "d"} {
		sample := cloud.Sample{SmallFiles: 20 + 30*i, MaxSmall: 48 << 10, LargeBytes: int64(2+2*i) << 20, Seed: uint64(41 + i)}
		if _, err := sample.Generate(filepath.Join(origin, ch)); err != nil {
			t.Fatal(err)
		}
		objects[ch] = float64(sample.SmallFiles + 1)
	}
	start := time.Now()
	s, sn := c.sender(origin, func(cfg *sender.Config) { cfg.Scheduler.MaxPasses = 3 })
	var rs []*receiver.Receiver
	for i := 1; i <= 2; i++ {
		r, _ := c.receiver(fmt.Sprintf("r%d", i), sn.addr, func(cfg *receiver.Config) {
			cfg.Channels = []string{"c", "d"}
			cfg.LossRate = 0.05
		})
		rs = append(rs, r)
	}
	waitComplete(t, 90*time.Second, rs...)

	// The per-channel counters equal the totals once every job has ended
	// (a job adds its bytes and pass to its channel when it ends).
	var sm map[string]*dto.MetricFamily
	settled := func() bool {
		sm = gather(t, s.Collector())
		return sum(sm, "nackcast_sender_jobs", "list", "in_flight") == 0 &&
			sum(sm, "nackcast_sender_channel_passes_total") == sum(sm, "nackcast_sender_passes_total") &&
			sum(sm, "nackcast_sender_channel_data_bytes_sent_total") == sum(sm, "nackcast_sender_data_bytes_sent_total")
	}
	waitFor(t, 10*time.Second, "the sender's jobs to end", settled)
	for _, pair := range [][2]string{
		{"nackcast_sender_channel_nacks_total", "nackcast_sender_nacks_total"},
		{"nackcast_sender_channel_nack_replies_total", "nackcast_sender_nack_replies_total"},
		{"nackcast_sender_channel_pulls_total", "nackcast_sender_pulls_total"},
		{"nackcast_sender_channel_pull_bytes_total", "nackcast_sender_pull_bytes_total"},
	} {
		if got, want := sum(sm, pair[0]), sum(sm, pair[1]); got != want {
			t.Errorf("%s adds up to %v, %s is %v", pair[0], got, pair[1], want)
		}
	}
	for _, action := range []string{"wait", "unicast", "not_found"} {
		if got, want := sum(sm, "nackcast_sender_channel_nack_replies_total", "action", action), sum(sm, "nackcast_sender_nack_replies_total", "action", action); got != want {
			t.Errorf("%s replies: channels add up to %v, total %v", action, got, want)
		}
	}
	if sum(sm, "nackcast_sender_nacks_total") == 0 {
		t.Error("no NACK with 5% loss: repair was not exercised")
	}
	if got, all := sum(sm, "nackcast_sender_channel_bytes_sent_total"), sum(sm, "nackcast_sender_bytes_sent_total"); got <= 0 || got > all {
		t.Errorf("channels' multicast bytes %v, all bytes %v: want more than 0, at most all (control packets are no channel's)", got, all)
	}
	epoch := sum(sm, "nackcast_sender_epoch")
	if got := float64(s.Epoch()); epoch != got {
		t.Errorf("nackcast_sender_epoch = %v, want %v", epoch, got)
	}
	if sum(sm, "nackcast_sender_state", "role", "primary", "state", "active") != 1 {
		t.Error("nackcast_sender_state{role=primary,state=active} is not 1")
	}
	if _, ok := sm["nackcast_sender_primary_up"]; ok {
		t.Error("a primary exports the backup's view of the primary")
	}
	for ch, n := range objects {
		if got := sum(sm, "nackcast_sender_channel_passes_total", "channel", ch, "kind", "first"); got != n {
			t.Errorf("channel %s: %v first passes, want %v (one per object)", ch, got, n)
		}
		if got := sum(sm, "nackcast_sender_channel_objects", "channel", ch); got != n {
			t.Errorf("channel %s: nackcast_sender_channel_objects = %v, want %v", ch, got, n)
		}
		if got := sum(sm, "nackcast_sender_channel_data_bytes_sent_total", "channel", ch); got < sum(sm, "nackcast_sender_channel_bytes", "channel", ch) {
			t.Errorf("channel %s: %v content bytes multicast, less than the channel", ch, got)
		}
	}

	for _, r := range rs {
		id := r.Status(false).GetReceiverId()
		m := gather(t, r.Collector())
		if sum(m, "nackcast_receiver_complete") != 1 {
			t.Errorf("%s: nackcast_receiver_complete is not 1", id)
		}
		if got := label(t, m, "nackcast_receiver_active_sender_info", "sender", "role", "primary"); got != sn.addr {
			t.Errorf("%s: follows %q, want the primary %s", id, got, sn.addr)
		}
		if got := sum(m, "nackcast_receiver_active_epoch", "role", "primary"); got != epoch {
			t.Errorf("%s: active epoch %v, the sender's is %v", id, got, epoch)
		}
		if sum(m, "nackcast_receiver_packets_dropped_total", "reason", "injected") == 0 {
			t.Errorf("%s: no injected drop counted", id)
		}
		if sum(m, "nackcast_receiver_packets_dropped_total", "reason", "duplicate") != 0 || sum(m, "nackcast_receiver_packets_dropped_total", "reason", "foreign") != 0 {
			t.Errorf("%s: duplicates or foreign packets counted as drops", id)
		}
		if _, ok := m["nackcast_receiver_packets_duplicate_total"]; !ok {
			t.Errorf("%s: no nackcast_receiver_packets_duplicate_total", id)
		}
		if last := sum(m, "nackcast_receiver_last_packet_timestamp_seconds"); last < float64(start.Unix()) {
			t.Errorf("%s: last packet at %v, before the test began (%d)", id, last, start.Unix())
		}
		for ch, n := range objects {
			if sum(m, "nackcast_receiver_channel_complete", "channel", ch) != 1 {
				t.Errorf("%s: channel %s not complete in the metrics", id, ch)
			}
			if got := sum(m, "nackcast_receiver_objects", "channel", ch, "state", "complete"); got != n {
				t.Errorf("%s: channel %s: %v complete objects, want %v", id, ch, got, n)
			}
			if have, total := sum(m, "nackcast_receiver_bytes_have", "channel", ch), sum(m, "nackcast_receiver_channel_bytes", "channel", ch); have != total || total == 0 {
				t.Errorf("%s: channel %s: %v of %v bytes held", id, ch, have, total)
			}
			want := label(t, sm, "nackcast_sender_channel_manifest_info", "version", "channel", ch)
			if got := label(t, m, "nackcast_receiver_channel_manifest_info", "version", "channel", ch); got != want {
				t.Errorf("%s: channel %s: manifest %s, the sender's is %s", id, ch, got, want)
			}
			if got := label(t, m, "nackcast_receiver_channel_manifest_info", "sender", "channel", ch); got != "sender" {
				t.Errorf("%s: channel %s: manifest from %q, want the sender's id %q", id, ch, got, "sender")
			}
			began := sum(m, "nackcast_receiver_channel_distribution_started_timestamp_seconds", "channel", ch)
			progress := sum(m, "nackcast_receiver_channel_last_progress_timestamp_seconds", "channel", ch)
			done := sum(m, "nackcast_receiver_channel_last_complete_timestamp_seconds", "channel", ch)
			if began < float64(start.Unix()) || progress < began || done < began || done > float64(time.Now().Unix()+1) {
				t.Errorf("%s: channel %s: distribution started %v, last progress %v, complete %v: want start <= progress, complete <= now", id, ch, began, progress, done)
			}
			if sum(m, "nackcast_receiver_channel_problem", "channel", ch) != 0 {
				t.Errorf("%s: channel %s reports a problem while complete", id, ch)
			}
			if len(m["nackcast_receiver_channel_problem"].GetMetric()) == 0 {
				t.Errorf("%s: no nackcast_receiver_channel_problem series", id)
			}
		}
	}
}
