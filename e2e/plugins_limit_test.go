package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/internal/redistest"
)

// limitClient opens a new connection per request, so requests spread over
// the gateway's event loops (the counters are shared by all of them).
var limitClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

type limitReply struct {
	code                    int
	limit, remaining, reset string
	contentType             string
	body                    string
}

func limitGet(t *testing.T, url string) limitReply {
	t.Helper()
	resp, err := limitClient.Get(url)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	return limitReply{
		code:        resp.StatusCode,
		limit:       resp.Header.Get("X-RateLimit-Limit"),
		remaining:   resp.Header.Get("X-RateLimit-Remaining"),
		reset:       resp.Header.Get("X-RateLimit-Reset"),
		contentType: resp.Header.Get("Content-Type"),
		body:        string(body),
	}
}

// assertReset checks X-RateLimit-Reset is a second count within the window.
func assertReset(t *testing.T, r limitReply, window int) {
	t.Helper()
	n, err := strconv.Atoi(r.reset)
	require.NoError(t, err, "X-RateLimit-Reset %q", r.reset)
	assert.True(t, n >= 1 && n <= window, "X-RateLimit-Reset %d within (0, %d]", n, window)
}

// TestLimitCountLocal follows APISIX's limit-count guide: count 3 per 60 s
// per client address; the fourth request is refused with 503 (the
// default), and every answer carries the quota headers.
func TestLimitCountLocal(t *testing.T) {
	up := startUpstream(t, "u1", nil)
	gw := startGateway(t, 2, "", routesDoc(
		route("1", "/index.html", `    plugins:
      limit-count:
        count: 3
        time_window: 60
        key_type: var
        key: remote_addr
`, up.addr()),
		route("2", "/msg", `    plugins:
      limit-count:
        count: 1
        time_window: 60
        rejected_code: 429
        rejected_msg: Requests are too frequent, please try again later.
`, up.addr()),
	))

	url := gw.url("/index.html")
	for _, want := range []string{"2", "1", "0"} {
		r := limitGet(t, url)
		assert.Equal(t, 200, r.code)
		assert.Equal(t, "3", r.limit)
		assert.Equal(t, want, r.remaining)
		assertReset(t, r, 60)
	}
	r := limitGet(t, url)
	assert.Equal(t, 503, r.code)
	assert.Equal(t, "3", r.limit)
	assert.Equal(t, "0", r.remaining)
	assertReset(t, r, 60)
	assert.Equal(t, "application/json", r.contentType)
	assert.JSONEq(t, `{"error_msg":"Service Temporarily Unavailable"}`, r.body)
	assert.Equal(t, 3, up.count(), "the refused request never reached the upstream")

	// rejected_code and rejected_msg; the other route has its own counter.
	url = gw.url("/msg")
	assert.Equal(t, 200, limitGet(t, url).code)
	r = limitGet(t, url)
	assert.Equal(t, 429, r.code)
	assert.Equal(t, "application/json", r.contentType)
	assert.Equal(t, `{"error_msg":"Requests are too frequent, please try again later."}`+"\n", r.body)
	assert.Equal(t, "0", r.remaining)
}

func redisRoutes(addr string, port int, upstream string) string {
	plugins := func(count int, extra string) string {
		return fmt.Sprintf(`    plugins:
      limit-count:
        count: %d
        time_window: 60
        policy: redis
        redis_host: %s
        redis_port: %d
        redis_timeout: 500
%s`, count, addr, port, extra)
	}
	return routesDoc(
		route("1", "/shared", plugins(5, ""), upstream),
		route("2", "/degrade", plugins(5, "        allow_degradation: true\n"), upstream),
	)
}

// TestLimitCountRedis runs two sluice processes against one redis-server:
// they share the route's limit. With Redis gone, a request is refused with
// 500 unless allow_degradation lets it through.
func TestLimitCountRedis(t *testing.T) {
	srv := redistest.Start(t)
	up := startUpstream(t, "u1", nil)
	routes := redisRoutes(srv.Host(), srv.Port(), up.addr())
	gws := []*gateway{startGateway(t, 2, "", routes), startGateway(t, 2, "", routes)}

	admitted := 0
	for i := range 10 {
		r := limitGet(t, gws[i%2].url("/shared"))
		switch r.code {
		case 200:
			admitted++
		case 503:
			assert.Equal(t, "5", r.limit)
			assert.Equal(t, "0", r.remaining)
			assertReset(t, r, 60)
		default:
			t.Fatalf("request %d: status %d %s", i, r.code, r.body)
		}
		if i < 5 {
			assert.Equal(t, 200, r.code, "request %d is within the shared limit", i)
			assert.Equal(t, "5", r.limit, "quota headers on admitted requests too")
			assert.Equal(t, fmt.Sprint(4-i), r.remaining, "request %d", i)
		}
	}
	assert.Equal(t, 5, admitted, "both gateways together admit count requests")
	assert.Equal(t, 5, up.count())

	srv.Stop()
	for _, gw := range gws {
		r := limitGet(t, gw.url("/shared"))
		assert.Equal(t, 500, r.code)
		assert.Equal(t, "application/json", r.contentType)
		assert.Equal(t, `{"error_msg":"failed to limit count"}`+"\n", r.body)

		r = limitGet(t, gw.url("/degrade"))
		assert.Equal(t, 200, r.code, "allow_degradation: passes while Redis is down")
	}
}
