package engine

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
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
