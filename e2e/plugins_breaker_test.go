package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// freshClient opens a new connection per request, so requests spread over
// the gateway's event loops (the breaker is shared by all of them).
var freshClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func getStatus(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	return getStatusWith(t, keepClient, url)
}

// keepClient keeps one connection: its requests stay on one event loop, so
// each request's log phase (which counts the status) has run before the
// next request is read. (On different loops, a request may overtake the
// log phase of the one just answered, as in APISIX.)
var keepClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}

func getStatusWith(t *testing.T, c *http.Client, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(body)
}

// TestAPIBreaker follows APISIX's api-breaker guide: an upstream that
// answers 500 trips the breaker after 3 failures; while it is open the
// gateway answers break_response_code without calling the upstream; after
// 2 s requests reach the upstream again; 3 healthy answers reset it.
func TestAPIBreaker(t *testing.T) {
	var status atomic.Int64
	status.Store(500)
	up := startUpstream(t, "u1", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	})
	gw := startGateway(t, 2, "", routesDoc(route("1", "/api_breaker", `    plugins:
      api-breaker:
        break_response_code: 502
        unhealthy:
          http_statuses: [500, 503]
          failures: 3
        healthy:
          http_statuses: [200]
          successes: 3
`, up.addr())))
	url := gw.url("/api_breaker")

	for i := 1; i <= 3; i++ {
		code, _, _ := getStatus(t, url)
		require.Equal(t, 500, code, "request %d reaches the upstream", i)
	}
	require.Equal(t, 3, up.count())

	// Open: answered by the gateway, with a JSON error_msg.
	for range 3 {
		code, hdr, body := getStatus(t, url)
		assert.Equal(t, 502, code)
		assert.Equal(t, "application/json", hdr.Get("Content-Type"))
		var v map[string]string
		require.NoError(t, json.Unmarshal([]byte(body), &v), body)
		assert.Equal(t, "breaker is open", v["error_msg"])
	}
	// the breaker is shared by the loops: a new connection sees it open
	for range 4 {
		code, _, _ := getStatusWith(t, freshClient, url)
		assert.Equal(t, 502, code, "on any loop")
	}
	assert.Equal(t, 3, up.count(), "no upstream call while the breaker is open")

	// After the 2 s window (whole seconds, as ngx.time()) traffic flows.
	start := time.Now()
	waitFor(t, 10*time.Second, "the breaker to close", func() bool {
		code, _, _ := getStatus(t, url)
		return code == 500
	})
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "the breaker stayed open about 2 s")
	assert.Equal(t, 4, up.count(), "only the request after the window reached the upstream")

	// 3 healthy answers reset the breaker: it again takes 3 failures to
	// trip. (Without the reset, failures 5 and 6 would trip it after 2.)
	status.Store(200)
	for range 3 {
		code, _, _ := getStatus(t, url)
		require.Equal(t, 200, code)
	}
	status.Store(500)
	for i := 1; i <= 3; i++ {
		code, _, _ := getStatus(t, url)
		require.Equal(t, 500, code, "failure %d after the reset reaches the upstream", i)
	}
	code, _, _ := getStatus(t, url)
	assert.Equal(t, 502, code, "tripped again after 3 failures")
	assert.Equal(t, 10, up.count())
}

// TestAPIBreakerBodyAndKey: break_response_body and its headers are sent;
// the breaker is per request URI, and gateway-made errors (connect refused)
// do not count.
func TestAPIBreakerBodyAndKey(t *testing.T) {
	up := startUpstream(t, "u1", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/bad" {
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(200)
	})
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	plugins := `    plugins:
      api-breaker:
        break_response_code: 599
        break_response_body: "upstream is resting"
        break_response_headers:
          - {key: X-Breaker, value: open}
        unhealthy:
          http_statuses: [502, 503]
          failures: 2
`
	gw := startGateway(t, 1, "", routesDoc(
		route("1", "/api/*", plugins, up.addr()),
		route("2", "/dead", plugins, dead),
	))

	for range 2 {
		code, _, _ := getStatus(t, gw.url("/api/bad"))
		require.Equal(t, 503, code)
	}
	code, hdr, body := getStatus(t, gw.url("/api/bad"))
	assert.Equal(t, 599, code)
	assert.Equal(t, "upstream is resting", body)
	assert.Equal(t, "open", hdr.Get("X-Breaker"))
	assert.Equal(t, 2, up.count())

	// Another URI of the same route has its own breaker.
	code, _, _ = getStatus(t, gw.url("/api/good"))
	assert.Equal(t, 200, code)
	assert.Equal(t, 3, up.count())

	// A refused connect is the 502 nginx puts in $upstream_status, which
	// APISIX's breaker counts: a dead upstream trips it.
	for range 2 {
		code, hdr, _ := getStatus(t, gw.url("/dead"))
		require.Equal(t, 502, code)
		assert.Empty(t, hdr.Get("X-Breaker"))
	}
	code, hdr, _ = getStatus(t, gw.url("/dead"))
	assert.Equal(t, 599, code)
	assert.Equal(t, "open", hdr.Get("X-Breaker"))
}
