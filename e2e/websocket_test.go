package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/internal/testca"
)

// TestWebSocketTunnel: "Upgrade: websocket" on a route with
// enable_websocket → 101 → bytes flow both ways until either side closes.
// Without enable_websocket the Upgrade is not forwarded.
func TestWebSocketTunnel(t *testing.T) {
	closed := make(chan struct{}, 1)
	up := startUpstream(t, "ws", wsEcho(closed))
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
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream side of the tunnel stayed open after the client closed")
	}
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

// switchProtocols takes the connection of w and answers 101 on it.
func switchProtocols(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, bool) {
	c, brw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return nil, nil, false
	}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if brw.Flush() != nil {
		c.Close()
		return nil, nil, false
	}
	return c, brw, true
}

// wsEcho answers a WebSocket upgrade with 101 and echoes lines
// upper-cased until the peer closes (then it signals closed) or sends
// "bye" (then it closes); other requests get "no upgrade".
func wsEcho(closed chan<- struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			w.Write([]byte("no upgrade"))
			return
		}
		c, brw, ok := switchProtocols(w)
		if !ok {
			return
		}
		defer c.Close()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				closed <- struct{}{}
				return
			}
			if line == "bye\n" {
				return
			}
			brw.WriteString(strings.ToUpper(line))
			brw.Flush()
		}
	}
}

// TestWebSocketOverHTTPSUpstream: a tunnel to a scheme https upstream
// (wss): its upstream side is the TLS bridge, and 4 MiB each way pass
// intact; when the upstream closes, the client's side closes too.
func TestWebSocketOverHTTPSUpstream(t *testing.T) {
	ca := testca.New(t, "sluice test CA")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ca.Issue(t)}})
	require.NoError(t, err)
	closed := make(chan struct{}, 1)
	srv := &http.Server{Handler: wsEcho(closed)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	routes := routesDoc(fmt.Sprintf(`  - id: "wss"
    uri: /ws
    enable_websocket: true
    upstream:
      type: roundrobin
      scheme: https
      pass_host: node
      nodes:
        "localhost:%d": 1
`, ln.Addr().(*net.TCPAddr).Port))
	gw := startGatewayTrusting(t, ca, routes)

	rc := dialRaw(t, gw.addr())
	rc.send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	rc.c.SetDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(rc.r, &http.Request{Method: "GET"})
	require.NoError(t, err)
	require.Equal(t, 101, resp.StatusCode)
	// 64 Ki lines of 64 bytes: written at full speed while the echo is read
	line := strings.Repeat("a", 63) + "\n"
	const lines = 64 << 10
	go func() {
		w := bufio.NewWriterSize(rc.c, 64<<10)
		for i := 0; i < lines; i++ {
			w.WriteString(line)
		}
		w.Flush()
	}()
	want := strings.ToUpper(line)
	for i := 0; i < lines; i++ {
		got, err := rc.r.ReadString('\n')
		require.NoError(t, err, "line %d", i)
		require.Equal(t, want, got, "line %d", i)
	}
	// the upstream ends the tunnel: the client sees the close
	rc.send("bye\n")
	assert.True(t, rc.closedWithin(5*time.Second), "the client side stayed open after the upstream closed")
}
