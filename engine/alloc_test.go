//go:build !race

package engine

import (
	"bytes"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/internal/testupstream"
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
	c, err := net.Dial("tcp", g.addr)
	require.NoError(t, err)
	defer c.Close()
	req := []byte("POST /chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer sk-x\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"model\":\"gpt\"}\n")
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
		if !bytes.HasPrefix(buf, []byte("HTTP/1.1 200")) {
			t.Fatalf("bad response %q", buf[:n])
		}
	}
	for i := 0; i < 2000; i++ { // warm pools, cursors, buffers
		roundTrip()
	}
	allocs := testing.AllocsPerRun(5000, roundTrip)
	require.Zero(t, allocs, "allocations per proxied request")
}
