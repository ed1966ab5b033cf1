package tlsconf

import (
	"bytes"
	"errors"
	"io"
	"net"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/credentials"
)

// PlaintextRefusal is the text a plaintext client gets from a port that
// requires TLS, in the HTTP/2 GOAWAY frame that closes its connection
// (grpc-go, grpcurl and nackctl show it in their error).
const PlaintextRefusal = "nackcast: this port requires mutual TLS; connect with a client certificate (nackctl -tls-ca/-tls-cert/-tls-key or NACKCAST_TLS_*; grpcurl -cacert/-cert/-key)"

// ErrPlaintextClient is returned by the handshake of RefusePlaintext's
// credentials when a client spoke plaintext HTTP/2.
var ErrPlaintextClient = errors.New("plaintext HTTP/2 client on a TLS port: refused with GOAWAY INADEQUATE_SECURITY")

// h2Preface is how a plaintext HTTP/2 client's first bytes begin; a TLS
// client's begin with a handshake record (0x16).
var h2Preface = []byte("PRI *")

// RefusePlaintext wraps server TLS credentials so that a client speaking
// plaintext HTTP/2 to the TLS port is told so, in an HTTP/2 GOAWAY with
// error code INADEQUATE_SECURITY and PlaintextRefusal as its debug data,
// instead of seeing a bare EOF.
func RefusePlaintext(c credentials.TransportCredentials) credentials.TransportCredentials {
	return refusePlaintext{c}
}

type refusePlaintext struct {
	credentials.TransportCredentials
}

func (r refusePlaintext) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	head := make([]byte, len(h2Preface))
	n, err := io.ReadFull(raw, head)
	if err != nil {
		return nil, nil, err
	}
	if bytes.Equal(head, h2Preface) {
		refuse(raw)
		return nil, nil, ErrPlaintextClient
	}
	return r.TransportCredentials.ServerHandshake(&replayConn{Conn: raw, head: head[:n]})
}

func (r refusePlaintext) Clone() credentials.TransportCredentials {
	return refusePlaintext{r.TransportCredentials.Clone()}
}

// refuse answers a plaintext HTTP/2 client as a tiny HTTP/2 server would:
// its SETTINGS, then every request it makes (at most 16, within 5 s) with
// a gRPC status UNAUTHENTICATED carrying PlaintextRefusal, then GOAWAY
// with INADEQUATE_SECURITY. A gRPC client therefore reports a status
// error with the reason, where a bare close would show as EOF.
func refuse(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	rest := make([]byte, len(http2.ClientPreface)-len(h2Preface))
	if _, err := io.ReadFull(c, rest); err != nil || !bytes.Equal(append(append([]byte{}, h2Preface...), rest...), []byte(http2.ClientPreface)) {
		return
	}
	fr := http2.NewFramer(c, c)
	// Frames up to 16 KiB (HTTP/2's default), not the framer's 16 MiB: a
	// client that announces a large frame must not make an unauthenticated
	// connection pin megabytes.
	fr.SetMaxReadFrameSize(16 << 10)
	if fr.WriteSettings() != nil {
		return
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for answered := 0; answered < 16; {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() && fr.WriteSettingsAck() != nil {
				return
			}
		case *http2.HeadersFrame:
			block.Reset()
			for _, h := range [][2]string{{":status", "200"}, {"content-type", "application/grpc"},
				{"grpc-status", "16"}, {"grpc-message", PlaintextRefusal}} {
				_ = enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
			}
			if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}) != nil {
				return
			}
			answered++
		}
		if answered > 0 {
			// The first answer given, wait no longer for more.
			_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		}
	}
	_ = fr.WriteGoAway(0, http2.ErrCodeInadequateSecurity, []byte(PlaintextRefusal))
}

// replayConn gives back the bytes read to tell TLS from plaintext before
// reading on.
type replayConn struct {
	net.Conn
	head []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
