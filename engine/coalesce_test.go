package engine

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawUpstream answers each request by writing parts, pausing between them.
func rawUpstream(t *testing.T, parts ...string) string {
	return serveRequests(t, func(c net.Conn) bool {
		for i, p := range parts {
			if i > 0 {
				time.Sleep(10 * time.Millisecond)
			}
			if _, err := c.Write([]byte(p)); err != nil {
				return false
			}
		}
		return true
	})
}

// TestChunksWithTheHead: chunks that arrive with the response head are
// relayed with it, whole or cut mid-chunk, and the rest follows; the
// framing the client sees is intact.
func TestChunksWithTheHead(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
	for name, parts := range map[string][]string{
		"whole body with the head":  {head + "7\r\ndata: 1\r\n7\r\ndata: 2\r\n0\r\n\r\n"},
		"first event with the head": {head + "7\r\ndata: 1\r\n", "7\r\ndata: 2\r\n0\r\n\r\n"},
		"cut inside a chunk":        {head + "7\r\ndata", ": 1\r\n7\r\ndata: 2\r\n", "0\r\n\r\n"},
		"cut inside a size line":    {head + "7\r\ndata: 1\r\n", "7", "\r\ndata: 2\r\n0\r\n\r\n"},
	} {
		t.Run(name, func(t *testing.T) {
			g := startTestGateway(t, 1, snapshot(routeTo("r1", "/s", rawUpstream(t, parts...))))
			for range 2 { // and the connection stays usable
				resp, err := http.Get("http://" + g.addr + "/s")
				require.NoError(t, err)
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				assert.Equal(t, []string{"chunked"}, resp.TransferEncoding)
				assert.Equal(t, "data: 1data: 2", string(b))
			}
		})
	}
}

// TestHeadAndFirstEventInOneWrite: the response head and the SSE event
// that came with it reach the client in one write (one syscall, one client
// wake-up), before anything else of the stream exists.
func TestHeadAndFirstEventInOneWrite(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
	first := "d\r\ndata: first\n\n\r\n"
	release := make(chan struct{})
	up := serveRequests(t, func(c net.Conn) bool {
		c.Write([]byte(head + first)) // one write: one read at the gateway
		<-release
		c.Write([]byte("0\r\n\r\n"))
		return true
	})
	g := startTestGateway(t, 1, snapshot(routeTo("r1", "/s", up)))

	var writes, firstLen atomic.Int64
	hook := func(_ gnet.Conn, n int) {
		if writes.Add(1) == 1 {
			firstLen.Store(int64(n))
		}
	}
	testHookClientWrite.Store(&hook)
	defer testHookClientWrite.Store(nil)

	c := dialSend(t, g.addr, "GET /s HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(got), "data: first\n\n\r\n") {
		n, err := c.Read(buf)
		require.NoError(t, err, "got %q", got)
		got = append(got, buf[:n]...)
	}
	assert.Equal(t, int64(1), writes.Load(), "writes to the client for the head and the first event")
	assert.Equal(t, int64(len(got)), firstLen.Load(), "the one write held the head and the event")
	close(release)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !strings.HasSuffix(string(got), "0\r\n\r\n") {
		n, err := c.Read(buf)
		require.NoError(t, err, "got %q", got)
		got = append(got, buf[:n]...)
	}
}
