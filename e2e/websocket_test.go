package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWebSocketTunnel: "Upgrade: websocket" on a route with
// enable_websocket → 101 → bytes flow both ways until either side closes.
// Without enable_websocket the Upgrade is not forwarded.
func TestWebSocketTunnel(t *testing.T) {
	up := startUpstream(t, "ws", func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			w.Write([]byte("no upgrade"))
			return
		}
		c, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		// echo upper-cased lines until the client closes
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString(strings.ToUpper(line))
			brw.Flush()
		}
	})
	routes := routesDoc(
		route("ws", "/ws", "    enable_websocket: true\n", up.addr()),
		route("plain", "/plain", "", up.addr()),
	)
	gw := startGateway(t, 1, "", routes)

	rc := dialRaw(t, gw.addr())
	rc.send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(rc.r, &http.Request{Method: "GET"})
	require.NoError(t, err)
	assert.Equal(t, 101, resp.StatusCode)
	assert.True(t, strings.EqualFold(resp.Header.Get("Upgrade"), "websocket"))
	for _, msg := range []string{"hello\n", "second frame\n"} {
		rc.send(msg)
		line, err := rc.r.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, strings.ToUpper(msg), line)
	}
	// the client closes: the gateway closes the upstream side too, and a
	// new request on a new connection still works
	rc.c.Close()
	resp2, err := client.Get(gw.url("/plain"))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	assert.Equal(t, "no upgrade", string(b))

	// no enable_websocket: Upgrade is dropped, a normal response comes back
	rc = dialRaw(t, gw.addr())
	rc.send("GET /plain HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	resp, body, err := rc.readResponse("GET")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "no upgrade", string(body))
}
