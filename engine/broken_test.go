package engine

import (
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A route whose configuration did not build (router.BuildIsolated: a
// dangling upstream_id another writer left) answers 503 itself: its
// requests never fall through to a less specific route, which lacks its
// plugins.
func TestBrokenRouteAnswers503(t *testing.T) {
	up := serveRequests(t, func(c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	catchAll := routeTo("all", "/*", up)
	broken := routeTo("admin", "/admin/*")
	broken.Upstream = nil
	broken.UpstreamID = "gone"
	g := startTestGateway(t, 1, snapshot(catchAll))
	tbl, rep, err := g.b.BuildIsolated(snapshot(catchAll, broken), nil)
	require.NoError(t, err)
	require.Contains(t, rep.Broken, "routes/admin")
	g.pub.Store(tbl)

	resp, err := http.Get("http://" + g.addr + "/admin/secret")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 503, resp.StatusCode, "%s", body)
	assert.Contains(t, string(body), `"error_msg":"the route's configuration does not build"`, "not the catch-all's answer, nor a missing-upstream message")

	resp, err = http.Get("http://" + g.addr + "/public")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode, "the other routes work")
}
