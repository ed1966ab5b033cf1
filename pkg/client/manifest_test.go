package client

import (
	"errors"
	"io"
	"testing"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

func objects(ids ...uint64) []*pb.ObjectEntry {
	var out []*pb.ObjectEntry
	for _, id := range ids {
		out = append(out, &pb.ObjectEntry{ObjectId: id})
	}
	return out
}

// TestAssembleManifest: a streamed manifest is whole or refused.
func TestAssembleManifest(t *testing.T) {
	head := func(count uint32, ids ...uint64) *pb.StreamManifestResponse {
		return &pb.StreamManifestResponse{Head: &pb.GetManifestResponse{Manifest: &pb.Manifest{Channel: "c", Version: 9}}, ObjectCount: count, Objects: objects(ids...)}
	}
	more := func(ids ...uint64) *pb.StreamManifestResponse {
		return &pb.StreamManifestResponse{Objects: objects(ids...)}
	}
	tests := []struct {
		name  string
		first *pb.StreamManifestResponse
		rest  []*pb.StreamManifestResponse
		max   int
		want  int // objects, or -1 for ErrManifestStream
	}{
		{"one message", head(2, 1, 2), nil, 0, 2},
		{"three messages", head(5, 1, 2), []*pb.StreamManifestResponse{more(3, 4), more(5)}, 0, 5},
		{"empty", head(0), nil, 0, 0},
		{"no head", more(1), nil, 0, -1},
		{"second head", head(2, 1), []*pb.StreamManifestResponse{head(2, 2)}, 0, -1},
		{"fewer than announced", head(3, 1), []*pb.StreamManifestResponse{more(2)}, 0, -1},
		{"more than announced", head(2, 1), []*pb.StreamManifestResponse{more(2, 3)}, 0, -1},
		{"over the bound", head(1_000_000, 1), nil, 10, -1},
		{"an empty message", head(2, 1), []*pb.StreamManifestResponse{more(), more(2)}, 0, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rest := tt.rest
			recv := func() (*pb.StreamManifestResponse, error) {
				if len(rest) == 0 {
					return nil, io.EOF
				}
				m := rest[0]
				rest = rest[1:]
				return m, nil
			}
			resp, err := assembleManifest("c", tt.first, recv, tt.max)
			if tt.want < 0 {
				if !errors.Is(err, ErrManifestStream) {
					t.Fatalf("err = %v, want ErrManifestStream", err)
				}
				return
			}
			if err != nil || len(resp.GetManifest().GetObjects()) != tt.want || resp.GetManifest().GetVersion() != 9 {
				t.Fatalf("assembled %v, %v; want %d objects of version 9", resp, err, tt.want)
			}
		})
	}
}
