package engine

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/engine/http1"
	"github.com/sluice-gw/sluice/model"
)

// bodyRoutes is a table where only /chat matches on the body (post_arg),
// both routes proxying to addr.
func bodyRoutes(addr string) *model.Snapshot {
	byModel := routeTo("by-model", "/chat", addr)
	byModel.Vars = json.RawMessage(`[["post_arg.model","==","gpt-4o"]]`)
	return snapshot(byModel, routeTo("other", "/other", addr))
}

// headServer accepts connections and sends each request head's first
// line to the returned channel as soon as the head has arrived (the body
// may still be on its way); it answers nothing.
func headServer(t *testing.T) (string, <-chan string) {
	heads := make(chan string, 8)
	return acceptEach(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		for {
			l, err := r.ReadString('\n')
			if err != nil || l == "\r\n" {
				break
			}
		}
		heads <- strings.TrimSpace(line)
		io.Copy(io.Discard, c)
	}), heads
}

// A table with one post_arg route must not make every request with a body
// wait for it: a request to another route is sent upstream at once.
func TestBodyWaitOnlyForRoutesThatReadIt(t *testing.T) {
	addr, heads := headServer(t)
	g := startTestGateway(t, 1, bodyRoutes(addr))
	dialSend(t, g.addr, "POST /other HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
	select {
	case h := <-heads:
		assert.Equal(t, "POST /other HTTP/1.1", h)
	case <-time.After(5 * time.Second):
		t.Fatal("the request head did not reach the upstream before its body was complete")
	}
}

// A client dribbling the body a route waits for is cut at the header
// timeout, counted from the head's first byte: neither the rest of the
// head nor new body bytes restart it.
func TestBodyWaitKeepsHeaderTimeout(t *testing.T) {
	addr, heads := headServer(t)
	const timeout = time.Second
	g := startTestGatewayOpts(t, 1, bodyRoutes(addr), func(o *Options) { o.HeaderTimeout = timeout })
	c, err := net.Dial("tcp", g.addr)
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	_, err = io.WriteString(c, "POST /chat HTTP/1.1\r\nHost: x\r\n")
	require.NoError(t, err)
	time.Sleep(timeout * 6 / 10) // the head completes late
	_, err = io.WriteString(c, "Transfer-Encoding: chunked\r\n\r\n")
	require.NoError(t, err)
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c) // returns when the gateway closes
		close(closed)
	}()
	dribble := time.NewTicker(20 * time.Millisecond)
	defer dribble.Stop()
	for end := time.After(5 * time.Second); ; {
		select {
		case <-closed:
			select {
			case h := <-heads:
				t.Fatalf("request %q reached the upstream", h)
			default:
			}
			// the deadline sweep runs every 100 ms; a timeout restarted
			// when the head completed would close at 1.6 s
			assert.Less(t, time.Since(start), timeout*14/10, "closed %v after the head's first byte", time.Since(start))
			assert.GreaterOrEqual(t, time.Since(start), timeout*9/10, "closed before the header timeout")
			return
		case <-end:
			t.Fatal("a dribbled body kept the connection open past the header timeout")
		case <-dribble.C:
			io.WriteString(c, "1\r\na\r\n")
		}
	}
}

// While waiting for a body, each packet costs its own bytes: the head is
// parsed once when it arrives and once when the body is complete, not
// again per packet.
func TestBodyWaitParsesHeadTwice(t *testing.T) {
	up := serveRequests(t, func(c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	g := startTestGateway(t, 1, bodyRoutes(up))
	var parses atomic.Int64
	hook := func() { parses.Add(1) }
	testHookParse.Store(&hook)
	defer testHookParse.Store(nil)

	c := dialSend(t, g.addr, "POST /chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	body := `{"model":"gpt-4o","messages":[]}`
	for i := 0; i < len(body); i++ {
		time.Sleep(2 * time.Millisecond) // separate packets (TCP_NODELAY)
		_, err := fmt.Fprintf(c, "1\r\n%c\r\n", body[i])
		require.NoError(t, err)
	}
	_, err := io.WriteString(c, "0\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.LessOrEqual(t, parses.Load(), int64(2), "head parses for one request whose body came in %d packets", len(body)+1)
}

// A chunked body larger than plugin.MaxPeekBody is not read for matching,
// as a Content-Length one is not: post_arg is nil, not a truncated body's
// first fields.
func TestBodyWaitLargeChunkedBodyIsNotPeeked(t *testing.T) {
	answer := func(name string) string {
		return serveRequests(t, func(c net.Conn) bool {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nX-Up: %s\r\nContent-Length: 0\r\n\r\n", name)
			return true
		})
	}
	byModel := routeTo("by-model", "/chat", answer("by-model"))
	byModel.Vars = json.RawMessage(`[["post_arg.model","==","gpt-4o"]]`)
	byModel.Priority = 10
	g := startTestGateway(t, 1, snapshot(byModel, routeTo("chat", "/chat", answer("chat"))))
	post := func(body string) string {
		req, err := http.NewRequest("POST", "http://"+g.addr+"/chat", io.MultiReader(strings.NewReader(body))) // chunked
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		return resp.Header.Get("X-Up")
	}
	assert.Equal(t, "by-model", post(`{"model":"gpt-4o","messages":[]}`))
	assert.Equal(t, "chat", post(`{"model":"gpt-4o","messages":["`+strings.Repeat("x", 70<<10)+`"]}`))
}

// FuzzBodyWait: scanning a chunked body as it arrives, in any pieces, ends
// with the answer one scan of the whole gives; once complete it stays so.
func FuzzBodyWait(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), uint8(3))
	f.Add([]byte("5\r\nhel"), uint8(1))
	f.Add([]byte("zz\r\n"), uint8(2))
	f.Add([]byte("3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\nGET / HTTP/1.1\r\n"), uint8(5))
	f.Fuzz(func(t *testing.T, body []byte, step uint8) {
		whole := (&bodyWait{kind: http1.BodyChunked}).arrived(body)
		w := &bodyWait{kind: http1.BodyChunked}
		got, n := false, 0
		for n < len(body) {
			n = min(len(body), n+1+int(step))
			done := w.arrived(body[:n])
			if got && !done {
				t.Fatalf("complete at some prefix, incomplete at %d", n)
			}
			got = done
		}
		if len(body) > 0 && got != whole {
			t.Fatalf("pieces of %d: %v, whole: %v (%q)", 1+int(step), got, whole, body)
		}
	})
}
