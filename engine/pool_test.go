package engine

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// onLoop runs f on l's event loop and waits for it.
func onLoop(t *testing.T, l *loop, f func()) {
	done := make(chan struct{})
	require.NoError(t, l.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		f()
		close(done)
		return nil
	})))
	<-done
}

// TestUnusedPoolsRetire: a pool nobody asked for a connection for a while
// leaves the loop's map (node addresses change with DNS and the Admin API),
// and a connection that was out while its pool retired is closed when its
// request ends instead of being kept in a pool nobody sweeps.
func TestUnusedPoolsRetire(t *testing.T) {
	defer func(d time.Duration) { poolRetireAfter = d }(poolRetireAfter)
	poolRetireAfter = 300 * time.Millisecond
	closed := make(chan struct{}, 4)
	up := acceptEach(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(r)
			if err != nil {
				closed <- struct{}{}
				return
			}
			if req.URL.Path == "/slow" {
				time.Sleep(800 * time.Millisecond) // longer than poolRetireAfter
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	g := startTestGateway(t, 1, snapshot(routeTo("r", "/*", up)))
	get := func(path string) {
		resp, err := http.Get("http://" + g.addr + path)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, "ok", string(b))
	}
	get("/slow")
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("the connection of a retired pool was kept")
	}
	l := (*g.srv.h.loops.Load())[0]
	var pools int
	onLoop(t, l, func() { pools = len(l.pools) })
	assert.Equal(t, 0, pools, "the unused pool is still in the map")

	get("/fast") // a new pool serves the next request
	onLoop(t, l, func() { pools = len(l.pools) })
	assert.Equal(t, 1, pools)
}

// A request on a pooled connection that the upstream closes without
// answering: a GET is sent again on a fresh connection (the upstream had
// most likely closed it while idle); a POST is not (the upstream may have
// read and acted on it: a chat completion sent twice is billed twice), and
// the client gets a 502, as from nginx.
func TestResendOnlyIdempotent(t *testing.T) {
	for _, method := range []string{"GET", "DELETE", "POST", "PATCH"} {
		t.Run(method, func(t *testing.T) {
			var got atomic.Int32 // requests under test the upstream read
			var conns atomic.Int32
			up := acceptEach(t, func(c net.Conn) {
				first := conns.Add(1) == 1
				r := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(r)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if req.URL.RawQuery == "" { // the request under test
						got.Add(1)
						if first {
							return // read it, then closed without an answer
						}
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			})
			g := startTestGateway(t, 1, snapshot(routeTo("1", "/up", up)))
			c := dialSend(t, g.addr, "GET /up?prime HTTP/1.1\r\nHost: x\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			r := bufio.NewReader(c)
			resp, err := http.ReadResponse(r, nil)
			require.NoError(t, err)
			io.Copy(io.Discard, resp.Body)
			require.Equal(t, 200, resp.StatusCode, "the first request pools the connection")
			_, err = io.WriteString(c, method+" /up HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\namount=10")
			require.NoError(t, err)
			resp, err = http.ReadResponse(r, nil)
			require.NoError(t, err)
			if method == "POST" || method == "PATCH" {
				assert.Equal(t, 502, resp.StatusCode)
				assert.EqualValues(t, 1, got.Load(), "sent once")
				return
			}
			assert.Equal(t, 200, resp.StatusCode, "sent again on a fresh connection")
			assert.EqualValues(t, 2, got.Load())
		})
	}
}

// stale tells an idle connection the peer closed, or sent to unasked,
// from one still open, without consuming anything.
func TestStale(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	pair := func() (mine *net.TCPConn, fd int, peer net.Conn) {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		peer, err = ln.Accept()
		require.NoError(t, err)
		raw, err := c.(*net.TCPConn).SyscallConn()
		require.NoError(t, err)
		require.NoError(t, raw.Control(func(f uintptr) { fd = int(f) }))
		return c.(*net.TCPConn), fd, peer
	}

	c, fd, peer := pair()
	assert.False(t, stale(fd), "open and quiet")
	peer.Close()
	require.Eventually(t, func() bool { return stale(fd) }, 2*time.Second, time.Millisecond, "closed by the peer")
	c.Close()

	c, fd, peer = pair()
	defer peer.Close()
	_, err = io.WriteString(peer, "HTTP/1.1 408 Request Timeout\r\n\r\n")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return stale(fd) }, 2*time.Second, time.Millisecond, "sent something unasked")
	b := make([]byte, 3)
	c.SetReadDeadline(time.Now().Add(time.Second))
	_, err = io.ReadFull(c, b)
	require.NoError(t, err)
	assert.Equal(t, "HTT", string(b), "a peek: nothing consumed")
	c.Close()
}

// A pooled connection idle a second or more is checked before use: one
// the upstream closed after the loop last looked (its FIN not yet seen
// as an event) is dropped instead of carrying a request that could not
// be sent again (a POST). The loop is held in a task while the upstream
// closes, so only get's check can see it.
func TestPoolDropsStaleOnGet(t *testing.T) {
	conns := make(chan net.Conn, 1)
	up := acceptEach(t, func(c net.Conn) {
		conns <- c
		r := bufio.NewReader(c)
		for {
			if _, err := http.ReadRequest(r); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	g := startTestGateway(t, 1, snapshot(routeTo("r", "/*", up)))
	resp, err := http.Get("http://" + g.addr + "/x")
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	upSide := <-conns
	l := (*g.srv.h.loops.Load())[0]
	var fresh, stale *upConn
	var dead bool
	onLoop(t, l, func() {
		require.Len(t, l.pools, 1)
		for _, p := range l.pools {
			fresh = p.get(l.now) // just used: not checked, handed out
			require.NotNil(t, fresh)
			p.idle = append(p.idle, fresh) // back, as release would
			fresh.inPool = true
			upSide.Close()
			time.Sleep(50 * time.Millisecond) // the FIN is in the socket, not yet an event
			stale = p.get(l.now + int64(2*time.Second))
			dead = fresh.dead
		}
	})
	assert.Nil(t, stale, "a connection the upstream closed is not handed out")
	assert.True(t, dead, "and is closed")
}
