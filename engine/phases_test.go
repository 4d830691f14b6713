package engine

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/internal/testupstream"
	"github.com/sluice-gw/sluice/model"
	"github.com/sluice-gw/sluice/plugin"
)

// gatePlugin defers its access step until a value arrives on gate: 0 lets
// the request through, any other value answers with that status.
type gatePlugin struct{}

type gateInst struct{}

var (
	gate    = make(chan int)
	entered atomic.Int64
	resumed atomic.Int64
)

func (gatePlugin) Name() string  { return "test-gate" }
func (gatePlugin) Priority() int { return 1000 }
func (gatePlugin) Compile(json.RawMessage, *plugin.Env) (plugin.Instance, error) {
	return gateInst{}, nil
}
func (gateInst) Access(c *plugin.Ctx) plugin.Result {
	entered.Add(1)
	return c.Defer(func() plugin.Result {
		code := <-gate
		resumed.Add(1)
		if code == 0 {
			return plugin.Result{Headers: []byte("X-Gate: open\r\n")}
		}
		return plugin.Result{Status: code, Body: []byte("closed\n")}
	})
}

func init() { plugin.Register(gatePlugin{}) }

func gatedGateway(t *testing.T) (*testGateway, *testupstream.Server) {
	up, err := testupstream.Start(testupstream.JSON)
	require.NoError(t, err)
	t.Cleanup(func() { up.Close() })
	r := routeTo("r1", "/chat/completions", up.Addr())
	r.Plugins = map[string]json.RawMessage{"test-gate": json.RawMessage(`{}`)}
	return startTestGateway(t, 1, snapshot(r)), up
}

// TestDeferredStep: a step handed off the loop (Ctx.Defer) resumes the
// request on its loop — through to the upstream, or answered — and the
// loop serves other connections meanwhile.
func TestDeferredStep(t *testing.T) {
	g, _ := gatedGateway(t)
	type result struct {
		code int
		gate string
		body string
	}
	do := func() chan result {
		ch := make(chan result, 1)
		go func() {
			resp, err := http.Post("http://"+g.addr+"/chat/completions", "application/json", strings.NewReader(`{}`))
			if err != nil {
				ch <- result{code: -1, body: err.Error()}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			ch <- result{resp.StatusCode, resp.Header.Get("X-Gate"), string(b)}
		}()
		return ch
	}
	first := do()
	second := do() // another connection, while the first waits
	gate <- 0
	gate <- 429
	a, b := <-first, <-second
	got := map[int]result{a.code: a, b.code: b}
	require.Contains(t, got, 200, "%v %v", a, b)
	require.Contains(t, got, 429, "%v %v", a, b)
	assert.Equal(t, "open", got[200].gate, "a deferred result's headers reach the response")
	assert.Equal(t, "closed\n", got[429].body)
}

// TestDeferredClientGone: a client that leaves while its step runs off the
// loop is forgotten: the late result resumes nothing, the gateway goes on.
func TestDeferredClientGone(t *testing.T) {
	g, up := gatedGateway(t)
	before, in := resumed.Load(), entered.Load()
	c, err := net.Dial("tcp", g.addr)
	require.NoError(t, err)
	_, err = c.Write([]byte("POST /chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return entered.Load() == in+1 }, 5*time.Second, time.Millisecond, "the request reaches its deferred step")
	c.Close()
	require.Eventually(t, func() bool { return g.srv.ConnStats().Open == 0 }, 5*time.Second, time.Millisecond, "the loop sees the close")
	hitsBefore := up.Requests.Load() // before the step finishes: a wrong resume would count after
	gate <- 0
	require.Eventually(t, func() bool { return resumed.Load() == before+1 }, 5*time.Second, time.Millisecond)
	// the gateway serves the next request normally
	ch := make(chan int, 1)
	go func() {
		resp, err := http.Post("http://"+g.addr+"/chat/completions", "application/json", strings.NewReader(`{}`))
		if err != nil {
			ch <- -1
			return
		}
		resp.Body.Close()
		ch <- resp.StatusCode
	}()
	gate <- 0
	assert.Equal(t, 200, <-ch)
	assert.Equal(t, hitsBefore+1, up.Requests.Load(), "the abandoned request never reached the upstream")
}

// TestDeferredAcrossTableSwap: a request whose step ran off the loop while
// the loop adopted a newer table still reaches its upstream (its cursor
// must not come from the new table, whose indexes differ).
func TestDeferredAcrossTableSwap(t *testing.T) {
	up, err := testupstream.Start(testupstream.JSON)
	require.NoError(t, err)
	defer up.Close()
	other, err := testupstream.Start(testupstream.JSON)
	require.NoError(t, err)
	defer other.Close()
	gated := routeTo("r1", "/chat/completions", up.Addr())
	gated.Plugins = map[string]json.RawMessage{"test-gate": json.RawMessage(`{}`)}
	// old table: r0's upstream has index 0, r1's index 1
	g := startTestGateway(t, 1, snapshot(routeTo("r0", "/other", other.Addr()), gated))

	in := entered.Load()
	ch := make(chan int, 1)
	go func() {
		resp, err := http.Post("http://"+g.addr+"/chat/completions", "application/json", strings.NewReader(`{}`))
		if err != nil {
			ch <- -1
			return
		}
		resp.Body.Close()
		ch <- resp.StatusCode
	}()
	require.Eventually(t, func() bool { return entered.Load() == in+1 }, 5*time.Second, time.Millisecond)
	// new table: only r1, its upstream now has index 0; a request makes the
	// loop adopt it
	g.swap(t, snapshot(gated))
	resp, err := http.Get("http://" + g.addr + "/nowhere")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 404, resp.StatusCode)
	gate <- 0
	assert.Equal(t, 200, <-ch)
}

// statusLog is a test plugin whose Log phase reports what the request
// ended with (what metrics and the access log record).
type statusLog struct{}

type statusLogInst struct{}

type logged struct {
	status                     int
	start, firstByte, upstream int64
	prompt, completion         int64
	aborted                    bool
}

var loggedStatus = make(chan logged, 16)

// nextLogged is what the next request's Log phase saw; the test fails
// when none comes within 5 s.
func nextLogged(t *testing.T, what string) logged {
	t.Helper()
	select {
	case s := <-loggedStatus:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no Log phase for", what)
		return logged{}
	}
}

func (statusLog) Name() string  { return "test-status-log" }
func (statusLog) Priority() int { return 0 }
func (statusLog) Compile(json.RawMessage, *plugin.Env) (plugin.Instance, error) {
	return statusLogInst{}, nil
}
func (statusLogInst) Log(c *plugin.Ctx) {
	loggedStatus <- logged{c.Status, c.Start, c.FirstByte, c.UpstreamStart, c.PromptTokens, c.CompletionTokens, c.Aborted}
}

func (statusLogInst) ReadsUsage() bool { return true }

func init() { plugin.Register(statusLog{}) }

// A client that goes away before the answer is logged and counted with
// nginx's 499, not with no status at all.
func TestClientGoneIs499(t *testing.T) {
	release := make(chan struct{})
	up := acceptEach(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		<-release // never answers while the client is there
	})
	defer close(release)
	r := routeTo("r1", "/slow", up)
	r.Plugins = map[string]json.RawMessage{"test-status-log": json.RawMessage(`{}`)}
	g := startTestGateway(t, 1, snapshot(r))
	c := dialSend(t, g.addr, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
	time.Sleep(100 * time.Millisecond) // the request is upstream
	c.Close()
	s := nextLogged(t, "the abandoned request")
	assert.Equal(t, 499, s.status)
}

// Time to first token counts the first body byte of a 2xx answer only: an
// error body (a 500's JSON) is no token, and would flatter a failing arm.
func TestFirstByteOnlyForSuccess(t *testing.T) {
	up := serveRequests(t, func(c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 14\r\n\r\n{\"error\":\"x\"}\n")
		return true
	})
	ok := serveRequests(t, func(c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n{}\n")
		return true
	})
	bad, good := routeTo("bad", "/bad", up), routeTo("good", "/good", ok)
	for _, r := range []*model.Route{bad, good} {
		r.Plugins = map[string]json.RawMessage{"test-status-log": json.RawMessage(`{}`)}
	}
	g := startTestGateway(t, 1, snapshot(bad, good))
	for _, tc := range []struct {
		path   string
		status int
		ttft   bool
	}{{"/bad", 500, false}, {"/good", 200, true}} {
		resp := roundTrip(t, g.addr, "GET "+tc.path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		io.Copy(io.Discard, resp.Body)
		s := nextLogged(t, "the request")
		assert.Equal(t, tc.status, s.status, tc.path)
		assert.Equal(t, tc.ttft, s.firstByte > 0, tc.path)
	}
}

// The upstream's time starts when its attempt does (connect, or a pooled
// connection taken), as nginx's $upstream_response_time, which APISIX's
// type="upstream" latency reads: a request body the client sends slowly
// is the upstream's time too, not the gateway's.
func TestUpstreamTimeFromConnect(t *testing.T) {
	up := serveRequests(t, func(c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n{}\n")
		return true
	})
	r := routeTo("r", "/up", up)
	r.Plugins = map[string]json.RawMessage{"test-status-log": json.RawMessage(`{}`)}
	g := startTestGateway(t, 1, snapshot(r))
	c := dialSend(t, g.addr, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n")
	time.Sleep(300 * time.Millisecond) // the body comes late
	_, err := io.WriteString(c, "{}")
	require.NoError(t, err)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	s := nextLogged(t, "the request")
	require.Positive(t, s.upstream)
	assert.Less(t, time.Duration(s.upstream-s.start), 150*time.Millisecond, "the attempt began with the head, before the body came")
}

// Usage is read from gzip-encoded responses too (what a client asking for
// compression gets), whole or chunked, JSON or SSE; one too big to keep,
// or corrupt, gives no usage and no harm.
func TestUsageFromGzip(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.Bytes()
	}
	js := gz(`{"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}`)
	sse := gz("data: {\"choices\":[]}\n\ndata: {\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":13}}\n\ndata: [DONE]\n\n")
	big := make([]byte, 100<<10)
	rand.NewChaCha8([32]byte{1}).Read(big) // incompressible: over the bound
	huge := gz(`{"pad":"` + base64.StdEncoding.EncodeToString(big) + `","usage":{"prompt_tokens":1,"completion_tokens":1}}`)
	bomb := gz(`{"pad":"` + strings.Repeat("a", 8<<20) + `","usage":{"prompt_tokens":2,"completion_tokens":2}}`) // ~8 KiB: kept, not read to its end
	bodies := map[string]func(c net.Conn){
		"/json": func(c net.Conn) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", len(js), js)
		},
		"/chunked": func(c net.Conn) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n",
				10, js[:10], len(js)-10, js[10:])
		},
		"/sse": func(c net.Conn) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", len(sse), sse)
		},
		"/huge": func(c net.Conn) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", len(huge), huge)
		},
		"/bomb": func(c net.Conn) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", len(bomb), bomb)
		},
		"/corrupt": func(c net.Conn) {
			bad := append([]byte(nil), js...)
			bad[len(bad)/2] ^= 0xff
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", len(bad), bad)
		},
	}
	up := acceptEach(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(r)
			if err != nil {
				return
			}
			bodies[req.URL.Path](c)
		}
	})
	rt := routeTo("r", "/*", up)
	rt.Plugins = map[string]json.RawMessage{"test-status-log": json.RawMessage(`{}`)}
	g := startTestGateway(t, 1, snapshot(rt))
	for _, tc := range []struct {
		path               string
		prompt, completion int64
	}{{"/json", 5, 7}, {"/chunked", 5, 7}, {"/sse", 11, 13}, {"/huge", -1, -1}, {"/bomb", -1, -1}, {"/corrupt", -1, -1}, {"/json", 5, 7}} {
		resp := roundTrip(t, g.addr, "GET "+tc.path+" HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
		io.Copy(io.Discard, resp.Body)
		s := nextLogged(t, "the request")
		assert.Equal(t, [2]int64{tc.prompt, tc.completion}, [2]int64{s.prompt, s.completion}, tc.path)
	}
}

// A dead upstream trips api-breaker: a failed connect counts as the 502
// nginx puts in $upstream_status (APISIX's breaker reads it), so after
// unhealthy.failures of them the breaker answers without trying.
func TestBreakerTripsOnDeadUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	ln.Close()                                                              // nothing listens: connect refused
	r := routeTo(fmt.Sprint("dead-", time.Now().UnixNano()), "/dead", dead) // a fresh breaker under -count
	r.Plugins = map[string]json.RawMessage{"api-breaker": json.RawMessage(
		`{"break_response_code":599,"unhealthy":{"http_statuses":[502],"failures":2}}`)}
	g := startTestGateway(t, 1, snapshot(r))
	var got []int
	for range 3 {
		resp := roundTrip(t, g.addr, "GET /dead HTTP/1.1\r\nHost: x\r\n\r\n")
		io.Copy(io.Discard, resp.Body)
		got = append(got, resp.StatusCode)
	}
	assert.Equal(t, []int{502, 502, 599}, got)
}

// A response cut because the client took none of it for send_timeout is
// the client's stall: not counted as the upstream's abort (its arm's
// sluice_split_aborted_total), while one the upstream cuts is.
func TestAbortedOnlyForUpstream(t *testing.T) {
	big := serveRequests(t, func(c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 67108864\r\n\r\n")
		c.Write(make([]byte, 64<<20)) // blocks once every buffer is full
		return false
	})
	cut := acceptEach(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial") // then closes
	})
	slow, gone := routeTo("slow", "/slow", big), routeTo("gone", "/gone", cut)
	for _, r := range []*model.Route{slow, gone} {
		r.Plugins = map[string]json.RawMessage{"test-status-log": json.RawMessage(`{}`)}
	}
	g := startTestGatewayOpts(t, 1, snapshot(slow, gone), func(o *Options) { o.SendTimeout = 300 * time.Millisecond })
	for _, tc := range []struct {
		path    string
		aborted bool
	}{{"/slow", false}, {"/gone", true}} {
		c := dialSend(t, g.addr, "GET "+tc.path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if tc.path == "/gone" {
			io.Copy(io.Discard, c) // reads until the cut
		} // /slow: reads nothing
		s := nextLogged(t, tc.path)
		assert.Equal(t, 200, s.status, tc.path)
		assert.Equal(t, tc.aborted, s.aborted, tc.path)
		c.Close()
	}
}

// A WebSocket upgrade is logged and counted as the 101 it answered, not
// as no status at all.
func TestUpgradeLogged101(t *testing.T) {
	up := acceptEach(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	})
	rt := routeTo("ws", "/ws", up)
	rt.EnableWebsocket = true
	rt.Plugins = map[string]json.RawMessage{"test-status-log": json.RawMessage(`{}`)}
	g := startTestGateway(t, 1, snapshot(rt))
	c := dialSend(t, g.addr, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
	require.NoError(t, err)
	require.Equal(t, 101, resp.StatusCode)
	s := nextLogged(t, "the upgrade")
	assert.Equal(t, 101, s.status)
}

// An upstream that answers an upload before it had it all (a 413) was
// reached: its time counts (from the attempt's start), not the gateway's.
func TestUpstreamTimeWhenAnsweredEarly(t *testing.T) {
	up := acceptEach(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	})
	rt := routeTo("r", "/up", up)
	rt.Plugins = map[string]json.RawMessage{"test-status-log": json.RawMessage(`{}`)}
	g := startTestGateway(t, 1, snapshot(rt))
	resp := roundTrip(t, g.addr, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\nabc")
	require.Equal(t, 413, resp.StatusCode)
	s := nextLogged(t, "the request")
	assert.Positive(t, s.upstream, "the upstream's time starts with its attempt")
}

// An upstream that sends a status line and then breaks off (closes) was
// answered 502 by the gateway: that is the upstream's failure, which
// api-breaker counts, though the head was parsed as far as its status.
func TestBreakerCountsBrokenHead(t *testing.T) {
	up := acceptEach(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n") // then closes
	})
	r := routeTo(fmt.Sprint("half-", time.Now().UnixNano()), "/half", up) // a fresh breaker under -count
	r.Plugins = map[string]json.RawMessage{"api-breaker": json.RawMessage(
		`{"break_response_code":599,"unhealthy":{"http_statuses":[502],"failures":1}}`)}
	g := startTestGateway(t, 1, snapshot(r))
	var got []int
	for range 2 {
		resp := roundTrip(t, g.addr, "GET /half HTTP/1.1\r\nHost: x\r\n\r\n")
		io.Copy(io.Discard, resp.Body)
		got = append(got, resp.StatusCode)
	}
	assert.Equal(t, []int{502, 599}, got)
}

// A plugin's 204 (limit-count rejected_code: 204) goes out without a body
// or a length: the next response on the connection follows it.
func TestPlugin204HasNoBody(t *testing.T) {
	up, _ := recordingUpstream(t)
	r := routeTo(fmt.Sprint("lc-", time.Now().UnixNano()), "/lc", up) // fresh counters under -count
	r.Plugins = map[string]json.RawMessage{"limit-count": json.RawMessage(
		`{"count":1,"time_window":60,"rejected_code":204,"rejected_msg":"too many"}`)}
	g := startTestGateway(t, 1, snapshot(r, routeTo("ok", "/ok", up)))
	c := dialSend(t, g.addr, "GET /lc HTTP/1.1\r\nHost: x\r\n\r\nGET /lc HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for _, want := range []int{200, 204, 200} {
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err, want)
		assert.Equal(t, want, resp.StatusCode)
		if want == 204 {
			assert.Empty(t, resp.Header.Get("Content-Length"), "a 204 has no length")
		}
		io.Copy(io.Discard, resp.Body)
	}
}

// chash on $route_id hashes on the route's id, plugins or not: routes
// spread over the nodes.
func TestCHashOnRouteID(t *testing.T) {
	a, aSeen := recordingUpstream(t)
	b, bSeen := recordingUpstream(t)
	var routes []*model.Route
	for i := range 8 {
		r := routeTo(fmt.Sprintf("r%d", i), fmt.Sprintf("/r%d", i), a, b)
		r.Upstream.Type, r.Upstream.HashOn, r.Upstream.Key = "chash", "vars_combinations", "$route_id"
		routes = append(routes, r)
	}
	g := startTestGateway(t, 1, snapshot(routes...))
	hits := map[string]int{}
	for i := range 8 {
		resp := roundTrip(t, g.addr, fmt.Sprintf("GET /r%d HTTP/1.1\r\nHost: x\r\n\r\n", i))
		io.Copy(io.Discard, resp.Body)
		select {
		case <-aSeen:
			hits["a"]++
		case <-bSeen:
			hits["b"]++
		case <-time.After(2 * time.Second):
			t.Fatal("no upstream got it")
		}
	}
	assert.Len(t, hits, 2, "routes spread over both nodes: %v", hits)
}

// limit-count in a global rule and on the route: one set of X-RateLimit-*
// headers, the route's (APISIX's set_header replaces).
func TestRateLimitHeadersOnce(t *testing.T) {
	up, _ := recordingUpstream(t)
	run := fmt.Sprint(time.Now().UnixNano()) // fresh counters under -count
	r := routeTo("r-"+run, "/r", up)
	r.Plugins = map[string]json.RawMessage{"limit-count": json.RawMessage(`{"count":5,"time_window":60}`)}
	snap := snapshot(r)
	snap.GlobalRules["g"] = json.RawMessage(`{"plugins":{"limit-count":{"count":100,"time_window":60,"key_type":"constant","key":"all-` + run + `"}}}`)
	g := startTestGateway(t, 1, snap)
	resp := roundTrip(t, g.addr, "GET /r HTTP/1.1\r\nHost: x\r\n\r\n")
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, []string{"5"}, resp.Header.Values("X-RateLimit-Limit"))
	assert.Equal(t, []string{"4"}, resp.Header.Values("X-RateLimit-Remaining"))
}
