package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var client = &http.Client{Timeout: 10 * time.Second}

func TestProxyBasics(t *testing.T) {
	up := startUpstream(t, "u1", nil)
	gw := startGateway(t, 1, "", routesDoc(route("1", "/chat/completions", "", up.addr())))

	req, _ := http.NewRequest("POST", gw.url("/chat/completions?x=1"), strings.NewReader(`{"model":"gpt-4","messages":[{"role":"user","content":"ping"}]}`))
	req.Header.Set("Authorization", "Bearer sk-test-123")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Connection", "keep-alive, X-Drop-Me")
	req.Header.Set("X-Drop-Me", "secret")
	req.Header.Set("X-Forwarded-For", "10.1.2.3")
	resp, err := client.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Server"), "sluice/")
	assert.NotEmpty(t, resp.Header.Get("Date"))
	assert.Equal(t, "/chat/completions?x=1", resp.Header.Get("X-Upstream-Path"))
	assert.JSONEq(t, `{"upstream":"u1","bytes":63}`, string(body))

	r, b := up.lastRequest()
	require.NotNil(t, r)
	assert.Equal(t, "Bearer sk-test-123", r.Header.Get("Authorization"), "Authorization passes untouched")
	assert.Equal(t, gw.addr(), r.Host, "pass_host pass keeps the client's Host")
	assert.Equal(t, "10.1.2.3, 127.0.0.1", r.Header.Get("X-Forwarded-For"))
	assert.Equal(t, "127.0.0.1", r.Header.Get("X-Real-IP"))
	assert.Equal(t, "http", r.Header.Get("X-Forwarded-Proto"))
	assert.Equal(t, "127.0.0.1", r.Header.Get("X-Forwarded-Host"), "nginx's $host: no port")
	assert.Equal(t, fmt.Sprint(gw.port), r.Header.Get("X-Forwarded-Port"))
	assert.Empty(t, r.Header.Get("X-Drop-Me"), "fields named in Connection are hop-by-hop")
	assert.Empty(t, r.Header.Get("Keep-Alive"))
	assert.Equal(t, `{"model":"gpt-4","messages":[{"role":"user","content":"ping"}]}`, string(b))
}

func TestRouteNotFound(t *testing.T) {
	up := startUpstream(t, "u1", nil)
	gw := startGateway(t, 1, "", routesDoc(route("1", "/chat/completions", "", up.addr())))
	resp, err := client.Get(gw.url("/nope"))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode)
	assert.JSONEq(t, `{"error_msg":"404 Route Not Found"}`, string(body))
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Contains(t, resp.Header.Get("Server"), "sluice/")
}

func TestKeepAliveAndPipelining(t *testing.T) {
	up := startUpstream(t, "u1", nil)
	gw := startGateway(t, 1, "", routesDoc(route("1", "/v1/*", "", up.addr())))
	rc := dialRaw(t, gw.addr())
	// three requests in one write, one with a body
	rc.send("GET /v1/a HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /v1/b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
		"GET /v1/c HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []string{"/v1/a", "/v1/b", "/v1/c"} {
		resp, _, err := rc.readResponse("GET")
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, want, resp.Header.Get("X-Upstream-Path"))
	}
	// the same connection keeps serving
	rc.send("GET /v1/d HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, _, err := rc.readResponse("GET")
	require.NoError(t, err)
	assert.Equal(t, "/v1/d", resp.Header.Get("X-Upstream-Path"))
}

func TestHTTP10AndHead(t *testing.T) {
	up := startUpstream(t, "u1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if r.URL.Path == "/v1/chunked" {
			w.Write([]byte("part1,"))
			w.(http.Flusher).Flush() // chunked
			w.Write([]byte("part2"))
			return
		}
		w.Write([]byte("hello"))
	})
	gw := startGateway(t, 1, "", routesDoc(route("1", "/v1/*", "", up.addr())))

	// HTTP/1.0 without keep-alive (and without Host): answered, then closed
	rc := dialRaw(t, gw.addr())
	rc.send("GET /v1/x HTTP/1.0\r\n\r\n")
	resp, body, err := rc.readResponse("GET")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "hello", string(body))
	assert.True(t, rc.closedWithin(2*time.Second))
	r, _ := up.lastRequest()
	assert.Equal(t, up.addr(), r.Host, "no client Host: the node's")
	_, sent := r.Header["X-Forwarded-Host"]
	assert.False(t, sent, "no empty X-Forwarded-Host")

	// HTTP/1.0 with a chunked upstream response: de-chunked, close-delimited
	rc = dialRaw(t, gw.addr())
	rc.send("GET /v1/chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	resp, body, err = rc.readResponse("GET")
	require.NoError(t, err)
	assert.Equal(t, "part1,part2", string(body))
	assert.Empty(t, resp.TransferEncoding)

	// HEAD: no body even though the upstream says Content-Length
	rc = dialRaw(t, gw.addr())
	rc.send("HEAD /v1/x HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/x HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body, err = rc.readResponse("HEAD")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Empty(t, body)
	resp, body, err = rc.readResponse("GET")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "hello", string(body))
}

func TestChunkedBothWaysAndExpect(t *testing.T) {
	up := startUpstream(t, "u1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
	})
	gw := startGateway(t, 1, "", routesDoc(route("1", "/v1/*", "", up.addr())))
	rc := dialRaw(t, gw.addr())
	rc.send("POST /v1/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
	// the gateway answers 100 Continue before the body
	rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := rc.r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "HTTP/1.1 100 Continue\r\n", line)
	line, _ = rc.r.ReadString('\n')
	assert.Equal(t, "\r\n", line)
	rc.send("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
	resp, body, err := rc.readResponse("POST")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, []string{"chunked"}, resp.TransferEncoding)
	assert.Equal(t, "data: 0\n\ndata: 1\n\ndata: 2\n\n", string(body))
	_, got := up.lastRequest()
	assert.Equal(t, "hello world", string(got))
}

// TestHostileInput sends each malformed request of SPEC §7 on its own
// connection: the gateway answers the status, closes, and keeps serving.
func TestHostileInput(t *testing.T) {
	up := startUpstream(t, "u1", nil)
	gw := startGateway(t, 1, "    large_client_header_buffers: 4k\n    client_max_body_size: 1k\n",
		routesDoc(route("1", "/v1/*", "", up.addr())))
	cases := []struct {
		name, req string
		status    int
	}{
		{"CL and TE", "POST /v1/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"differing CLs", "POST /v1/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
		{"bad chunk size", "POST /v1/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400},
		{"obs-fold", "GET /v1/a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n", 400},
		{"space before colon", "GET /v1/a HTTP/1.1\r\nHost : x\r\n\r\n", 400},
		{"invalid method", "G(T /v1/a HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"invalid target", "GET v1/a HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"control char in target", "GET /v1/\x01a HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"no host", "GET /v1/a HTTP/1.1\r\n\r\n", 400},
		{"head too large", "GET /v1/a HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 5000) + "\r\n\r\n", 431},
		{"body too large", "POST /v1/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + strings.Repeat("a", 2000), 413},
		{"chunked body too large", "POST /v1/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + strings.Repeat("a", 2048) + "\r\n0\r\n\r\n", 413},
		{"unsupported transfer-encoding", "POST /v1/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"HTTP/2.0 line", "GET /v1/a HTTP/2.0\r\nHost: x\r\n\r\n", 505},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := dialRaw(t, gw.addr())
			rc.send(c.req)
			resp, body, err := rc.readResponse("GET")
			require.NoError(t, err)
			assert.Equal(t, c.status, resp.StatusCode, string(body))
			assert.Contains(t, string(body), `"error_msg"`)
			assert.True(t, rc.closedWithin(3*time.Second), "closes after a hostile request")
			// and the gateway still serves
			ok, err := client.Get(gw.url("/v1/ok"))
			require.NoError(t, err)
			ok.Body.Close()
			assert.Equal(t, 200, ok.StatusCode)
		})
	}
}

func TestHeaderTimeout(t *testing.T) {
	up := startUpstream(t, "u1", nil)
	gw := startGateway(t, 1, "    client_header_timeout: 1s\n", routesDoc(route("1", "/v1/*", "", up.addr())))
	rc := dialRaw(t, gw.addr())
	rc.send("GET /v1/a HTTP/1.1\r\nHost: x\r\n") // never finishes the head
	start := time.Now()
	assert.True(t, rc.closedWithin(5*time.Second))
	assert.Less(t, time.Since(start), 3*time.Second)
}

// client_body_timeout from config.yaml: a body that stalls mid-way gets a
// 408 with a JSON error_msg.
func TestBodyTimeout(t *testing.T) {
	up := startUpstream(t, "u1", nil)
	gw := startGateway(t, 1, "    client_body_timeout: 1s\n", routesDoc(route("1", "/v1/*", "", up.addr())))
	rc := dialRaw(t, gw.addr())
	start := time.Now()
	rc.send("POST /v1/a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789") // never finishes the body
	resp, body, err := rc.readResponse("POST")
	require.NoError(t, err)
	assert.Equal(t, 408, resp.StatusCode)
	assert.Contains(t, string(body), `"error_msg"`)
	assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond)
	assert.Less(t, time.Since(start), 3*time.Second)
}

func TestUpstreamErrors(t *testing.T) {
	slow := startUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(3 * time.Second)
	})
	dead := freePort(t) // nothing listens there
	routes := routesDoc(
		route("refused", "/refused", "", fmt.Sprintf("127.0.0.1:%d", dead)),
		`  - id: "slow"
    uri: /slow
    upstream:
      nodes:
        "`+slow.addr()+`": 1
      timeout: {connect: 1, send: 1, read: 1}
`)
	gw := startGateway(t, 1, "", routes)

	resp, err := client.Get(gw.url("/refused"))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 502, resp.StatusCode)
	assert.Contains(t, string(body), `"error_msg"`)

	start := time.Now()
	resp, err = client.Get(gw.url("/slow"))
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 504, resp.StatusCode)
	assert.Contains(t, string(body), `"error_msg"`)
	assert.Less(t, time.Since(start), 2500*time.Millisecond, "read timeout 1 s governs")
}

func TestRetryNextNodeOnConnectFailure(t *testing.T) {
	up := startUpstream(t, "alive", nil)
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	gw := startGateway(t, 1, "", routesDoc(route("1", "/v1/*", "", dead, up.addr())))
	for i := 0; i < 10; i++ {
		resp, err := client.Get(gw.url("/v1/x"))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode, "request %d", i)
	}
	assert.Equal(t, 10, up.count())
}

// TestWeightedSplitExact: smooth weighted round-robin on one loop gives each
// node exactly its weight in every window of sum(weights) requests.
func TestWeightedSplitExact(t *testing.T) {
	a := startUpstream(t, "a", nil)
	b := startUpstream(t, "b", nil)
	gw := startGateway(t, 1, "", routesDoc(route("1", "/chat/completions", "", a.addr()+"=3", b.addr()+"=1")))
	var seq []string
	for i := 0; i < 40; i++ {
		resp, err := client.Post(gw.url("/chat/completions"), "application/json", strings.NewReader(`{}`))
		require.NoError(t, err)
		resp.Body.Close()
		seq = append(seq, resp.Header.Get("X-Upstream-Name"))
	}
	for w := 0; w+4 <= len(seq); w += 4 {
		n := 0
		for _, s := range seq[w : w+4] {
			if s == "a" {
				n++
			}
		}
		assert.Equal(t, 3, n, "window %d: %v", w/4, seq[w:w+4])
	}
	assert.Equal(t, 30, a.count())
	assert.Equal(t, 10, b.count())
}

func TestStandaloneReload(t *testing.T) {
	a := startUpstream(t, "a", nil)
	b := startUpstream(t, "b", nil)
	gw := startGateway(t, 2, "", routesDoc(route("1", "/v1/*", "", a.addr())))
	get := func(path string) (int, string) {
		resp, err := client.Get(gw.url(path))
		if err != nil {
			return 0, ""
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Upstream-Name")
	}
	code, name := get("/v1/x")
	require.Equal(t, 200, code)
	require.Equal(t, "a", name)

	gw.writeRoutes(routesDoc(route("1", "/v1/*", "", b.addr()), route("2", "/v2/*", "", a.addr())))
	waitFor(t, 5*time.Second, "the new table", func() bool {
		_, n := get("/v1/x")
		return n == "b"
	})
	code, name = get("/v2/x")
	assert.Equal(t, 200, code)
	assert.Equal(t, "a", name)

	// a broken file keeps the last good table
	writeFile(t, filepath.Join(gw.dir, "conf", "apisix.yaml"), "routes:\n  - id: 1\n    uri: [oops\n#END\n")
	waitFor(t, 5*time.Second, "the reload failure to be logged", func() bool {
		return strings.Contains(gw.log.String(), "keeping the previous configuration")
	})
	_, name = get("/v1/x")
	assert.Equal(t, "b", name)
}

// TestManyConnections: 2000 concurrent keep-alive connections, 5 requests
// each, all succeed.
func TestManyConnections(t *testing.T) {
	up := startUpstream(t, "u1", nil)
	gw := startGateway(t, 2, "", routesDoc(route("1", "/v1/*", "", up.addr())))
	const conns, reqs = 2000, 5
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rc := &rawConn{t: t}
			c, err := dialTimeout(gw.addr())
			if err != nil {
				failed.Add(reqs)
				return
			}
			defer c.Close()
			rc.c, rc.r = c, newReader(c)
			for j := 0; j < reqs; j++ {
				if _, err := c.Write([]byte("GET /v1/x HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
					failed.Add(1)
					continue
				}
				resp, _, err := rc.readResponse("GET")
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	assert.Zero(t, failed.Load())
}

// TestGracefulDrain: SIGTERM waits for the request in flight, then exits 0.
func TestGracefulDrain(t *testing.T) {
	up := startUpstream(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(700 * time.Millisecond)
		w.Write([]byte("done"))
	})
	gw := startGateway(t, 1, "", routesDoc(route("1", "/v1/*", "", up.addr())))
	res := make(chan string, 1)
	go func() {
		resp, err := client.Get(gw.url("/v1/slow"))
		if err != nil {
			res <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- string(b)
	}()
	waitFor(t, 5*time.Second, "the request to reach the upstream", func() bool { return up.count() == 1 })
	require.NoError(t, gw.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, "done", <-res)
	select {
	case <-gw.exited:
		assert.NoError(t, gw.err, "exit status 0")
	case <-time.After(10 * time.Second):
		t.Fatal("gateway did not exit after SIGTERM")
	}
}

func TestValidateAndVersion(t *testing.T) {
	out, err := runCmd("version")
	require.NoError(t, err, out)
	assert.Contains(t, out, "sluice ")

	out, err = runCmd("keygen")
	require.NoError(t, err, out)
	assert.GreaterOrEqual(t, len(strings.TrimSpace(out)), 32)

	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "conf"), 0o755))
	cfg := filepath.Join(dir, "conf", "config.yaml")
	writeFile(t, cfg, gatewayConfig(9080, 1, ""))
	writeFile(t, filepath.Join(dir, "conf", "apisix.yaml"), routesDoc(route("1", "/v1/*", "", "127.0.0.1:1"))+"#END\n")
	out, err = runCmd("validate", "-c", cfg)
	require.NoError(t, err, out)

	// validate writes nothing: no data directory, no generated key
	emb := filepath.Join(dir, "embedded.yaml")
	writeFile(t, emb, "deployment:\n  embedded:\n    path: "+filepath.Join(dir, "data")+"\n")
	out, err = runCmd("validate", "-c", emb)
	require.NoError(t, err, out)
	_, statErr := os.Stat(filepath.Join(dir, "data"))
	assert.True(t, os.IsNotExist(statErr), "validate must not create the data directory")

	writeFile(t, cfg, "apisix:\n  node_listen: 9080\n  enable_admn: true\n")
	out, err = runCmd("validate", "-c", cfg)
	require.Error(t, err)
	assert.Contains(t, out, "enable_admn")
	assert.Contains(t, out, ":3")
}

func runCmd(args ...string) (string, error) {
	var buf bytes.Buffer
	cmd := execCommand(sluiceBin, args...)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

// TestErrorKeepsConnection: a 502 for a complete request keeps a
// keep-alive connection open, and the next request on it is served.
func TestErrorKeepsConnection(t *testing.T) {
	up := startUpstream(t, "u1", nil)
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	gw := startGateway(t, 1, "", routesDoc(route("dead", "/dead", "", dead), route("ok", "/ok", "", up.addr())))
	rc := dialRaw(t, gw.addr())
	rc.send("GET /dead HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, _, err := rc.readResponse("GET")
	require.NoError(t, err)
	assert.Equal(t, 502, resp.StatusCode)
	assert.False(t, resp.Close, "no Connection: close after a 502 on a complete request")
	rc.send("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, _, err = rc.readResponse("GET")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
}

// With one event loop per P (GOMAXPROCS == worker_processes) sluice adds a
// spare P, so an idle loop blocked in epoll_wait never holds the last one
// (cmd/sluice/procs.go); the gateway says so and serves as usual.
func TestSpareProcessor(t *testing.T) {
	loops := runtime.GOMAXPROCS(0) // the gateway inherits this process's CPUs and environment
	up := startUpstream(t, "u1", nil)
	gw := startGateway(t, loops, "", routesDoc(route("1", "/chat/completions", "", up.addr())))
	resp, err := client.Post(gw.url("/chat/completions"), "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, gw.log.String(), fmt.Sprintf("loops=%d gomaxprocs=%d", loops, loops+1))
}

// chash upstreams hash on variables as APISIX reads them: the same
// request_uri (or the same $host, whatever its case and port) always goes
// to the same node, different ones spread over both; a
// vars_combinations key works, and a missing key falls back to the client
// address instead of sending everything to one node.
func TestChashOnVars(t *testing.T) {
	a, b := startUpstream(t, "a", nil), startUpstream(t, "b", nil)
	chash := func(id, uri, hashOn, key string) string {
		return fmt.Sprintf("  - id: %q\n    uri: %s\n    upstream:\n      type: chash\n      hash_on: %s\n      key: %q\n      nodes:\n        %q: 1\n        %q: 1\n",
			id, uri, hashOn, key, a.addr(), b.addr())
	}
	gw := startGateway(t, 2, "", "routes:\n"+
		chash("by-uri", "/uri/*", "vars", "request_uri")+
		chash("by-host", "/host", "vars", "host")+
		chash("by-combo", "/combo/*", "vars_combinations", "$uri|$http_x_user")+
		chash("by-missing", "/missing", "vars", "arg_absent"))
	name := func(path string, hdr ...string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", gw.url(path), nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			if hdr[i] == "Host" {
				req.Host = hdr[i+1]
			} else {
				req.Header.Set(hdr[i], hdr[i+1])
			}
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, path)
		return resp.Header.Get("X-Upstream-Name")
	}

	seen := map[string]int{}
	for i := 0; i < 40; i++ {
		path := fmt.Sprintf("/uri/%d?q=%d", i, i)
		first := name(path)
		for j := 0; j < 3; j++ {
			assert.Equal(t, first, name(path), "same request_uri, same node: %s", path)
		}
		seen[first]++
	}
	assert.Positive(t, seen["a"], "request_uris spread: %v", seen)
	assert.Positive(t, seen["b"], "request_uris spread: %v", seen)

	for i := 0; i < 10; i++ {
		h := fmt.Sprintf("tenant%d.example.com", i)
		want := name("/host", "Host", h)
		assert.Equal(t, want, name("/host", "Host", strings.ToUpper(h)+":80"), "$host ignores case and port")
	}

	combo := map[string]int{}
	for i := 0; i < 40; i++ {
		u := fmt.Sprintf("user%d", i)
		first := name("/combo/x", "X-User", u)
		assert.Equal(t, first, name("/combo/x", "X-User", u))
		combo[first]++
	}
	assert.Len(t, combo, 2, "combinations spread: %v", combo)

	// A missing key hashes on the client address: the same address keeps
	// its node, and clients from 20 loopback addresses reach both nodes.
	fromAddr := func(ip string) string {
		t.Helper()
		c := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
			LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}).DialContext}}
		defer c.CloseIdleConnections()
		resp, err := c.Get(gw.url("/missing"))
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		return resp.Header.Get("X-Upstream-Name")
	}
	byAddr := map[string]int{}
	for i := 1; i <= 20; i++ {
		ip := fmt.Sprintf("127.0.0.%d", i)
		first := fromAddr(ip)
		for j := 0; j < 3; j++ {
			assert.Equal(t, first, fromAddr(ip), "same client address, same node: %s", ip)
		}
		byAddr[first]++
	}
	assert.Len(t, byAddr, 2, "client addresses spread over the nodes: %v", byAddr)
}
