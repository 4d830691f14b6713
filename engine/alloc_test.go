//go:build !race

package engine

import (
	"bytes"
	"encoding/json"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/engine/accesslog"
	"github.com/sluice-gw/sluice/internal/testupstream"
	_ "github.com/sluice-gw/sluice/plugin/all"
)

// TestAllocsPerProxiedRequest: a keep-alive request through the gateway —
// parse, match, pick, upstream head, pooled upstream connection, response
// relay — allocates nothing in the whole process (client and upstream do
// not allocate either).
func TestAllocsPerProxiedRequest(t *testing.T) {
	up, err := testupstream.Start(testupstream.JSON)
	require.NoError(t, err)
	defer up.Close()
	g := startTestGateway(t, 1, snapshot(routeTo("r1", "/chat/completions", up.Addr())))
	assertNoAllocs(t, g.addr, "")
}

// TestAllocsPerProxiedRequestWithPlugins: the same with the plugins a
// production route carries — prometheus, limit-count (local),
// api-breaker, proxy-rewrite and a traffic-split over two arms — and the
// access log on: still nothing allocated per request.
func TestAllocsPerProxiedRequestWithPlugins(t *testing.T) {
	up, err := testupstream.Start(testupstream.JSON)
	require.NoError(t, err)
	defer up.Close()
	r := routeTo("r1", "/chat/completions", up.Addr())
	r.Plugins = map[string]json.RawMessage{
		"prometheus":    json.RawMessage(`{}`),
		"limit-count":   json.RawMessage(`{"count":1000000000,"time_window":60}`),
		"api-breaker":   json.RawMessage(`{"break_response_code":502}`),
		"proxy-rewrite": json.RawMessage(`{"headers":{"set":{"X-Gateway":"sluice"}}}`),
		"traffic-split": json.RawMessage(`{"rules":[{"weighted_upstreams":[
			{"upstream":{"nodes":{"` + up.Addr() + `":1}},"weight":80},{"weight":20}]}]}`),
	}
	alog, err := accesslog.New(filepath.Join(t.TempDir(), "access.log"), 1, accesslog.Options{})
	require.NoError(t, err)
	defer alog.Close()
	g := startTestGatewayOpts(t, 1, snapshot(r), func(o *Options) { o.AccessLog = alog })
	assertNoAllocs(t, g.addr, "X-RateLimit-Remaining: ")
	// the requests measured were logged: the access log was on the path
	require.Eventually(t, func() bool { return alog.Stats().Written > 100 }, 5*time.Second, 10*time.Millisecond,
		"access-log lines written: %d", alog.Stats().Written)
}

// assertNoAllocs sends keep-alive requests to addr and fails if the process
// allocates per request; every response must contain want.
func assertNoAllocs(t *testing.T, addr, want string) {
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	req := []byte("POST /chat/completions HTTP/1.1\r\nHost: GW.example:8080\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\nAuthorization: Bearer sk-x\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"model\":\"gpt\"}\n")
	buf := make([]byte, 4096)
	roundTrip := func() {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			m, err := c.Read(buf[n:])
			if err != nil {
				t.Fatal(err)
			}
			n += m
			if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i >= 0 && n >= i+4+26 {
				break
			}
		}
		if !bytes.HasPrefix(buf, []byte("HTTP/1.1 200")) || !bytes.Contains(buf[:n], []byte(want)) {
			t.Fatalf("bad response %q", buf[:n])
		}
	}
	for i := 0; i < 2000; i++ { // warm pools, cursors, buffers
		roundTrip()
	}
	allocs := testing.AllocsPerRun(5000, roundTrip)
	require.Zero(t, allocs, "allocations per proxied request")
}
