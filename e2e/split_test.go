package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// splitRoute is an Admin API route body splitting /chat/completions
// between upstream ids a and b with the given weights (APISIX form), the
// route's own upstream being main.
func splitRoute(main string, wa, wb int) string {
	return fmt.Sprintf(`{"uri":"/chat/completions","upstream":{"nodes":{%q:1}},
	  "plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[
	    {"upstream_id":"a","weight":%d},{"upstream_id":"b","weight":%d}]}]}}}`, main, wa, wb)
}

// TestSplitWeightsChangeUnderLoad: weights changed through the Admin API
// while clients keep sending converge at once (the next window on a
// connection has the new ratio) and no request fails.
func TestSplitWeightsChangeUnderLoad(t *testing.T) {
	main, a, b := startUpstream(t, "main", nil), startUpstream(t, "a", nil), startUpstream(t, "b", nil)
	dir, port, adminPort := newAdminGatewayDir(t, e2eAdminKey)
	g := startAdminGateway(t, dir, port, adminPort)
	for id, u := range map[string]*upstream{"a": a, "b": b} {
		code, r := adminDo(t, g, "PUT", "/apisix/admin/upstreams/"+id, e2eAdminKey, fmt.Sprintf(`{"nodes":{%q:1}}`, u.addr()))
		require.Equal(t, 201, code, r)
	}
	code, r := adminDo(t, g, "PUT", "/apisix/admin/routes/split", e2eAdminKey, splitRoute(main.addr(), 50, 50))
	require.Equal(t, 201, code, r)

	var failed, sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Post(g.url("/chat/completions"), "application/json", strings.NewReader(`{"model":"m"}`))
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
				resp.Body.Close()
			}
		}()
	}
	window := func(n int) map[string]int {
		m := map[string]int{}
		for range n {
			resp, body := dataGet(t, g, "POST", "/chat/completions", `{}`)
			require.Equal(t, 200, resp.StatusCode, body)
			m[resp.Header.Get("X-Upstream-Name")]++
		}
		return m
	}
	// Under load every pick of the (single) loop's rotation is shared by
	// all clients, so the check is on totals: after a change, the next
	// requests follow the new ratio to within one window plus the
	// requests in flight at the swap.
	for _, w := range [][2]int{{80, 20}, {20, 80}, {3, 1}, {1, 0}, {50, 50}} {
		code, r := adminDo(t, g, "PUT", "/apisix/admin/routes/split", e2eAdminKey, splitRoute(main.addr(), w[0], w[1]))
		require.Equal(t, 200, code, r)
		a0, b0 := a.count(), b.count()
		total := w[0] + w[1]
		waitFor(t, 10*time.Second, "traffic after the change", func() bool { return a.count()+b.count()-a0-b0 >= 10*total })
		da, db := a.count()-a0, b.count()-b0
		if w[1] == 0 { // only the requests in flight at the swap may still reach b
			assert.LessOrEqual(t, db, 8, "weights %v: a=%d b=%d", w, da, db)
			continue
		}
		want := float64(da+db) * float64(w[0]) / float64(total)
		assert.InDelta(t, want, float64(da), float64(total+8), "weights %v: a=%d b=%d", w, da, db)
	}
	close(stop)
	wg.Wait()
	// Quiescent: any window of sum(weights) requests is exact, wherever
	// the rotation stands.
	assert.Equal(t, map[string]int{"a": 50, "b": 50}, window(100))
	code, r = adminDo(t, g, "PUT", "/apisix/admin/routes/split", e2eAdminKey, splitRoute(main.addr(), 3, 1))
	require.Equal(t, 200, code, r)
	assert.Equal(t, map[string]int{"a": 3, "b": 1}, window(4))
	assert.Equal(t, map[string]int{"a": 3, "b": 1}, window(4))
	assert.Zero(t, failed.Load(), "failed requests under load (of %d)", sent.Load())
	assert.Greater(t, sent.Load(), int64(20))
	assert.Zero(t, main.count(), "every request went to an arm")
}

// TestSplitMatchesHeaderAndModel: a canary header and the JSON body's
// model field (post_arg.model) pick their arms; other requests use the
// route's upstream.
func TestSplitMatchesHeaderAndModel(t *testing.T) {
	main, canary, big := startUpstream(t, "main", nil), startUpstream(t, "canary", nil), startUpstream(t, "big", nil)
	doc := routesDoc(route("r1", "/chat/completions", fmt.Sprintf(`    plugins:
      traffic-split:
        rules:
          - match:
              - vars: [["http_x_canary", "==", "1"]]
            weighted_upstreams:
              - upstream: {type: roundrobin, nodes: {%q: 1}}
          - match:
              - vars: [["post_arg.model", "==", "gpt-4o"]]
            weighted_upstreams:
              - upstream: {type: roundrobin, nodes: {%q: 1}}
                rewrite: {uri: /v2/chat/completions}
`, canary.addr(), big.addr()), main.addr()))
	g := startGateway(t, 2, "", doc)
	post := func(body string, hdr ...string) string {
		req, err := http.NewRequest("POST", g.url("/chat/completions"), strings.NewReader(body))
		require.NoError(t, err)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		return resp.Header.Get("X-Upstream-Name") + " " + resp.Header.Get("X-Upstream-Path")
	}
	assert.Equal(t, "canary /chat/completions", post(`{"model":"gpt-4o"}`, "X-Canary", "1"))
	assert.Equal(t, "big /v2/chat/completions", post(`{"model":"gpt-4o","stream":true}`))
	assert.Equal(t, "main /chat/completions", post(`{"model":"gpt-3.5"}`))
	assert.Equal(t, "main /chat/completions", post(`not json`))
	_, body := big.lastRequest()
	assert.Equal(t, `{"model":"gpt-4o","stream":true}`, string(body), "the body read for matching still reaches the upstream")

	// a body sent in two pieces (head first) is waited for
	rc := dialRaw(t, g.addr())
	piece := `{"messages":[],"model":"gpt-4o"}`
	rc.send(fmt.Sprintf("POST /chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(piece)))
	time.Sleep(50 * time.Millisecond) // let the head arrive alone
	rc.send(piece)
	resp, _, err := rc.readResponse("POST")
	require.NoError(t, err)
	assert.Equal(t, "big", resp.Header.Get("X-Upstream-Name"))
}

// TestSplitUnknownUpstreamIs400: APISIX accepts an unknown upstream_id
// and fails with 500 per request (#9996); sluice refuses the write.
func TestSplitUnknownUpstreamIs400(t *testing.T) {
	dir, port, adminPort := newAdminGatewayDir(t, e2eAdminKey)
	g := startAdminGateway(t, dir, port, adminPort)
	code, r := adminDo(t, g, "PUT", "/apisix/admin/routes/split", e2eAdminKey, splitRoute("127.0.0.1:1", 1, 1))
	assert.Equal(t, 400, code)
	assert.Contains(t, r["error_msg"], "failed to fetch upstream info by upstream id [a]")
}

// TestSplitGuideFormUpstreamID: a guide-form rule that names its upstream
// by upstream_id ({"weight":1,"upstream_id":"gx"}) is an arm like a
// weighted_upstreams one: half the requests reach gx (rewritten), half the
// route's upstream, and gx cannot be deleted while the route names it.
func TestSplitGuideFormUpstreamID(t *testing.T) {
	main, gx := startUpstream(t, "main", nil), startUpstream(t, "gx", nil)
	dir, port, adminPort := newAdminGatewayDir(t, e2eAdminKey)
	g := startAdminGateway(t, dir, port, adminPort)
	code, r := adminDo(t, g, "PUT", "/apisix/admin/upstreams/gx", e2eAdminKey, fmt.Sprintf(`{"nodes":{%q:1}}`, gx.addr()))
	require.Equal(t, 201, code, r)
	code, r = adminDo(t, g, "PUT", "/apisix/admin/routes/guide", e2eAdminKey, fmt.Sprintf(`{"uri":"/chat/completions",
	  "upstream":{"nodes":{%q:1}},
	  "plugins":{"traffic-split":{"rules":[
	    {"weight":1,"upstream_id":"gx","rewrite":{"uri":"/v2/chat/completions"}},
	    {"weight":1}]}}}`, main.addr()))
	require.Equal(t, 201, code, r)

	seen := map[string]int{}
	for range 10 {
		resp, body := dataGet(t, g, "POST", "/chat/completions", `{"model":"m"}`)
		require.Equal(t, 200, resp.StatusCode, body)
		seen[resp.Header.Get("X-Upstream-Name")+" "+resp.Header.Get("X-Upstream-Path")]++
	}
	assert.Equal(t, map[string]int{"gx /v2/chat/completions": 5, "main /chat/completions": 5}, seen)

	code, r = adminDo(t, g, "DELETE", "/apisix/admin/upstreams/gx", e2eAdminKey, "")
	assert.Equal(t, 400, code)
	assert.Equal(t, "can not delete this upstream, plugin in route [guide] is still using it now", r["error_msg"])
	resp, body := dataGet(t, g, "POST", "/chat/completions", `{}`)
	assert.Equal(t, 200, resp.StatusCode, body)

	code, r = adminDo(t, g, "PUT", "/apisix/admin/routes/other", e2eAdminKey,
		`{"uri":"/o","plugins":{"traffic-split":{"rules":[{"weight":1,"upstream_id":"nope"}]}},"upstream_id":"gx"}`)
	assert.Equal(t, 400, code)
	assert.Contains(t, r["error_msg"], "failed to fetch upstream info by upstream id [nope]")
}

// TestRouteVarsOnModel: a route's own vars can read the JSON body
// (post_arg.model), so requests are routed by the model they ask for.
func TestRouteVarsOnModel(t *testing.T) {
	main, big := startUpstream(t, "main", nil), startUpstream(t, "big", nil)
	doc := routesDoc(
		route("by-model", "/chat/completions", "    priority: 10\n    vars: [[\"post_arg.model\", \"==\", \"gpt-4o\"]]\n", big.addr()),
		route("default", "/chat/completions", "", main.addr()),
	)
	g := startGateway(t, 1, "", doc)
	post := func(body string, chunked bool) string {
		var rd io.Reader = strings.NewReader(body)
		if chunked {
			rd = io.MultiReader(strings.NewReader(body)) // unknown length: chunked
		}
		req, err := http.NewRequest("POST", g.url("/chat/completions"), rd)
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		return resp.Header.Get("X-Upstream-Name")
	}
	assert.Equal(t, "big", post(`{"model":"gpt-4o","messages":[]}`, false))
	assert.Equal(t, "main", post(`{"model":"gpt-3.5","messages":[]}`, false))
	assert.Equal(t, "big", post(`{"messages":[],"model":"gpt-4o"}`, true), "chunked body")
	resp, err := client.Get(g.url("/chat/completions"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "main", resp.Header.Get("X-Upstream-Name"), "no body: post_arg is nil")
	_, body := big.lastRequest()
	assert.Equal(t, `{"messages":[],"model":"gpt-4o"}`, string(body), "the body still reaches the upstream")
}
