package engine

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/internal/testupstream"
	"github.com/sluice-gw/sluice/model"
	"github.com/sluice-gw/sluice/router"
)

// testGateway is an in-process Server on a free port.
type testGateway struct {
	srv  *Server
	pub  *router.Publisher
	b    *router.Builder
	addr string
	logs *lockedWriter
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func snapshot(routes ...*model.Route) *model.Snapshot {
	s := model.NewSnapshot()
	s.Routes = routes
	return s
}

func routeTo(id, uri string, nodes ...string) *model.Route {
	up := &model.Upstream{}
	for _, n := range nodes {
		host, port, _ := net.SplitHostPort(n)
		var p int
		fmt.Sscan(port, &p)
		up.Nodes = append(up.Nodes, model.Node{Host: host, Port: p, Weight: 1})
	}
	return &model.Route{ID: model.ID(id), URI: uri, Upstream: up}
}

type lockedWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// dialSend connects to the gateway at addr and sends req; the connection
// closes with the test.
func dialSend(t testing.TB, addr, req string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	_, err = io.WriteString(c, req)
	require.NoError(t, err)
	return c
}

// roundTrip sends req on a new connection to addr (closed with the test)
// and reads one response, failing the test if none comes within 5 s.
func roundTrip(t testing.TB, addr, req string) *http.Response {
	t.Helper()
	c := dialSend(t, addr, req)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err, "%q", req)
	return resp
}

// dialBig asks addr for GET /big with a 64 KiB receive window, so the
// kernel does not absorb the response and the gateway's own buffering
// shows.
func dialBig(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.(*net.TCPConn).SetReadBuffer(64<<10))
	_, err = io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	return c
}

func startTestGateway(t testing.TB, loops int, snap *model.Snapshot) *testGateway {
	t.Helper()
	return startTestGatewayOpts(t, loops, snap, nil)
}

// startTestGatewayOpts is startTestGateway with Options changed by opt.
func startTestGatewayOpts(t testing.TB, loops int, snap *model.Snapshot, opt func(*Options)) *testGateway {
	t.Helper()
	g := &testGateway{pub: &router.Publisher{}, b: &router.Builder{}, addr: freeAddr(t), logs: &lockedWriter{b: &strings.Builder{}}}
	tbl, err := g.b.Build(snap)
	require.NoError(t, err)
	g.pub.Store(tbl)
	o := Options{
		Listen:    []string{g.addr},
		Loops:     loops,
		Publisher: g.pub,
		Version:   "test",
		Logger:    slog.New(slog.NewTextHandler(g.logs, nil)),
	}
	if opt != nil {
		opt(&o)
	}
	g.srv = New(o)
	require.NoError(t, g.srv.Start())
	t.Cleanup(func() { g.srv.Shutdown(t.Context()) })
	return g
}

func (g *testGateway) swap(t testing.TB, snap *model.Snapshot) {
	tbl, err := g.b.Build(snap)
	require.NoError(t, err)
	g.pub.Store(tbl)
}

func TestInProcessRoundTrip(t *testing.T) {
	up, err := testupstream.Start(testupstream.JSON)
	require.NoError(t, err)
	defer up.Close()
	g := startTestGateway(t, 1, snapshot(routeTo("r1", "/chat/completions", up.Addr())))
	resp, err := http.Post("http://"+g.addr+"/chat/completions", "application/json", strings.NewReader(`{"a":1}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "sluice/test", resp.Header.Get("Server"))
	assert.Equal(t, `{"id":"c1","object":"ok"}`+"\n", string(body))
}

// TestPanicRecovered: a panic while handling a request answers 500, is
// logged with the route id, and the gateway keeps serving.
func TestPanicRecovered(t *testing.T) {
	up, err := testupstream.Start(testupstream.JSON)
	require.NoError(t, err)
	defer up.Close()
	g := startTestGateway(t, 1, snapshot(routeTo("boom", "/boom", up.Addr()), routeTo("ok", "/ok", up.Addr())))
	hook := func(r *router.Route) {
		if r.ID == "boom" {
			panic("injected")
		}
	}
	testHookDispatch.Store(&hook)
	defer testHookDispatch.Store(nil)
	resp, err := http.Get("http://" + g.addr + "/boom")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 500, resp.StatusCode)
	assert.Contains(t, string(body), "error_msg")
	logs := g.logs.String()
	assert.Contains(t, logs, "route=boom")
	resp, err = http.Get("http://" + g.addr + "/ok")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
}

// TestSwapUnderLoad: tables swapped 100 times while clients send requests:
// no request fails, and each is answered by the old or the new upstream.
func TestSwapUnderLoad(t *testing.T) {
	a, err := testupstream.Start(testupstream.JSON)
	require.NoError(t, err)
	defer a.Close()
	b, err := testupstream.Start(testupstream.JSON)
	require.NoError(t, err)
	defer b.Close()
	g := startTestGateway(t, 2, snapshot(routeTo("r", "/v1/*", a.Addr())))
	var stop atomic.Bool
	var failed, done atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", g.addr)
			if err != nil {
				failed.Add(1)
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			for !stop.Load() {
				c.Write([]byte("GET /v1/x HTTP/1.1\r\nHost: x\r\n\r\n"))
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Logf("read: %v", err)
					failed.Add(1)
					return
				}
				rb, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Logf("status %d %s", resp.StatusCode, rb)
					failed.Add(1)
				}
				done.Add(1)
			}
		}()
	}
	for i := 0; i < 100; i++ {
		node := a.Addr()
		if i%2 == 1 {
			node = b.Addr()
		}
		g.swap(t, snapshot(routeTo("r", "/v1/*", node)))
		time.Sleep(2 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	assert.Zero(t, failed.Load())
	assert.Greater(t, done.Load(), int64(100))
	assert.Greater(t, a.Requests.Load(), int64(0))
	assert.Greater(t, b.Requests.Load(), int64(0))
}

// TestNoNodeAvailable: an upstream whose nodes all have weight 0 answers
// 502 and leaves nothing counted in flight (so a drain does not wait).
func TestNoNodeAvailable(t *testing.T) {
	up, err := testupstream.Start(testupstream.JSON)
	require.NoError(t, err)
	defer up.Close()
	r := routeTo("r", "/x", up.Addr(), up.Addr())
	for i := range r.Upstream.Nodes {
		r.Upstream.Nodes[i].Weight = 0
	}
	r.Upstream.Nodes[1].Port++ // two distinct nodes
	g := startTestGateway(t, 1, snapshot(r))
	resp, err := http.Get("http://" + g.addr + "/x")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 502, resp.StatusCode)
	assert.JSONEq(t, `{"error_msg":"no upstream node available"}`, string(body))
	assert.Zero(t, g.srv.Active())
	assert.Zero(t, up.Requests.Load())
}
