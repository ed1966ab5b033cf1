package wire_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nackcast/nackcast/pkg/mcast"
	"github.com/nackcast/nackcast/pkg/wire"
)

// TestControlFilter attaches the filter to a real multicast socket on lo:
// DATA and PARITY sent before an END and an ANNOUNCE never reach it, the
// END and the ANNOUNCE do, in order.
func TestControlFilter(t *testing.T) {
	prog, err := wire.ControlFilter()
	if err != nil {
		t.Fatal(err)
	}
	c := mcast.DefaultConfig()
	c.Port = 20000 + rand.IntN(20000)
	c.NoOffload = true
	r, err := mcast.NewReceiver(c, wire.MaxPacket)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.SetFilter(prog); err != nil {
		t.Fatal(err)
	}
	s, err := mcast.NewSender(c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := wire.Header{Epoch: 7, Channel: 1, Object: 2, ObjVersion: 3}
	data, err := wire.AppendData(nil, h, []byte("chunk"))
	if err != nil {
		t.Fatal(err)
	}
	parity, err := wire.AppendParity(nil, h, wire.Parity{Block: 4, Total: 2, Index: 0}, []byte("shard"))
	if err != nil {
		t.Fatal(err)
	}
	end := wire.AppendEnd(nil, h, wire.End{ChunkCount: 1, Pass: 1, Size: 5, Seq: 1})
	ann, err := wire.AppendAnnounce(nil, wire.Header{Epoch: 7, Channel: 1}, wire.Announce{ManifestVersion: 9, ObjectCount: 1, Name: []byte("c")})
	if err != nil {
		t.Fatal(err)
	}
	var dgrams [][][]byte
	for i := 0; i < 20; i++ {
		dgrams = append(dgrams, [][]byte{data}, [][]byte{parity})
	}
	dgrams = append(dgrams, [][]byte{end}, [][]byte{ann})
	if _, err := s.Send(dgrams); err != nil {
		t.Fatal(err)
	}
	if err := r.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var types []wire.Type
	for len(types) < 2 {
		batch, err := r.Read()
		if err != nil {
			t.Fatalf("after %v: %v", types, err)
		}
		for _, b := range batch {
			h, _, err := wire.Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			types = append(types, h.Type)
		}
	}
	if len(types) != 2 || types[0] != wire.TypeEnd || types[1] != wire.TypeAnnounce {
		t.Errorf("received %v, want [END ANNOUNCE]", types)
	}
}
