package engine

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
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

	c, err := net.Dial("tcp", g.addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	require.NoError(t, err)
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

// TestTunnelBackpressure: a WebSocket tunnel does not buffer without
// bound in either direction — a client that does not read while the
// upstream streams 64 MiB, and an upstream that does not read while the
// client sends 64 MiB — and every byte arrives once the slow side reads.
func TestTunnelBackpressure(t *testing.T) {
	const size = 64 << 20
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = byte('a' + i%26)
	}
	want := sha256.New()
	for n := 0; n < size; n += len(chunk) {
		want.Write(chunk)
	}
	wantSum := fmt.Sprintf("%x", want.Sum(nil))
	upGot := make(chan string, 1)
	up := acceptEach(t, func(c net.Conn) {
		c.(*net.TCPConn).SetReadBuffer(64 << 10)
		r := bufio.NewReader(c)
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		if req.URL.Path == "/down" { // stream to the client
			for n := 0; n < size; n += len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
			return
		}
		time.Sleep(700 * time.Millisecond) // /up: read nothing for a while
		h := sha256.New()
		io.CopyN(h, r, size)
		upGot <- fmt.Sprintf("%x", h.Sum(nil))
	})
	rt := routeTo("ws", "/", up)
	rt.URI = "/*"
	rt.EnableWebsocket = true
	g := startTestGateway(t, 1, snapshot(rt))
	upgrade := func(path string) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", g.addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		c.(*net.TCPConn).SetReadBuffer(64 << 10)
		_, err = io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		require.NoError(t, err)
		r := bufio.NewReaderSize(c, 64<<10)
		resp, err := http.ReadResponse(r, &http.Request{Method: "GET"})
		require.NoError(t, err)
		require.Equal(t, 101, resp.StatusCode)
		return c, r
	}

	before := heapInUse()
	_, r := upgrade("/down")
	time.Sleep(700 * time.Millisecond) // the client reads nothing meanwhile
	grown := int64(heapInUse()) - int64(before)
	t.Logf("down: gateway heap grew %d KiB while the client did not read", grown>>10)
	assert.Less(t, grown, int64(8<<20), "down: buffered without bound")
	h := sha256.New()
	n, err := io.CopyN(h, r, size)
	require.NoError(t, err, "down: after %d bytes", n)
	assert.Equal(t, wantSum, fmt.Sprintf("%x", h.Sum(nil)), "down: bytes intact")

	before = heapInUse()
	c, _ := upgrade("/up")
	sent := make(chan error, 1)
	go func() {
		var err error
		for n := 0; err == nil && n < size; n += len(chunk) {
			_, err = c.Write(chunk)
		}
		sent <- err
	}()
	time.Sleep(600 * time.Millisecond) // the upstream reads nothing meanwhile
	grown = int64(heapInUse()) - int64(before)
	t.Logf("up: gateway heap grew %d KiB while the upstream did not read", grown>>10)
	assert.Less(t, grown, int64(8<<20), "up: buffered without bound")
	require.NoError(t, <-sent)
	select {
	case got := <-upGot:
		assert.Equal(t, wantSum, got, "up: bytes intact")
	case <-time.After(20 * time.Second):
		t.Fatal("up: the upstream did not get the whole stream")
	}
}
