package engine

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

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
