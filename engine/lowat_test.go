package engine

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A fast upload makes the loop ask for big reads (SO_RCVLOWAT); when the
// client then slows to a trickle, what it sends is still relayed within a
// few sweeps, not held until a read's worth arrived, and the body timeout
// counts its real reads.
func TestLowatSlowClientRelayed(t *testing.T) {
	var got atomic.Int64
	up := acceptEach(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		buf := make([]byte, 64<<10)
		for {
			n, err := req.Body.Read(buf)
			got.Add(int64(n))
			if err != nil {
				break
			}
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	g := startTestGatewayOpts(t, 1, snapshot(routeTo("1", "/up", up)), func(o *Options) { o.BodyTimeout = time.Second })
	const fast, size = 600 << 10, 700 << 10
	c := dialSend(t, g.addr, fmt.Sprintf("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size))
	_, err := c.Write(make([]byte, fast))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return got.Load() == fast }, 5*time.Second, 5*time.Millisecond, "the fast part arrives")
	// trickle 1 KiB every 50 ms for 1.5 s: longer than the body timeout,
	// and far below what a big read waits for
	start := time.Now()
	for sent := 0; time.Since(start) < 1500*time.Millisecond; sent++ {
		_, err := c.Write(make([]byte, 1<<10))
		require.NoError(t, err)
		time.Sleep(50 * time.Millisecond)
		if sent == 10 {
			assert.Greater(t, got.Load(), int64(fast+5<<10), "trickled bytes are relayed as they come")
		}
	}
	sent := got.Load()
	_, err = c.Write(make([]byte, size-int(sent)))
	require.NoError(t, err)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode, "no 408: the trickle counted as reads")
	assert.EqualValues(t, size, got.Load())
}

// After a large body on a keep-alive connection, a small next request
// still wakes the loop (the big-read threshold is reset).
func TestLowatResetForNextRequest(t *testing.T) {
	up := serveRequests(t, func(c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	g := startTestGateway(t, 1, snapshot(routeTo("1", "/up", up)))
	c := dialSend(t, g.addr, fmt.Sprintf("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 4<<20))
	chunk := strings.Repeat("a", 64<<10)
	for i := 0; i < 64; i++ {
		_, err := io.WriteString(c, chunk)
		require.NoError(t, err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	require.Equal(t, 200, resp.StatusCode)
	_, err = io.WriteString(c, "GET /up HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	resp, err = http.ReadResponse(r, nil)
	require.NoError(t, err, "the small next request was served")
	assert.Equal(t, 200, resp.StatusCode)
}

// An upgrade whose request had a body, answered 101 mid-body: the tunnel
// gets the socket with the kernel's default threshold, so a client's
// small frames are relayed at once.
func TestLowatResetForTunnel(t *testing.T) {
	const part = 512 << 10 // two full reads: the threshold is up when the 101 comes
	got := make(chan string, 1)
	up := acceptEach(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		if _, err := http.ReadRequest(r); err != nil {
			return
		}
		if _, err := io.ReadFull(r, make([]byte, part)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		p := make([]byte, 4)
		_, err := io.ReadFull(r, p)
		got <- fmt.Sprint(string(p), err)
	})
	g := tunnelGateway(t, up)
	c := dialSend(t, g.addr, fmt.Sprintf("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: %d\r\n\r\n", 1<<20))
	_, err := c.Write(make([]byte, part))
	require.NoError(t, err)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	require.Equal(t, 101, resp.StatusCode)
	time.Sleep(100 * time.Millisecond) // the tunnel is waiting on the socket now
	_, err = io.WriteString(c, "ping")
	require.NoError(t, err)
	assert.Equal(t, "ping<nil>", <-got, "tunnel bytes reach the upstream")
}

// An answer the gateway makes mid-body (here a 502: the upstream closed
// while the body streamed) lingers to drain what the client still sends.
// The threshold raised for the body's big reads must be back to the
// kernel's default for that, also when the client was paused (the
// upstream stopped reading) as the answer came: read on the gateway's own
// socket, it is 1, so a client that sends a last few bytes and stops is
// drained, not reset at the close.
func TestLowatResetForLinger(t *testing.T) {
	const part = 512 << 10 // two full reads: the threshold is up
	release := make(chan struct{})
	up := acceptEach(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		if _, err := http.ReadRequest(r); err != nil {
			return
		}
		io.ReadFull(r, make([]byte, part))
		<-release
		c.Close() // no response: the gateway answers 502 with most of the body unread
	})
	g := startTestGateway(t, 1, snapshot(routeTo("1", "/up", up)))
	c := dialSend(t, g.addr, fmt.Sprintf("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 64<<20))
	_, err := c.Write(make([]byte, part))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return serverRcvLowat(t, c) > 1 }, 5*time.Second, time.Millisecond,
		"the body is read in big reads first")
	// more body than the upstream's socket and the gateway's cap hold: the
	// gateway pauses the client
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		c.Write(make([]byte, 24<<20))
	}()
	time.Sleep(300 * time.Millisecond)
	close(release)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	require.Equal(t, 502, resp.StatusCode)
	assert.Equal(t, 1, serverRcvLowat(t, c), "the linger reads every byte")
	c.Close()
	<-wrote
}

// serverRcvLowat reads SO_RCVLOWAT on the gateway's end of the client
// connection c (the test gateway runs in this process): the socket whose
// local and peer addresses are c's, swapped; -1 if there is none.
func serverRcvLowat(t *testing.T, c net.Conn) int {
	local, peer := c.RemoteAddr().(*net.TCPAddr), c.LocalAddr().(*net.TCPAddr)
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		sa, err := unix.Getsockname(fd)
		if err != nil || !sameAddr(sa, local) {
			continue
		}
		if pa, err := unix.Getpeername(fd); err != nil || !sameAddr(pa, peer) {
			continue
		}
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVLOWAT)
		require.NoError(t, err)
		return v
	}
	return -1
}

func sameAddr(sa unix.Sockaddr, a *net.TCPAddr) bool {
	in, ok := sa.(*unix.SockaddrInet4)
	return ok && in.Port == a.Port && net.IP(in.Addr[:]).Equal(a.IP)
}
