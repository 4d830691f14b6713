package engine

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/model"
)

// bodySink accepts connections, reads one request each and reports how
// many of its body bytes arrived before the gateway closed the connection.
func bodySink(t *testing.T) (string, <-chan int64) {
	got := make(chan int64, 8)
	return acceptEach(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			got <- -1
			return
		}
		n, _ := io.Copy(io.Discard, req.Body)
		got <- n
	}), got
}

// A client that stops sending its body gets a 408 after
// client_body_timeout, the upstream connection is closed (its partial
// request dropped), and the upstream's shorter send timeout does not
// fire instead: the upstream took every byte, the client is the one late.
func TestBodyTimeout(t *testing.T) {
	addr, got := bodySink(t)
	route := routeTo("1", "/up", addr)
	route.Upstream.Timeout = &model.Timeout{Connect: 1, Send: 0.3, Read: 5}
	const timeout = time.Second
	g := startTestGatewayOpts(t, 1, snapshot(route), func(o *Options) { o.BodyTimeout = timeout })

	start := time.Now()
	c := dialSend(t, g.addr, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	took := time.Since(start)
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, 408, resp.StatusCode, "%s", body)
	assert.Contains(t, string(body), `"error_msg"`)
	assert.True(t, resp.Close, "the connection is closed after the 408")
	assert.GreaterOrEqual(t, took, timeout*9/10, "cut before client_body_timeout")
	assert.Less(t, took, timeout*2, "cut long after client_body_timeout")
	select {
	case n := <-got:
		assert.Equal(t, int64(10), n, "body bytes the upstream got before its connection closed")
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream connection was not closed")
	}
	// the gateway goes on serving
	c2 := dialSend(t, g.addr, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
	resp2, err := http.ReadResponse(bufio.NewReader(c2), nil)
	require.NoError(t, err)
	assert.Equal(t, 404, resp2.StatusCode)
}

// client_body_timeout runs between two reads, as nginx's: a client that
// sends a byte now and then, each within the timeout, uploads a body that
// takes longer than the timeout in all.
func TestBodyTimeoutBetweenReads(t *testing.T) {
	up := serveRequests(t, func(c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	const timeout = 600 * time.Millisecond
	g := startTestGatewayOpts(t, 1, snapshot(routeTo("1", "/up", up)), func(o *Options) { o.BodyTimeout = timeout })
	c := dialSend(t, g.addr, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n")
	for i := 0; i < 6; i++ { // 6 × 300 ms: three times the timeout
		time.Sleep(timeout / 2)
		_, err := io.WriteString(c, "x")
		require.NoError(t, err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, 200, resp.StatusCode, "%s", body)
	assert.Equal(t, "ok", string(body))
}
