package engine

import (
	"bufio"
	"context"
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

	c := dialSend(t, g.addr, wsUpgrade("/ws"))
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
	chunk, wantSum := patterned('a', size)
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
	g := tunnelGateway(t, up)
	upgrade := func(path string) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", g.addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		c.(*net.TCPConn).SetReadBuffer(64 << 10)
		_, err = io.WriteString(c, wsUpgrade(path))
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

// tunnelGateway is a gateway with one loop and a WebSocket route /* to up.
func tunnelGateway(t *testing.T, up string) *testGateway {
	rt := routeTo("ws", "/", up)
	rt.URI = "/*"
	rt.EnableWebsocket = true
	return startTestGateway(t, 1, snapshot(rt))
}

// wsUpgrade is a WebSocket upgrade request for path.
func wsUpgrade(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
}

// echoTunnelUpstream answers GET /big with size bytes and an upgrade with
// 101 followed at once (same write) by "hi\n", then echoes lines
// upper-cased; with hangUp it sends "bye\n" 20 ms later and closes instead.
func echoTunnelUpstream(t *testing.T, size int, hangUp bool) string {
	return acceptEach(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(r)
			if err != nil {
				return
			}
			if req.Header.Get("Upgrade") == "" {
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
				c.Write(make([]byte, size))
				continue
			}
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhi\n")
			if hangUp {
				time.Sleep(20 * time.Millisecond)
				io.WriteString(c, "bye\n")
				return
			}
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				io.WriteString(c, strings.ToUpper(line))
			}
		}
	})
}

// upgradeBehindBig sends GET /big (size bytes) with an upgrade to /ws and
// early pipelined behind it, then reads the big response at ~8 MiB/s,
// sending late when 7/8 of it arrived: the 101 comes back while the
// gateway still holds the end of the big response, so the tunnel's
// hand-off waits. It returns the connection and its reader, at the 101.
func upgradeBehindBig(t *testing.T, addr string, size int, early, late string) (net.Conn, *bufio.Reader) {
	c := dialSend(t, addr, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"+wsUpgrade("/ws")+early)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, &http.Request{Method: "GET"})
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	// read at ~8 MiB/s: the last MiBs are still in the gateway when the
	// 101 arrives; a line goes out near the end
	buf := make([]byte, 64<<10)
	var n int
	for n < size {
		m, err := resp.Body.Read(buf)
		n += m
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if n >= size-size/8 && n-m < size-size/8 {
			_, err = io.WriteString(c, late)
			require.NoError(t, err)
		}
		time.Sleep(8 * time.Millisecond)
	}
	require.EqualValues(t, size, n)
	return c, r
}

// TestTunnelHandoffWaitsForUnsentResponse: an upgrade pipelined behind a
// response the client reads slowly. The 101 comes back while gnet still
// holds bytes of that response for the client, and the tunnel's sockets
// cannot leave the loop then (closing its conn would drop them): the
// hand-off waits until they drained. Everything arrives in order: the
// response, the 101, the upstream's bytes sent with the 101, and the echo
// of lines the client sent right behind its upgrade request and near the
// end of the big response (those usually travel as pipelined bytes, before
// the 101: bytes arriving during the wait are TestTunnelBytesWhileHandoffWaits's
// and TestTunnelPendingKeepsLastBytes's).
func TestTunnelHandoffWaitsForUnsentResponse(t *testing.T) {
	const size = 16 << 20
	up := echoTunnelUpstream(t, size, false)
	g := tunnelGateway(t, up)
	c, r := upgradeBehindBig(t, g.addr, size, "early\n", "late\n")
	resp, err := http.ReadResponse(r, &http.Request{Method: "GET"})
	require.NoError(t, err)
	require.Equal(t, 101, resp.StatusCode)
	for _, want := range []string{"hi\n", "EARLY\n", "LATE\n"} {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, want, line)
	}
	_, err = io.WriteString(c, "ping\n")
	require.NoError(t, err)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "PING\n", line)
}

// TestTunnelBytesWhileHandoffWaits: the client sends a line while its
// tunnel's hand-off waits (the 101 is out, the end of a big response is
// still in gnet's buffer and the client's small receive window holds it
// there): the line stays in the loop's buffer and goes first once the
// tunnel runs, and the upstream's echo comes back in order. The gateway
// buffers without a cap here, so it reads the whole response and the 101
// at once, while megabytes still wait for the client.
func TestTunnelBytesWhileHandoffWaits(t *testing.T) {
	const size = 8 << 20
	waits := make(chan struct{}, 1)
	hook := func() {
		select {
		case waits <- struct{}{}:
		default:
		}
	}
	testHookHandoffWaits.Store(&hook)
	defer testHookHandoffWaits.Store(nil)
	rt := routeTo("ws", "/*", echoTunnelUpstream(t, size, false))
	rt.EnableWebsocket = true
	g := startTestGatewayOpts(t, 1, snapshot(rt), func(o *Options) { o.MaxBuffered = -1 })
	c, err := net.Dial("tcp", g.addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.(*net.TCPConn).SetReadBuffer(64<<10)) // the kernel must not absorb the response
	_, err = io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"+wsUpgrade("/ws"))
	require.NoError(t, err)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, &http.Request{Method: "GET"})
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	buf := make([]byte, 32<<10)
	sent := false
	for n := 0; n < size; {
		if !sent {
			select {
			case <-waits: // the hand-off waits for the client to read: send now
				_, err = io.WriteString(c, "during\n")
				require.NoError(t, err)
				sent = true
			default:
			}
		}
		m, err := resp.Body.Read(buf)
		n += m
		if err == io.EOF {
			require.EqualValues(t, size, n)
			break
		}
		require.NoError(t, err)
		time.Sleep(4 * time.Millisecond) // ~8 MiB/s
	}
	require.True(t, sent, "the hand-off never had to wait: the test did not reach its case")
	resp, err = http.ReadResponse(r, &http.Request{Method: "GET"})
	require.NoError(t, err)
	require.Equal(t, 101, resp.StatusCode)
	for _, want := range []string{"hi\n", "DURING\n"} {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, want, line)
	}
	_, err = io.WriteString(c, "after\n")
	require.NoError(t, err)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "AFTER\n", line)
}

// TestTunnelCountedAndEndedByShutdown: a running tunnel counts as an open
// connection, and Shutdown ends it (the client sees the close).
func TestTunnelCountedAndEndedByShutdown(t *testing.T) {
	up := echoTunnelUpstream(t, 0, false)
	rt := routeTo("ws", "/ws", up)
	rt.EnableWebsocket = true
	g := startTestGateway(t, 1, snapshot(rt))
	c := dialSend(t, g.addr, wsUpgrade("/ws"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, &http.Request{Method: "GET"})
	require.NoError(t, err)
	require.Equal(t, 101, resp.StatusCode)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "hi\n", line)
	assert.EqualValues(t, 1, g.srv.ConnStats().Open)

	require.NoError(t, g.srv.Shutdown(context.Background()))
	_, err = r.ReadString('\n')
	require.Error(t, err, "the tunnel outlived Shutdown")
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the tunnel outlived Shutdown")
}

// TestTunnelPendingKeepsLastBytes: an upstream that sends its last
// message and closes while its tunnel waits to be handed off: the message
// still reaches the client, then the close.
func TestTunnelPendingKeepsLastBytes(t *testing.T) {
	const size = 16 << 20
	up := echoTunnelUpstream(t, size, true)
	g := tunnelGateway(t, up)
	_, r := upgradeBehindBig(t, g.addr, size, "", "")
	resp, err := http.ReadResponse(r, &http.Request{Method: "GET"})
	require.NoError(t, err)
	require.Equal(t, 101, resp.StatusCode)
	rest, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, "hi\nbye\n", string(rest))
}

// TestUpgradeOnlyToWebSocket: the upstream is asked for websocket alone,
// whatever else the client listed, and a 101 to another protocol (h2c
// would make the tunnel an unrouted HTTP/2 connection) is refused.
func TestUpgradeOnlyToWebSocket(t *testing.T) {
	asked := make(chan string, 2)
	up := acceptEach(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		asked <- req.Header.Get("Upgrade")
		proto := "websocket"
		if req.URL.Path == "/h2c" {
			proto = "h2c"
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: "+proto+"\r\nConnection: Upgrade\r\n\r\n")
		time.Sleep(time.Second)
	})
	g := tunnelGateway(t, up)
	for _, tc := range []struct {
		path   string
		status int
	}{{"/ws", 101}, {"/h2c", 502}} {
		c := dialSend(t, g.addr, "GET "+tc.path+" HTTP/1.1\r\nHost: x\r\nUpgrade: h2c, websocket\r\nConnection: Upgrade\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
		require.NoError(t, err, tc.path)
		assert.Equal(t, tc.status, resp.StatusCode, tc.path)
		assert.Equal(t, "websocket", <-asked, tc.path)
	}
}
