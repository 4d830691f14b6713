package engine

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/model"
)

// TestTunnelIdleTimeout: a WebSocket tunnel carrying bytes stays open past
// the upstream's read timeout; one that carries none for that long is
// closed (nginx proxy_read_timeout on an upgraded connection), so a peer
// that vanished without a FIN does not hold it forever.
func TestTunnelIdleTimeout(t *testing.T) {
	up := acceptEach(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		if _, err := http.ReadRequest(r); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		for { // echo lines
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			io.WriteString(c, strings.ToUpper(line))
		}
	})
	rt := routeTo("ws", "/ws", up)
	rt.EnableWebsocket = true
	rt.Upstream.Timeout = &model.Timeout{Read: 0.4}
	g := startTestGateway(t, 1, snapshot(rt))

	c := dialSend(t, g.addr, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, &http.Request{Method: "GET"})
	require.NoError(t, err)
	require.Equal(t, 101, resp.StatusCode)

	// a message every 150 ms for 1.2 s: three read timeouts, never idle
	for i := 0; i < 8; i++ {
		time.Sleep(150 * time.Millisecond)
		_, err := io.WriteString(c, "ping\n")
		require.NoError(t, err, "message %d", i)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		line, err := r.ReadString('\n')
		require.NoError(t, err, "message %d: the busy tunnel was closed", i)
		assert.Equal(t, "PING\n", line)
	}
	// then silence: closed within the timeout and a sweep or two
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = r.ReadString('\n')
	require.Error(t, err)
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the idle tunnel stayed open for 3 s")
	assert.Less(t, time.Since(start), 2*time.Second)
}
